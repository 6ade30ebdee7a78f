"""Faults injected into real crawls against the real Elasticsearch (issue 13 point 2, single node): it goes
away mid-crawl, or its indices turn read-only (the flood-stage block) mid-crawl. Each test counts the posts:
every crawled post indexed exactly once after recovery, nothing lost in between (the spool)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from elasticsearch import Elasticsearch

from crawlers.feeds import FeedEntry, rss_document
from crawlers.runner import CrawlReport, crawl_in_subprocess
from index.client import BLOCK_ADVICE, blocked_answer
from index.layout import POSTS
from index.source_health import source_statuses
from tests.conftest import MockServer, crawl_env
from tests.faultproxy import FaultProxy
from tests.smtp_server import SMTPServer
from yuqing.logs import log_file
from yuqing.settings import PROJECT_ROOT, Settings

pytest_plugins = ("tests.smtp_fixtures",)

PAGES = ["tests/people/1.html", "tests/sina/1.html", "tests/thepaper/2.html", "tests/ifeng/2.html",
         "tests/baijiahao/4.html", "tests/163/1.html"]


@pytest.fixture()
def proxy(settings: Settings) -> Iterator[FaultProxy]:
    port = int(settings.elasticsearch.hosts[0].rsplit(":", 1)[1].strip("/"))
    p = FaultProxy(port)
    yield p
    p.close()


def write_feed_source(server: MockServer, config_dir: Path, pages: list[str], route: str = "pages") -> None:
    now = datetime.now(ZoneInfo("Asia/Shanghai"))
    feed = server.write("feed.xml", rss_document("测试源", server.url, [
        FeedEntry(link=f"{server.url}/{route}/{p}", title=f"t{i}") for i, p in enumerate(pages)], built=now))
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


def health_runs(es: Elasticsearch, settings: Settings) -> list[tuple[int, int, int]]:
    """(found, indexed, spooled) of each source-health record of the test's source, oldest first."""
    alias = f"{settings.elasticsearch.index_prefix}-source-health"
    es.indices.refresh(index=alias)
    hits = es.search(index=alias, size=20, query={"term": {"source": "fault-feed"}},
                     sort=[{"started_at": "asc"}])["hits"]["hits"]
    return [(h["_source"]["found"], h["_source"]["indexed"], h["_source"]["spooled"]) for h in hits]


def health_spooled(settings: Settings) -> int:
    """Source-health runs kept on disk for the next crawl to record."""
    return sum(len(f.read_text().splitlines())
               for f in (settings.paths.data_dir / "spool" / "health").glob("runs-*.jsonl"))


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
    # The run's source health could not be recorded either: kept on disk, not lost.
    assert health_spooled(settings) == 1 and "could not record source health" in log

    proxy.up()
    again = crawl(settings, config_dir, proxy.url).sources[0]
    assert again.errors == 0 and again.spooled == 0
    assert indexed_paths(es_client, settings) == sorted(PAGES)  # every post, once
    assert spooled(settings) == 0
    # Both runs in source health, once each: the one made while the cluster was down, then this one.
    assert health_runs(es_client, settings) == [(6, 2, 4), (6, again.indexed, 0)] and health_spooled(settings) == 0


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
        assert health_spooled(settings) == 1  # its source health too, with the reason logged
        assert "could not record source health (source health: 1 of 1 runs not recorded" in log
    finally:
        block(None)  # space is back (Elasticsearch lifts the flood-stage block itself)
    again = crawl(settings, config_dir, proxy.url).sources[0]
    assert again.errors == 0 and again.spooled == 0
    assert indexed_paths(es_client, settings) == sorted(PAGES)
    assert spooled(settings) == 0
    assert health_runs(es_client, settings) == [(6, 2, 4), (6, again.indexed, 0)] and health_spooled(settings) == 0


def test_a_write_block_is_told_from_a_refusal() -> None:
    assert blocked_answer(429, "cluster_block_exception") and blocked_answer(403, "cluster_block_exception")
    assert not blocked_answer(403, "security_exception") and not blocked_answer(400, "mapper_parsing_exception")


ARTICLE = """<html><head><title>{title}_青川文化网</title></head><body><h1>{title}</h1><div class="article">
<p>{body}</p><p>市民可通过热线反映意见，本网将持续关注后续进展，及时报道有关部门的答复与整改情况。</p>
<p>记者在现场看到，不少读者在门口等候，希望相关部门尽快给出明确说法并公布具体时间安排。</p></div></body></html>"""
TOPICS = ["周末闭馆", "空调故障", "座位不足", "借阅系统停摆", "夜间开放取消", "自习室收费", "停车位紧张", "儿童区关闭"]


