"""The scheduled 舆情日报 / 周报: data providers over the events and tickets stores, and the job that puts each
report into the outbox once.

* :class:`StoreEvents` — the report's top events (``alerts.reports.EventsProvider``) from ``<prefix>-events``;
* :class:`StoreTickets` — tickets due, overdue and closed (``alerts.reports.TicketsProvider``) from
  ``<prefix>-tickets``;
* :class:`ReportJob` — builds the daily report of yesterday at ``alerts.daily_report_at`` and the weekly one
  (the seven days up to yesterday, with the .docx) on ``alerts.weekly_report_day`` at ``alerts.weekly_report_at``,
  for the recipients of the rules file's ``reports:`` section, and stores the composed mail as a pending outbox
  entry whose id is fixed by kind and day: a second run, a restart or a catch-up at start-up creates nothing,
  and the sender delivers it exactly once like every alert. ``yuqing run`` registers it with ``schedule`` and
  runs :meth:`ReportJob.catch_up` at start-up (a report whose time passed while the service was down goes out
  then).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from elasticsearch import Elasticsearch

from alerts.compose import message_id_for
from alerts.content import PostLink
from alerts.event_rules import decision_id
from alerts.outbox import encode_message
from alerts.producers import post_link
from alerts.report_render import compose_report
from alerts.reports import (
    ReportBrief,
    ReportEvent,
    ReportInstruction,
    ReportKind,
    ReportSources,
    ReportTicket,
    TicketSummary,
    Trend,
    build_report,
)
from alerts.rules import alert_config
from index import outbox as store
from index.events import EVENTS, OUT_OF_SCOPE_QUERY
from index.job_log import JobLog
from index.layout import POSTS, SOURCE_HEALTH
from index.outbox import OUTBOX, OutboxEntry, cooldown_key
from index.search import post_from_source
from index.tickets import TICKETS
from yuqing.settings import Settings

if TYPE_CHECKING:
    from response.tickets import Ticket

log = logging.getLogger(__name__)

CLOSED = ("已办结", "不予处置")


# ---- providers --------------------------------------------------------------------------------------------
def trend_of(hourly: Sequence[int]) -> Trend:
    """``up`` when the second half of the series has clearly more posts than the first, ``down`` when clearly
    fewer, else ``flat`` (pure)."""
    half = len(hourly) // 2
    if half == 0:
        return "flat"
    before, after = sum(hourly[:half]), sum(hourly[-half:])
    if after > 1.2 * before + 1:
        return "up"
    if before > 1.2 * after + 1:
        return "down"
    return "flat"


@dataclass
class StoreEvents:
    client: Elasticsearch
    events_alias: str
    posts_alias: str

    def top_events(self, start: datetime, end: datetime, limit: int) -> Sequence[ReportEvent]:
        """The hottest events with posts in ``[start, end)`` (not merged ones, not those out of scope: 与本局业务无关
        or 本局发布 only), with their first posts."""
        if not self.client.indices.exists_alias(name=self.events_alias):
            return []
        query = {"bool": {"filter": [{"range": {"last_post_at": {"gte": start.isoformat()}}},
                                     {"range": {"started_at": {"lt": end.isoformat()}}}],
                          "must_not": [{"term": {"status": "merged"}}, OUT_OF_SCOPE_QUERY]}}
        hits = self.client.search(index=self.events_alias, query=query, size=limit,
                                  sort=[{"heat": "desc"}, {"event_id": "asc"}],
                                  source_excludes=["members"])["hits"]["hits"]
        out = []
        for h in hits:
            src: dict[str, Any] = h["_source"]
            hourly = tuple(int(p.get("posts", 0)) for p in (src.get("timeline") or ())[-24:])
            out.append(ReportEvent(
                event_id=src["event_id"], title=src.get("title") or src["event_id"], level=src["risk_level"],
                heat=float(src.get("heat") or 0.0), count=int(src.get("count") or 0),
                negative_share=float(src.get("negative_share") or 0.0), trend=trend_of(hourly), hourly=hourly,
                unit=src.get("unit"), posts=tuple(self._posts(src["event_id"])),
                own_posts=int(src.get("own_posts") or 0),
            ))
        return out

    def _posts(self, event_id: str, size: int = 3) -> list[PostLink]:
        hits = self.client.search(index=self.posts_alias, size=size, query={"term": {"event_id": event_id}},
                                  sort=[{"published_at": {"order": "asc", "missing": "_last"}}],
                                  source_excludes=["title_seg", "content_seg"])["hits"]["hits"]
        return [post_link(h["_id"], post_from_source(h["_source"])) for h in hits]


def report_instructions(tickets: Sequence[Ticket], start: datetime, end: datetime,
                        now: datetime) -> list[ReportInstruction]:
    """The 领导批示 a report lists (pure): every one not yet reported back on, and those reported back on within
    ``start``–``end``; those waiting first (overdue ones before the rest), then by when they were given."""
    out: list[ReportInstruction] = []
    for t in tickets:
        for i in t.instructions:
            last = i.feedback[-1] if i.feedback else None
            if last is not None and not start <= last.at < end:
                continue
            out.append(ReportInstruction(
                ticket_id=t.id, ticket_title=t.title, unit=t.unit, no=i.no, leader=i.leader, text=i.text, at=i.at,
                state=i.state(now), due_at=i.due_at, feedback=last.text if last else None,
                feedback_at=last.at if last else None))
    order = {"逾期未反馈": 0, "待反馈": 1, "已反馈": 2}
    return sorted(out, key=lambda r: (order.get(r.state, 3), r.at, r.ticket_id, r.no))


def report_briefs(tickets: Sequence[Ticket], start: datetime, end: datetime) -> list[ReportBrief]:
    """The 舆情专报 submitted within ``start``–``end`` (pure), each with the first 领导批示 recorded after it;
    oldest first."""
    out: list[ReportBrief] = []
    for t in tickets:
        for e in t.briefs():
            if not start <= e.at < end:
                continue
            after = min((i for i in t.instructions if i.recorded_at >= e.at), key=lambda i: i.recorded_at,
                        default=None)
            out.append(ReportBrief(ticket_id=t.id, ticket_title=t.title, unit=t.unit, at=e.at, by=e.by,
                                   to=(e.note or "").removeprefix("发送给 "),
                                   instructed_by=after.leader if after else None,
                                   instructed_at=after.at if after else None))
    return sorted(out, key=lambda r: (r.at, r.ticket_id))


@dataclass
class StoreTickets:
    client: Elasticsearch
    prefix: str

    def ticket_summary(self, start: datetime, end: datetime, now: datetime) -> TicketSummary:
        """Open tickets with an unmet deadline before the end of the day after the period (overdue ones apart),
        and tickets closed within the period."""
        from response.reminders import tickets_due
        from response.service import TicketService

        if not self.client.indices.exists_alias(name=TICKETS.alias(self.prefix)):
            return TicketSummary()
        service = TicketService(self.client, self.prefix)
        tickets: list[Ticket] = []
        while True:
            total, rows = service.list(size=500, offset=len(tickets))
            tickets += rows
            if not rows or len(tickets) >= total:
                break
        horizon = end + timedelta(days=1)
        due: list[ReportTicket] = []
        overdue: list[ReportTicket] = []
        seen: set[str] = set()
        for d in tickets_due(tickets, now, horizon - now if horizon > now else timedelta(0)):
            if d.ticket_id in seen:
                continue
            seen.add(d.ticket_id)
            row = ReportTicket(ticket_id=d.ticket_id, title=d.title, unit=d.unit, status=d.status, due_at=d.due_at,
                               level=d.level)
            (overdue if d.overdue(now) else due).append(row)
        closed = []
        for t in tickets:
            if t.status not in CLOSED:
                continue
            at = next((a.at for a in reversed(t.audit) if a.to_value in CLOSED), None)
            if at is not None and start <= at < end:
                closed.append(ReportTicket(ticket_id=t.id, title=t.title, unit=t.unit, status=t.status,
                                           due_at=t.first_due_at, level=t.risk_level, closed_at=at))
        return TicketSummary(due=tuple(due), overdue=tuple(overdue), closed=tuple(closed),
                             instructions=tuple(report_instructions(tickets, start, end, now)),
                             briefs=tuple(report_briefs(tickets, start, end)))


def report_sources(settings: Settings, client: Elasticsearch) -> ReportSources:
    prefix = settings.elasticsearch.index_prefix
    return ReportSources(posts_alias=POSTS.alias(prefix), health_alias=SOURCE_HEALTH.alias(prefix),
                         events=StoreEvents(client, EVENTS.alias(prefix), POSTS.alias(prefix)),
                         tickets=StoreTickets(client, prefix))


# ---- the job ----------------------------------------------------------------------------------------------
def report_entry_id(kind: ReportKind, day: date) -> str:
    """The outbox id of the report of ``kind`` ending on ``day``: one mail per report, whatever happens."""
    return decision_id("report", kind, day.isoformat())


def due_reports(now: datetime, *, daily_at: str | None, weekly_day: int, weekly_at: str | None
                ) -> list[tuple[ReportKind, date]]:
    """The reports whose time has come today at ``now`` (aware, local): (kind, last day of the period) (pure)."""
    today = now.date()
    out: list[tuple[ReportKind, date]] = []

    def passed(at: str | None) -> bool:
        return at is not None and now.time().replace(tzinfo=None) >= time.fromisoformat(at)

    if passed(daily_at):
        out.append(("daily", today - timedelta(days=1)))
    if today.isoweekday() == weekly_day and passed(weekly_at):
        out.append(("weekly", today - timedelta(days=1)))
    return out


class ReportJob:
    """Puts the scheduled reports into the outbox (see the module docstring)."""

    def __init__(self, settings: Settings, *, font: Path | None = None) -> None:
        self.settings = settings
        self.font = font
        self.tz = ZoneInfo(settings.timezone)

    def send(self, client: Elasticsearch, kind: ReportKind, day: date, now: datetime) -> OutboxEntry | None:
        """The report of ``kind`` ending on ``day`` as a pending outbox entry; None when it was made before or no
        one is to receive it."""
        s = self.settings
        config = alert_config(s)
        people = config.daily_recipients if kind == "daily" else config.weekly_recipients
        recipients = tuple(dict.fromkeys(p.email for p in people))
        if not recipients:
            log.debug("report %s of %s: no recipients in %s (reports:)", kind, day, config.path)
            return None
        alias = OUTBOX.alias(s.elasticsearch.index_prefix)
        entry_id = report_entry_id(kind, day)
        if store.get(client, alias, entry_id) is not None:
            return None
        report = build_report(client, report_sources(s, client), kind, day, tz=self.tz,
                              dashboard_url=s.alerts.dashboard_url, now=now)
        msg = compose_report(report, sender=s.smtp.sender, recipients=recipients,
                             message_id=message_id_for(entry_id, s.smtp.sender), font=self.font)
        msg["X-Yuqing-Rule"] = f"report-{kind}"
        msg["X-Yuqing-Entry"] = entry_id
        entry = OutboxEntry(
            id=entry_id, rule=f"report-{kind}", rule_kind="report", subject_key=f"report:{kind}",
            occurrence=day.isoformat(), cooldown_key=cooldown_key(f"report-{kind}", f"report:{kind}"),
            title=report.title, reason="定时报告", status="pending", recipients=recipients, decided_at=now,
            deliver_at=now, next_attempt_at=now, message_id=msg["Message-ID"], subject=str(msg["Subject"]),
            mime=encode_message(msg), updated_at=now,
        )
        created = store.create(client, alias, entry, refresh=True)
        if created is not None:
            o = report.overview
            log.info("report: %s (%d posts, %d negative) -> outbox %s for %s", report.title, o.total, o.negative,
                     entry_id, ", ".join(recipients))
        return created

    def run(self, kind: ReportKind | None = None, *, now: datetime | None = None) -> list[OutboxEntry]:
        """The reports due now (``kind``: only that one), each into the outbox once."""
        from index.client import es_client

        now = (now or datetime.now(self.tz)).astimezone(self.tz)
        a = self.settings.alerts
        due = [(k, d) for k, d in due_reports(now, daily_at=a.daily_report_at, weekly_day=a.weekly_report_day,
                                               weekly_at=a.weekly_report_at) if kind is None or k == kind]
        made: list[OutboxEntry] = []
        with es_client(self.settings.elasticsearch) as client:
            for k, day in due:
                entry = self.send(client, k, day, now)
                if entry is not None:
                    made.append(entry)
        return made

    def catch_up(self) -> list[OutboxEntry]:
        """At start-up: today's reports whose time has passed and that are not in the outbox yet."""
        return self.run()

    def register(self, jobs: Any, on_made: Any = None, *, every_s: int = 60) -> None:
        """Register with a ``schedule.Scheduler``: every ``every_s`` seconds, put the reports whose time has
        come into the outbox (one cheap lookup when they are there already). A check every minute rather than
        ``.at(time, tz)``: the configured time is in ``timezone`` (schedule needs pytz for that), and a report
        missed while the service was down still goes out."""

        job_log = JobLog(log, "scheduled reports")  # Elasticsearch down: one line, not one a minute

        def run() -> None:
            try:
                made = self.run()
            except Exception as exc:
                job_log.failed(exc)  # the next check tries again
                return
            job_log.succeeded()
            if made and on_made is not None:
                on_made()

        jobs.every(every_s).seconds.do(run).tag("report")
