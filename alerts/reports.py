"""舆情日报 and 周报: what they say, assembled from indexed data by small query functions (rendering:
:mod:`alerts.report_render`).

Every statement cites its posts: a count row carries example posts (links to the originals) and a dashboard
link with the same filter; negative posts, events and tickets link to their pages.

A post belongs to the period it was *published* in (``published_at``); one without a publication time to the
period it was fetched in. Near-duplicates (``duplicate_of``) are left out of every count. A daily report covers
one local calendar day, a weekly one the seven days ending with the given day.

Sections whose data source is not in this package take it through a small interface, so that the events and
response-tracking stores plug in (phase 2): :class:`EventsProvider` (top events) and :class:`TicketsProvider`
(tickets due, overdue and closed). Without one, the section says the data is not connected yet.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any, Literal, Protocol
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from elasticsearch import ApiError, Elasticsearch, NotFoundError, TransportError

from alerts.content import SEARCH_PAGE, SENTIMENT_LABELS, PostLink, RiskLevel
from yuqing.errors import YuqingError
from yuqing.models import KIND_LABELS

ReportKind = Literal["daily", "weekly"]
Trend = Literal["up", "down", "flat"]
REPORT_TITLES = {"daily": "舆情日报", "weekly": "舆情周报"}
EXAMPLES = 3
_POST_FIELDS = ["url", "title", "source", "kind", "published_at", "fetched_at", "analysis.sentiment",
                "analysis.topic", "analysis.relevant", "analysis.relevance_prob"]


# ---- the period -------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Period:
    kind: ReportKind
    start: datetime  # aware, local midnight
    end: datetime  # exclusive

    @property
    def days(self) -> int:
        return (self.end - self.start).days

    @property
    def label(self) -> str:
        last = (self.end - timedelta(days=1)).date()
        if self.days == 1:
            return f"{last:%Y年%m月%d日}"
        return f"{self.start:%Y年%m月%d日}至{last:%Y年%m月%d日}"

    def previous(self) -> Period:
        span = self.end - self.start
        return Period(self.kind, self.start - span, self.start)


def period_for(kind: ReportKind, day: date, tz: ZoneInfo) -> Period:
    """The daily report's day, or the seven days ending with ``day`` for the weekly one."""
    end = datetime.combine(day + timedelta(days=1), time(0), tzinfo=tz)
    return Period(kind, end - timedelta(days=1 if kind == "daily" else 7), end)


# ---- report values ----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ReportPost:
    post_id: str
    title: str
    url: str
    source: str
    kind: str
    published_at: datetime | None
    sentiment: str | None = None
    topic: str | None = None
    relevant: bool | None = None

    def link(self) -> PostLink:
        return PostLink(title=self.title, url=self.url, source=self.source, published_at=self.published_at,
                        sentiment=self.sentiment if self.sentiment in SENTIMENT_LABELS else None,
                        post_id=self.post_id)


@dataclass(frozen=True)
class CountRow:
    key: str
    label: str
    count: int
    examples: tuple[ReportPost, ...] = ()
    link: str = ""  # the dashboard's list of these posts


@dataclass(frozen=True)
class DayCount:
    day: date
    total: int
    negative: int


@dataclass(frozen=True)
class Overview:
    total: int
    negative: int
    relevant: int
    previous_total: int
    previous_negative: int
    by_sentiment: tuple[CountRow, ...]
    by_kind: tuple[CountRow, ...]
    by_source: tuple[CountRow, ...]
    by_topic: tuple[CountRow, ...]
    by_day: tuple[DayCount, ...]
    link: str = ""

    @property
    def negative_share(self) -> float:
        return self.negative / self.total if self.total else 0.0


@dataclass(frozen=True)
class ReportEvent:
    event_id: str
    title: str
    level: RiskLevel
    heat: float
    count: int
    negative_share: float
    trend: Trend
    hourly: tuple[int, ...] = ()  # recent posts per hour (or per day), oldest first
    unit: str | None = None
    posts: tuple[PostLink, ...] = ()
    own_posts: int = 0  # posts of the bureau's own channels in the event (本局发布): has it spoken on the matter?


class EventsProvider(Protocol):
    def top_events(self, start: datetime, end: datetime, limit: int) -> Sequence[ReportEvent]: ...


@dataclass(frozen=True)
class ReportTicket:
    ticket_id: str
    title: str
    unit: str
    status: str
    due_at: datetime | None
    level: RiskLevel | None = None
    closed_at: datetime | None = None
    posts: tuple[PostLink, ...] = ()


