"""The scheduler: a crashing crawl child never stops it; `yuqing run` stops cleanly on SIGTERM."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from elasticsearch import Elasticsearch

from crawlers.feeds import FeedEntry, rss_document
from crawlers.runner import CrawlReport, crawl_command
from index.layout import POSTS
from tests.conftest import MockServer, crawl_env
from yuqing.scheduler import Scheduler
from yuqing.settings import PROJECT_ROOT, Settings
from yuqing.sources import load_sources


def write_feed(server: MockServer, config_dir: Path, pages: list[str], extra_sources: str = "") -> None:
    entries = [FeedEntry(link=f"{server.url}/pages/{p}", title=p) for p in pages]
    feed = server.write("feed.xml", rss_document("t", server.url, entries,
                                                 built=datetime.now(ZoneInfo("Asia/Shanghai"))))
    (config_dir / "sources.yaml").write_text(
        f"sources:\n  - {{name: ok, kind: feed, start_urls: ['{feed}']}}\n{extra_sources}", encoding="utf-8"
    )


def count_posts(es: Elasticsearch, alias: str) -> int:
    es.indices.refresh(index=alias)
    return int(es.count(index=alias)["count"])


def wait_for(condition, timeout: float, what: str) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def test_crashing_crawl_does_not_stop_the_scheduler(
    settings: Settings, es_client: Elasticsearch, mockserver: MockServer, config_dir: Path
) -> None:
    write_feed(mockserver, config_dir, ["tests/sina/1.html", "tests/qq/qq.html"],
               extra_sources=f"  - {{name: crasher, kind: feed, start_urls: ['{mockserver.url}/x']}}\n")
    sources = load_sources(config_dir / "sources.yaml").enabled()
    env = crawl_env(settings, config_dir, YUQING_NLP__ENABLED="false")

    def command_for(names: list[str], report: Path) -> list[str]:
        if names == ["crasher"]:  # a spider process that dies hard, without a report
            return [sys.executable, "-c", "import os; os.abort()"]
        return crawl_command(None, names, report)

    done: list[tuple[str, CrawlReport | None, str | None]] = []
    fast = settings.model_copy(update={"schedule": settings.schedule.model_copy(update={"crawl_interval_s": 1})})
    scheduler = Scheduler(settings=fast, sources=sources, env=env, command_for=command_for,
                          on_crawl_done=lambda s, r, e: done.append((s, r, e)))
    thread = threading.Thread(target=scheduler.run)
    thread.start()
    try:
        # Each source must have run at least twice: the crash did not stop later runs of either source.
        wait_for(lambda: sum(d[0] == "ok" for d in done) >= 2 and sum(d[0] == "crasher" for d in done) >= 2,
                 180, "two rounds of both sources")
    finally:
        scheduler.stop()
        thread.join(timeout=60)
    assert not thread.is_alive()
    crashes = [d for d in done if d[0] == "crasher"]
    assert all(r is None and e and "exited with code" in e for _, r, e in crashes)
    oks = [d for d in done if d[0] == "ok"]
    assert all(e is None and r is not None and r.sources[0].errors == 0 for _, r, e in oks)
    first = oks[0][1]
    assert first is not None and first.sources[0].indexed == 2  # later rounds: the feed answers 304
    assert count_posts(es_client, POSTS.alias(settings.elasticsearch.index_prefix)) == 2


def test_yuqing_run_indexes_and_stops_on_sigterm(
    settings: Settings, es_client: Elasticsearch, mockserver: MockServer, config_dir: Path
) -> None:
    write_feed(mockserver, config_dir, ["tests/ifeng/2.html"])
    env = crawl_env(settings, config_dir, YUQING_NLP__ENABLED="false", YUQING_SCHEDULE__CRAWL_INTERVAL_S="2")
    proc = subprocess.Popen([sys.executable, "-m", "yuqing.cli", "run", "--no-alerts"], cwd=PROJECT_ROOT,
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    alias = POSTS.alias(settings.elasticsearch.index_prefix)
    try:
        wait_for(lambda: count_posts(es_client, alias) == 1, 120, "the first crawl to index the post")
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, out[-3000:]
    assert "received SIGTERM; stopping" in out and "scheduler stopped" in out
