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
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from elasticsearch import Elasticsearch, NotFoundError, helpers
from pydantic import AliasChoices, ConfigDict, Field

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
        "own_posts": _INT,
        "in_scope": {"type": "boolean"},
        "topic": _KW,
        "unit": _KW,
        "heat": _FLOAT,
        "heat_6h": _FLOAT,
        "heat_24h": _FLOAT,
        "growth": _FLOAT,
        "risk_level": _KW,
        "risk_colour": _KW,
        "risk_reasons": {"type": "text", "index": False},
        "level_history": {"properties": {"level": _KW, "at": _DATE}},
        "sensitive_words": _KW,
        "hashtags": _KW,
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


class LevelChangeRecord(_Model):
    """The event's risk level changed to ``level`` at ``at`` (the events job's clock); the first entry is the
    level it was first recorded with."""

    level: Literal["I", "II", "III", "IV"]
    at: datetime


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
    own_posts: int = Field(0, ge=0)  # posts of the bureau's own channels (本局发布) among its members
    # False: out of the press office's watch (held at IV): 与本局业务无关 (too few of its posts concern the bureau's
    # work) or 本局发布 only (all its posts came from the bureau's own channels). Records written before the field
    # existed lack it and read as in scope until the events job rewrites them; those that called it ``related``
    # are read by that name.
    in_scope: bool = Field(True, validation_alias=AliasChoices("in_scope", "related"))
    topic: str | None = None
    unit: str | None = None
    heat: float = Field(ge=0, le=100)
    heat_6h: float = Field(ge=0, le=100)
    heat_24h: float = Field(ge=0, le=100)
    growth: float = Field(ge=0)
    risk_level: Literal["I", "II", "III", "IV"]
    risk_colour: Literal["红", "橙", "黄", "蓝"]
    risk_reasons: list[str] = Field(default_factory=list)
    # Written by the events job (index-side, not part of the engine's summary): every change of ``risk_level``,
    # oldest first; for an open or closed event the last entry's level is ``risk_level`` (a merged event keeps
    # the history it had). Alert rules read the previous level from it.
    level_history: list[LevelChangeRecord] = Field(default_factory=list)
    sensitive_words: list[str] = Field(default_factory=list)
    hashtags: list[str] = Field(default_factory=list)  # the 话题 (#…#) its posts carry, the commonest first
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
    """The records of ``event_ids`` that exist (real-time ``mget``); none when the index does not exist yet."""
    if not event_ids:
        return {}
    resp = client.mget(index=alias, ids=list(event_ids))
    out: dict[str, EventRecord] = {}
    for doc in resp["docs"]:
        if doc.get("error", {}).get("type") == "index_not_found_exception":  # mget reports it per document
            continue
        if "error" in doc:
            raise RuntimeError(f"reading event {doc.get('_id')} from {alias}: {doc['error']}")
        if doc.get("found"):
            out[doc["_id"]] = EventRecord.model_validate(doc["_source"])
    return out


MERGE_CHAIN_LIMIT = 20  # merges of merges followed at most this far (a cycle would be a bug of the engine)


def surviving_events(client: Elasticsearch, alias: str, event_ids: Sequence[str]) -> dict[str, str]:
    """For each of ``event_ids``, the event its posts now belong to: itself, or the event it was merged into
    (followed through merges of merges). An id with no record maps to itself."""
    out = {e: e for e in event_ids}
    frontier = set(out)
    for _ in range(MERGE_CHAIN_LIMIT):
        records = get_events(client, alias, sorted(frontier))
        moved = {e: r.merged_into for e, r in records.items() if r.merged_into and r.merged_into != e}
        if not moved:
            return out
        out = {orig: moved.get(cur, cur) for orig, cur in out.items()}
        frontier = set(moved.values())
    raise RuntimeError(f"events in {alias}: a chain of merges longer than {MERGE_CHAIN_LIMIT} from {sorted(frontier)}")


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


UNASSIGNED_FIELDS = ("canonical_url", "url", "title", "content", "title_seg", "content_seg", "source", "kind",
                     "published_at", "fetched_at", "engagement", "analysis", "duplicate_of", "keyword_groups",
                     "judgement")


def unassigned_posts_query(size: int, after: Sequence[Any] | None = None) -> dict[str, Any]:
    """The next ``size`` posts without an ``event_id`` (new, or re-indexed since the events job saw them), in
    time order: ``published_at`` then ``canonical_url`` (unique per post); ``after`` is the previous page's last
    sort value (pure)."""
    body: dict[str, Any] = {
        "query": {"bool": {"must_not": [{"exists": {"field": "event_id"}}]}},
        "sort": [{"published_at": {"order": "asc", "missing": "_first"}}, {"canonical_url": "asc"}],
        "size": size,
        "_source": list(UNASSIGNED_FIELDS),
        "track_total_hits": False,
    }
    if after is not None:
        body["search_after"] = list(after)
    return body