@dataclass(frozen=True)
class ReportInstruction:
    """A 领导批示 on a 处置单, for the leaders' own view of what became of their instructions."""

    ticket_id: str
    ticket_title: str
    unit: str
    no: int
    leader: str
    text: str
    at: datetime
    state: str  # 已反馈 / 待反馈 / 逾期未反馈
    due_at: datetime | None = None
    feedback: str | None = None  # the last report back
    feedback_at: datetime | None = None


@dataclass(frozen=True)
class ReportBrief:
    """A 舆情专报 submitted (呈报) in the period, and whether a 领导批示 was recorded on the matter since."""

    ticket_id: str
    ticket_title: str
    unit: str
    at: datetime
    by: str
    to: str  # the recipients, as the audit trail names them
    instructed_by: str | None = None  # the first leader who instructed after it (None: 待批示)
    instructed_at: datetime | None = None


@dataclass(frozen=True)
class TicketSummary:
    due: tuple[ReportTicket, ...] = ()  # open, due before the end of the next day
    overdue: tuple[ReportTicket, ...] = ()
    closed: tuple[ReportTicket, ...] = ()  # closed in the period
    # 领导批示 not yet reported back on (whenever given), and those reported back on in the period
    instructions: tuple[ReportInstruction, ...] = ()
    briefs: tuple[ReportBrief, ...] = ()  # 舆情专报 submitted in the period


class TicketsProvider(Protocol):
    def ticket_summary(self, start: datetime, end: datetime, now: datetime) -> TicketSummary: ...


@dataclass(frozen=True)
class SourceHealthRow:
    source: str
    kind: str
    runs: int
    failed_runs: int
    found: int
    new: int
    last_run: datetime | None
    last_success: datetime | None
    last_error: str | None
    posts: int = 0  # posts of the period from this source

    @property
    def status(self) -> str:
        if self.runs == 0:
            return "未运行"
        if self.failed_runs == self.runs:
            return "失败"
        if self.last_success is None:
            return "无产出"
        if self.failed_runs:
            return "部分失败"
        return "正常"


@dataclass(frozen=True)
class Report:
    period: Period
    generated_at: datetime
    tz: ZoneInfo
    dashboard_url: str
    overview: Overview
    negative_posts: tuple[ReportPost, ...]
    events: tuple[ReportEvent, ...] | None  # None: no events data connected
    tickets: TicketSummary | None  # None: no tickets data connected
    sources: tuple[SourceHealthRow, ...]

    @property
    def title(self) -> str:
        return f"{REPORT_TITLES[self.period.kind]}（{self.period.label}）"


# ---- query builders (pure) --------------------------------------------------------------------------------
def period_clause(start: datetime, end: datetime) -> dict[str, Any]:
    """Published in ``[start, end)``; without a publication time, fetched then."""
    rng = {"gte": start.isoformat(), "lt": end.isoformat()}
    return {
        "bool": {
            "should": [
                {"range": {"published_at": rng}},
                {"bool": {"must_not": [{"exists": {"field": "published_at"}}],
                          "filter": [{"range": {"fetched_at": rng}}]}},
            ],
            "minimum_should_match": 1,
        }
    }


def posts_query(start: datetime, end: datetime, *filters: dict[str, Any]) -> dict[str, Any]:
    return {"bool": {"filter": [period_clause(start, end), *filters],
                     "must_not": [{"exists": {"field": "duplicate_of"}}]}}


def examples_agg(size: int) -> dict[str, Any]:
    return {"top_hits": {"size": size, "sort": [{"published_at": {"order": "desc", "missing": "_last"}}],
                         "_source": {"includes": _POST_FIELDS}}}


def _terms(field: str, size: int, examples: int) -> dict[str, Any]:
    return {"terms": {"field": field, "size": size}, "aggs": {"examples": examples_agg(examples)}}


NEGATIVE = {"term": {"analysis.sentiment": "negative"}}
SOURCE_COUNTS = 500  # sources counted per report (the source-health table)


def overview_body(start: datetime, end: datetime, tz: ZoneInfo, *, examples: int = EXAMPLES) -> dict[str, Any]:
    """Counts of the period: total, by sentiment, kind, source, topic and day (negative per day), relevant."""
    return {
        "size": 0,
        "track_total_hits": True,
        "query": posts_query(start, end),
        "aggs": {
            "sentiment": _terms("analysis.sentiment", 5, examples),
            "kind": _terms("kind", 10, examples),
            "source": _terms("source", 20, examples),
            "topic": _terms("analysis.topic", 20, examples),
            "relevant": {"filter": {"term": {"analysis.relevant": True}}},
            "negative": {"filter": NEGATIVE},
            # every source's count, for the source-health table (``source`` above keeps the top 20 with examples)
            "source_counts": {"terms": {"field": "source", "size": SOURCE_COUNTS}},
            "day": _day_histogram("published_at", start, end, tz),
            # a post without a publication time is in the period by its fetch time: its day is that one
            "day_fetched": {"filter": {"bool": {"must_not": [{"exists": {"field": "published_at"}}]}},
                            "aggs": {"day": _day_histogram("fetched_at", start, end, tz)}},
        },
    }


