"""Tables and chart data of the 热点事件 and 事件详情 pages, built from event records (pure; no Streamlit)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from urllib.parse import quote
from zoneinfo import ZoneInfo

import pandas as pd

from dashboard import format as fmt
from dashboard.summaries import RISK_LABELS
from index.events import EventRecord
from response.ledger import deadline_state
from response.tickets import Ticket
from yuqing.models import KIND_LABELS

LEVEL_DOTS: dict[str, str] = {"I": "🔴", "II": "🟠", "III": "🟡", "IV": "🔵"}
EVENT_PAGE = "event"  # views/event.py: /event?id=<event id> (the alert mails link there too)
SPARK_HOURS = 24


def level_text(level: str) -> str:
    """``🟠 II级（橙）``: the risk level with its colour."""
    return f"{LEVEL_DOTS.get(level, '')} {RISK_LABELS.get(level, level)}".strip()


def event_link(event_id: str) -> str:
    """The 事件详情 page of an event, relative to the dashboard's address."""
    return f"{EVENT_PAGE}?id={quote(event_id, safe='')}"


def sparkline(record: EventRecord, now: datetime, hours: int = SPARK_HOURS) -> list[int]:
    """Posts per hour over the ``hours`` hours ending with the current one (oldest first)."""
    end = now.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    start = end - timedelta(hours=hours - 1)
    counts = [0] * hours
    for p in record.timeline:
        if p.hours != 1:
            continue
        at = p.at.astimezone(UTC)
        if start <= at <= end:
            counts[int((at - start) // timedelta(hours=1))] += p.posts
    return counts


def ticket_text(ticket: Ticket | None) -> str:
    """An event's 处置单 in a word or two: 未建, its status, and 批示待反馈 when a 领导批示 waits for its report."""
    if ticket is None:
        return "未建"
    return ticket.status + ("·批示待反馈" if ticket.pending_instructions() else "")


def events_frame(records: Sequence[EventRecord], tz: str, now: datetime,
                 mask: Callable[[str], str] = str, tickets: Mapping[str, Ticket] | None = None) -> pd.DataFrame:
    """The 热点事件 table, one row per event in the given (heat) order; titles through ``mask`` (the viewer's);
    ``tickets``: the events' 处置单 by event id."""
    tickets = tickets or {}
    return pd.DataFrame({
        "风险等级": [level_text(r.risk_level) for r in records],
        "事件": [mask(r.title) for r in records],
        "热度": [round(r.heat, 1) for r in records],
        "近24小时": [sparkline(r, now) for r in records],
        "条数": [r.count for r in records],
        "首发": [f"{r.first_post.source}（{fmt.format_time(r.first_post.published_at, tz)}）" for r in records],
        "责任单位": [r.unit or "—" for r in records],
        "本局发布": [f"{r.own_posts} 条" if r.own_posts else "未发布" for r in records],  # 不失声 at a glance
        "处置单": [ticket_text(tickets.get(r.event_id)) for r in records],
        "主题": [r.topic or "—" for r in records],
        "最新发帖": [fmt.format_time(r.last_post_at, tz) for r in records],
        "详情": [event_link(r.event_id) for r in records],
    })


def timeline_frame(record: EventRecord, tz: str) -> pd.DataFrame:
    """Long-format posts over time for a stacked chart: 时间, 情感 (负面 / 其他), 条数; hourly points, older ones
    by day."""
    zone = ZoneInfo(tz)
    rows = []
    for p in sorted(record.timeline, key=lambda p: p.at):
        label = p.at.astimezone(zone).strftime("%m-%d %H:00" if p.hours == 1 else "%m-%d")
        rows.append({"时间": label, "情感": "负面", "条数": p.negative})
        rows.append({"时间": label, "情感": "其他", "条数": p.posts - p.negative})
    return pd.DataFrame(rows, columns=["时间", "情感", "条数"])


def sources_frame(record: EventRecord) -> pd.DataFrame:
    return pd.DataFrame({"来源": [s.name for s in record.sources], "条数": [s.count for s in record.sources]})


def kinds_text(record: EventRecord) -> str:
    return "，".join(f"{KIND_LABELS.get(k.name, k.name)} {k.count}" for k in record.kinds)


def sentiment_text(record: EventRecord) -> str:
    """The sentiment of the public's posts, and the bureau's own posts (counted apart: they are its response)."""
    s = record.sentiment
    parts = [("负面", s.negative), ("中性", s.neutral), ("正面", s.positive), (fmt.UNANALYSED_LABEL, s.unknown),
             ("本局发布", record.own_posts)]
    return "，".join(f"{name} {n}" for name, n in parts if n)


def history_frame(record: EventRecord, tz: str) -> pd.DataFrame:
    """The level history, newest first."""
    rows = list(reversed(record.level_history))
    return pd.DataFrame({"时间": [fmt.format_time(h.at, tz) for h in rows],
                         "风险等级": [level_text(h.level) for h in rows]})


def own_posts_text(record: EventRecord) -> str:
    """Whether the bureau's own channels (官网, 公众号: sources with ``own: true``) have spoken on the matter."""
    if record.own_posts:
        return f"本局渠道已发布 {record.own_posts} 条"
    return "本局渠道尚未就此发布信息"


def forecast_delta(now_heat: float, later: float) -> str:
    """How the forecast compares with the current heat, e.g. ``+6.2``."""
    return f"{later - now_heat:+.1f}"


def ticket_label(ticket: Ticket, now: datetime) -> str:
    """The link to the event's 处置单 with how it stands: status, deadlines, 领导批示 waiting for a report back."""
    parts = [ticket.status, deadline_state(ticket, now)]
    pending = ticket.pending_instructions()
    if pending:
        parts.append(f"领导批示 {len(pending)} 件待反馈")
    return f"查看处置单（{' · '.join(parts)}）"
