"""Plain logic behind the 处置跟踪 and 依申请公开 pages (no Streamlit here): who may act, list rows with
countdowns, findings highlighted, the services on the page's backend.

Role rules: press officers and admins act (open, assign, change status, record and publish responses, report
back on 领导批示, register and handle 依申请公开 requests); leaders record their 领导批示 and otherwise read, as
analysts do. Every action names the signed-in user in
the audit trail. Records are saved against the version the user saw (compare-and-set), so a concurrent edit
by someone else is reported, never overwritten (:class:`response.service.TicketConflict`).
"""

from __future__ import annotations

import io
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from zoneinfo import ZoneInfo

from elasticsearch import Elasticsearch, NotFoundError

from dashboard.auth import Viewer
from dashboard.format import _escape_punct, md_escape
from index.events import EVENTS, EventRecord, get_events, load_open_events
from index.export import MEDIA_TYPES, ExportFormat
from response.calendar import WorkCalendar
from response.config import RISK_LABELS, FoiaSettings
from response.foia import FoiaClock, FoiaRequest, foia_clock
from response.ledger import write_ledger
from response.secrecy import Finding
from response.service import FoiaService, TicketService, ensure_indices
from response.tickets import Ticket, format_span, is_overdue
from yuqing.settings import ElasticsearchSettings
from yuqing.text import one_line

READ_ONLY_NOTE = "您的角色（{role}）可查看处置情况；登记、改派、回应等操作由宣传人员或管理员进行。"


def can_act(viewer: Viewer | None) -> bool:
    """Press officers and admins act on tickets and 依申请公开 requests; leaders and analysts read."""
    return viewer is not None and viewer.acts


def can_instruct(viewer: Viewer | None) -> bool:
    """Leaders record their own 领导批示; press officers and admins one given on paper or in the OA."""
    return viewer is not None and viewer.instructs


def operator(viewer: Viewer) -> str:
    """The name written into the audit trail."""
    return viewer.audit_name


@dataclass(frozen=True)
class Services:
    tickets: TicketService
    foia: FoiaService


def services(client: Elasticsearch, es: ElasticsearchSettings) -> Services:
    """The ticket and 依申请公开 services (their indices created when missing)."""
    ensure_indices(client, es)
    return Services(TicketService(client, es.index_prefix), FoiaService(client, es.index_prefix))


def countdown(ticket: Ticket, now: datetime) -> tuple[str, bool]:
    """The ticket's next unmet deadline as 剩余/已超期 text, and whether it is overdue."""
    if ticket.status in ("已办结", "不予处置"):
        return ticket.status, False
    published = ticket.published()
    unmet = sorted((d for d in ticket.deadlines if not any(d.met_by(r) for r in published)), key=lambda d: d.due_at)
    overdue = is_overdue(ticket, now) or ticket.overdue
    if not unmet:
        return "时限均已满足", overdue
    d = unmet[0]
    if now > d.due_at:
        return f"{d.kind}已超期 {format_span(now - d.due_at)}", True
    return f"{d.kind}剩余 {format_span(d.due_at - now)}", overdue


def filter_tickets(tickets: Sequence[Ticket], *, statuses: Sequence[str] = (), unit: str | None = None,
                   overdue_only: bool = False, now: datetime, instructions_pending: bool = False,
                   instructed_by: str | None = None, awaiting_instruction: bool = False) -> list[Ticket]:
    """The tickets the list shows (pure): any of ``statuses`` (none: all), of ``unit``, overdue only, with a
    领导批示 not yet reported back on only, with a 批示 of ``instructed_by`` (a leader's own) only, with a 专报
    submitted and no 批示 since only."""
    return [t for t in tickets
            if (not statuses or t.status in statuses) and (unit is None or t.unit == unit)
            and (not overdue_only or countdown(t, now)[1])
            and (not instructions_pending or t.pending_instructions())
            and (instructed_by is None or any(i.leader == instructed_by for i in t.instructions))
            and (not awaiting_instruction or t.awaiting_instruction)]


def leader_names(leaders: Sequence[str], tickets: Sequence[Ticket]) -> list[str]:
    """The names offered as 批示领导 (pure): the display names of the leader accounts (``leaders``), then the
    names already recorded on any ticket's 批示, each once, in that order. Choosing from them keeps one leader
    under one name, which is what 只看我批示的 matches a leader's own 批示 by."""
    names: list[str] = []
    for name in (*leaders, *(i.leader for t in tickets for i in t.instructions)):
        name = name.strip()
        if name and name not in names:
            names.append(name)
    return names


def level_label(level: str | None) -> str:
    return RISK_LABELS.get(level or "", "未定级")


def ticket_line(ticket: Ticket, now: datetime, mask: Callable[[str], str] = str) -> str:
    """One Markdown line of the list: title (through ``mask``: the viewer's privacy mask), unit, level, countdown
    (red when overdue), 失声 flag, 领导批示 not yet reported back on (red once its 反馈时限 passed), 专报 waiting for a
    批示."""
    text, overdue = countdown(ticket, now)
    left = f":red[**{md_escape(text)}**]" if overdue else md_escape(text)
    flags = " :red-badge[失声]" if ticket.silent else ""
    pending = ticket.pending_instructions()
    if pending:
        late = any(i.state(now) == "逾期未反馈" for i in pending)
        flags += f" :{'red' if late else 'orange'}-badge[批示{'逾期未反馈' if late else '待反馈'}]"
    if ticket.awaiting_instruction:
        flags += " :blue-badge[专报待批示]"
    handler = f" · 承办：{md_escape(ticket.handler)}" if ticket.handler else ""
    return (f"**{md_escape(mask(ticket.title))}**{flags} · {md_escape(ticket.unit)}{handler} · "
            f"{md_escape(level_label(ticket.risk_level))} · {left} · `{ticket.id}`")


