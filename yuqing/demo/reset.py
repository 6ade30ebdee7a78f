"""Forgetting an earlier replay of the demo, so that each `yuqing up` tells the story from its beginning.

A replay publishes the same pages (same URLs) with times shifted to its own start. Without this, a second
`up` would find every page already indexed with unchanged text, skip it, and keep the first run's times: no
story would rise. Only what was crawled from the demo site's address is removed — the posts, the crawl state
(validators and content hashes) of those pages, the alerts decided on those posts (outbox entries), the
人工研判 judgements of those posts and the events they belong to (records and clustering state; other members of
those events are clustered again); nothing else.
"""

from __future__ import annotations

import logging
from typing import Any

from elasticsearch import Elasticsearch, helpers

from index.events import forget_events_of
from index.judgements import JUDGEMENTS
from index.layout import CRAWL_STATE, POSTS
from index.outbox import OUTBOX
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


def forget_earlier_replay(client: Elasticsearch, index_prefix: str, base_url: str) -> int:
    """Remove the posts crawled from ``base_url`` (the demo site), their crawl state, the alerts decided on them
    and their judgements; returns the number of posts removed."""
    prefix = canonicalize_url(base_url).rstrip("/") + "/"
    posts_alias = POSTS.alias(index_prefix)
    ids: list[str] = []
    if client.indices.exists_alias(name=posts_alias):
        ids = [hit["_id"] for hit in helpers.scan(client, index=posts_alias, _source=False, size=1000,
                                                   query={"query": {"prefix": {"canonical_url": prefix}}})]
    forget_events_of(client, index_prefix, ids)  # else the events state still holds these posts
    for start in range(0, len(ids), 1000):
        keys = [f"post:{pid}" for pid in ids[start:start + 1000]]  # alerts.signals.PostSignal.subject_key
        _delete(client, OUTBOX.alias(index_prefix), {"terms": {"subject_key": keys}})
        _delete(client, JUDGEMENTS.alias(index_prefix), {"terms": {"post_id": ids[start:start + 1000]}})
    _delete(client, CRAWL_STATE.alias(index_prefix), {"prefix": {"url": prefix}})
    removed = _delete(client, posts_alias, {"prefix": {"canonical_url": prefix}})
    if removed:
        log.info("demo: removed %d posts of an earlier replay from %s; the story starts over", removed, prefix)
    return removed
