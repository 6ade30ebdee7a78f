"""Delivery through the outbox: decide → outbox → send → mark sent, exactly once as far as SMTP allows.

**Deciding** (:meth:`Outbox.submit`): each :class:`alerts.event_rules.Decision` becomes one outbox entry whose
id is the decision's id (rule + subject + occurrence), written with ``op_type=create``: deciding the same thing
twice — a re-run, a restart, a second machine — finds the entry and creates nothing. A decision due now is
composed at once and stored ``pending`` with the exact message (and its Message-ID, derived from the id); one
that waits for a digest window or the end of quiet hours is stored ``held`` with its content, and
:meth:`Outbox.release_held` composes one digest per key when the time comes (one held item alone goes out as
its own mail).

**Sending** (:class:`Sender`): a pass takes the due entries (pending and due, or ``sending`` for longer than
the lease), *claims* each by a compare-and-set to ``sending`` (attempts + 1, ``claimed_by``, ``claimed_at``) —
of two senders only one wins the claim, the other skips the entry — sends it and marks it ``sent`` by a
compare-and-set from the claimed version. SMTP unreachable, TLS or login failing: the entry goes back to
``pending`` with ``next_attempt_at`` = now + backoff (base × 2^(attempts−1), capped), and so does every other
due entry of the pass without another connection attempt; a refused message is retried the same way; after
``max_attempts`` the entry is ``failed`` (with the last error) and listed by
:func:`index.outbox.failed_entries` for the dashboard.

**Crashes.** Killed after deciding, before sending (entry ``pending``): the next sender sends it — once.
Killed after the claim, before the SMTP server accepted the message (entry ``sending``): after the lease the
next sender takes it over and sends it — once. The remaining window: killed (or Elasticsearch unreachable)
after the server accepted the message and before ``sent`` was stored. The entry is then still ``sending``, and
after the lease it is sent again. That window is kept to the time of one Elasticsearch write: the mark is the
very next step after the server's ``250`` (no other work between, a few retries if Elasticsearch hiccups), and
the repeat carries the same Message-ID and bytes, so mail clients and most servers show or keep it once; the
take-over is logged as a warning naming the entry. SMTP offers no way to ask a server whether it already has
a message, so no sender can close the window completely.
"""

from __future__ import annotations

import base64
import logging
import os
import socket
import ssl
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from zoneinfo import ZoneInfo

from elasticsearch import ApiError, Elasticsearch, TransportError

from alerts.compose import DigestItem, Envelope, compose, compose_digest, one_line
from alerts.content import PayloadBox
from alerts.event_rules import Decision, Evaluation, EventRules, decision_id, evaluate
from alerts.mailer import Mailer, MessageRejectedError, SMTPUnavailableError
from alerts.signals import Signal
from index import outbox as store
from index.job_log import JobLog
from index.outbox import OutboxEntry, cooldown_key
from yuqing.settings import DeliverySettings, SMTPSettings

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]
_MARK_RETRIES = 3


def utc_now() -> datetime:
    return datetime.now(UTC)


def backoff(attempts: int, base_s: float, max_s: float) -> timedelta:
    """Wait after the ``attempts``-th failed attempt: base, 2×base, 4×base, … at most ``max_s``."""
    return timedelta(seconds=min(max_s, base_s * 2 ** max(0, attempts - 1)))


def encode_message(msg: EmailMessage) -> str:
    return base64.b64encode(msg.as_bytes(policy=policy.SMTP)).decode("ascii")


def decode_message(mime: str) -> EmailMessage:
    msg = message_from_bytes(base64.b64decode(mime), policy=policy.default)
    assert isinstance(msg, EmailMessage)
    return msg


@dataclass
class SubmitReport:
    created: list[str] = field(default_factory=list)
    existing: list[str] = field(default_factory=list)


