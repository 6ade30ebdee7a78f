"""Malformed input never crashes a crawl: each bad page is logged with its URL and counted."""

from __future__ import annotations

import subprocess
import sys
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from elasticsearch import Elasticsearch

from crawlers.feeds import FeedEntry, rss_document
from crawlers.runner import crawl_command
from index.layout import POSTS
from index.source_health import source_statuses
from tests.conftest import MockServer, crawl_env
from yuqing.settings import PROJECT_ROOT, Settings


def test_bad_pages_are_logged_counted_and_the_good_ones_indexed(
    settings: Settings, es_client: Elasticsearch, mockserver: MockServer, config_dir: Path, tmp_path: Path
) -> None:
    u = mockserver.url
    good = {f"{u}/truncated/tests/ifeng/2.html", f"{u}/wrongcharset/tests/people/1.html", f"{u}/pages/tests/qq/qq.html"}
    bad = {f"{u}/big/50", f"{u}/redirect-loop", f"{u}/status/500", f"{u}/status/404"}
    entries = [FeedEntry(link=link, title="t") for link in sorted(good | bad)]
    feed = mockserver.write("feed.xml", rss_document("t", u, entries, built=datetime.now(ZoneInfo("Asia/Shanghai"))))
    (config_dir / "sources.yaml").write_text(f"sources:\n  - {{name: messy, kind: feed, start_urls: ['{feed}']}}\n",
                                             encoding="utf-8")
    env = crawl_env(settings, config_dir, YUQING_NLP__ENABLED="false", YUQING_CRAWL__RETRY_TIMES="1",
                    YUQING_LOGGING__LEVEL="INFO")
    report = tmp_path / "report.json"
    proc = subprocess.run(crawl_command(None, [], report), cwd=PROJECT_ROOT, env=env, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    log = proc.stdout + proc.stderr
    for url in bad:
        assert url in log, f"{url} not logged"
    statuses = source_statuses(es_client, settings.elasticsearch.index_prefix, ["messy"], 3)
    assert statuses[0].status == "ok"
    health = es_client.search(index=f"{settings.elasticsearch.index_prefix}-source-health",
                              query={"term": {"source": "messy"}})["hits"]["hits"][0]["_source"]
    assert (health["found"], health["indexed"], health["errors"]) == (7, 3, 4), log[-6000:]

    alias = POSTS.alias(settings.elasticsearch.index_prefix)
    es_client.indices.refresh(index=alias)
    docs = {h["_source"]["url"]: h["_source"] for h in es_client.search(index=alias, size=20)["hits"]["hits"]}
    assert set(docs) == good
    # The GB18030 page served under a header claiming UTF-8 was still decoded by its bytes.
    assert "东方朔" in docs[f"{u}/wrongcharset/tests/people/1.html"]["content"]
    assert sys.getsizeof(docs) > 0
