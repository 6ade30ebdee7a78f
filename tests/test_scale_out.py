"""Scale-out: two crawl processes share one request queue and dupefilter in Redis (scrapy-redis)."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import redis
from elasticsearch import Elasticsearch

from crawlers.feeds import FeedEntry, rss_document
from crawlers.runner import collect_crawl, start_crawl_subprocess
from index.layout import POSTS
from tests.conftest import MockServer, crawl_env
from yuqing.settings import Settings


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture()
def redis_url(tmp_path: Path) -> Iterator[str]:
    server = shutil.which("redis-server")
    assert server, "redis-server is not installed (scripts/bootstrap.sh installs it)"
    port = free_port()
    proc = subprocess.Popen([server, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                             "--dir", str(tmp_path)], stdout=subprocess.DEVNULL)
    client = redis.Redis(port=port)
    deadline = time.monotonic() + 20
    while True:
        try:
            client.ping()
            break
        except redis.ConnectionError:
            if time.monotonic() > deadline or proc.poll() is not None:
                raise
            time.sleep(0.1)
    try:
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def test_two_workers_share_one_crawl(
    settings: Settings, es_client: Elasticsearch, mockserver: MockServer, config_dir: Path, redis_url: str,
    shared_data: Path,
) -> None:
    pages = sorted(str(p.relative_to(shared_data / "html" / "gne"))
                   for p in (shared_data / "html" / "gne" / "tests").rglob("*.html"))[:24]
    entries = [FeedEntry(link=f"{mockserver.url}/noetag/{p}", title=p) for p in pages]
    feed = mockserver.write("feed.xml", rss_document("t", mockserver.url, entries,
                                                     built=datetime.now(ZoneInfo("Asia/Shanghai"))))
    (config_dir / "sources.yaml").write_text(f"sources:\n  - {{name: shared, kind: feed, start_urls: ['{feed}']}}\n",
                                             encoding="utf-8")
    env = crawl_env(settings, config_dir, YUQING_NLP__ENABLED="false", YUQING_CRAWL__REDIS_URL=redis_url,
                    YUQING_CRAWL__DEDUPE="false", YUQING_CRAWL__REDIS_RUN_ID="run-1")
    workers = [start_crawl_subprocess(None, [], env=env) for _ in range(2)]
    reports = []
    for proc, report_path in workers:
        proc.wait(timeout=300)
        reports.append(collect_crawl(proc, report_path).sources[0])

    # Every article was fetched and indexed exactly once across both machines' worth of workers.
    assert sum(r.indexed for r in reports) == len(pages)
    assert sum(r.new for r in reports) == len(pages)
    alias = POSTS.alias(settings.elasticsearch.index_prefix)
    es_client.indices.refresh(index=alias)
    assert es_client.count(index=alias)["count"] == len(pages)
    # The run's shared dupefilter in Redis holds every request fingerprint, and expires after the run.
    r = redis.Redis.from_url(redis_url)
    key = "yuqing:feed:shared:run-1:dupefilter"
    assert r.scard(key) >= len(pages)
    assert 0 < r.ttl(key) <= 2 * settings.schedule.crawl_interval_s

    # The next run has its own keys: the pages of the updated feed are fetched again (and found unchanged).
    mockserver.write("feed.xml", rss_document("t", mockserver.url, entries,
                                              built=datetime(2030, 1, 1, tzinfo=ZoneInfo("Asia/Shanghai"))))
    env["YUQING_CRAWL__REDIS_RUN_ID"] = "run-2"
    proc, report_path = start_crawl_subprocess(None, [], env=env)
    proc.wait(timeout=300)
    again = collect_crawl(proc, report_path).sources[0]
    assert (again.found, again.unchanged, again.indexed) == (len(pages), len(pages), 0)