def unassigned_posts(
    client: Elasticsearch, posts_alias: str, size: int, after: Sequence[Any] | None = None
) -> list[tuple[str, dict[str, Any], list[Any]]]:
    """One page of :func:`unassigned_posts_query`: (id, _source, sort values) per post."""
    resp = client.search(index=posts_alias, **unassigned_posts_query(size, after))
    return [(h["_id"], h["_source"], h["sort"]) for h in resp["hits"]["hits"]]


def count_unassigned(client: Elasticsearch, posts_alias: str) -> int:
    body = unassigned_posts_query(0)
    return int(client.count(index=posts_alias, query=body["query"])["count"])


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
    refresh: bool = True,
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
        refresh="wait_for" if refresh else False,  # load_state refreshes before it searches anyway
    )
    log.debug("events state saved to %s: %d events written, %d removed", alias, len(events), len(removed))


def state_saved_at(client: Elasticsearch, alias: str) -> str | None:
    """When the state was last saved (the global document's ``saved_at`` as stored), None when never: lets a
    long-running writer notice that another process (``yuqing events update``) saved since it loaded."""
    try:
        doc = client.get(index=alias, id=GLOBAL_ID, source_includes=["saved_at"])
    except NotFoundError:
        return None
    return str(doc["_source"]["saved_at"])


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


# ---- forgetting posts -------------------------------------------------------------------------------------
def forget_events_of(client: Elasticsearch, index_prefix: str, post_ids: Sequence[str]) -> list[str]:
    """Drop the events ``post_ids`` belong to, before those posts are deleted (the demo's reset): their records,
    their state documents (so the engine no longer holds the posts and clusters them anew when they come back),
    and the same for the events merged into them; the other members of those events lose their ``event_id``,
    so that the next events update clusters them again. Returns the dropped event ids."""
    from index.layout import POSTS  # index.layout lists this module's specs

    posts_alias, events_alias = POSTS.alias(index_prefix), EVENTS.alias(index_prefix)
    state_alias = EVENT_STATE.alias(index_prefix)
    if not post_ids or not client.indices.exists_alias(name=events_alias):
        return []
    dropped: set[str] = set()
    for start in range(0, len(post_ids), 1000):
        resp = client.search(index=posts_alias, size=0, query={"ids": {"values": list(post_ids[start:start + 1000])}},
                             aggs={"e": {"terms": {"field": "event_id", "size": 10_000}}})
        dropped.update(b["key"] for b in resp["aggregations"]["e"]["buckets"])
    frontier = set(dropped)
    while frontier:  # events merged into a dropped one hold members that resolve to it
        hits = helpers.scan(client, index=events_alias, _source=False,
                            query={"query": {"terms": {"merged_into": sorted(frontier)}}})
        frontier = {h["_id"] for h in hits} - dropped
        dropped |= frontier
    if not dropped:
        return []
    ids = sorted(dropped)
    others = [h["_id"] for h in helpers.scan(client, index=posts_alias, _source=False, query={"query": {"bool": {
        "filter": [{"terms": {"event_id": ids}}], "must_not": [{"ids": {"values": list(post_ids)}}]}}})]
    actions: list[dict[str, Any]] = [{"_op_type": "update", "_index": posts_alias, "_id": pid,
                                      "doc": {"event_id": None}} for pid in others]
    actions += [{"_op_type": "delete", "_index": events_alias, "_id": eid} for eid in ids]
    actions += [{"_op_type": "delete", "_index": state_alias, "_id": f"event:{eid}"} for eid in ids]
    _ok, errors = helpers.bulk(client, actions, raise_on_error=False, stats_only=False, refresh="wait_for")
    assert isinstance(errors, list)
    failed = [e for e in errors if e.get("delete", {}).get("status") != 404]
    if failed:
        raise RuntimeError(f"forgetting {len(ids)} events: {len(failed)} actions failed, e.g. {failed[:2]}")
    log.info("forgot %d events of %d removed posts (%d other posts will be clustered again)", len(ids),
             len(post_ids), len(others))
    return ids


