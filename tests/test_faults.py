"""Faults injected into real crawls against the real Elasticsearch (issue 13 point 2, single node): it goes
away mid-crawl, or its indices turn read-only (the flood-stage block) mid-crawl. Each test counts the posts:
every crawled post indexed exactly once after recovery, nothing lost in between (the spool)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from elasticsearch import Elasticsearch

from crawlers.feeds import FeedEntry, rss_document
from crawlers.runner import CrawlReport, crawl_in_subprocess
from index.client import BLOCK_ADVICE, blocked_answer
from index.layout import POSTS
from tests.conftest import MockServer, crawl_env
from tests.faultproxy import FaultProxy
from yuqing.logs import log_file
from yuqing.settings import Settings

PAGES = ["tests/people/1.html", "tests/sina/1.html", "tests/thepaper/2.html", "tests/ifeng/2.html",
         "tests/baijiahao/4.html", "tests/163/1.html"]


@pytest.fixture()
def proxy(settings: Settings) -> Iterator[FaultProxy]:
    port = int(settings.elasticsearch.hosts[0].rsplit(":", 1)[1].strip("/"))
    p = FaultProxy(port)
    yield p
    p.close()


def write_feed_source(server: MockServer, config_dir: Path, pages: list[str]) -> None:
    now = datetime.now(ZoneInfo("Asia/Shanghai"))
    feed = server.write("feed.xml", rss_document("测试源", server.url, [
        FeedEntry(link=f"{server.url}/pages/{p}", title=f"t{i}") for i, p in enumerate(pages)], built=now))
    (config_dir / "sources.yaml").write_text(
        f"sources:\n  - name: fault-feed\n    kind: feed\n    start_urls: ['{feed}']\n", encoding="utf-8")


def crawl(settings: Settings, config_dir: Path, hosts: str) -> CrawlReport:
    env = crawl_env(settings, config_dir, YUQING_NLP__ENABLED="false", YUQING_CRAWL__INGEST_BATCH_SIZE="2",
                    YUQING_ELASTICSEARCH__HOSTS=json.dumps([hosts]))
    return crawl_in_subprocess(None, [], timeout_s=300, env=env)


def indexed_paths(es: Elasticsearch, settings: Settings) -> list[str]:
    """The saved-page path of every indexed post (sorted; a post indexed twice would show twice)."""
    alias = POSTS.alias(settings.elasticsearch.index_prefix)
    es.indices.refresh(index=alias)
    hits = es.search(index=alias, size=100, query={"match_all": {}}, source_includes=["url"])["hits"]["hits"]
    return sorted(h["_source"]["url"].split("/pages/", 1)[1] for h in hits)


def spooled(settings: Settings) -> int:
    return sum(len(f.read_text().splitlines()) for f in (settings.paths.data_dir / "spool").glob("*.jsonl"))


def test_elasticsearch_down_mid_crawl_spools_the_rest_and_the_next_crawl_replays(
    settings: Settings, es_client: Elasticsearch, mockserver: MockServer, config_dir: Path, proxy: FaultProxy
) -> None:
    write_feed_source(mockserver, config_dir, PAGES)
    proxy.before_bulk(2, lambda: "down")  # the first batch of two is written, then the cluster is gone

    run = crawl(settings, config_dir, proxy.url).sources[0]
    assert (run.found, run.indexed, run.spooled) == (6, 2, 4)
    assert len(indexed_paths(es_client, settings)) == 2 and spooled(settings) == 4
    log = log_file(settings).read_text(encoding="utf-8")
    # The transport's retries: one line each, no traceback; the spooling said once per batch.
    assert "Retrying request after failure (attempt 1 of 3): ConnectionError" in log
    assert "Traceback" not in log and "has failed for 2 times in a row" not in log
    assert "posts spooled to" in log and "indexed by the next crawl" in log

    proxy.up()
    again = crawl(settings, config_dir, proxy.url).sources[0]
    assert again.errors == 0 and again.spooled == 0
    assert indexed_paths(es_client, settings) == sorted(PAGES)  # every post, once
    assert spooled(settings) == 0


def test_read_only_indices_mid_crawl_spool_with_a_clear_message_and_recover(
    settings: Settings, es_client: Elasticsearch, mockserver: MockServer, config_dir: Path, proxy: FaultProxy
) -> None:
    """The block the flood-stage disk watermark puts on every index of a full node (read_only_allow_delete: 429
    cluster_block_exception), set on this test's indices only: the shared server's other indices are not
    touched (tests/cluster lowers the watermark itself on the local cluster)."""
    indices = f"{settings.elasticsearch.index_prefix}-*"

    def block(value: bool | None) -> None:
        es_client.indices.put_settings(index=indices, settings={"index.blocks.read_only_allow_delete": value})

    write_feed_source(mockserver, config_dir, PAGES)
    proxy.before_bulk(2, lambda: block(True))
    try:
        run = crawl(settings, config_dir, proxy.url).sources[0]
        assert (run.found, run.indexed, run.spooled, run.errors) == (6, 2, 4, 0)  # spooled, not refused
        assert spooled(settings) == 4
        log = log_file(settings).read_text(encoding="utf-8")
        assert "elasticsearch blocks writes" in log and BLOCK_ADVICE in log and "Traceback" not in log
        assert "indexing http" not in log  # no line per refused document: the block is the event
    finally:
        block(None)  # space is back (Elasticsearch lifts the flood-stage block itself)
    again = crawl(settings, config_dir, proxy.url).sources[0]
    assert again.errors == 0 and again.spooled == 0
    assert indexed_paths(es_client, settings) == sorted(PAGES)
    assert spooled(settings) == 0


def test_a_write_block_is_told_from_a_refusal() -> None:
    assert blocked_answer(429, "cluster_block_exception") and blocked_answer(403, "cluster_block_exception")
    assert not blocked_answer(403, "security_exception") and not blocked_answer(400, "mapper_parsing_exception")
