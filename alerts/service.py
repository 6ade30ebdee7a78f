"""Alerts in the service (`yuqing run`): the post-crawl job that decides, and the sender thread that delivers.

**Deciding** (:class:`AlertDecider`, the post-crawl job ``alerts``): after every crawl (and when
``schedule.alert_interval_s`` passed without one) it reads the rules file, collects the signals
(:mod:`alerts.producers`: posts matching the post rules, 专题 hits, negative surges, silent sources, events,
ticket and 依申请公开 deadlines) and decides them into the outbox (:meth:`alerts.outbox.Outbox.decide`): each
decision is one outbox entry, created once whatever the number of runs, restarts or processes. Post rules (and
专题 hits) look at the posts *indexed* since the previous run (``indexed_at``, stamped by the writer: a post
fetched during an Elasticsearch outage and replayed from the spool later is evaluated then), fetched within
``alerts.lookback_hours``; at most ``alerts.max_per_run`` matches per rule and run, the rest in the next run. Where
the next run starts moves on only once a run's decisions are in the outbox: a failed run is read again.

**Sending** (:class:`SenderThread`): a thread of the scheduler process runs :func:`alerts.outbox.serve` — release
the digests and quiet-hour summaries whose time has come, deliver what is due, retry with backoff while the mail
server is down (``alerts.delivery``) — every ``alerts.delivery.poll_interval_s`` seconds, and at once when the
decider has just created an entry.

The previous per-post path (``alerts/service.py`` mailing each match directly with an ``alert-state`` index) is
replaced: post rules decide into the outbox like every other rule, with ``digest_minutes`` for busy rules.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from elasticsearch import ApiError, Elasticsearch, TransportError

from alerts.content import LEVELS, level_rank
from alerts.event_rules import (
    FoiaDueRule,
    InstructionRule,
    KeywordGroupRule,
    LevelRaisedRule,
    NegativeSurgeRule,
    NewEventRule,
    SourceSilentRule,
    TicketDueRule,
)
from alerts.outbox import DeliveryReport, Outbox, Sender, serve
from alerts.producers import (
    event_signals,
    foia_signals,
    instruction_signals,
    keyword_group_signals,
    post_signals,
    source_signals,
    surge_signals,
    ticket_signals,
)
from alerts.rules import AlertConfig, alert_config
from alerts.signals import Signal
from index.events import EVENTS
from index.foia import FOIA
from index.layout import POSTS
from index.outbox import OUTBOX
from index.tickets import TICKETS
from nlp.taxonomy import load_taxonomy
from yuqing.errors import YuqingError
from yuqing.settings import Settings
from yuqing.sources import Source

log = logging.getLogger(__name__)

# Extra producers (events, tickets, 依申请公开) plug in here: (settings, client, config, now) -> signals.
Producer = Callable[[Settings, Elasticsearch, AlertConfig, datetime], Sequence[Signal]]


def make_outbox(settings: Settings, client: Elasticsearch, *, font: Path | None = None) -> Outbox:
    return Outbox(client, OUTBOX.alias(settings.elasticsearch.index_prefix), sender=settings.smtp.sender,
                  dashboard_url=settings.alerts.dashboard_url, tz=ZoneInfo(settings.timezone),
                  font=font or settings.alerts.cjk_font)


def make_sender(settings: Settings, client: Elasticsearch) -> Sender:
    return Sender(client, OUTBOX.alias(settings.elasticsearch.index_prefix), settings.require_smtp(),
                  settings.alerts.delivery)


class AlertRunError(YuqingError):
    """A decide run could not read its signals or write the outbox (Elasticsearch); nothing is lost: the next
    run decides the same again."""


@dataclass
class DecideReport:
    """What one decide run did: signals seen, outbox entries created, decisions found made before, matches
    skipped (cooldown, no recipient), post rules cut at ``alerts.max_per_run``."""

    signals: int = 0
    created: int = 0
    existing: int = 0
    skipped: int = 0
    deferred: list[str] = field(default_factory=list)

    def summary(self) -> str:
        cut = f"; {', '.join(self.deferred)} continue next run (alerts.max_per_run)" if self.deferred else ""
        return (f"alert decide: {self.signals} signals, {self.created} new outbox entries, {self.existing} decided "
                f"before, {self.skipped} skipped{cut}")


@dataclass(frozen=True)
class PostWindow:
    """Where a post-reading rule's next run starts: posts indexed from ``start`` on, and — when
    ``alerts.max_per_run`` cut the previous run — only those sorted after ``after`` (the sort key of the last post
    it took, :data:`alerts.query.RULE_SORT`)."""

    start: datetime
    after: list[Any] | None = None


class AlertDecider:
    """Signals → outbox decisions; remembers, per post rule, where the previous run of this process stopped."""

    def __init__(self, settings: Settings, *, sources: Sequence[tuple[str, str]] = (),
                 own_sources: Sequence[str] = (), producers: Sequence[Producer] = (), font: Path | None = None
                 ) -> None:
        self.settings = settings
        self.sources = tuple(sources)  # (name, kind) of the enabled sources, for the silent-source rule
        # the bureau's own channels (sources.yaml ``own: true``): their posts are its own words (本局发布), not
        # opinion to alert on — left out of the post rules (unless a rule names the source), 专题 and surges
        self.own_sources = tuple(own_sources)
        self.producers = tuple(producers)
        self.font = font
        # Per post rule (and the 专题 and events keys): where the next run starts. Changed only once a run's
        # decisions are in the outbox (run()), so a failed run leaves nothing behind.
        self.windows: dict[str, PostWindow] = {}

    @classmethod
    def for_sources(cls, settings: Settings, sources: Sequence[Source], *, font: Path | None = None
                    ) -> AlertDecider:
        """The decider for the sources of sources.yaml (all of them): the enabled ones watched by the
        silent-source rule, the bureau's own ones (enabled or not) left out of post alerts."""
        return cls(settings, sources=[(s.name, s.kind) for s in sources if s.enabled],
                   own_sources=[s.name for s in sources if s.own], font=font)

    def _window(self, key: str, now: datetime) -> PostWindow:
        earliest = now - timedelta(hours=self.settings.alerts.lookback_hours)
        last = self.windows.get(key)
        if last is None:
            return PostWindow(earliest)
        return PostWindow(max(earliest, last.start), last.after)

    def _next_window(self, window: PostWindow, now: datetime, cut_after: list[Any] | None) -> PostWindow:
        """The window of the run after one that read ``window`` at ``now``: on from the last post taken when the
        run was cut; otherwise from ``now`` less an overlap for posts stamped (``indexed_at``) before ``now`` but
        searchable only after this run's search (a bulk request in flight)."""
        if cut_after is not None:
            return PostWindow(window.start, cut_after)
        return PostWindow(now - timedelta(seconds=self.settings.schedule.crawl_timeout_s + 60))

    def collect(self, client: Elasticsearch, config: AlertConfig, now: datetime,
                report: DecideReport) -> tuple[list[Signal], dict[str, PostWindow]]:
        """Every signal the enabled rules could fire on at ``now``, and the windows the next run starts from
        (for :attr:`windows` once the signals are decided)."""
        s = self.settings
        posts_alias = POSTS.alias(s.elasticsearch.index_prefix)
        client.indices.refresh(index=posts_alias)  # the crawl that just finished is searchable
        fetched_after = now - timedelta(hours=s.alerts.lookback_hours)  # older posts are not news any more
        signals: list[Signal] = []
        windows: dict[str, PostWindow] = {}
        for rule in config.post_rules:
            window = self._window(rule.name, now)
            found, cut_after = post_signals(client, posts_alias, rule, since=window.start, until=now,
                                            limit=s.alerts.max_per_run, fetched_after=fetched_after,
                                            after=window.after, own_sources=self.own_sources)
            signals += found
            if cut_after is not None:
                report.deferred.append(rule.name)
            windows[rule.name] = self._next_window(window, now, cut_after)
        rules = config.signal_rules.rules
        taxonomy = load_taxonomy(s.config_file("taxonomy.yaml"))  # topic → 责任单位, for signal_unit routing
        group_rules = [r for r in rules if isinstance(r, KeywordGroupRule)]
        if group_rules:
            groups = () if any(not r.groups for r in group_rules) else tuple({g for r in group_rules for g in r.groups})
            key = "\x00keyword_groups"
            window = self._window(key, now)
            found_groups, cut_after = keyword_group_signals(
                client, posts_alias, since=window.start, until=now, groups=groups, limit=s.alerts.max_per_run,
                unit_of=taxonomy.unit_of, fetched_after=fetched_after, after=window.after,
                own_sources=self.own_sources)
            signals += found_groups
            if cut_after is not None:
                report.deferred.append("专题 (" + ", ".join(r.name for r in group_rules) + ")")
            windows[key] = self._next_window(window, now, cut_after)
        units = {c.name: c.unit for c in taxonomy.categories}
        for minutes in sorted({r.window_minutes for r in rules if isinstance(r, NegativeSurgeRule)}):
            signals += surge_signals(client, posts_alias, window_end=now, minutes=minutes, units=units,
                                     own_sources=self.own_sources)
        if self.sources and any(isinstance(r, SourceSilentRule) for r in rules):
            signals += source_signals(client, s.elasticsearch.index_prefix, self.sources,
                                      silent_after=s.crawl.silent_after_runs)
        signals += self._response_signals(client, rules, now)
        event_rules = [r for r in rules if isinstance(r, NewEventRule | LevelRaisedRule)]
        if event_rules:
            loosest = max(level_rank(r.min_level) for r in event_rules)
            window = self._window("\x00events", now)
            signals += event_signals(client, EVENTS.alias(s.elasticsearch.index_prefix), posts_alias,
                                     since=window.start, levels=LEVELS[:loosest + 1])
            windows["\x00events"] = self._next_window(window, now, None)
        for produce in self.producers:
            signals += produce(s, client, config, now)
        return signals, windows

    def _response_signals(self, client: Elasticsearch, rules: Sequence[object], now: datetime) -> list[Signal]:
        """处置单 deadlines and 依申请公开 clocks (response/reminders.py), when a rule asks for them."""
        from response.config import load_response_config

        s = self.settings
        prefix = s.elasticsearch.index_prefix
        ticket_rules = [r for r in rules if isinstance(r, TicketDueRule)]
        foia_rules = [r for r in rules if isinstance(r, FoiaDueRule)]
        out: list[Signal] = []
        if any(isinstance(r, InstructionRule) for r in rules) and client.indices.exists_alias(
                name=TICKETS.alias(prefix)):
            out += instruction_signals(client, prefix)
        if not ticket_rules and not foia_rules:
            return out
        config = load_response_config(s.config_file("response.yaml"))
        if ticket_rules and client.indices.exists_alias(name=TICKETS.alias(prefix)):
            before = max(r.within_hours or 0.0 for r in ticket_rules)
            out += ticket_signals(client, prefix, now, before_hours=before, config=config)
        if foia_rules and client.indices.exists_alias(name=FOIA.alias(prefix)):
            within = max(r.within_working_days for r in foia_rules)
            today = now.astimezone(ZoneInfo(s.timezone)).date()
            out += foia_signals(client, prefix, today, within_working_days=within, config=config)
        return out

    def run(self, client: Elasticsearch, *, now: datetime | None = None) -> DecideReport:
        """One decide run at ``now`` (default: the current time); ConfigError for a bad rules file."""
        now = now or datetime.now(UTC)
        config = alert_config(self.settings)
        report = DecideReport()
        prefix = self.settings.elasticsearch.index_prefix
        try:
            signals, windows = self.collect(client, config, now, report)
        except (ApiError, TransportError) as exc:
            raise AlertRunError(f"alert decide: reading the signals ({POSTS.alias(prefix)}, …) failed: {exc}; "
                                "nothing was decided, the next run tries again") from exc
        report.signals = len(signals)
        if signals:
            try:
                evaluation, submitted = make_outbox(self.settings, client, font=self.font).decide(
                    config.outbox_rules, signals, now)
            except (ApiError, TransportError) as exc:
                raise AlertRunError(f"alert decide: writing {OUTBOX.alias(prefix)} failed: {exc}; what was not "
                                    "written is decided again by the next run") from exc
            report.created, report.existing = len(submitted.created), len(submitted.existing)
            report.skipped = len(evaluation.skipped)
        self.windows.update(windows)  # decided: the next run starts after what this one read
        log.log(logging.INFO if report.created or report.deferred else logging.DEBUG, report.summary())
        return report


