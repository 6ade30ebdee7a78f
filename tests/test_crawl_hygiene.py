"""Politeness and resilience: robots.txt, retries with backoff, crawling through a proxy."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from elasticsearch import Elasticsearch

from crawlers.feeds import FeedEntry, rss_document
from crawlers.retry import backoff_delay
from crawlers.runner import crawl_in_subprocess
from index.layout import POSTS
from index.records import SourceRun
from tests.conftest import MockServer, crawl_env
from yuqing.settings import Settings


def crawl_feed(settings: Settings, server: MockServer, config_dir: Path, links: list[str],
               **env: str) -> tuple[SourceRun, float]:
    feed = server.write("feed.xml", rss_document(
        "t", server.url, [FeedEntry(link=u, title="t") for u in links], built=datetime.now(ZoneInfo("Asia/Shanghai"))))
    (config_dir / "sources.yaml").write_text(f"sources:\n  - {{name: s, kind: feed, start_urls: ['{feed}']}}\n",
                                             encoding="utf-8")
    report = crawl_in_subprocess(None, [], timeout_s=300,
                                 env=crawl_env(settings, config_dir, YUQING_NLP__ENABLED="false", **env))
    assert report.finished_at is not None
    elapsed = report.finished_at - report.started_at
    return report.sources[0], elapsed.total_seconds()


def indexed_urls(es: Elasticsearch, settings: Settings) -> set[str]:
    alias = POSTS.alias(settings.elasticsearch.index_prefix)
    es.indices.refresh(index=alias)
    return {h["_source"]["url"] for h in es.search(index=alias, size=50)["hits"]["hits"]}


@pytest.mark.parametrize(("retry", "expected"), [(1, 0.5), (2, 1.0), (3, 2.0), (9, 4.0)])
def test_backoff_doubles_up_to_a_cap(retry: int, expected: float) -> None:
    assert backoff_delay(retry, 0.5, 4.0) == expected


def test_retries_wait_with_backoff_then_succeed(
    settings: Settings, es_client: Elasticsearch, mockserver: MockServer, config_dir: Path
) -> None:
    flaky = f"{mockserver.url}/flaky/2/tests/sina/1.html"
    run, elapsed = crawl_feed(settings, mockserver, config_dir, [flaky], YUQING_CRAWL__RETRY_TIMES="2",
                              YUQING_CRAWL__RETRY_BACKOFF_S="0.75")
    assert (run.indexed, run.errors) == (1, 0)
    assert elapsed >= 0.75 + 1.5  # two retries, waiting 0.75 s then 1.5 s
    assert indexed_urls(es_client, settings) == {flaky}


def test_robots_txt_is_obeyed(
    settings: Settings, es_client: Elasticsearch, mockserver: MockServer, config_dir: Path
) -> None:
    mockserver.write("robots.txt", "User-agent: *\nDisallow: /pages/tests/qq/\n")
    allowed, forbidden = f"{mockserver.url}/pages/tests/sina/1.html", f"{mockserver.url}/pages/tests/qq/qq.html"
    run, _ = crawl_feed(settings, mockserver, config_dir, [allowed, forbidden])
    assert (run.found, run.indexed, run.errors) == (2, 1, 0)
    assert indexed_urls(es_client, settings) == {allowed}


def test_crawl_through_a_proxy(
    settings: Settings, es_client: Elasticsearch, mockserver: MockServer, config_dir: Path
) -> None:
    # The host below does not exist: only a proxy (the local test server, which serves absolute-URI
    # requests) can answer it, so an indexed page proves the request went through the proxy.
    remote = "http://news.example.invalid/pages/tests/ifeng/2.html"
    run, _ = crawl_feed(settings, mockserver, config_dir, [remote], YUQING_CRAWL__PROXY=mockserver.url)
    assert (run.indexed, run.errors) == (1, 0)
    assert indexed_urls(es_client, settings) == {remote}
