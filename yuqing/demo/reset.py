"""Forgetting an earlier replay of the demo, so that each `yuqing up` tells the story from its beginning.

A replay publishes the same pages (same URLs) with times shifted to its own start. Without this, a second
`up` would find every page already indexed with unchanged text, skip it, and keep the first run's times: no
story would rise. Only what was crawled from the demo site's address is removed — the posts, the crawl state
(validators and content hashes) of those pages and the alert state of those posts; nothing else.
"""

from __future__ import annotations

import logging
from typing import Any

from elasticsearch import Elasticsearch, helpers

from index.layout import ALERT_STATE, CRAWL_STATE, POSTS
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
    """Remove the posts crawled from ``base_url`` (the demo site), their crawl state and alert state; returns
    the number of posts removed."""
    prefix = canonicalize_url(base_url).rstrip("/") + "/"
    posts_alias = POSTS.alias(index_prefix)
    ids: list[str] = []
    if client.indices.exists_alias(name=posts_alias):
        ids = [hit["_id"] for hit in helpers.scan(client, index=posts_alias, _source=False, size=1000,
                                                   query={"query": {"prefix": {"canonical_url": prefix}}})]
    for start in range(0, len(ids), 1000):
        _delete(client, ALERT_STATE.alias(index_prefix), {"terms": {"post_id": ids[start:start + 1000]}})
    _delete(client, CRAWL_STATE.alias(index_prefix), {"prefix": {"url": prefix}})
    removed = _delete(client, posts_alias, {"prefix": {"canonical_url": prefix}})
    if removed:
        log.info("demo: removed %d posts of an earlier replay from %s; the story starts over", removed, prefix)
    return removed