def sync_group(client: Elasticsearch, posts_alias: str, name: str, query: Mapping[str, Any]) -> tuple[int, int]:
    """Make the stored ``keyword_groups`` agree with a 专题 group's ``query`` over the whole index: the group is
    added to the matching posts that lack it and removed from the posts that carry it without matching (its
    expression changed). Returns (added, removed)."""
    matching = {"bool": {"filter": [dict(query)], "must_not": [{"term": {"keyword_groups": name}}]}}
    stale = {"bool": {"filter": [{"term": {"keyword_groups": name}}], "must_not": [dict(query)]}}
    counts = []
    for q, add in ((matching, True), (stale, False)):
        actions = []
        for h in helpers.scan(client, index=posts_alias, query={"query": q, "_source": ["keyword_groups"]}, size=1000):
            groups = [g for g in h["_source"].get("keyword_groups") or [] if g != name] + ([name] if add else [])
            actions.append({"_op_type": "update", "_index": posts_alias, "_id": h["_id"],
                            "doc": {"keyword_groups": groups}})
        if actions:
            _bulk(client, actions, f"updating the 专题 group {name} on {len(actions)} posts", True)
        counts.append(len(actions))
    return counts[0], counts[1]


# ---- reading events for the dashboard (热点事件 / 事件详情) -------------------------------------------------------
@dataclass(frozen=True)
class EventFilter:
    """What the 热点事件 page asks for: levels, topics, units (any of each; empty: all), a post since ``since``
    (``last_post_at``), closed events too or only open ones, only the events on the bureau's work
    (``in_scope_only``: not out of scope) or all; merged events never (they live on in the survivor)."""

    levels: tuple[str, ...] = ()
    topics: tuple[str, ...] = ()
    units: tuple[str, ...] = ()
    since: datetime | None = None
    include_closed: bool = False
    in_scope_only: bool = False
    size: int = 100


# The events out of scope (``EventRecord.in_scope``: 与本局业务无关 or 本局发布 only); a record without the field
# (older) counts as in scope, one written when the field was called ``related`` by that name (an unmapped field
# matches nothing).
OUT_OF_SCOPE_QUERY: dict[str, Any] = {"bool": {"should": [{"term": {"in_scope": False}}, {"term": {"related": False}}],
                                               "minimum_should_match": 1}}


@dataclass(frozen=True)
class HotEvents:
    total: int  # how many events match
    records: list[EventRecord]  # the hottest of them
    out_of_scope: int = 0  # matching events left out as out of scope (``in_scope_only``)


def hot_events_query(f: EventFilter) -> dict[str, Any]:
    """The events of ``f``, the hottest first, without the long fields (pure). With ``in_scope_only`` the
    events out of scope are left out after counting them (``aggs.out_of_scope``)."""
    filters: list[dict[str, Any]] = [{"terms": {"status": ["open", "closed"] if f.include_closed else ["open"]}}]
    for field_name, values in (("risk_level", f.levels), ("topic", f.topics), ("unit", f.units)):
        if values:
            filters.append({"terms": {field_name: list(values)}})
    if f.since is not None:
        filters.append({"range": {"last_post_at": {"gte": f.since.isoformat()}}})
    body: dict[str, Any] = {"query": {"bool": {"filter": filters}}, "sort": [{"heat": "desc"}, {"event_id": "asc"}],
                            "size": f.size, "track_total_hits": True, "_source": {"excludes": ["members"]}}
    if f.in_scope_only:
        body["post_filter"] = {"bool": {"must_not": [OUT_OF_SCOPE_QUERY]}}
        body["aggs"] = {"out_of_scope": {"filter": OUT_OF_SCOPE_QUERY}}
    return body


def hot_events(client: Elasticsearch, alias: str, f: EventFilter) -> HotEvents:
    """The events of ``f`` — see :func:`hot_events_query`."""
    resp = client.search(index=alias, **hot_events_query(f))
    hidden = resp.get("aggregations", {}).get("out_of_scope", {}).get("doc_count", 0)
    return HotEvents(int(resp["hits"]["total"]["value"]),
                     [EventRecord.model_validate(h["_source"]) for h in resp["hits"]["hits"]], int(hidden))


def event_facets_query() -> dict[str, Any]:
    """Topics and units of the open and closed events, for the page's filters (pure)."""
    return {"size": 0, "query": {"bool": {"must_not": [{"term": {"status": "merged"}}]}},
            "aggs": {"topic": {"terms": {"field": "topic", "size": 100}},
                     "unit": {"terms": {"field": "unit", "size": 100}}}}


def event_facets(client: Elasticsearch, alias: str) -> dict[str, list[str]]:
    resp = client.search(index=alias, **event_facets_query())
    return {name: [str(b["key"]) for b in resp["aggregations"][name]["buckets"]] for name in ("topic", "unit")}


def event_posts_query(event_id: str, size: int) -> dict[str, Any]:
    """The posts of one event in time order (pure)."""
    return {"query": {"bool": {"filter": [{"term": {"event_id": event_id}}]}},
            "sort": [{"published_at": {"order": "asc", "missing": "_last"}}, {"canonical_url": "asc"}],
            "size": size, "track_total_hits": True, "_source": {"excludes": ["title_seg", "content_seg"]}}