@dataclass(frozen=True)
class LedgerFile:
    data: bytes
    file_name: str
    mime: str
    rows: int


def ledger_file(tickets: Sequence[Ticket], fmt: ExportFormat, now: datetime, tz: str,
                mask: Callable[[str], str] = str) -> LedgerFile:
    """The 处置台账 of ``tickets`` (those the list shows) as CSV or Excel, texts through the viewer's ``mask``."""
    buf = io.BytesIO()
    rows = write_ledger(tickets, buf, fmt, now=now, tz=tz, mask=mask)
    stamp = now.astimezone(ZoneInfo(tz)).strftime("%Y%m%d-%H%M")
    return LedgerFile(buf.getvalue(), f"处置台账-{stamp}.{fmt}", MEDIA_TYPES[fmt], rows)


def highlight_findings(text: str, findings: Sequence[Finding]) -> str:
    """``text`` as escaped Markdown with each finding marked in red (positions are those of ``text``)."""
    out: list[str] = []
    pos = 0
    for f in sorted(findings, key=lambda f: f.start):
        if f.start < pos:
            continue
        out.append(_escape_punct(text[pos:f.start]))
        out.append(f":red-background[{_escape_punct(text[f.start:f.end])}]")
        pos = f.end
    out.append(_escape_punct(text[pos:]))
    return "".join(out).replace("\n", "  \n")


def finding_lines(findings: Sequence[Finding]) -> list[str]:
    """One line per finding: position, kind, text, reason."""
    return [f"第 {f.start + 1}–{f.end} 字 · {f.kind}「{one_line(f.text)}」：{f.reason}" for f in findings]


# ---- events (the ticket's subject) ----------------------------------------------------------------------
def open_events(client: Elasticsearch, prefix: str) -> list[EventRecord]:
    """Open events, hottest first (none when the events index does not exist yet)."""
    try:
        return load_open_events(client, EVENTS.alias(prefix))
    except NotFoundError:
        return []


def event_by_id(client: Elasticsearch, prefix: str, event_id: str) -> EventRecord | None:
    try:
        return get_events(client, EVENTS.alias(prefix), [event_id]).get(event_id)
    except NotFoundError:
        return None


def event_label(event: EventRecord) -> str:
    return f"{one_line(event.title)}（{level_label(event.risk_level)}，热度 {event.heat:.0f}，{event.count} 条）"


# ---- 依申请公开 ------------------------------------------------------------------------------------------
def request_clock(req: FoiaRequest, today: date, cal: WorkCalendar, cfg: FoiaSettings) -> FoiaClock:
    return foia_clock(req, today, cal, cfg)


def clock_text(clock: FoiaClock, cfg: FoiaSettings) -> tuple[str, str]:
    """The clock as text and its colour: red (overdue), orange (within the reminder days), blue otherwise."""
    if clock.state in ("已答复", "视为放弃", "待补正") or clock.due is None or clock.remaining is None:
        return clock.state, "gray"
    if clock.remaining < 0:
        return f"{clock.state}，期限 {clock.due}，已超期 {-clock.remaining} 个工作日", "red"
    when = "今日到期" if clock.remaining == 0 else f"剩余 {clock.remaining} 个工作日"
    colour = "orange" if clock.remaining <= cfg.remind_within_working_days else "blue"
    return f"{clock.state}，期限 {clock.due}，{when}", colour


def applicant_name(name: str, sees_personal_data: bool) -> str:
    """The applicant as a viewer may see them: in full for press officers and admins, else the surname only
    (张某)."""
    return name if sees_personal_data or not name else f"{name[0]}某"


def reply_text(req: FoiaRequest, sees_personal_data: bool, mask: Callable[[str], str] = str) -> str:
    """The reply letter as the viewer may read it: in full, or with the applicant's name (it is the letter's
    salutation, and may recur) by surname only and the rest through ``mask``."""
    if req.reply is None:
        return ""
    text = req.reply.text
    if sees_personal_data:
        return text
    if req.applicant:
        text = text.replace(req.applicant, applicant_name(req.applicant, False))
    return mask(text)


def request_line(req: FoiaRequest, clock: FoiaClock, cfg: FoiaSettings, mask: Callable[[str], str] = str,
                 sees_personal_data: bool = True) -> str:
    """One Markdown line of the list; the applicant and the content as the viewer may see them."""
    text, colour = clock_text(clock, cfg)
    flag = " :orange-badge[日历未覆盖]" if clock.uncovered else ""
    who = md_escape(applicant_name(req.applicant, sees_personal_data))
    return (f"**{who}**：{md_escape(mask(req.content)[:60])} · {req.received_on} 收到 · "
            f":{colour}[{md_escape(text)}]{flag} · `{req.id}`")