class Outbox:
    """The deciding side: decisions in, entries (composed or held) out."""

    def __init__(
        self,
        client: Elasticsearch,
        alias: str,
        *,
        sender: str,
        dashboard_url: str,
        tz: ZoneInfo,
        font: Path | None = None,
    ) -> None:
        self.client = client
        self.alias = alias
        self.sender = sender
        self.dashboard_url = dashboard_url
        self.tz = tz
        self.font = font

    def _envelope(self, entry_id: str, recipients: Sequence[str], now: datetime) -> Envelope:
        return Envelope(sender=self.sender, recipients=tuple(recipients), entry_id=entry_id, date=now,
                        dashboard_url=self.dashboard_url, tz=self.tz, font=self.font)

    def _entry(self, d: Decision, now: datetime) -> OutboxEntry:
        payload = d.signal.payload(now, self.tz)
        common = dict(
            id=d.id, rule=d.rule, rule_kind=d.rule_kind, subject_key=d.subject_key, occurrence=d.occurrence,
            cooldown_key=cooldown_key(d.rule, d.subject_key), title=d.title, reason=d.reason, level=d.level,
            recipients=d.addresses, decided_at=d.decided_at, deliver_at=d.deliver_at, hold=d.hold,
            digest_key=d.digest_key, payload=payload.model_dump(mode="json"), updated_at=now,
        )
        if d.hold != "now":
            return OutboxEntry(status="held", **common)
        msg = compose(payload, self._envelope(d.id, d.addresses, now), rule=d.rule, reason=d.reason)
        return OutboxEntry(status="pending", next_attempt_at=now, message_id=msg["Message-ID"],
                           subject=str(msg["Subject"]), mime=encode_message(msg), **common)

    def submit(self, decisions: Sequence[Decision], now: datetime) -> SubmitReport:
        """One entry per decision; a decision whose entry exists creates nothing (see module docstring)."""
        report = SubmitReport()
        known = store.get_many(self.client, self.alias, [d.id for d in decisions])  # no composing for those
        for d in decisions:
            if d.id in known:
                report.existing.append(d.id)
                continue
            created = store.create(self.client, self.alias, self._entry(d, now))
            if created is None:
                report.existing.append(d.id)
                log.debug("outbox: %s (rule %r, %s) was decided before", d.id, d.rule, d.subject_key)
            else:
                report.created.append(d.id)
                log.debug("outbox: rule %r decided %s for %s (%s) -> %s, %s", d.rule, d.id, d.subject_key,
                         d.occurrence, ", ".join(d.addresses), created.status)
        if report.created:
            self.client.indices.refresh(index=self.alias)  # cooldown history and sweeps see them
        return report

    def history(self, rules: EventRules, signals: Sequence[Signal]) -> dict[tuple[str, str], datetime]:
        pairs = {(r.name, s.subject_key) for r in rules.rules if r.cooldown_minutes for s in signals}
        return store.last_decided(self.client, self.alias, pairs)

    def decide(
        self, rules: EventRules, signals: Sequence[Signal], now: datetime
    ) -> tuple[Evaluation, SubmitReport]:
        """Evaluate ``signals`` with the cooldown history from the outbox and submit the decisions."""
        evaluation = evaluate(rules.rules, rules.directory, signals, now=now, tz=self.tz,
                              history=self.history(rules, signals))
        for s in evaluation.skipped:  # re-evaluated every run: detail only
            log.debug("outbox: rule %r skipped %s: %s", s.rule, s.subject_key, s.reason)
        return evaluation, self.submit(evaluation.decisions, now)

    # ---- held entries -------------------------------------------------------------------------------------
    def _to_pending(self, entry: OutboxEntry, now: datetime) -> OutboxEntry | None:
        payload = PayloadBox.model_validate({"payload": entry.payload}).payload
        msg = compose(payload, self._envelope(entry.id, entry.recipients, now), rule=entry.rule,
                      reason=entry.reason)
        pending = entry.model_copy(update={
            "status": "pending", "next_attempt_at": now, "message_id": msg["Message-ID"],
            "subject": str(msg["Subject"]), "mime": encode_message(msg), "updated_at": now,
        })
        return store.replace(self.client, self.alias, pending, expected=entry)

    def release_held(self, now: datetime) -> int:
        """Compose the digests (and lone held items) whose time has come; returns the entries made pending."""
        held = store.search(self.client, self.alias, store.held_due_query(now), size=1000)
        groups: dict[str, list[OutboxEntry]] = {}
        for entry in held:
            groups.setdefault(entry.digest_key or entry.id, []).append(entry)
        released = 0
        for key, entries in groups.items():
            digest_id = decision_id("digest", key, "")
            existing = store.get(self.client, self.alias, digest_id)
            if existing is None and len(entries) == 1:
                released += self._to_pending(entries[0], now) is not None
                continue
            if existing is None:
                existing = self._create_digest(digest_id, key, entries, now)
                released += existing is not None
                if existing is None:  # another process made it a moment ago
                    existing = store.get(self.client, self.alias, digest_id)
            for entry in entries:
                if existing is not None and entry.id in existing.items:
                    folded = entry.model_copy(update={"status": "digested", "digest_id": digest_id,
                                                      "updated_at": now})
                    store.replace(self.client, self.alias, folded, expected=entry)
                else:  # decided after the digest was composed: goes out alone
                    released += self._to_pending(entry, now) is not None
        if released:
            self.client.indices.refresh(index=self.alias)
        return released

    def _create_digest(self, digest_id: str, key: str, entries: Sequence[OutboxEntry],
                       now: datetime) -> OutboxEntry | None:
        first = entries[0]
        items = [DigestItem(PayloadBox.model_validate({"payload": e.payload}).payload, e.reason, e.decided_at)
                 for e in entries]
        quiet = first.hold == "quiet"
        msg = compose_digest(items, self._envelope(digest_id, first.recipients, now), rule=first.rule, quiet=quiet)
        entry = OutboxEntry(
            id=digest_id, rule=first.rule, rule_kind=first.rule_kind, subject_key=f"digest:{key}", occurrence=key,
            cooldown_key=cooldown_key(first.rule, f"digest:{key}"), title=str(msg["Subject"]),
            status="pending", recipients=first.recipients, decided_at=now, deliver_at=now, next_attempt_at=now,
            hold=first.hold, digest_key=key, items=tuple(e.id for e in entries), message_id=msg["Message-ID"],
            subject=str(msg["Subject"]), mime=encode_message(msg), updated_at=now,
        )
        created = store.create(self.client, self.alias, entry)
        if created is not None:
            log.info("outbox: digest %s of rule %r with %d items -> %s", digest_id, first.rule, len(entries),
                     ", ".join(first.recipients))
        return created