def _day_histogram(field: str, start: datetime, end: datetime, tz: ZoneInfo) -> dict[str, Any]:
    return {
        "date_histogram": {"field": field, "calendar_interval": "day", "time_zone": tz.key, "min_doc_count": 0,
                           "extended_bounds": {"min": start.isoformat(),
                                               "max": (end - timedelta(seconds=1)).isoformat()}},
        "aggs": {"negative": {"filter": NEGATIVE}},
    }


def totals_body(start: datetime, end: datetime) -> dict[str, Any]:
    return {"size": 0, "track_total_hits": True, "query": posts_query(start, end),
            "aggs": {"negative": {"filter": NEGATIVE}}}


def negative_posts_body(start: datetime, end: datetime, size: int) -> dict[str, Any]:
    """The period's negative posts, those most likely about the bureau's work first, then the newest."""
    return {
        "size": size,
        "query": posts_query(start, end, NEGATIVE),
        "sort": [{"analysis.relevance_prob": {"order": "desc", "missing": "_last"}},
                 {"published_at": {"order": "desc", "missing": "_last"}}],
        "_source": {"includes": _POST_FIELDS},
    }


def source_runs_body(start: datetime, end: datetime) -> dict[str, Any]:
    """Crawl runs of the period per source (the source-health index)."""
    return {
        "size": 0,
        "query": {"range": {"finished_at": {"gte": start.isoformat(), "lt": end.isoformat()}}},
        "aggs": {
            "source": {
                "terms": {"field": "source", "size": 500},
                "aggs": {
                    "found": {"sum": {"field": "found"}},
                    "new": {"sum": {"field": "new"}},
                    "failed": {"filter": {"term": {"ok": False}}},
                    "last_run": {"max": {"field": "finished_at"}},
                    "delivered": {
                        "filter": {"bool": {"filter": [{"term": {"ok": True}}],
                                            "should": [{"range": {"found": {"gt": 0}}},
                                                       {"range": {"unchanged": {"gt": 0}}}],
                                            "minimum_should_match": 1}},
                        "aggs": {"last": {"max": {"field": "finished_at"}}},
                    },
                    "latest": {"top_hits": {"size": 1, "sort": [{"finished_at": "desc"}],
                                            "_source": {"includes": ["kind", "error", "ok"]}}},
                },
            }
        },
    }


# ---- parsing ----------------------------------------------------------------------------------------------
def _dt(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value.replace("Z", "+00:00")) if value else None


def report_post(hit: Mapping[str, Any]) -> ReportPost:
    src = hit["_source"]
    a = src.get("analysis") or {}
    return ReportPost(
        post_id=hit["_id"], title=src.get("title") or "", url=src["url"], source=src.get("source", ""),
        kind=src.get("kind", ""), published_at=_dt(src.get("published_at")) or _dt(src.get("fetched_at")),
        sentiment=a.get("sentiment"), topic=a.get("topic"), relevant=a.get("relevant"),
    )


def search_link(dashboard_url: str, period: Period, **filters: str) -> str:
    # reposts=0: the report counts each story once (reposts left out), so the page it opens does too
    query = urlencode({**filters, "since": period.start.date().isoformat(),
                       "until": (period.end - timedelta(days=1)).date().isoformat(), "reposts": "0"})
    return dashboard_url.rstrip("/") + SEARCH_PAGE.format(query=query)


def _rows(agg: Mapping[str, Any], labels: Mapping[str, str], link: Any, field: str) -> tuple[CountRow, ...]:
    out = []
    for b in agg["buckets"]:
        key = str(b["key"])
        examples = tuple(report_post(h) for h in b["examples"]["hits"]["hits"])
        out.append(CountRow(key, labels.get(key, key), b["doc_count"], examples, link(**{field: key})))
    return tuple(out)


