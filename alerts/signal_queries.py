"""Signals read from indexed data that exists today: negative surges per topic from the posts index.

(Event, ticket, 依申请公开 and source signals come from their stores in phase 2.) A post counts in the window it
*arrived* in (``fetched_at``, by default): a surge is about what is appearing now, whatever date a page gives.
Near-duplicates are not counted.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from elasticsearch import Elasticsearch

from alerts.query import own_sources_clause
from alerts.reports import NEGATIVE, examples_agg, report_post
from alerts.signals import SurgeSignal


def _window(field: str, start: datetime, end: datetime) -> dict[str, Any]:
    return {"range": {field: {"gte": start.isoformat(), "lt": end.isoformat()}}}


def surge_body(window_end: datetime, minutes: int, *, topics: Sequence[str] = (), field: str = "fetched_at",
               examples: int = 3, own_sources: Sequence[str] = ()) -> dict[str, Any]:
    """Per topic: posts and negative posts in the window ending at ``window_end`` and in the one before, not
    counting the bureau's own posts (``own_sources``: a 情况说明 is not a surge of complaint) (pure)."""
    cur_start = window_end - timedelta(minutes=minutes)
    prev_start = cur_start - timedelta(minutes=minutes)
    filters: list[dict[str, Any]] = [_window(field, prev_start, window_end), {"exists": {"field": "analysis.topic"}}]
    if topics:
        filters.append({"terms": {"analysis.topic": list(topics)}})
    must_not: list[dict[str, Any]] = [{"exists": {"field": "duplicate_of"}}]
    own = own_sources_clause((), own_sources)
    if own is not None:
        must_not.append(own)
    return {
        "size": 0,
        "query": {"bool": {"filter": filters, "must_not": must_not}},
        "aggs": {
            "topic": {
                "terms": {"field": "analysis.topic", "size": 200},
                "aggs": {
                    "cur": {"filter": _window(field, cur_start, window_end),
                            "aggs": {"neg": {"filter": NEGATIVE, "aggs": {"examples": examples_agg(examples)}}}},
                    "prev": {"filter": _window(field, prev_start, cur_start), "aggs": {"neg": {"filter": NEGATIVE}}},
                },
            }
        },
    }


def parse_surges(resp: Mapping[str, Any], window_end: datetime, minutes: int,
                 units: Mapping[str, str] | None = None) -> list[SurgeSignal]:
    """One signal per topic with posts in the current window (the rules decide whether it is a surge)."""
    out = []
    for b in resp["aggregations"]["topic"]["buckets"]:
        cur, prev = b["cur"], b["prev"]
        if cur["doc_count"] == 0:
            continue
        posts = tuple(report_post(h).link() for h in cur["neg"]["examples"]["hits"]["hits"])
        out.append(SurgeSignal(
            topic=b["key"], window_end=window_end, window_minutes=minutes, negative=cur["neg"]["doc_count"],
            total=cur["doc_count"], prev_negative=prev["neg"]["doc_count"], prev_total=prev["doc_count"],
            unit=(units or {}).get(b["key"]), posts=posts,
        ))
    return out


def surge_signals(client: Elasticsearch, posts_alias: str, *, window_end: datetime, minutes: int,
                  topics: Sequence[str] = (), units: Mapping[str, str] | None = None,
                  own_sources: Sequence[str] = ()) -> list[SurgeSignal]:
    """The surge signals of every topic for the window of ``minutes`` ending at ``window_end``; ``units``:
    topic → responsible unit (from ``config/taxonomy.yaml``) for routing."""
    resp = client.search(index=posts_alias, **surge_body(window_end, minutes, topics=topics,
                                                         own_sources=own_sources)).body
    return parse_surges(resp, window_end, minutes, units)