@dataclass
class DeliveryReport:
    sent: int = 0
    retried: int = 0  # failed attempts that will be tried again
    failed: int = 0  # given up
    skipped: int = 0  # claimed by another sender
    taken_over: int = 0  # stale 'sending' claims taken over
    errors: list[str] = field(default_factory=list)

    def summary(self) -> str:
        return (f"outbox pass: {self.sent} sent, {self.retried} to retry, {self.failed} failed, "
                f"{self.skipped} skipped, {self.taken_over} taken over")


class Sender:
    """The sending side: claims due entries and sends them over one SMTP session per pass."""

    def __init__(
        self,
        client: Elasticsearch,
        alias: str,
        smtp: SMTPSettings,
        delivery: DeliverySettings,
        *,
        sender_id: str | None = None,
        ssl_context: ssl.SSLContext | None = None,
        clock: Clock = utc_now,
    ) -> None:
        self.client = client
        self.alias = alias
        self.smtp = smtp
        self.delivery = delivery
        self.id = sender_id or f"{socket.gethostname()}:{os.getpid()}"
        self.ssl_context = ssl_context
        self.clock = clock

    # ---- state changes (compare-and-set) ------------------------------------------------------------------
    def _claim(self, entry: OutboxEntry, now: datetime) -> OutboxEntry | None:
        claimed = entry.model_copy(update={"status": "sending", "attempts": entry.attempts + 1,
                                           "claimed_by": self.id, "claimed_at": now, "updated_at": now})
        got = store.replace(self.client, self.alias, claimed, expected=entry)
        if got is not None and entry.status == "sending":
            log.warning(
                "outbox: taking over %s (%r), claimed by %s at %s and not finished within %.0f s; sending it "
                "again with the same Message-ID (it arrives twice if that sender's attempt had been accepted)",
                entry.id, entry.subject, entry.claimed_by, entry.claimed_at, self.delivery.lease_s,
            )
        return got

    def _fail(self, entry: OutboxEntry, error: str, now: datetime, report: DeliveryReport, *, claimed: bool) -> None:
        attempts = entry.attempts if claimed else entry.attempts + 1
        d = self.delivery
        give_up = attempts >= d.max_attempts
        retry_at = None if give_up else now + backoff(attempts, d.backoff_base_s, d.backoff_max_s)
        update = {"status": "failed" if give_up else "pending", "attempts": attempts, "next_attempt_at": retry_at,
                  "last_error": error, "updated_at": now, "claimed_by": None, "claimed_at": None}
        if store.replace(self.client, self.alias, entry.model_copy(update=update), expected=entry) is None:
            report.skipped += 1
            return
        report.errors.append(error)
        if give_up:
            report.failed += 1
            log.error("outbox: gave up on %s (%r) to %s after %d attempts: %s", entry.id, entry.subject,
                      ", ".join(entry.recipients), attempts, error)
        else:
            report.retried += 1
            log.warning("outbox: %s attempt %d of %d failed, next at %s: %s", entry.id, attempts, d.max_attempts,
                        retry_at.isoformat() if retry_at else "-", error)

    def _mark_sent(self, claimed: OutboxEntry, refused: Sequence[str], now: datetime, report: DeliveryReport) -> None:
        done = claimed.model_copy(update={
            "status": "sent", "sent_at": now, "updated_at": now, "next_attempt_at": None, "refused": tuple(refused),
            "last_error": f"recipients refused: {', '.join(refused)}" if refused else None,
        })
        for attempt in range(_MARK_RETRIES):
            try:
                got = store.replace(self.client, self.alias, done, expected=claimed)
                break
            except (ApiError, TransportError) as exc:
                if attempt == _MARK_RETRIES - 1:
                    raise
                log.warning("outbox: %s was sent; recording it failed (%s), retrying", claimed.id, exc)
                time.sleep(0.2 * 2**attempt)
        if got is None:
            log.error("outbox: %s was sent, but another sender had taken it over meanwhile (lease %.0f s too short?); "
                      "it may arrive twice", claimed.id, self.delivery.lease_s)
        report.sent += 1
        log.info("outbox: sent %s %r to %s (attempt %d)", claimed.id, one_line(claimed.subject or ""),
                 ", ".join(claimed.recipients), claimed.attempts)

    # ---- a pass -------------------------------------------------------------------------------------------
    def due(self, now: datetime) -> list[OutboxEntry]:
        lease = timedelta(seconds=self.delivery.lease_s)
        return store.search(self.client, self.alias, store.due_query(now, lease), size=self.delivery.batch_size)

    def deliver_due(self, now: datetime | None = None) -> DeliveryReport:
        """Send what is due at ``now`` (default: the clock). Elasticsearch errors propagate."""
        now = now or self.clock()
        report = DeliveryReport()
        entries = self.due(now)
        mailer: Mailer | None = None
        try:
            for i, entry in enumerate(entries):
                if entry.mime is None:  # cannot happen through this module; never retried
                    self._fail(entry.model_copy(update={"attempts": self.delivery.max_attempts}),
                               "no message stored", now, report, claimed=True)
                    continue
                was_stale = entry.status == "sending"
                claimed = self._claim(entry, now)
                if claimed is None:
                    report.skipped += 1
                    continue
                report.taken_over += was_stale
                try:
                    if mailer is None:
                        mailer = Mailer(self.smtp, ssl_context=self.ssl_context)
                        mailer.connect()
                    refused = mailer.send(decode_message(entry.mime))
                except MessageRejectedError as exc:
                    self._fail(claimed, str(exc), now, report, claimed=True)
                    continue
                except SMTPUnavailableError as exc:
                    mailer = None  # Mailer closed it
                    self._fail(claimed, str(exc), now, report, claimed=True)
                    for other in entries[i + 1:]:  # no point in connecting again now
                        self._fail(other, str(exc), now, report, claimed=False)
                    break
                self._mark_sent(claimed, refused, now, report)
        finally:
            if mailer is not None:
                mailer.close()
        if report.sent or report.retried or report.failed:
            self.client.indices.refresh(index=self.alias)
            log.info(report.summary())
        return report


def serve(outbox: Outbox, sender: Sender, stop: threading.Event, wake: threading.Event | None = None) -> None:
    """Release held entries and deliver due ones every ``poll_interval_s`` (or at once when ``wake`` is set:
    something was just decided) until ``stop`` is set. An Elasticsearch error is logged in one line when it begins
    (and when the sender recovers) and tried again at the next pass; so is any other error (logged with its
    traceback: the loop must not die)."""
    interval = sender.delivery.poll_interval_s
    job_log = JobLog(log, "outbox: sender pass", expected=(ApiError, TransportError))
    while not stop.is_set():
        if wake is not None:
            wake.clear()
        try:
            outbox.release_held(sender.clock())
            sender.deliver_due()
        except Exception as exc:
            job_log.failed(exc, f", trying again every {interval:g} s")
        else:
            job_log.succeeded()
        if wake is not None:
            wake.wait(interval)
        else:
            stop.wait(interval)