def parse_overview(resp: Mapping[str, Any], previous: Mapping[str, Any], period: Period,
                   dashboard_url: str) -> Overview:
    aggs = resp["aggregations"]

    def link(**f: str) -> str:
        return search_link(dashboard_url, period, **f)

    per_day: dict[date, list[int]] = {}
    for buckets in (aggs["day"]["buckets"], aggs["day_fetched"]["day"]["buckets"]):
        for b in buckets:
            at = _dt(b.get("key_as_string"))
            counts = per_day.setdefault(at.date() if at is not None else date.min, [0, 0])
            counts[0] += b["doc_count"]
            counts[1] += b["negative"]["doc_count"]
    days = tuple(DayCount(day, n, neg) for day, (n, neg) in sorted(per_day.items()))
    return Overview(
        total=resp["hits"]["total"]["value"],
        negative=aggs["negative"]["doc_count"],
        relevant=aggs["relevant"]["doc_count"],
        previous_total=previous["hits"]["total"]["value"],
        previous_negative=previous["aggregations"]["negative"]["doc_count"],
        by_sentiment=_rows(aggs["sentiment"], SENTIMENT_LABELS, link, "sentiment"),
        by_kind=_rows(aggs["kind"], KIND_LABELS, link, "kind"),
        by_source=_rows(aggs["source"], {}, link, "source"),
        by_topic=_rows(aggs["topic"], {}, link, "topic"),
        by_day=days,
        link=link(),
    )


def parse_source_runs(resp: Mapping[str, Any], posts_by_source: Mapping[str, int]) -> tuple[SourceHealthRow, ...]:
    rows = []
    for b in resp["aggregations"]["source"]["buckets"]:
        latest = b["latest"]["hits"]["hits"][0]["_source"] if b["latest"]["hits"]["hits"] else {}
        rows.append(SourceHealthRow(
            source=b["key"], kind=latest.get("kind", ""), runs=b["doc_count"], failed_runs=b["failed"]["doc_count"],
            found=int(b["found"]["value"]), new=int(b["new"]["value"]),
            last_run=_dt(b["last_run"].get("value_as_string")),
            last_success=_dt(b["delivered"]["last"].get("value_as_string")),
            last_error=latest.get("error") if latest.get("ok") is False else None,
            posts=posts_by_source.get(b["key"], 0),
        ))
    # Problems first, then by name.
    order = {"失败": 0, "无产出": 1, "部分失败": 2, "未运行": 3, "正常": 4}
    return tuple(sorted(rows, key=lambda r: (order[r.status], r.source)))


# ---- assembly ---------------------------------------------------------------------------------------------
class ReportError(YuqingError):
    """The report's data could not be read (the message names the index and what to do)."""


def _search(client: Elasticsearch, alias: str, body: dict[str, Any], what: str) -> dict[str, Any]:
    try:
        return dict(client.search(index=alias, **body).body)
    except NotFoundError as exc:
        raise ReportError(f"reading {what}: the index {alias} does not exist; run `yuqing setup` "
                          "(and let a crawl fill it) first") from exc
    except (ApiError, TransportError) as exc:
        raise ReportError(f"reading {what} from {alias} failed: {exc}") from exc


@dataclass(frozen=True)
class ReportSources:
    """Where the report reads from: the posts and source-health aliases, and the optional providers."""

    posts_alias: str
    health_alias: str
    events: EventsProvider | None = None
    tickets: TicketsProvider | None = None


def build_report(
    client: Elasticsearch,
    sources: ReportSources,
    kind: ReportKind,
    day: date,
    *,
    tz: ZoneInfo,
    dashboard_url: str,
    now: datetime,
    negative_limit: int = 20,
    event_limit: int = 10,
) -> Report:
    period = period_for(kind, day, tz)
    prev = period.previous()
    posts = sources.posts_alias
    resp = _search(client, posts, overview_body(period.start, period.end, tz), "the period's counts")
    previous = _search(client, posts, totals_body(prev.start, prev.end), "the previous period's counts")
    overview = parse_overview(resp, previous, period, dashboard_url)
    negatives = _search(client, posts, negative_posts_body(period.start, period.end, negative_limit),
                        "the negative posts")
    health = _search(client, sources.health_alias, source_runs_body(period.start, period.end), "source health")
    events = (tuple(sources.events.top_events(period.start, period.end, event_limit))
              if sources.events is not None else None)
    tickets = sources.tickets.ticket_summary(period.start, period.end, now) if sources.tickets is not None else None
    return Report(
        period=period, generated_at=now, tz=tz, dashboard_url=dashboard_url, overview=overview,
        negative_posts=tuple(report_post(h) for h in negatives["hits"]["hits"]),
        events=events, tickets=tickets,
        sources=parse_source_runs(health, {str(b["key"]): int(b["doc_count"])
                                           for b in resp["aggregations"]["source_counts"]["buckets"]}),
    )
