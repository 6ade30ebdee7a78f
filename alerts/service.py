"""One alert run: find new posts that match a rule and mail each one to the rule's recipients.

For every rule, the posts fetched within the look-back window that match it are paged through oldest first;
a post with a ``sent`` state under the rule is skipped. Up to ``alerts.max_per_run`` emails go out per run
(the rest wait for the next run). The SMTP session is opened only when there is something to send.

When the SMTP server cannot be used, :class:`AlertRunError` is raised (its message names host:port) and no
pending alert is marked: every one of them is tried again on the next run.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from elasticsearch import ApiError, Elasticsearch, TransportError

from alerts.mailer import Mailer, MessageRejectedError, SMTPUnavailableError
from alerts.message import build_message
from alerts.query import build_rule_search
from alerts.rules import AlertRule, load_rules, rules_path
from index.alert_state import AlertStateStore
from index.layout import ALERT_STATE, POSTS
from index.records import AlertState
from index.search import post_from_source
from yuqing.errors import YuqingError
from yuqing.models import Post
from yuqing.settings import Settings

log = logging.getLogger(__name__)

PAGE_SIZE = 200


@dataclass
class AlertRunReport:
    """What one run did. ``skipped``: matched but already sent (or given up after ``alerts.max_attempts``);
    ``deferred``: new but over ``alerts.max_per_run``, left for the next run."""

    rules: int = 0
    matched: int = 0
    sent: int = 0
    failed: int = 0
    skipped: int = 0
    deferred: int = 0
    errors: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        return self.summary()

    def summary(self) -> str:
        return (
            f"alert run: {self.rules} rules, {self.matched} matching posts, {self.sent} sent, "
            f"{self.failed} failed, {self.skipped} skipped, {self.deferred} deferred"
        )


class AlertRunError(YuqingError):
    """The run could not finish (SMTP unavailable, state not recordable); ``report`` says what was done."""

    def __init__(self, message: str, report: AlertRunReport) -> None:
        super().__init__(message)
        self.report = report


@dataclass(frozen=True)
class PendingAlert:
    rule: AlertRule
    post_id: str
    post: Post
    prior: AlertState | None


def _matching_pages(
    client: Elasticsearch, alias: str, rule: AlertRule, since: datetime, until: datetime
) -> Iterator[list[tuple[str, Post]]]:
    search_after: list[Any] | None = None
    while True:
        body = build_rule_search(rule, since, until, size=PAGE_SIZE, search_after=search_after)
        hits = client.search(index=alias, **body)["hits"]["hits"]
        if not hits:
            return
        yield [(h["_id"], post_from_source(h["_source"])) for h in hits]
        if len(hits) < PAGE_SIZE:
            return
        search_after = hits[-1]["sort"]


def find_pending(
    client: Elasticsearch,
    posts_alias: str,
    store: AlertStateStore,
    rule: AlertRule,
    *,
    since: datetime,
    until: datetime,
    limit: int,
    max_attempts: int,
    report: AlertRunReport,
) -> list[PendingAlert]:
    """Up to ``limit`` alerts to send for ``rule``; counts matched/skipped/deferred into ``report``."""
    pending: list[PendingAlert] = []
    for page in _matching_pages(client, posts_alias, rule, since, until):
        states = store.get(rule.name, [post_id for post_id, _ in page])
        for post_id, post in page:
            report.matched += 1
            prior = states.get(post_id)
            if prior is not None and (prior.sent or prior.attempts >= max_attempts):
                report.skipped += 1
            elif len(pending) < limit:
                pending.append(PendingAlert(rule, post_id, post, prior))
            else:
                report.deferred += 1
    return pending


def _deliver(
    settings: Settings, store: AlertStateStore, pending: Sequence[PendingAlert], now: datetime,
    report: AlertRunReport,
) -> None:
    max_attempts = settings.alerts.max_attempts
    with Mailer(settings.require_smtp()) as mailer:
        for item in pending:
            rule, post = item.rule, item.post
            msg = build_message(
                rule=rule, post=post, post_id=item.post_id, sender=settings.smtp.sender,
                dashboard_url=settings.alerts.dashboard_url, timezone=settings.timezone, now=now,
            )
            try:
                refused = mailer.send(msg)
            except MessageRejectedError as exc:
                attempts = store.mark_failed(
                    rule.name, item.post_id, rule.recipients, str(exc), now=now, prior=item.prior
                )
                report.failed += 1
                report.errors.append(str(exc))
                final = "; giving up" if attempts >= max_attempts else "; retried on the next run"
                log.error(
                    "rule %r: alert for %s failed (attempt %d of %d%s): %s",
                    rule.name, post.url, attempts, max_attempts, final, exc,
                )
                continue
            error = f"recipients refused: {', '.join(refused)}" if refused else None
            try:
                store.mark_sent(
                    rule.name, item.post_id, rule.recipients, now=now, prior=item.prior, error=error
                )
            except (ApiError, TransportError) as exc:
                raise AlertRunError(
                    f"rule {rule.name!r}: the alert for {post.url} was sent but recording it in "
                    f"{store.alias} failed ({exc}); it may be sent again on the next run",
                    report,
                ) from exc
            report.sent += 1
            log.info("rule %r: alerted %s to %s", rule.name, post.url, ", ".join(rule.recipients))


def run_alerts(
    settings: Settings,
    client: Elasticsearch,
    *,
    now: datetime | None = None,
    rules: Sequence[AlertRule] | None = None,
) -> AlertRunReport:
    """Run every rule once and send the new alerts; see the module docstring.

    ``rules`` defaults to the rules file (``alerts.rules_file``); ``now`` (timezone-aware) to the current
    time. Raises ConfigError for a missing smtp.host or a bad rules file and AlertRunError when the SMTP
    server is unavailable.
    """
    settings.require_smtp()
    if now is None:
        now = datetime.now(UTC)
    elif now.tzinfo is None:
        raise ValueError("run_alerts: now must be timezone-aware")
    rule_list = list(rules) if rules is not None else load_rules(rules_path(settings))
    prefix = settings.elasticsearch.index_prefix
    posts_alias = POSTS.alias(prefix)
    store = AlertStateStore(client, ALERT_STATE.alias(prefix))
    since = now - timedelta(hours=settings.alerts.lookback_hours)
    report = AlertRunReport(rules=len(rule_list))

    pending: list[PendingAlert] = []
    for rule in rule_list:
        try:
            pending += find_pending(
                client, posts_alias, store, rule, since=since, until=now,
                limit=settings.alerts.max_per_run - len(pending),
                max_attempts=settings.alerts.max_attempts, report=report,
            )
        except (ApiError, TransportError) as exc:
            raise AlertRunError(
                f"rule {rule.name!r}: finding new posts in {posts_alias} (state in {store.alias}) "
                f"failed: {exc}; nothing was sent",
                report,
            ) from exc
    if report.deferred:
        log.warning("%d alerts over alerts.max_per_run=%d wait for the next run",
                    report.deferred, settings.alerts.max_per_run)
    try:
        if pending:
            _deliver(settings, store, pending, now, report)
    except SMTPUnavailableError as exc:
        left = len(pending) - report.sent - report.failed
        raise AlertRunError(
            f"alert run stopped: {exc}; {report.sent} sent, {left} alerts left for the next run", report
        ) from exc
    finally:
        if store.writes:
            client.indices.refresh(index=store.alias)
    # One line per run that did something; a quiet run (nothing new to send) only at DEBUG.
    log.log(logging.INFO if report.sent or report.failed or report.deferred else logging.DEBUG, report.summary())
    return report
