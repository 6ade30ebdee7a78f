"""Source health: per-run records in Elasticsearch; silent differs from calm."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from elasticsearch import Elasticsearch

from crawlers.feeds import FeedEntry, rss_document
from crawlers.runner import crawl_in_subprocess
from index.records import SourceRun
from index.source_health import source_statuses, status_of
from tests.conftest import MockServer, crawl_env
from yuqing.cli import main
from yuqing.settings import Settings

T0 = datetime(2026, 11, 27, 8, 0, tzinfo=ZoneInfo("Asia/Shanghai"))


def run(i: int, **kw: object) -> SourceRun:
    t = T0 - timedelta(hours=i)
    return SourceRun(source="s", kind="feed", started_at=t, finished_at=t, **kw)


def test_status_rules() -> None:
    assert status_of("s", [run(0, found=5, new=2)], 3).status == "ok"
    assert status_of("s", [run(0, found=5, new=0)], 3).status == "calm"
    assert status_of("s", [run(0, found=0, unchanged=1)], 3).status == "calm"  # 304 is an answer
    silent = status_of("s", [run(0), run(1), run(2), run(3, found=4, new=4)], 3)
    assert (silent.status, silent.consecutive_empty, silent.last_success) == ("silent", 3, T0 - timedelta(hours=3))
    assert status_of("s", [run(0), run(1), run(2, found=3)], 3).status == "calm"
    failing = status_of("s", [run(0, ok=False, error="boom"), run(1, found=1, new=1)], 3)
    assert (failing.status, failing.last_error, failing.last_success) == ("failing", "boom", T0 - timedelta(hours=1))
    assert status_of("s", [], 3).status == "unknown"


def test_crawls_record_health_and_an_empty_source_turns_silent(
    settings: Settings, es_client: Elasticsearch, mockserver: MockServer, config_dir: Path,
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:
    empty = mockserver.write("empty.xml", rss_document("空", mockserver.url, [], built=T0))
    busy = mockserver.write("busy.xml", rss_document(
        "t", mockserver.url, [FeedEntry(link=f"{mockserver.url}/noetag/tests/sina/1.html", title="t")], built=T0))
    down = "http://127.0.0.1:9/feed.xml"
    (config_dir / "sources.yaml").write_text(
        "sources:\n"
        f"  - {{name: empty, kind: feed, start_urls: ['{empty}'], interval_s: 1}}\n"
        f"  - {{name: busy, kind: feed, start_urls: ['{busy}']}}\n"
        f"  - {{name: down, kind: feed, start_urls: ['{down}']}}\n", encoding="utf-8")
    env = crawl_env(settings, config_dir, YUQING_NLP__ENABLED="false", YUQING_CRAWL__RETRY_TIMES="0",
                    YUQING_CRAWL__SILENT_AFTER_RUNS="2")
    prefix = settings.elasticsearch.index_prefix
    crawl_in_subprocess(None, [], timeout_s=300, env=env)
    statuses = {s.source: s for s in source_statuses(es_client, prefix, ["empty", "busy", "down"], 2)}
    assert statuses["empty"].status == "calm" and statuses["empty"].consecutive_empty == 1
    assert statuses["busy"].status == "ok" and statuses["busy"].last_success is not None
    assert statuses["down"].status == "failing"
    # Second run: the empty feed answers 304 now (validators) — still an answer, so still calm;
    # with new, unvalidated empty content it is silence.
    mockserver.write("empty.xml", rss_document("空", mockserver.url, [], built=T0 + timedelta(days=1)))
    crawl_in_subprocess(None, ["empty", "busy"], timeout_s=300, env=env)
    statuses = {s.source: s for s in source_statuses(es_client, prefix, ["empty", "busy"], 2)}
    assert statuses["empty"].status == "silent" and statuses["empty"].consecutive_empty == 2
    assert statuses["busy"].status == "calm"  # its feed answered 304: nothing new, but not silent

    # `yuqing sources` reports it, and exits 1 because a source is silent.
    for key, value in env.items():
        if key.startswith("YUQING_"):
            monkeypatch.setenv(key, value)
    (config_dir / "sources.yaml").write_text(
        "sources:\n"
        f"  - {{name: empty, kind: feed, start_urls: ['{empty}']}}\n"
        f"  - {{name: busy, kind: feed, start_urls: ['{busy}']}}\n", encoding="utf-8")
    assert main(["sources"]) == 1
    lines = dict(line.split("\t", 1) for line in capsys.readouterr().out.splitlines())
    assert lines["empty"].startswith("silent\t静默") and lines["busy"].startswith("calm\t平静")


def test_a_crawl_that_died_is_recorded_as_failing_for_each_source(settings: Settings, es_client: Elasticsearch
                                                                    ) -> None:
    from yuqing.scheduler import CrawlOutcome
    from yuqing.service import _record_crawl

    error = "crawl process exited with code -6 and no report"
    _record_crawl(settings, {"gone": "social", "too": "feed"}, CrawlOutcome(("gone", "too"), None, error))
    statuses = source_statuses(es_client, settings.elasticsearch.index_prefix, ["gone", "too"], 3)
    assert [(s.status, s.last_error) for s in statuses] == [("failing", error), ("failing", error)]
    hits = es_client.search(index=f"{settings.elasticsearch.index_prefix}-source-health")["hits"]["hits"]
    assert sorted((h["_source"]["source"], h["_source"]["kind"], h["_source"]["finish_reason"]) for h in hits) == [
        ("gone", "social", "crashed"), ("too", "feed", "crashed")]


def test_health_runs_kept_on_disk_are_claimed_once_and_given_back_when_not_written(tmp_path: Path) -> None:
    from datetime import UTC, datetime

    from index.health_record import HealthSpool
    from index.records import SourceRun
    from index.source_health import run_id

    t = datetime(2026, 11, 30, 8, 0, tzinfo=UTC)
    run = SourceRun(source="s", kind="feed", started_at=t, finished_at=t, found=3, indexed=3)
    later = run.model_copy(update={"finished_at": t.replace(minute=1)})
    assert run_id(run) == run_id(run.model_copy()) != run_id(later)
    spool = HealthSpool(tmp_path / "health")
    path = spool.write([run])
    path.write_text(path.read_text() + "not json\n")
    claimed = spool.claim()
    assert [runs for _, runs in claimed] == [[run]]  # the unreadable line is dropped, the run kept
    assert HealthSpool(tmp_path / "health").claim() == []  # claimed: another recording does not take it too
    spool.release(claimed[0][0])
    assert [runs for _, runs in spool.claim()] == [[run]]

    # a file claimed by a process that has ended (killed before it wrote or gave back the runs) is claimed again
    import subprocess
    import sys

    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True,
                          check=True)
    orphan = spool.write([later])
    orphan = orphan.rename(orphan.with_name(f"{orphan.name}.claimed-{int(gone.stdout)}"))
    assert [runs for _, runs in HealthSpool(tmp_path / "health").claim()] == [[later]]
    assert not orphan.exists()


def test_health_runs_that_cannot_be_kept_on_disk_leave_no_partial_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import errno
    import os

    from index.health_record import HealthSpool

    def no_space(fd: int) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    (tmp_path / "health").mkdir()
    monkeypatch.setattr(os, "fsync", no_space)
    with pytest.raises(OSError, match="No space left"):
        HealthSpool(tmp_path / "health").write([run(0, found=1)])
    assert list((tmp_path / "health").iterdir()) == []  # not even a partial file


def test_health_that_neither_elasticsearch_nor_the_disk_can_take_is_said_not_raised(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    import errno
    import os
    import socket

    from index.health_record import record_runs

    with socket.socket() as s:  # a port nobody listens on: Elasticsearch is down
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    es = settings.elasticsearch.model_copy(update={"hosts": [f"http://127.0.0.1:{port}"]})

    def no_space(fd: int) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "fsync", no_space)  # and the disk is full
    assert record_runs(es, tmp_path, [run(0, found=1)]) is False
    errors = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
    assert len(errors) == 1 and "nor keep 1 runs" in errors[0] and "No space left on device" in errors[0]