def test_scheduler_sigkilled_mid_batch_next_run_indexes_the_rest_nothing_twice_no_mail_twice(
    settings: Settings, es_client: Elasticsearch, mockserver: MockServer, config_dir: Path, smtp: SMTPServer
) -> None:
    """`yuqing run` and its crawl child are killed (SIGKILL to the process group: an OOM kill, a power cut) after
    the first batch was indexed; the next `yuqing run` indexes the rest, and every post's alert is mailed once."""
    entries = []
    for i, topic in enumerate(TOPICS):
        title = f"市图书馆{topic}引发读者关注"
        mockserver.write(f"news/{i}.html", ARTICLE.format(title=title, body=f"本市图书馆{topic}一事（第{i}号报道）。"))
        # answers spread over time (1.5 s, 4.5 s, 7.5 s, ...): the kill after the first batch of two falls mid-crawl
        # however fast the machine is
        entries.append(FeedEntry(link=f"{mockserver.url}/slow/{1.5 + 3 * i}/news/{i}.html", title=title))
    feed = mockserver.write("feed.xml", rss_document("青川文化网", mockserver.url, entries,
                                                     built=datetime.now(ZoneInfo("Asia/Shanghai"))))
    (config_dir / "sources.yaml").write_text(
        f"sources:\n  - name: kill-feed\n    kind: feed\n    start_urls: ['{feed}']\n", encoding="utf-8")
    (config_dir / "alerts.yaml").write_text(
        "recipients:\n  ops: [ops@culture.example.gov.cn]\n"
        "rules:\n  - name: 图书馆舆情\n    any: [图书馆]\n    recipients: [ops]\n", encoding="utf-8")
    env = crawl_env(settings, config_dir, YUQING_NLP__ENABLED="false", YUQING_CRAWL__INGEST_BATCH_SIZE="2",
                    YUQING_SMTP__HOST="127.0.0.1", YUQING_SMTP__PORT=str(smtp.port),
                    YUQING_SCHEDULE__CRAWL_INTERVAL_S="3600", YUQING_SCHEDULE__ALERT_INTERVAL_S="2",
                    YUQING_ALERTS__DELIVERY__LEASE_S="3", YUQING_ALERTS__DELIVERY__POLL_INTERVAL_S="1")
    alias = POSTS.alias(settings.elasticsearch.index_prefix)

    def posts() -> int:
        es_client.indices.refresh(index=alias)
        return int(es_client.count(index=alias)["count"])

    def run() -> subprocess.Popen[str]:
        return subprocess.Popen([sys.executable, "-m", "yuqing.cli", "run"], cwd=PROJECT_ROOT, env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)

    first = run()
    try:
        wait_for(lambda: posts() >= 2, 240, "the first batch of the crawl")
    finally:
        os.killpg(first.pid, signal.SIGKILL)  # the scheduler and its crawl child, mid-batch
        first.communicate(timeout=60)
    missed = len(TOPICS) - posts()
    assert missed > 0, "the crawl finished before the kill: nothing was missed"

    second = run()
    try:
        wait_for(lambda: posts() == len(TOPICS), 240, "the next run to index what was missed")
        smtp.collector.wait_for(len(TOPICS), timeout=240)
        second.send_signal(signal.SIGTERM)
        out, _ = second.communicate(timeout=120)
    finally:
        if second.poll() is None:
            os.killpg(second.pid, signal.SIGKILL)
            second.communicate(timeout=60)
    assert second.returncode == 0, out[-3000:]
    assert indexed_titles(es_client, settings) == sorted(f"市图书馆{t}引发读者关注" for t in TOPICS)
    subjects = Counter(str(m.message["Subject"]) for m in smtp.collector.received)
    assert len(subjects) == len(TOPICS) and set(subjects.values()) == {1}, subjects  # each post mailed once


def indexed_titles(es: Elasticsearch, settings: Settings) -> list[str]:
    alias = POSTS.alias(settings.elasticsearch.index_prefix)
    hits = es.search(index=alias, size=100, query={"match_all": {}}, source_includes=["title"])["hits"]["hits"]
    return sorted(h["_source"]["title"] for h in hits)


def wait_for(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")


def children(pid: int) -> list[int]:
    """The child processes of ``pid`` (Linux /proc)."""
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        found += [int(c) for c in (task / "children").read_text().split()]
    return found


def test_a_crawl_child_killed_is_reported_in_source_health(
    settings: Settings, es_client: Elasticsearch, mockserver: MockServer, config_dir: Path
) -> None:
    """`yuqing run`'s crawl child is SIGKILLed mid-crawl: the scheduler goes on and records a failed run of the
    source, with the reason, where the dashboard's 数据源 page reads it."""
    write_feed_source(mockserver, config_dir, PAGES[:2], route="slow/30")  # a crawl that lasts
    env = crawl_env(settings, config_dir, YUQING_NLP__ENABLED="false", YUQING_SCHEDULE__CRAWL_INTERVAL_S="3600")
    proc = subprocess.Popen([sys.executable, "-m", "yuqing.cli", "run", "--no-alerts"], cwd=PROJECT_ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    prefix = settings.elasticsearch.index_prefix
    try:
        wait_for(lambda: bool(children(proc.pid)), 120, "the crawl child to start")
        (child,) = children(proc.pid)
        os.kill(child, signal.SIGKILL)

        def recorded() -> bool:
            statuses = source_statuses(es_client, prefix, ["fault-feed"], settings.crawl.silent_after_runs)
            return statuses[0].status == "failing"

        wait_for(recorded, 120, "the failed crawl in source health")
        assert proc.poll() is None  # the scheduler goes on
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate(timeout=60)
    status = source_statuses(es_client, prefix, ["fault-feed"], settings.crawl.silent_after_runs)[0]
    assert status.last_error is not None and "exited with code -9" in status.last_error
    assert "crawl of fault-feed failed: crawl process exited with code -9" in out
