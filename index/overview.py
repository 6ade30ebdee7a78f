"""Read-only summaries for the dashboard's 总览 and 检索 pages: pure request builders and the functions that run
them against the posts, events, tickets and outbox indices.

The builders are pure (unit-tested); the readers take a client and an alias and return typed results. A document
of the events, tickets or outbox index that does not validate is skipped and counted (logged with its id), like
unreadable posts (:mod:`index.hits`): a summary panel never fails on one old document.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Generic, Literal, TypeVar

from elasticsearch import Elasticsearch
from pydantic import BaseModel, ValidationError

from index.events import OUT_OF_SCOPE_QUERY, EventRecord
from index.outbox import STATUSES as OUTBOX_STATUSES
from index.outbox import OutboxEntry
from index.search import PostQuery, build_query
from index.tickets import TICKET_SORT, TicketRecord, ticket_query

log = logging.getLogger(__name__)

M = TypeVar("M", bound=BaseModel)

Interval = Literal["hour", "day", "week", "month"]
UNANALYSED = "unanalysed"  # the sentiment bucket of posts without an analysis
OPEN_TICKET_STATUSES = ("待研判", "处置中")  # response.tickets.OPEN_STATUSES (the store layer cannot import it)
ACTIVE_ALERT_STATUSES = ("held", "pending", "sending", "failed")


# ---- where the data is -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class DataSpan:
    """How many posts have a publish time in each window ending now, and the first and last publish times."""

    in_window: dict[str, int]
    first: datetime | None
    last: datetime | None
    total: int


def build_data_span(now: datetime, windows: dict[str, timedelta]) -> dict[str, Any]:
    """One request: posts per window ending at ``now`` and the publish-time range (pure)."""
    return {
        "size": 0,
        "track_total_hits": True,
        "aggs": {
            "windows": {"filters": {"filters": {
                label: {"range": {"published_at": {"gte": (now - span).isoformat()}}}
                for label, span in windows.items()
            }}},
            "first": {"min": {"field": "published_at"}},
            "last": {"max": {"field": "published_at"}},
        },
    }


def _agg_time(agg: dict[str, Any]) -> datetime | None:
    value = agg.get("value_as_string")
    return datetime.fromisoformat(value.replace("Z", "+00:00")) if value else None


def data_span(client: Elasticsearch, alias: str, now: datetime, windows: dict[str, timedelta]) -> DataSpan:
    resp = client.search(index=alias, **build_data_span(now, windows))
    aggs = resp["aggregations"]
    return DataSpan(
        in_window={k: int(v["doc_count"]) for k, v in aggs["windows"]["buckets"].items()},
        first=_agg_time(aggs["first"]), last=_agg_time(aggs["last"]),
        total=int(resp["hits"]["total"]["value"]),
    )


def default_window(span: DataSpan, order: Sequence[str], fallback: str) -> str:
    """The shortest window (in ``order``) that holds any post; ``fallback`` (all posts) when none does."""
    return next((label for label in order if span.in_window.get(label, 0) > 0), fallback)


def interval_for(span: timedelta) -> Interval:
    """A histogram interval that gives a readable number of bars for a time span."""
    if span <= timedelta(days=2):
        return "hour"
    if span <= timedelta(days=120):
        return "day"
    if span <= timedelta(days=730):
        return "week"
    return "month"


# ---- volume and facets -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class VolumePoint:
    at: datetime
    sentiment: str  # negative | neutral | positive | unanalysed
    count: int


def build_volume(q: PostQuery, interval: Interval, tz: str) -> dict[str, Any]:
    """Posts per interval (by publish time, in zone ``tz``) and sentiment under ``q`` (pure)."""
    return {
        "size": 0,
        "query": build_query(q),
        "aggs": {"t": {
            "date_histogram": {"field": "published_at", "calendar_interval": interval, "time_zone": tz,
                               "min_doc_count": 0},
            "aggs": {"s": {"terms": {"field": "analysis.sentiment", "size": 10, "missing": UNANALYSED}}},
        }},
    }


def volume(client: Elasticsearch, alias: str, q: PostQuery, interval: Interval, tz: str) -> list[VolumePoint]:
    resp = client.search(index=alias, **build_volume(q, interval, tz))
    return _volume_points(resp["aggregations"]["t"])


@dataclass(frozen=True)
class PostSummary:
    """What 总览 shows of the posts of a time range, from one request (hot words apart: they are sampled above a
    size, :func:`index.search.hot_terms`)."""

    total: int
    by_sentiment: dict[str, int]
    volume: list[VolumePoint]
    by_source: dict[str, int]


def build_post_summary(q: PostQuery, interval: Interval, tz: str, *, sources: int = 50) -> dict[str, Any]:
    """Total, counts by sentiment and source and the volume histogram under ``q``: one request (pure)."""
    return {
        "size": 0,
        "track_total_hits": True,
        "query": build_query(q),
        "aggs": {
            "sentiment": {"terms": {"field": "analysis.sentiment", "size": 10}},
            "source": {"terms": {"field": "source", "size": sources}},
            **build_volume(q, interval, tz)["aggs"],
        },
    }


def _volume_points(agg: dict[str, Any]) -> list[VolumePoint]:
    out: list[VolumePoint] = []
    for bucket in agg["buckets"]:
        at = datetime.fromisoformat(bucket["key_as_string"].replace("Z", "+00:00"))
        for s in bucket["s"]["buckets"]:
            out.append(VolumePoint(at=at, sentiment=str(s["key"]), count=int(s["doc_count"])))
    return out


def post_summary(client: Elasticsearch, alias: str, q: PostQuery, interval: Interval, tz: str) -> PostSummary:
    resp = client.search(index=alias, **build_post_summary(q, interval, tz))
    aggs = resp["aggregations"]

    def terms(name: str) -> dict[str, int]:
        return {str(b["key"]): int(b["doc_count"]) for b in aggs[name]["buckets"]}

    return PostSummary(total=int(resp["hits"]["total"]["value"]), by_sentiment=terms("sentiment"),
                       volume=_volume_points(aggs["t"]), by_source=terms("source"))


@dataclass(frozen=True)
class Facets:
    """Counts of a result by source, topic and day (day keys ``YYYY-MM-DD`` in the dashboard's zone)."""

    total: int
    by_source: dict[str, int] = field(default_factory=dict)
    by_topic: dict[str, int] = field(default_factory=dict)
    by_day: dict[str, int] = field(default_factory=dict)


def build_facets(q: PostQuery, tz: str, size: int = 20) -> dict[str, Any]:
    """One request for the 检索 page's aggregations (pure)."""
    return {
        "size": 0,
        "track_total_hits": True,
        "query": build_query(q),
        "aggs": {
            "source": {"terms": {"field": "source", "size": size}},
            "topic": {"terms": {"field": "analysis.topic", "size": size}},
            "day": {"date_histogram": {"field": "published_at", "calendar_interval": "day", "time_zone": tz,
                                       "format": "yyyy-MM-dd", "min_doc_count": 1}},
        },
    }


def facets(client: Elasticsearch, alias: str, q: PostQuery, tz: str) -> Facets:
    resp = client.search(index=alias, **build_facets(q, tz))
    aggs = resp["aggregations"]

    def terms(name: str) -> dict[str, int]:
        return {str(b["key"]): int(b["doc_count"]) for b in aggs[name]["buckets"]}

    return Facets(
        total=int(resp["hits"]["total"]["value"]),
        by_source=terms("source"), by_topic=terms("topic"),
        by_day={str(b["key_as_string"]): int(b["doc_count"]) for b in aggs["day"]["buckets"]},
    )


# ---- records of the other indices --------------------------------------------------------------------------
@dataclass(frozen=True)
class Records(Generic[M]):
    """The documents that could be read (in order), how many matched in all, and how many were unreadable."""

    items: list[M]
    total: int = 0
    unreadable: int = 0


def _read(resp: Any, model: type[M]) -> Records[M]:
    items: list[M] = []
    bad = 0
    for hit in resp["hits"]["hits"]:
        try:
            items.append(model.model_validate(hit["_source"]))
        except ValidationError as exc:
            bad += 1
            log.warning("skipped unreadable document %s in %s: %s", hit.get("_id"), hit.get("_index"),
                        exc.errors()[0]["loc"])
    return Records(items=items, total=int(resp["hits"]["total"]["value"]), unreadable=bad)


def build_top_events(since: datetime | None, size: int, risk_levels: Sequence[str] = ()) -> dict[str, Any]:
    """Open events with a post since ``since``, the hottest first, not those out of scope (与本局业务无关, 本局发布
    only) (pure)."""
    filters: list[dict[str, Any]] = [{"term": {"status": "open"}}]
    if since is not None:
        filters.append({"range": {"last_post_at": {"gte": since.isoformat()}}})
    if risk_levels:
        filters.append({"terms": {"risk_level": list(risk_levels)}})
    return {"query": {"bool": {"filter": filters, "must_not": [OUT_OF_SCOPE_QUERY]}},
            "sort": [{"heat": "desc"}, {"event_id": "asc"}], "size": size, "track_total_hits": True,
            "_source": {"excludes": ["members", "timeline"]}}


def top_events(client: Elasticsearch, alias: str, since: datetime | None, size: int = 10) -> Records[EventRecord]:
    return _read(client.search(index=alias, **build_top_events(since, size)), EventRecord)


def build_event_ids(risk_levels: Sequence[str], limit: int) -> dict[str, Any]:
    """Ids of the events (open or closed, not merged) of ``risk_levels`` (pure)."""
    return {"query": {"bool": {"filter": [{"terms": {"risk_level": list(risk_levels)}}],
                               "must_not": [{"term": {"status": "merged"}}]}},
            "size": limit, "_source": False, "sort": [{"heat": "desc"}]}


def event_ids_of_risk(client: Elasticsearch, alias: str, risk_levels: Sequence[str], limit: int = 10_000
                      ) -> tuple[str, ...]:
    """The events of the given risk levels (the 检索 page filters posts by them); at most ``limit``."""
    resp = client.search(index=alias, **build_event_ids(risk_levels, limit))
    return tuple(str(h["_id"]) for h in resp["hits"]["hits"])


@dataclass(frozen=True)
class TicketSummary:
    open: int
    overdue: int
    due_soon: int  # open, not overdue, first deadline within the horizon
    soonest: Records[TicketRecord]
    instructions_pending: int = 0  # tickets (any status) with a 领导批示 not yet reported back on
    awaiting_instruction: int = 0  # open tickets whose 舆情专报 has no 领导批示 since (专报待批示)


def build_ticket_counts(now: datetime, horizon: timedelta) -> dict[str, Any]:
    """Open tickets, and of them the overdue and the due-soon ones, and the tickets with a 领导批示 waiting for its
    report back (whatever their status), and those whose 专报 waits for a 批示, counted in one request (pure)."""
    open_q = ticket_query(statuses=list(OPEN_TICKET_STATUSES))
    return {
        "size": 0,
        "aggs": {"c": {"filters": {"filters": {
            "open": open_q,
            # still open and past a deadline: a ticket answered late keeps its ``overdue`` flag (for the record)
            "overdue": {"bool": {"filter": [open_q, ticket_query(overdue_at=now)]}},
            "due_soon": {"bool": {"filter": [
                open_q, {"range": {"next_due_at": {"gte": now.isoformat(), "lt": (now + horizon).isoformat()}}}
            ], "must_not": [{"term": {"overdue": True}}]}},
            "instructions_pending": ticket_query(instructions_pending=True),
            "awaiting_instruction": ticket_query(awaiting_instruction=True),
        }}}},
    }


def ticket_summary(client: Elasticsearch, alias: str, now: datetime, horizon: timedelta, size: int = 10
                   ) -> TicketSummary:
    counts = client.search(index=alias, **build_ticket_counts(now, horizon))["aggregations"]["c"]["buckets"]
    resp = client.search(index=alias, query=ticket_query(statuses=list(OPEN_TICKET_STATUSES)), sort=TICKET_SORT,
                         size=size, track_total_hits=True)
    return TicketSummary(open=int(counts["open"]["doc_count"]), overdue=int(counts["overdue"]["doc_count"]),
                         due_soon=int(counts["due_soon"]["doc_count"]), soonest=_read(resp, TicketRecord),
                         instructions_pending=int(counts["instructions_pending"]["doc_count"]),
                         awaiting_instruction=int(counts["awaiting_instruction"]["doc_count"]))


@dataclass(frozen=True)
class AlertSummary:
    by_status: dict[str, int]
    recent: Records[OutboxEntry]


def build_recent_alerts(since: datetime | None, size: int) -> dict[str, Any]:
    """Alerts still to deliver or given up on, and those sent since ``since``; newest change first (pure)."""
    sent: dict[str, Any] = {"term": {"status": "sent"}}
    if since is not None:
        sent = {"bool": {"filter": [sent, {"range": {"updated_at": {"gte": since.isoformat()}}}]}}
    return {
        "query": {"bool": {"should": [{"terms": {"status": list(ACTIVE_ALERT_STATUSES)}}, sent],
                           "minimum_should_match": 1}},
        "sort": [{"updated_at": "desc"}, {"id": "asc"}],
        "size": size, "track_total_hits": True, "_source": {"excludes": ["mime", "payload"]},
    }


def alert_summary(client: Elasticsearch, alias: str, since: datetime | None, size: int = 10) -> AlertSummary:
    """Per status, the alerts still to deliver or given up on (whenever decided: they need someone now) and those
    sent since ``since`` (the page's time range), with the most recent of them."""
    query = build_recent_alerts(since, 0)["query"]
    resp = client.search(index=alias, size=0, query=query, aggs={"s": {"terms": {"field": "status", "size": 20}}})
    by_status: dict[str, int] = dict.fromkeys(OUTBOX_STATUSES, 0)
    for b in resp["aggregations"]["s"]["buckets"]:
        by_status[str(b["key"])] = int(b["doc_count"])
    return AlertSummary(by_status=by_status,
                        recent=_read(client.search(index=alias, **build_recent_alerts(since, size)), OutboxEntry))
