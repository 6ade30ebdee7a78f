"""Tables and chart data of the 总览 and 检索 pages, built from the store's summaries (pure; no Streamlit)."""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime
from zoneinfo import ZoneInfo

import pandas as pd

from dashboard import format as fmt
from events.config import LEVEL_LABELS
from events.keyword_groups import Expression
from index.events import EventRecord
from index.outbox import OutboxEntry
from index.overview import UNANALYSED, DataSpan, Interval, VolumePoint, default_window, interval_for
from index.search import PostQuery, SortOrder
from index.source_health import SourceStatus
from index.tickets import TicketRecord

SENTIMENT_ORDER = ("negative", "neutral", "positive", UNANALYSED)
OUTBOX_STATUS_LABELS: dict[str, str] = {
    "held": "等待汇总", "pending": "待发送", "sending": "发送中", "sent": "已发送", "failed": "发送失败",
    "digested": "已并入汇总",
}
# alerts.report_jobs and alerts.brief_send
REPORT_RULES: dict[str, str] = {"report-daily": "舆情日报", "report-weekly": "舆情周报", "brief": "舆情专报"}
RISK_LABELS: dict[str, str] = LEVEL_LABELS
RELEVANCE_CHOICES: dict[str, str] = {"all": "全部", "relevant": "仅相关", "irrelevant": "仅非相关"}
SORT_LABELS: dict[str, str] = {"newest": "按时间（最新在前）", "relevance": "按相关度"}
SORT_ORDERS: tuple[SortOrder, ...] = ("newest", "relevance")


def sentiment_name(value: str) -> str:
    return fmt.UNANALYSED_LABEL if value == UNANALYSED else fmt.sentiment_label(value)


def volume_frame(points: Sequence[VolumePoint], tz: str, interval: Interval) -> pd.DataFrame:
    """Long-format data for the stacked volume chart: 时间, 情感, 条数 (every sentiment on every bucket)."""
    zone = ZoneInfo(tz)
    pattern = "%m-%d %H:00" if interval == "hour" else "%Y-%m-%d"
    times = sorted({p.at for p in points})
    counts = {(p.at, p.sentiment): p.count for p in points}
    rows = [
        {"时间": at.astimezone(zone).strftime(pattern), "情感": sentiment_name(s), "条数": counts.get((at, s), 0)}
        for at in times for s in SENTIMENT_ORDER
    ]
    return pd.DataFrame(rows, columns=["时间", "情感", "条数"])


def chart_interval(window: datetime | None, now: datetime, span: DataSpan) -> Interval:
    """Hourly bars for a window of a day or two, daily, weekly or monthly for longer ones; for all posts the
    span between the first and the last publish time decides."""
    if window is not None:
        return interval_for(now - window)
    if span.first is None or span.last is None:
        return "day"
    return interval_for(span.last - span.first)


def share_text(part: int, whole: int) -> str:
    """``part`` of ``whole`` as a percentage, e.g. ``42%``; empty when ``whole`` is 0."""
    return f"{round(100 * part / whole)}%" if whole else ""


def _same(text: str) -> str:
    return text


def events_frame(events: Sequence[EventRecord], tz: str, mask: Callable[[str], str] = _same) -> pd.DataFrame:
    from dashboard.event_views import event_link  # that module takes RISK_LABELS from this one

    return pd.DataFrame({
        "事件": [mask(e.title) for e in events],
        "热度": [round(e.heat, 1) for e in events],
        "风险等级": [RISK_LABELS.get(e.risk_level, e.risk_level) for e in events],
        "帖数": [e.count for e in events],
        "负面占比": [f"{round(e.negative_share * 100)}%" for e in events],
        "最新发帖": [fmt.format_time(e.last_post_at, tz) for e in events],
        "详情": [event_link(e.event_id) for e in events],
    })