def deliver_once(settings: Settings, client: Elasticsearch, *, font: Path | None = None) -> DeliveryReport:
    """Release what is due to be released and deliver what is due, once (`yuqing alert`)."""
    make_outbox(settings, client, font=font).release_held(datetime.now(UTC))
    return make_sender(settings, client).deliver_due()


class SenderThread:
    """The outbox sender as a thread of the scheduler process: :meth:`start`, :meth:`wake` after deciding,
    :meth:`close` at shutdown."""

    def __init__(self, settings: Settings, *, font: Path | None = None) -> None:
        settings.require_smtp()
        self.settings = settings
        self.font = font
        self.stop_event = threading.Event()
        self.wake_event = threading.Event()
        self.thread = threading.Thread(target=self._serve, name="outbox-sender", daemon=True)

    def _serve(self) -> None:
        from index.client import es_client

        try:
            with es_client(self.settings.elasticsearch) as client:
                serve(make_outbox(self.settings, client, font=self.font), make_sender(self.settings, client),
                      self.stop_event, self.wake_event)
        except Exception:
            log.exception("outbox sender stopped by an error; alert mails wait until the service restarts")

    def start(self) -> None:
        self.thread.start()
        log.info("outbox sender started (every %.0f s, and at once after a decision)",
                 self.settings.alerts.delivery.poll_interval_s)

    def wake(self) -> None:
        self.wake_event.set()

    def close(self, timeout: float = 60.0) -> None:
        self.stop_event.set()
        self.wake_event.set()
        self.thread.join(timeout)
        if self.thread.is_alive():
            log.warning("outbox sender did not stop within %.0f s (a mail in flight); leaving it", timeout)
