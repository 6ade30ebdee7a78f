"""setup() run by several processes at once (crawl workers starting together) succeeds in every one."""

from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor

from elasticsearch import Elasticsearch

from index.layout import CRAWL_STATE, POSTS, setup
from yuqing.settings import Settings


def test_concurrent_setup_succeeds_everywhere(base_settings: Settings, es_client: Elasticsearch) -> None:
    prefix = f"{base_settings.elasticsearch.index_prefix}-race-{uuid.uuid4().hex[:6]}"
    es = base_settings.elasticsearch.model_copy(update={"index_prefix": prefix})
    try:
        with ThreadPoolExecutor(4) as pool:
            results = list(pool.map(lambda _: setup(es_client, es, [POSTS, CRAWL_STATE]), range(4)))
        assert all(r == results[0] for r in results)
        assert set(es_client.indices.get_alias(name=POSTS.alias(prefix))) == {results[0][POSTS.alias(prefix)]}
    finally:
        es_client.indices.delete(index=f"{prefix}-*", allow_no_indices=True)
        es_client.indices.delete_index_template(name=f"{prefix}-*")
