"""Reminders: the 处置单 deadlines and 依申请公开 clocks a person must be told about now (signal producers).

Pure producers (``tickets_due``, ``foia_due``) decide from loaded records; the store-backed ones
(``due_ticket_reminders``, ``due_foia_reminders``) load the open records from Elasticsearch first. The
results are typed and carry exactly the fields of the alert signals, so the alerts layer (which this layer
must not import) builds its signals field for field::

    TicketDueSignal(**dataclasses.asdict(due))   # alerts.signals.TicketDueSignal
    FoiaDueSignal(**dataclasses.asdict(due))     # alerts.signals.FoiaDueSignal

What is reminded:

- a 处置单 that is not closed (待研判 / 处置中 / 已回应): each deadline not yet met by a published response,
  once it is due within ``reminders.ticket_before_hours`` (config/response.yaml) or already passed; likewise the
  反馈时限 of each 领导批示 not yet reported back on (deadline kind ``批示#N反馈``, basis ``<leader>批示``);
- a 依申请公开 request still running (办理中 / 征求意见中): its reply deadline within
  ``foia.remind_within_working_days`` working days (条例 第三十三条 clock, :func:`response.foia.foia_clock`),
  or passed. A request waiting for its 补正 has no running clock and is not reminded here (the 依申请公开 page
  shows a lapsed 补正 period).

Each call returns every reminder that applies now; repeating a reminder is the alert rules' cooldown's business.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from elasticsearch import Elasticsearch

from response.calendar import WorkCalendar
from response.config import FoiaSettings, ResponseConfig, RiskLevel
from response.foia import FoiaRequest, foia_clock
from response.service import FoiaService, TicketService
from response.tickets import Ticket, TicketStatus

# Tickets whose deadlines still matter: not 已办结 / 不予处置.
REMINDED_STATUSES: tuple[TicketStatus, ...] = ("待研判", "处置中", "已回应")


@dataclass(frozen=True)
class TicketDue:
    """One unmet deadline of a 处置单, due soon or passed (the fields of ``alerts.signals.TicketDueSignal``)."""

    ticket_id: str
    title: str
    unit: str
    deadline_kind: str
    deadline_basis: str
    due_at: datetime
    status: str
    level: RiskLevel | None = None
    topic: str | None = None
    handler: str | None = None

    def overdue(self, now: datetime) -> bool:
        return now > self.due_at


@dataclass(frozen=True)
class FoiaDue:
    """A 依申请公开 request whose reply deadline is near or passed (the fields of ``alerts.signals.FoiaDueSignal``;
    ``remaining_working_days`` after today, 0: today is the last day, negative: overdue)."""

    request_id: str
    summary: str
    received_on: date
    due: date
    remaining_working_days: int
    unit: str | None = None
    uncovered: bool = False

    @property
    def overdue(self) -> bool:
        return self.remaining_working_days < 0


def _summary(req: FoiaRequest, limit: int = 40) -> str:
    """What was asked for, shortened; not who asked (the applicant's name is personal data, and the alert it
    becomes reaches leaders and the 总览 panel of every role)."""
    content = " ".join(req.content.split())
    if len(content) > limit:
        content = content[: limit - 1] + "…"
    return content


def tickets_due(tickets: Iterable[Ticket], now: datetime, before: timedelta) -> list[TicketDue]:
    """Every unmet deadline of the not-closed ``tickets`` due by ``now + before`` (passed ones included),
    soonest first (pure)."""
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    horizon = now + before
    out: list[TicketDue] = []
    for t in tickets:
        if t.status not in REMINDED_STATUSES:
            continue
        published = t.published()
        for d in t.deadlines:
            if d.due_at > horizon or any(d.met_by(r) for r in published):
                continue
            out.append(TicketDue(
                ticket_id=t.id, title=t.title, unit=t.unit, deadline_kind=d.kind, deadline_basis=d.basis,
                due_at=d.due_at, status=t.status, level=t.risk_level, topic=t.subject.topic, handler=t.handler,
            ))
        for ins in t.pending_instructions():
            if ins.due_at is None or ins.due_at > horizon:
                continue
            out.append(TicketDue(
                ticket_id=t.id, title=t.title, unit=t.unit, deadline_kind=f"批示#{ins.no}反馈",
                deadline_basis=f"{ins.leader}批示", due_at=ins.due_at, status=t.status, level=t.risk_level,
                topic=t.subject.topic, handler=t.handler,
            ))
    out.sort(key=lambda x: (x.due_at, x.ticket_id, x.deadline_kind))
    return out


def foia_due(requests: Iterable[FoiaRequest], today: date, cal: WorkCalendar, cfg: FoiaSettings) -> list[FoiaDue]:
    """Running requests whose deadline is within ``cfg.remind_within_working_days`` working days or passed,
    most urgent first (pure)."""
    out: list[FoiaDue] = []
    for req in requests:
        clock = foia_clock(req, today, cal, cfg)
        if clock.state not in ("办理中", "征求意见中") or clock.due is None or clock.remaining is None:
            continue
        if clock.remaining > cfg.remind_within_working_days:
            continue
        out.append(FoiaDue(request_id=req.id, summary=_summary(req), received_on=req.received_on, due=clock.due,
                           remaining_working_days=clock.remaining, uncovered=clock.uncovered))
    out.sort(key=lambda x: (x.remaining_working_days, x.due, x.request_id))
    return out


def _all_tickets(service: TicketService, statuses: Sequence[str], page: int = 500) -> list[Ticket]:
    out: list[Ticket] = []
    while True:
        total, rows = service.list(statuses=list(statuses), size=page, offset=len(out))
        out.extend(rows)
        if not rows or len(out) >= total:
            return out


def open_requests(service: FoiaService, page: int = 500) -> list[FoiaRequest]:
    """Every open 依申请公开 request, page by page."""
    out: list[FoiaRequest] = []
    while True:
        total, rows = service.list(open_only=True, size=page, offset=len(out))
        out.extend(rows)
        if not rows or len(out) >= total:
            return out


def due_ticket_reminders(client: Elasticsearch, prefix: str, config: ResponseConfig,
                         now: datetime) -> list[TicketDue]:
    """:func:`tickets_due` over the stored not-closed tickets (index ``<prefix>-tickets``)."""
    tickets = _all_tickets(TicketService(client, prefix), REMINDED_STATUSES)
    return tickets_due(tickets, now, timedelta(hours=config.reminders.ticket_before_hours))


def due_foia_reminders(client: Elasticsearch, prefix: str, config: ResponseConfig, today: date,
                       cal: WorkCalendar | None = None) -> list[FoiaDue]:
    """:func:`foia_due` over the stored open requests (index ``<prefix>-foia``); ``today`` in the bureau's
    time zone."""
    requests = open_requests(FoiaService(client, prefix))
    return foia_due(requests, today, cal or WorkCalendar.official(), config.foia)
