"""Events in Elasticsearch: the event record (one document per event), the clustering state (so that the
service continues after a restart), and the ``event_id`` / ``keyword_groups`` fields on posts.

Two logical indices (template + alias + versioned index, like every other; see :mod:`index.layout`):

* ``<prefix>-events`` — :class:`EventRecord` documents keyed by the event id; ``model_dump(mode="json")`` is
  the ``_source``.
* ``<prefix>-event-state`` — the events engine's state: one ``global`` document (vocabulary, clock, merges)
  and one document per event the engine still holds (its cluster and aggregates). The state is opaque here
  (``enabled: false`` objects); the engine defines and validates it. Saves are incremental: changed events are
  written, forgotten ones deleted, then the global document.

Both are listed in :data:`index.layout.ALL_SPECS` (``yuqing setup`` creates them); the posts' two fields are
in ``POSTS_MAPPING``, and ``setup`` adds them to a posts index made before they existed. The record models
(:class:`EventRecord`, :class:`EventStateRecord`) are checked against the mappings by ``tests/test_records.py``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any, Literal

from elasticsearch import Elasticsearch, NotFoundError, helpers
from pydantic import ConfigDict, Field

from index.records import Record
from index.spec import IndexSpec

log = logging.getLogger(__name__)

_KW = {"type": "keyword"}
_DATE = {"type": "date"}
_INT = {"type": "integer"}
_LONG = {"type": "long"}
_FLOAT = {"type": "float"}
_OPAQUE = {"type": "object", "enabled": False}
_NAME_COUNT = {"properties": {"name": _KW, "count": _INT}}

EVENTS_MAPPING: dict[str, Any] = {
    "dynamic": "strict",
    "properties": {
        "event_id": _KW,
        "status": _KW,
        "title": {"type": "text", "analyzer": "standard", "fields": {"raw": {"type": "keyword", "ignore_above": 512}}},
        "keywords": _KW,
        "first_post": {
            "properties": {
                "id": _KW,
                "title": {"type": "text", "analyzer": "standard"},
                "source": _KW,
                "kind": _KW,
                "published_at": _DATE,
                "url": {"type": "keyword", "index": False},
            }
        },
        "started_at": _DATE,
        "last_post_at": _DATE,
        "updated_at": _DATE,
        "count": _INT,
        "sources": _NAME_COUNT,
        "kinds": _NAME_COUNT,
        "sentiment": {"properties": {k: _INT for k in ("negative", "neutral", "positive", "unknown")}},
        "negative_share": _FLOAT,
        "engagement": {"properties": {k: _LONG for k in ("likes", "dislikes", "comments", "reposts")}},
        "timeline": _OPAQUE,
        "places": _KW,
        "orgs": _KW,
        "relevance_share": _FLOAT,
        "topic": _KW,
        "unit": _KW,
        "heat": _FLOAT,
        "heat_6h": _FLOAT,
        "heat_24h": _FLOAT,
        "growth": _FLOAT,
        "risk_level": _KW,
        "risk_colour": _KW,
        "risk_reasons": {"type": "text", "index": False},
        "sensitive_words": _KW,
        "keyword_groups": _KW,
        "members": _KW,
        "merged_into": _KW,
        "merged_from": _KW,
    },
}

EVENT_STATE_MAPPING: dict[str, Any] = {
    "dynamic": "strict",
    "properties": {
        "kind": _KW,  # global | event
        "event_id": _KW,
        "status": _KW,
        "saved_at": _DATE,
        "data": _OPAQUE,
    },
}

EVENTS = IndexSpec("events", EVENTS_MAPPING, version=1)
EVENT_STATE = IndexSpec("event-state", EVENT_STATE_MAPPING, version=1)
EVENT_SPECS: tuple[IndexSpec, ...] = (EVENTS, EVENT_STATE)

GLOBAL_ID = "global"


# ---- the record -------------------------------------------------------------------------------------------
class _Model(Record):
    """A stored part of an event. Unknown fields are refused: the record is built from the engine's summary field
    for field, so a summary field this model lacks must fail, not vanish."""

    model_config = ConfigDict(extra="forbid")


class FirstPostRecord(_Model):
    id: str
    title: str
    source: str
    kind: str
    published_at: datetime
    url: str | None = None


class NameCountRecord(_Model):
    name: str
    count: int = Field(ge=0)


class SentimentRecord(_Model):
    negative: int = 0
    neutral: int = 0
    positive: int = 0
    unknown: int = 0


class EngagementRecord(_Model):
    likes: int = 0
    dislikes: int = 0
    comments: int = 0
    reposts: int = 0


class TimelinePointRecord(_Model):
    at: datetime
    hours: int = Field(ge=1)
    posts: int = Field(ge=0)
    negative: int = Field(ge=0)


class EventRecord(_Model):
    """One event as stored and shown (the fields of ``events.summary.EventSummary``)."""

    event_id: str
    status: Literal["open", "closed", "merged"]
    title: str
    keywords: list[str] = Field(default_factory=list)
    first_post: FirstPostRecord
    started_at: datetime
    last_post_at: datetime
    updated_at: datetime
    count: int = Field(ge=1)
    sources: list[NameCountRecord] = Field(default_factory=list)
    kinds: list[NameCountRecord] = Field(default_factory=list)
    sentiment: SentimentRecord = Field(default_factory=SentimentRecord)
    negative_share: float = Field(0.0, ge=0, le=1)
    engagement: EngagementRecord = Field(default_factory=EngagementRecord)
    timeline: list[TimelinePointRecord] = Field(default_factory=list)
    places: list[str] = Field(default_factory=list)
    orgs: list[str] = Field(default_factory=list)
    relevance_share: float = Field(0.0, ge=0, le=1)
    topic: str | None = None
    unit: str | None = None
    heat: float = Field(ge=0, le=100)
    heat_6h: float = Field(ge=0, le=100)
    heat_24h: float = Field(ge=0, le=100)
    growth: float = Field(ge=0)
    risk_level: Literal["I", "II", "III", "IV"]
    risk_colour: Literal["红", "橙", "黄", "蓝"]
    risk_reasons: list[str] = Field(default_factory=list)
    sensitive_words: list[str] = Field(default_factory=list)
    keyword_groups: list[str] = Field(default_factory=list)
    members: list[str] = Field(default_factory=list)
    merged_into: str | None = None
    merged_from: list[str] = Field(default_factory=list)


class EventStateRecord(Record):
    """One document of the engine's state: the ``global`` one (vocabulary, clock, merges) or one per event the
    engine still holds. ``data`` is opaque here (the engine defines and validates it)."""

    kind: Literal["global", "event"]
    event_id: str | None = None
    status: str | None = None
    saved_at: datetime
    data: dict[str, Any]


# ---- records ----------------------------------------------------------------------------------------------
def _bulk(client: Elasticsearch, actions: Iterable[dict[str, Any]], what: str, refresh: bool) -> int:
    ok, errors = helpers.bulk(
        client, actions, raise_on_error=False, stats_only=False, refresh="wait_for" if refresh else False
    )
    assert isinstance(errors, list)
    if errors:
        raise RuntimeError(f"{what}: {len(errors)} bulk actions failed, e.g. {errors[:2]}")
    return ok


def upsert_events(
    client: Elasticsearch, alias: str, records: Sequence[EventRecord], *, refresh: bool = False
) -> int:
    """Write (create or replace) event records by id; returns the number written."""
    actions = ({"_index": alias, "_id": r.event_id, "_source": r.as_source()} for r in records)
    return _bulk(client, actions, f"writing {len(records)} events to {alias}", refresh)


def get_events(client: Elasticsearch, alias: str, event_ids: Sequence[str]) -> dict[str, EventRecord]:
    """The records of ``event_ids`` that exist (real-time ``mget``)."""
    if not event_ids:
        return {}
    resp = client.mget(index=alias, ids=list(event_ids))
    out: dict[str, EventRecord] = {}
    for doc in resp["docs"]:
        if "error" in doc:
            raise RuntimeError(f"reading event {doc.get('_id')} from {alias}: {doc['error']}")
        if doc.get("found"):
            out[doc["_id"]] = EventRecord.model_validate(doc["_source"])
    return out


def open_events_query(min_heat: float = 0.0) -> dict[str, Any]:
    """Open events (optionally at least ``min_heat``), the hottest first (pure)."""
    filters: list[dict[str, Any]] = [{"term": {"status": "open"}}]
    if min_heat > 0:
        filters.append({"range": {"heat": {"gte": min_heat}}})
    return {"query": {"bool": {"filter": filters}}, "sort": [{"heat": "desc"}, {"event_id": "asc"}]}


def load_open_events(client: Elasticsearch, alias: str, *, min_heat: float = 0.0) -> list[EventRecord]:
    """Every open event record, hottest first."""
    body = open_events_query(min_heat)
    hits = helpers.scan(client, index=alias, query={"query": body["query"]}, size=500, preserve_order=False)
    records = [EventRecord.model_validate(h["_source"]) for h in hits]
    records.sort(key=lambda r: (-r.heat, r.event_id))
    return records


# ---- posts ------------------------------------------------------------------------------------------------
def set_post_events(
    client: Elasticsearch,
    posts_alias: str,
    event_of: Mapping[str, str],
    groups_of: Mapping[str, Sequence[str]] | None = None,
    *,
    refresh: bool = False,
) -> int:
    """Store each post's ``event_id`` (and ``keyword_groups`` where given) by partial update; a post that is
    not in the index is an error (it was assigned, so it must have been indexed)."""
    groups_of = groups_of or {}
    ids = sorted(set(event_of) | set(groups_of))

    def actions() -> Iterator[dict[str, Any]]:
        for pid in ids:
            doc: dict[str, Any] = {}
            if pid in event_of:
                doc["event_id"] = event_of[pid]
            if pid in groups_of:
                doc["keyword_groups"] = list(groups_of[pid])
            yield {"_op_type": "update", "_index": posts_alias, "_id": pid, "doc": doc}

    return _bulk(client, actions(), f"setting event ids of {len(ids)} posts in {posts_alias}", refresh)


def post_ids_matching(
    client: Elasticsearch, posts_alias: str, query: Mapping[str, Any], size: int = 10_000
) -> list[str]:
    """Ids of the posts matching ``query`` (e.g. a 专题 group's ``events.keyword_groups.es_query``)."""
    hits = helpers.scan(client, index=posts_alias, query={"query": dict(query), "_source": False}, size=min(size, 1000))
    out: list[str] = []
    for h in hits:
        out.append(h["_id"])
        if len(out) >= size:
            break
    return sorted(out)


# ---- clustering state -------------------------------------------------------------------------------------
def save_state(
    client: Elasticsearch,
    alias: str,
    global_state: Mapping[str, Any],
    events: Mapping[str, Mapping[str, Any]],
    removed: Sequence[str],
    *,
    now: datetime,
) -> None:
    """Save the engine's state incrementally: changed events, then deletions, then the global document (so a
    crash leaves the previous global document with at least as new event documents)."""

    def actions() -> Iterator[dict[str, Any]]:
        for eid, data in events.items():
            status = data.get("cluster", {}).get("status")
            doc = EventStateRecord(kind="event", event_id=eid, status=status, saved_at=now, data=dict(data))
            yield {"_index": alias, "_id": f"event:{eid}", "_source": doc.as_source()}
        for eid in removed:
            yield {"_op_type": "delete", "_index": alias, "_id": f"event:{eid}"}

    if events or removed:
        _ok, errors = helpers.bulk(client, actions(), raise_on_error=False, stats_only=False)
        assert isinstance(errors, list)
        errors = [e for e in errors if e.get("delete", {}).get("status") != 404]
        if errors:
            raise RuntimeError(f"saving events state to {alias}: {len(errors)} actions failed, e.g. {errors[:2]}")
    client.index(
        index=alias, id=GLOBAL_ID,
        document=EventStateRecord(kind="global", saved_at=now, data=dict(global_state)).as_source(),
        refresh="wait_for",
    )
    log.info("events state saved to %s: %d events written, %d removed", alias, len(events), len(removed))


def load_state(client: Elasticsearch, alias: str) -> dict[str, Any] | None:
    """The saved state as ``{"global": ..., "events": {id: ...}}`` (the engine's ``from_state`` input), or
    None when nothing was saved yet."""
    try:
        doc = client.get(index=alias, id=GLOBAL_ID)
    except NotFoundError:
        return None
    client.indices.refresh(index=alias)
    events: dict[str, Any] = {}
    for hit in helpers.scan(client, index=alias, query={"query": {"term": {"kind": "event"}}}, size=500):
        src = hit["_source"]
        events[src["event_id"]] = src["data"]
    return {"global": doc["_source"]["data"], "events": events}
