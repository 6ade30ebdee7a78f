"""处置台账: the 处置单 as a table an office hands on (to its leaders, an inspection, the year's summary), as CSV or
Excel with Chinese headers: one row per ticket with its subject, unit, level, status, deadlines and whether they
were met, the responses, the 领导批示 with their 落实反馈, and when it was closed.

Pure rows (:func:`ledger_rows`); the writers are ``index.export``'s (formula-looking text written as text,
characters XML forbids dropped). Internal texts (批示, 反馈) may name people: ``mask`` maps each text cell (the
dashboard passes the viewer's privacy mask; the CLI, run by the office on its server, writes them whole).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import datetime
from typing import IO
from zoneinfo import ZoneInfo

from index.export import CellValue, ExportFormat, write_table_csv, write_table_xlsx
from response.config import RISK_LABELS
from response.tickets import Ticket

LEDGER_HEADERS: tuple[str, ...] = (
    "处置单", "事项", "对象", "主题", "责任单位", "承办人", "风险等级", "状态", "舆情发生时间", "创建时间", "创建人",
    "时限", "时限情况", "失声", "回应", "领导批示", "落实反馈", "办结时间",
)
LEDGER_SHEET = "处置台账"
CLOSED = ("已办结", "不予处置")


def _local(value: datetime | None, tz: ZoneInfo) -> datetime | None:
    return value.astimezone(tz).replace(tzinfo=None, microsecond=0) if value is not None else None


def _stamp(value: datetime, tz: ZoneInfo) -> str:
    return f"{value.astimezone(tz):%Y-%m-%d %H:%M}"


def deadline_state(ticket: Ticket, now: datetime) -> str:
    """How the ticket stands against its deadlines: 按时回应 (every one met), 未到期 (none passed unmet),
    超期未回应 (one passed unmet, nothing published), 超期回应 (one passed unmet, responses published late or on
    other channels than it asks for); 无时限 without deadlines."""
    if not ticket.deadlines:
        return "无时限"
    published = ticket.published()
    unmet = [d for d in ticket.deadlines if not any(d.met_by(r) for r in published)]
    if not unmet:
        return "按时回应"
    if all(now <= d.due_at for d in unmet):
        return "未到期"
    return "超期回应" if published else "超期未回应"


def closed_at(ticket: Ticket) -> datetime | None:
    """When the ticket last went to 已办结 / 不予处置 (None while it is open)."""
    if ticket.status not in CLOSED:
        return None
    return next((a.at for a in reversed(ticket.audit) if a.to_value in CLOSED), None)


def ledger_row(ticket: Ticket, now: datetime, tz: ZoneInfo, mask: Callable[[str], str] = str) -> list[CellValue]:
    s = ticket.subject
    deadlines = "；".join(f"{d.kind} {_stamp(d.due_at, tz)}前" for d in ticket.deadlines)
    responses = "；".join(f"#{r.no} {r.channel} {_stamp(r.at, tz)}（{r.state}）" for r in ticket.responses)
    instructions = "；".join(f"#{i.no} {i.leader} {_stamp(i.at, tz)}：{mask(i.text)}（{i.state(now)}）"
                             for i in ticket.instructions)
    feedback = "；".join(f"#{i.no} {_stamp(f.at, tz)} {f.by}：{mask(f.text)}"
                         for i in ticket.instructions for f in i.feedback)
    return [
        ticket.id, mask(ticket.title), f"{'事件' if s.kind == 'event' else '信息'} {s.id}", s.topic or "",
        ticket.unit, ticket.handler or "", RISK_LABELS.get(ticket.risk_level or "", "未定级"), ticket.status,
        _local(s.started_at, tz), _local(ticket.opened_at, tz), ticket.opened_by, deadlines,
        deadline_state(ticket, now), "是" if ticket.silent else "否", responses, instructions, feedback,
        _local(closed_at(ticket), tz),
    ]


def ledger_rows(tickets: Iterable[Ticket], now: datetime, tz: str,
                mask: Callable[[str], str] = str) -> Iterator[list[CellValue]]:
    zone = ZoneInfo(tz)
    for t in tickets:
        yield ledger_row(t, now, zone, mask)


def write_ledger(tickets: Sequence[Ticket], out: IO[bytes], fmt: ExportFormat, *, now: datetime, tz: str,
                 mask: Callable[[str], str] = str) -> int:
    """The 处置台账 of ``tickets`` into ``out`` as CSV or Excel; returns the rows written."""
    rows = ledger_rows(tickets, now, tz, mask)
    if fmt == "csv":
        return write_table_csv(LEDGER_HEADERS, rows, out)
    return write_table_xlsx(LEDGER_HEADERS, rows, out, sheet=LEDGER_SHEET)
