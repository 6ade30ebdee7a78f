"""Faults on the local 3-node secured cluster (one replica), each test counting posts: a data node killed
mid-crawl (writes go on; after it returns the cluster is green and every crawled post is present once), the
flood-stage disk watermark lowered below the disk's usage (indices read-only: the crawl spools with a clear
message and recovers when "space returns"), and wrong credentials or an untrusted CA refused at the start of
the crawl, the alert run and the dashboard, naming the setting."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from elasticsearch import Elasticsearch

from crawlers.feeds import FeedEntry, rss_document
from crawlers.runner import CrawlReport, collect_crawl, crawl_in_subprocess, start_crawl_subprocess
from index.client import BLOCK_ADVICE
from index.es_cluster import LocalCluster
from index.es_server import read_pid
from index.layout import POSTS
from tests.cluster.test_cluster_security import self_signed_ca
from tests.conftest import MockServer, crawl_env
from yuqing.cli import main
from yuqing.errors import ConfigError
from yuqing.logs import log_file
from yuqing.settings import PROJECT_ROOT, Settings

pytestmark = pytest.mark.cluster

PAGES = ["tests/people/1.html", "tests/sina/1.html", "tests/thepaper/2.html", "tests/ifeng/2.html",
         "tests/baijiahao/4.html", "tests/163/1.html", "tests/163/2.html", "tests/163/3.html", "tests/163/4.html",
         "tests/163/5.html", "tests/qq/qq.html", "tests/guancha/2.html"]


def wait_for(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")


def write_feed_source(server: MockServer, config_dir: Path, pages: list[str], delay_s: float = 0.0) -> None:
    route = f"slow/{delay_s}" if delay_s else "pages"
    feed = server.write("feed.xml", rss_document("测试源", server.url, [
        FeedEntry(link=f"{server.url}/{route}/{p}", title=f"t{i}") for i, p in enumerate(pages)],
        built=datetime.now(ZoneInfo("Asia/Shanghai"))))
    (config_dir / "sources.yaml").write_text(
        f"sources:\n  - name: cluster-feed\n    kind: feed\n    start_urls: ['{feed}']\n", encoding="utf-8")


def env_for(settings: Settings, config_dir: Path, **extra: str) -> dict[str, str]:
    return crawl_env(settings, config_dir, YUQING_NLP__ENABLED="false", YUQING_CRAWL__INGEST_BATCH_SIZE="2",
                     **extra)


def indexed_paths(es: Elasticsearch, settings: Settings) -> list[str]:
    """The saved-page path of every indexed post, sorted (a post indexed twice would show twice)."""
    alias = POSTS.alias(settings.elasticsearch.index_prefix)
    es.indices.refresh(index=alias)
    hits = es.search(index=alias, size=100, query={"match_all": {}}, source_includes=["url"])["hits"]["hits"]
    return sorted("tests/" + h["_source"]["url"].split("/tests/", 1)[1] for h in hits)


def count(es: Elasticsearch, settings: Settings) -> int:
    return int(es.count(index=POSTS.alias(settings.elasticsearch.index_prefix))["count"])


@pytest.mark.timeout(1800)  # a node's restart on a loaded machine takes minutes
def test_a_data_node_killed_mid_crawl_loses_nothing(
    settings: Settings, es_client: Elasticsearch, admin_client: Elasticsearch, es_cluster: LocalCluster,
    mockserver: MockServer, config_dir: Path
) -> None:
    alias = POSTS.alias(settings.elasticsearch.index_prefix)
    write_feed_source(mockserver, config_dir, PAGES, delay_s=1.0)
    # the node holding the posts' primary shard: its replica elsewhere must be promoted
    shards = admin_client.cat.shards(index=alias, format="json", h="prirep,node").body
    assert isinstance(shards, list)
    victim = next(n for n in es_cluster.nodes if n.name == next(s["node"] for s in shards if s["prirep"] == "p"))
    proc, report_path = start_crawl_subprocess(None, [], env=env_for(settings, config_dir))
    try:
        wait_for(lambda: count(es_client, settings) >= 2, 240, "the first batch to be indexed")
        pid = read_pid(victim.pid_file)
        assert pid is not None
        os.kill(pid, signal.SIGKILL)
        proc.wait(timeout=300)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    report: CrawlReport = collect_crawl(proc, report_path)
    run = report.sources[0]
    assert (run.found, run.indexed, run.spooled, run.errors) == (len(PAGES), len(PAGES), 0, 0)  # writes went on
    assert read_pid(victim.pid_file) is None

    health = es_cluster.start().health  # the node returns
    assert health.status == "green" and health.number_of_nodes == len(es_cluster.nodes)
    assert indexed_paths(es_client, settings) == sorted(PAGES)  # every crawled post, once


@pytest.mark.timeout(1200)
def test_flood_stage_watermark_spools_with_a_clear_message_and_recovers(
    settings: Settings, es_client: Elasticsearch, admin_client: Elasticsearch, es_cluster: LocalCluster,
    mockserver: MockServer, config_dir: Path
) -> None:
    """The flood-stage watermark set below the disk's usage (not a full disk): Elasticsearch itself puts the
    read-only block on the indices; reset, it lifts it. Meanwhile a new index cannot be allocated, and the
    cluster says why (what `yuqing es start` reports when the cluster does not become green)."""
    alias = POSTS.alias(settings.elasticsearch.index_prefix)
    write_feed_source(mockserver, config_dir, PAGES[:4])
    env = env_for(settings, config_dir)

    def blocked() -> bool:
        got = es_client.indices.get_settings(index=alias, name="index.blocks.read_only_allow_delete")
        return any(s["settings"].get("index", {}).get("blocks", {}).get("read_only_allow_delete") == "true"
                   for s in got.body.values())

    def watermarks(low: str | None, high: str | None, flood: str | None, interval: str | None) -> None:
        admin_client.cluster.put_settings(persistent={
            "cluster.routing.allocation.disk.watermark.low": low,
            "cluster.routing.allocation.disk.watermark.high": high,
            "cluster.routing.allocation.disk.watermark.flood_stage": flood,
            "cluster.info.update.interval": interval})

    watermarks("1%", "2%", "3%", "10s")  # 10s: the shortest disk-usage check interval Elasticsearch takes
    try:
        wait_for(blocked, 120, "the flood-stage block on the posts index")
        run = crawl_in_subprocess(None, [], timeout_s=300, env=env).sources[0]
        assert (run.found, run.indexed, run.spooled) == (4, 0, 4)
        log = log_file(settings).read_text(encoding="utf-8")
        assert (BLOCK_ADVICE in log and "posts will be spooled" in log) or "elasticsearch blocks writes" in log
        probe = f"{settings.elasticsearch.index_prefix}-allocation-probe"
        admin_client.indices.create(index=probe, settings={"number_of_shards": 1, "number_of_replicas": 1},
                                    wait_for_active_shards="0")
        wait_for(lambda: "disk_threshold" in (es_cluster.unassigned_reason() or ""), 60,
                 "the allocation explanation naming the disk watermark")
    finally:
        admin_client.indices.delete(index=f"{settings.elasticsearch.index_prefix}-allocation-probe",
                                    ignore_unavailable=True)
        watermarks(None, None, None, "10s")  # space is back
    try:
        wait_for(lambda: not blocked(), 120, "Elasticsearch to lift the block")
    finally:
        admin_client.cluster.put_settings(persistent={"cluster.info.update.interval": None})
    again = crawl_in_subprocess(None, [], timeout_s=300, env=env).sources[0]
    assert again.spooled == 0 and again.errors == 0
    assert indexed_paths(es_client, settings) == sorted(PAGES[:4])
    assert not list((settings.paths.data_dir / "spool").glob("*.jsonl"))


def test_crawl_alert_and_dashboard_refuse_wrong_credentials_or_ca_naming_the_setting(
    settings: Settings, es_cluster: LocalCluster, config_dir: Path, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    wrong = "not-the-password"
    crawl = subprocess.run([sys.executable, "-m", "yuqing.cli", "crawl"], cwd=PROJECT_ROOT, capture_output=True,
                           text=True, timeout=300, env=env_for(settings, config_dir,
                                                               YUQING_ELASTICSEARCH__PASSWORD=wrong))
    assert crawl.returncode == 2 and "elasticsearch.password" in crawl.stderr and wrong not in crawl.stderr
    assert "found=" not in crawl.stderr  # refused before crawling

    other_ca = self_signed_ca(tmp_path / "other-ca.crt")
    monkeypatch.setenv("YUQING_SMTP__HOST", "127.0.0.1")
    monkeypatch.setenv("YUQING_ELASTICSEARCH__INDEX_PREFIX", settings.elasticsearch.index_prefix)
    monkeypatch.setenv("YUQING_ELASTICSEARCH__CA_CERTS", str(other_ca))
    assert main(["alert"]) == 2
    assert "elasticsearch.ca_certs" in capsys.readouterr().err

    from dashboard import data

    monkeypatch.setenv("YUQING_ELASTICSEARCH__CA_CERTS", str(settings.elasticsearch.ca_certs))  # the right CA
    monkeypatch.setenv("YUQING_ELASTICSEARCH__PASSWORD", wrong)
    with pytest.raises(ConfigError) as err:  # the pages show it (components.backend_or_stop)
        data.get_backend()
    assert err.value.field == "elasticsearch.password" and wrong not in str(err.value)
