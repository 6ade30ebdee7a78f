"""Forgetting an earlier replay of the demo, so that each `yuqing up` tells the story from its beginning.

A replay publishes the same pages (same URLs) with times shifted to its own start. Without this, a second
`up` would find every page already indexed with unchanged text, skip it, and keep the first run's times: no
story would rise. Only what was crawled from the demo site's address is removed — the posts, the crawl state
(validators and content hashes) of those pages, the 人工研判 judgements of those posts, the events they belong to
(records and clustering state, and the posts' share of the engine's document frequencies; other members of those
events are clustered again), the 处置单 opened on those events or posts, and the alerts decided on any of them
(outbox entries); nothing else.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from elasticsearch import Elasticsearch, helpers

from events.config import TextConfig
from events.text import Vocabulary, post_terms
from index.events import EVENT_STATE, forget_events_of, load_state, save_state
from index.judgements import JUDGEMENTS
from index.layout import CRAWL_STATE, POSTS
from index.outbox import OUTBOX
from index.tickets import TICKETS
from ingest.events_job import StoredTokens
from yuqing.models import canonicalize_url

log = logging.getLogger(__name__)


def _delete(client: Elasticsearch, alias: str, query: dict[str, Any]) -> int:
    """Delete every document ``query`` matches under ``alias`` (scan + bulk: the minimal distribution has no
    delete-by-query); returns how many."""
    if not client.indices.exists_alias(name=alias):
        return 0
    actions = [{"_op_type": "delete", "_index": hit["_index"], "_id": hit["_id"]}
               for hit in helpers.scan(client, index=alias, query={"query": query}, _source=False, size=1000)]
    if not actions:
        return 0
    ok, errors = helpers.bulk(client, actions, raise_on_error=False, stats_only=False)
    assert isinstance(errors, list)
    failed = [e for e in errors if e.get("delete", {}).get("status") != 404]
    if failed:
        raise RuntimeError(f"{alias}: {len(failed)} documents could not be deleted: {failed[:2]}")
    client.indices.refresh(index=alias)
    return int(ok)


def forget_vocabulary(client: Elasticsearch, index_prefix: str, sources: Iterable[Mapping[str, Any]],
                      text_cfg: TextConfig) -> int:
    """Take the clustered posts ``sources`` (stored ``_source``: title, content and their stored jieba tokens) out
    of the events engine's document frequencies, with the terms the engine counted when it clustered them;
    returns how many. A replay counted again on top of the earlier ones would make the story's own words look
    common with every ``up`` (their IDF falls), and its posts would no longer find each other: the story would
    split into dozens of small events."""
    alias = EVENT_STATE.alias(index_prefix)
    state = load_state(client, alias) if client.indices.exists_alias(name=alias) else None
    if state is None:
        return 0
    vocab = Vocabulary.from_dict(state["global"]["vocab"])
    tokens = StoredTokens(text_cfg.max_chars)  # the segmentation the engine used (ingest.events_job)
    n = 0
    for src in sources:
        title, content = src.get("title") or "", src.get("content") or ""
        tokens.remember(title, src.get("title_seg"), content, src.get("content_seg"))
        vocab.remove(post_terms(title, content, text_cfg, segment=tokens).counts)
        tokens.clear()
        n += 1
    if n:
        save_state(client, alias, {**state["global"], "vocab": vocab.to_dict()}, {}, [], now=datetime.now(UTC))
    return n


def _forget_tickets(client: Elasticsearch, index_prefix: str, events: list[str], posts: list[str]) -> list[str]:
    """Remove the 处置单 opened on ``events`` or ``posts`` (an earlier replay's: their deadlines count from that
    replay's times, and the same event ids come back with the story); returns their ids."""
    alias = TICKETS.alias(index_prefix)
    if not (events or posts) or not client.indices.exists_alias(name=alias):
        return []
    query = {"bool": {"should": [
        {"bool": {"filter": [{"term": {"subject.kind": kind}}, {"terms": {"subject.id": ids}}]}}
        for kind, ids in (("event", events), ("post", posts)) if ids], "minimum_should_match": 1}}
    found = [h["_id"] for h in helpers.scan(client, index=alias, query={"query": query}, _source=False)]
    if found:
        _delete(client, alias, {"ids": {"values": found}})
        log.info("demo: removed %d 处置单 of an earlier replay", len(found))
    return found


def forget_earlier_replay(client: Elasticsearch, index_prefix: str, base_url: str, text_cfg: TextConfig) -> int:
    """Remove the posts crawled from ``base_url`` (the demo site), their events and their place in the events
    engine's vocabulary, their crawl state, the alerts decided on them and their judgements; returns the number
    of posts removed. ``text_cfg``: the events text settings the posts were clustered with."""
    prefix = canonicalize_url(base_url).rstrip("/") + "/"
    posts_alias = POSTS.alias(index_prefix)
    ids: list[str] = []
    clustered: list[dict[str, Any]] = []  # those that went through the events engine
    if client.indices.exists_alias(name=posts_alias):
        fields = ["title", "content", "title_seg", "content_seg", "event_id"]
        for hit in helpers.scan(client, index=posts_alias, _source=fields, size=1000,
                                query={"query": {"prefix": {"canonical_url": prefix}}}):
            ids.append(hit["_id"])
            if hit["_source"].get("event_id"):
                clustered.append(hit["_source"])
    forget_vocabulary(client, index_prefix, clustered, text_cfg)
    dropped = forget_events_of(client, index_prefix, ids)  # else the events state still holds these posts
    tickets = _forget_tickets(client, index_prefix, dropped, ids)
    # the alerts decided on them (alerts.signals: PostSignal, EventSignal and TicketDueSignal.subject_key)
    keys = [*(f"post:{pid}" for pid in ids), *(f"event:{e}" for e in dropped), *(f"ticket:{t}" for t in tickets)]
    for start in range(0, len(keys), 1000):
        _delete(client, OUTBOX.alias(index_prefix), {"terms": {"subject_key": keys[start:start + 1000]}})
    for start in range(0, len(ids), 1000):
        _delete(client, JUDGEMENTS.alias(index_prefix), {"terms": {"post_id": ids[start:start + 1000]}})
    _delete(client, CRAWL_STATE.alias(index_prefix), {"prefix": {"url": prefix}})
    removed = _delete(client, posts_alias, {"prefix": {"canonical_url": prefix}})
    if removed:
        log.info("demo: removed %d posts of an earlier replay from %s; the story starts over", removed, prefix)
    return removed