def tickets_frame(tickets: Sequence[TicketRecord], tz: str, now: datetime,
                  mask: Callable[[str], str] = _same) -> pd.DataFrame:
    def state(t: TicketRecord) -> str:
        if t.overdue or (t.next_due_at is not None and t.next_due_at < now):
            return "已超期"
        return "未到期" if t.next_due_at is not None else "时限均已满足"

    return pd.DataFrame({
        "处置单": [mask(t.title) for t in tickets],
        "责任单位": [t.unit for t in tickets],
        "状态": [t.status for t in tickets],
        "下一期限": [fmt.format_time(t.next_due_at, tz) if t.next_due_at else "—" for t in tickets],
        "期限状态": [state(t) for t in tickets],
    })


def alerts_frame(entries: Sequence[OutboxEntry], tz: str, mask: Callable[[str], str] = _same) -> pd.DataFrame:
    return pd.DataFrame({
        "时间": [fmt.format_time(e.updated_at, tz) for e in entries],
        "预警": [mask(e.title or e.subject or e.rule) for e in entries],
        "规则": [REPORT_RULES.get(e.rule, e.rule) for e in entries],
        "状态": [OUTBOX_STATUS_LABELS.get(e.status, e.status) for e in entries],
        "说明": [fmt.mail_error_text(e.last_error) for e in entries],
    })


def health_counts(statuses: Sequence[SourceStatus]) -> dict[str, int]:
    """How many sources are in each status (labels as on the 信源状态 page; only statuses present)."""
    out: dict[str, int] = {}
    for s in statuses:
        label = fmt.STATUS_LABELS[s.status]
        out[label] = out.get(label, 0) + 1
    return out


def apply_expression(query: PostQuery, expr: Expression | None) -> PostQuery:
    """``query`` with the terms of a 专题 expression (None: no text condition)."""
    if expr is None:
        return replace(query, must_terms=(), any_terms=(), exclude_terms=())
    return replace(query, must_terms=expr.must, any_terms=expr.any, exclude_terms=expr.exclude)


def default_window_label(span: DataSpan, labels: Sequence[str], all_label: str = "全部") -> str:
    """The overview's first time range: the shortest window ending now that holds a post, else all posts."""
    return default_window(span, [label for label in labels if label != all_label], all_label)


# ---- 检索 links (alert mails and reports: /search?since=…&until=…&sentiment=…&kind=…&source=…&topic=…&q=…) ----
@dataclass(frozen=True)
class SearchLink:
    """The filters a link to the 检索 page carries (``since``/``until``: local dates, both included)."""

    text: str = ""
    since: date | None = None
    until: date | None = None
    sentiments: tuple[str, ...] = ()
    kinds: tuple[str, ...] = ()
    sources: tuple[str, ...] = ()
    topics: tuple[str, ...] = ()
    no_reposts: bool = False  # reposts=0: reposts left out, as the reports count

    @property
    def empty(self) -> bool:
        return self == SearchLink()


def _iso_date(value: str | None) -> date | None:
    try:
        return date.fromisoformat(value) if value else None
    except ValueError:
        return None  # a mangled link: that filter is left out, the rest still applies


def search_link_filters(params: Mapping[str, str], kinds: Collection[str]) -> SearchLink:
    """The filters of a 检索 link's query parameters; values the page does not know are left out (pure)."""
    since, until = _iso_date(params.get("since")), _iso_date(params.get("until"))
    if since and until and until < since:
        since, until = until, since

    def one(key: str, known: Collection[str] | None = None) -> tuple[str, ...]:
        value = (params.get(key) or "").strip()
        return (value,) if value and (known is None or value in known) else ()

    return SearchLink(text=(params.get("q") or "").strip(), since=since, until=until,
                      sentiments=one("sentiment", fmt.SENTIMENT_LABELS), kinds=one("kind", kinds),
                      sources=one("source"), topics=one("topic"), no_reposts=params.get("reposts") == "0")
