"""Malformed input never crashes a crawl: each bad page is logged with its URL and counted."""

from __future__ import annotations

import subprocess
import sys
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from elasticsearch import Elasticsearch

from crawlers.feeds import FeedEntry, rss_document
from crawlers.runner import CrawlReport, crawl_command
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


def test_a_crawl_that_cannot_start_fails_naming_the_file(
    settings: Settings, es_client: Elasticsearch, mockserver: MockServer, config_dir: Path, tmp_path: Path
) -> None:
    # The configuration the ingest pipeline reads when Scrapy builds it (here 专题 keyword groups) is malformed:
    # the crawl cannot start, and says so once, naming the file, instead of reporting an empty healthy crawl.
    feed = mockserver.write("feed.xml", rss_document("t", mockserver.url, [],
                                                     built=datetime.now(ZoneInfo("Asia/Shanghai"))))
    (config_dir / "sources.yaml").write_text(f"sources:\n  - {{name: broken, kind: feed, start_urls: ['{feed}']}}\n",
                                             encoding="utf-8")
    groups = config_dir / "keyword_groups.yaml"
    groups.write_text("groups:\n  - name: 坏表达式\n    expression: '\"未闭合'\n", encoding="utf-8")
    env = crawl_env(settings, config_dir, YUQING_NLP__ENABLED="false", YUQING_LOGGING__LEVEL="INFO")
    report_path = tmp_path / "report.json"
    proc = subprocess.run(crawl_command(None, ["broken"], report_path), cwd=PROJECT_ROOT, env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2, proc.stderr[-3000:]
    run = CrawlReport.from_json(report_path.read_text(encoding="utf-8")).sources[0]
    assert (run.source, run.ok, run.finish_reason) == ("broken", False, "failed to start")
    assert run.error is not None and str(groups) in run.error
    named = [line for line in proc.stderr.splitlines() if "keyword_groups.yaml" in line]
    assert len(named) == 1 and "crawl of broken could not start" in named[0], proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr
    es_client.indices.refresh(index=f"{settings.elasticsearch.index_prefix}-source-health")
    health = es_client.search(index=f"{settings.elasticsearch.index_prefix}-source-health",
                              query={"term": {"source": "broken"}})["hits"]["hits"][0]["_source"]
    assert health["ok"] is False and str(groups) in health["error"]


def test_a_source_removed_after_the_scheduler_chose_it_is_left_out_not_the_batch(
    settings: Settings, mockserver: MockServer, config_dir: Path, tmp_path: Path
) -> None:
    # 设置 removed (or switched off) a source between the scheduler's choice and the child reading the file: the
    # others of the batch are crawled, the gone one is named once, and the child reports as usual.
    feed = mockserver.write("feed.xml", rss_document("t", mockserver.url, [],
                                                     built=datetime.now(ZoneInfo("Asia/Shanghai"))))
    (config_dir / "sources.yaml").write_text(
        f"sources:\n  - {{name: kept, kind: feed, start_urls: ['{feed}']}}\n"
        f"  - {{name: paused, kind: feed, start_urls: ['{feed}'], enabled: false}}\n", encoding="utf-8")
    env = crawl_env(settings, config_dir, YUQING_NLP__ENABLED="false", YUQING_LOGGING__LEVEL="INFO")
    report_path = tmp_path / "report.json"
    proc = subprocess.run(crawl_command(None, ["kept", "gone", "paused"], report_path), cwd=PROJECT_ROOT, env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert [r.source for r in CrawlReport.from_json(report_path.read_text(encoding="utf-8")).sources] == ["kept"]
    named = [line for line in proc.stderr.splitlines() if "not crawled" in line]
    assert len(named) == 1 and named[0].endswith("no longer enabled in sources.yaml: gone, paused"), proc.stderr

    report_path.unlink()
    proc = subprocess.run(crawl_command(None, ["gone"], report_path), cwd=PROJECT_ROOT, env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0 and CrawlReport.from_json(report_path.read_text(encoding="utf-8")).sources == []
