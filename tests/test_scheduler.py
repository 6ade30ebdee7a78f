"""The scheduler: due sources share one crawl child; a crashing child never stops it nor, after one shared
failure, the other sources; post-crawl jobs follow every crawl, each isolated; `yuqing run` stops cleanly on
SIGTERM."""

from __future__ import annotations

import io
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from elasticsearch import Elasticsearch

from crawlers.feeds import FeedEntry, rss_document
from crawlers.runner import crawl_command
from index.layout import POSTS
from tests.conftest import MockServer, crawl_env
from yuqing.logs import log_file, setup_logging
from yuqing.scheduler import CrawlOutcome, PostCrawlJob, Scheduler, next_batch
from yuqing.settings import PROJECT_ROOT, Settings
from yuqing.sources import Source, load_sources


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


def wait_for(condition: Callable[[], object], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


# A crawl child that crawls nothing: it writes the report of a crawl of its sources, or dies when "crasher" is one
# of them (as a segfaulting spider would, without a report).
FAKE_CHILD = """
import json, os, sys
from datetime import datetime, timezone
report, names = sys.argv[1], sys.argv[2:]
if "crasher" in names:
    os.abort()
now = datetime.now(timezone.utc).isoformat()
runs = [{"source": n, "kind": "feed", "started_at": now, "finished_at": now} for n in names]
open(report, "w").write(json.dumps({"started_at": now, "finished_at": now, "sources": runs}))
"""


def fake_child(names: list[str], report: Path) -> list[str]:
    return [sys.executable, "-c", FAKE_CHILD, str(report), *names]


def ticked(scheduler: Scheduler) -> bool:
    """One tick of the loop (a test drives it instead of a thread); True, to chain a condition after it."""
    scheduler.tick()
    return True


def test_a_second_stop_signal_is_not_logged_again(base_settings: Settings, caplog: pytest.LogCaptureFixture) -> None:
    scheduler = Scheduler(settings=base_settings, sources=[])
    with caplog.at_level(logging.INFO, logger="yuqing.scheduler"):
        scheduler.stop(signal.SIGINT)  # Ctrl-C under `yuqing up`: the terminal's SIGINT, then up's SIGTERM
        scheduler.stop(signal.SIGTERM)
    assert scheduler.stop_event.is_set()
    assert [r.getMessage() for r in caplog.records] == ["received SIGINT; stopping"]


def test_next_batch_is_every_due_source_or_one_suspect_alone() -> None:
    assert next_batch(["a", "b", "c"], set()) == ["a", "b", "c"]
    assert next_batch(["a", "b", "c"], {"b"}) == ["b"]
    assert next_batch(["a", "c"], {"b"}) == ["a", "c"]
    assert next_batch([], {"b"}) == []


def test_due_sources_share_one_child_and_the_jobs_follow_every_crawl(
    base_settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    sources = [Source(name=n, kind="feed", start_urls=["http://127.0.0.1:9/feed.xml"], interval_s=3600)
               for n in ("a", "b", "crasher")]
    fast = base_settings.model_copy(update={"schedule": base_settings.schedule.model_copy(
        update={"alert_interval_s": 1})})
    crawled: list[CrawlOutcome] = []
    seen: list[CrawlOutcome | None] = []

    def boom(_outcome: CrawlOutcome | None) -> None:
        raise RuntimeError("job failed")

    scheduler = Scheduler(settings=fast, sources=sources, command_for=fake_child, on_crawl_done=crawled.append,
                          post_crawl_jobs=[PostCrawlJob("boom", boom), PostCrawlJob("record", seen.append)])

    def crawl_round(children: int) -> None:
        """Queue every source (as when all are due) and tick until that many more children have finished."""
        scheduler.jobs.run_all()
        target = len(crawled) + children
        wait_for(lambda: ticked(scheduler) and len(crawled) >= target, 60, f"{children} crawl children")
        assert scheduler.child is None and not scheduler.due

    caplog.set_level(logging.ERROR, logger="yuqing.scheduler")
    crawl_round(1)  # all three due: one child for all; it dies, so each is a suspect
    crawl_round(3)  # each alone: a and b succeed, crasher fails again
    crawl_round(2)  # the suspect alone first, then the others together
    assert [o.sources for o in crawled] == [("a", "b", "crasher"), ("a",), ("b",), ("crasher",), ("crasher",),
                                            ("a", "b")]
    assert [o.ok for o in crawled] == [False, True, True, False, False, True]
    assert all(o.error and "exited with code" in o.error for o in crawled if not o.ok)
    ok = crawled[-1].report
    assert ok is not None and [r.source for r in ok.sources] == ["a", "b"]  # each source's own report kept
    # Every crawl was followed by the jobs in order: the failing one did not keep the next from running.
    assert [o for o in seen if o is not None] == crawled
    failures = [r for r in caplog.records if "post-crawl job boom failed" in r.getMessage()]
    assert len(failures) >= len(crawled) and failures[0].exc_info is not None
    assert "after the crawl of a, b, crasher (failed)" in failures[0].getMessage()
    # With no crawl finishing, the jobs still run every alert_interval_s.
    runs = len(seen)
    wait_for(lambda: ticked(scheduler) and len(seen) > runs, 10, "the jobs to run without a crawl")
    assert seen[-1] is None


def test_a_changed_sources_file_is_taken_up_while_running(base_settings: Settings, tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch,
                                                            caplog: pytest.LogCaptureFixture) -> None:
    import yuqing.scheduler as scheduler_module

    path = tmp_path / "sources.yaml"

    def write(*entries: str) -> None:
        path.write_text("sources:\n" + "".join(entries), encoding="utf-8")

    def feed(name: str, interval: int, enabled: bool = True) -> str:
        return (f"  - {{name: {name}, kind: feed, start_urls: ['http://127.0.0.1:9/{name}.xml'], "
                f"interval_s: {interval}, enabled: {str(enabled).lower()}}}\n")

    def crawl_jobs() -> dict[str, int]:
        return {str(next(iter(j.tags - {"crawl"}))): int(j.interval) for j in scheduler.jobs.get_jobs("crawl")}

    write(feed("a", 3600), feed("b", 3600))
    scheduler = Scheduler(settings=base_settings, sources=load_sources(path).enabled(), sources_file=path)
    monkeypatch.setattr(scheduler_module, "SOURCES_CHECK_S", 0.0)
    scheduler.due = ["b"]  # b's time had come
    caplog.set_level(logging.INFO, logger="yuqing.scheduler")

    write(feed("a", 60), feed("c", 3600))  # 设置: a's interval changed, b removed, c added
    scheduler.reload_sources()
    assert [s.name for s in scheduler.sources] == ["a", "c"] and crawl_jobs() == {"a": 60, "c": 3600}
    assert scheduler.due == ["c"]  # b no longer crawled, not even from the queue; c at once
    assert caplog.messages[-1] == "sources.yaml changed: 2 sources (added: c; removed: b; interval changed: a)"

    path.write_text("sources: [{name: a, kind: nonsense}]\n", encoding="utf-8")  # a bad edit by hand
    scheduler.reload_sources()
    scheduler.reload_sources()
    errors = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
    assert len(errors) == 1 and "the 2 sources are crawled as before" in errors[0]
    assert [s.name for s in scheduler.sources] == ["a", "c"] and crawl_jobs() == {"a": 60, "c": 3600}

    write(feed("a", 60), feed("c", 3600, enabled=False))  # switched off
    scheduler.reload_sources()
    assert [s.name for s in scheduler.sources] == ["a"] and crawl_jobs() == {"a": 60} and scheduler.due == []


def test_a_child_that_cannot_start_is_retried_and_the_loop_goes_on(
    base_settings: Settings, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # Popen failing (as with EAGAIN/ENOMEM: here the program is missing) once: logged in one line, the source stays
    # due and is crawled on a later tick; tick() never raises.
    sources = [Source(name="a", kind="feed", start_urls=["http://127.0.0.1:9/feed.xml"], interval_s=3600)]
    missing = tmp_path / "no-such-program"
    commands: list[list[str]] = []

    def command_for(names: list[str], report: Path) -> list[str]:
        commands.append([str(missing)] if not commands else fake_child(names, report))
        return commands[-1]

    crawled: list[CrawlOutcome] = []
    scheduler = Scheduler(settings=base_settings, sources=sources, command_for=command_for,
                          on_crawl_done=crawled.append)
    caplog.set_level(logging.DEBUG, logger="yuqing.scheduler")
    scheduler.jobs.run_all()
    scheduler.tick()
    assert scheduler.child is None and scheduler.due == ["a"]
    wait_for(lambda: ticked(scheduler) and bool(crawled), 30, "the crawl started again")
    assert len(commands) == 2 and crawled[0].sources == ("a",) and crawled[0].ok
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1 and str(missing) in errors[0].getMessage() and errors[0].exc_info is None
    assert "could not start the crawl of a" in errors[0].getMessage()


def test_a_report_that_cannot_be_read_is_a_failed_crawl(base_settings: Settings,
                                                         caplog: pytest.LogCaptureFixture) -> None:
    sources = [Source(name="a", kind="feed", start_urls=["http://127.0.0.1:9/feed.xml"], interval_s=3600)]

    def command_for(names: list[str], report: Path) -> list[str]:
        return [sys.executable, "-c", f"open({str(report)!r}, 'w').write('{{not json')"]

    crawled: list[CrawlOutcome] = []
    scheduler = Scheduler(settings=base_settings, sources=sources, command_for=command_for,
                          on_crawl_done=crawled.append)
    caplog.set_level(logging.ERROR, logger="yuqing.scheduler")
    scheduler.jobs.run_all()
    wait_for(lambda: ticked(scheduler) and bool(crawled), 30, "the crawl to end")
    assert not crawled[0].ok and crawled[0].error == "its report could not be read: ValidationError"
    assert "a" in scheduler.suspects
    [record] = [r for r in caplog.records if "crawl of a failed" in r.getMessage()]
    assert record.exc_info is not None  # not a known failure: its traceback, in the log file


def test_the_children_are_ended_whatever_ends_the_loop(base_settings: Settings) -> None:
    sources = [Source(name="a", kind="feed", start_urls=["http://127.0.0.1:9/feed.xml"], interval_s=3600)]
    started: list[int] = []

    def command_for(names: list[str], report: Path) -> list[str]:
        return [sys.executable, "-c", "import time; time.sleep(120)"]

    def interrupted(_outcome: CrawlOutcome | None) -> None:
        assert scheduler.child is not None
        started.append(scheduler.child.proc.pid)
        raise KeyboardInterrupt  # Ctrl-C where no handler is installed: it ends run()

    scheduler = Scheduler(settings=base_settings, sources=sources, command_for=command_for,
                          post_crawl_jobs=[PostCrawlJob("interrupted", interrupted)])
    with pytest.raises(KeyboardInterrupt):
        scheduler.run()
    assert started and scheduler.child is None
    with pytest.raises(ProcessLookupError):
        os.kill(started[0], 0)  # ended and reaped


def test_a_job_failing_while_elasticsearch_is_down_logs_one_line_until_it_recovers(settings: Settings) -> None:
    from elastic_transport import ConnectionError as NoConnection

    down = [True]

    def events(_outcome: CrawlOutcome | None) -> None:
        if down[0]:
            raise NoConnection("Connection refused")

    scheduler = Scheduler(settings=settings, sources=[], post_crawl_jobs=[PostCrawlJob("events", events)])
    console = io.StringIO()
    setup_logging(settings, "scheduler", stream=console)
    scheduler.run_post_crawl_jobs(None)
    scheduler.run_post_crawl_jobs(None)  # still down: nothing more on the console
    lines = console.getvalue().splitlines()
    assert len(lines) == 1 and " ERROR scheduler yuqing.scheduler: post-crawl job events failed after " in lines[0]
    assert lines[0].endswith("no node answered (Connection refused)")
    down[0] = False
    scheduler.run_post_crawl_jobs(None)
    scheduler.run_post_crawl_jobs(None)
    lines = console.getvalue().splitlines()
    assert len(lines) == 2 and lines[1].endswith(" INFO scheduler yuqing.scheduler: post-crawl job events recovered")
    # the detail is in the log file: the traceback once, then the repeat
    text = log_file(settings).read_text(encoding="utf-8")
    assert text.count("Traceback") == 2 and "post-crawl job events failed again after" in text


def test_a_crashing_source_does_not_stop_the_scheduler_or_the_other_sources(
    settings: Settings, es_client: Elasticsearch, mockserver: MockServer, config_dir: Path
) -> None:
    write_feed(mockserver, config_dir, ["tests/sina/1.html", "tests/qq/qq.html"],
               extra_sources=f"  - {{name: crasher, kind: feed, start_urls: ['{mockserver.url}/x']}}\n")
    sources = load_sources(config_dir / "sources.yaml").enabled()
    env = crawl_env(settings, config_dir, YUQING_NLP__ENABLED="false")

    def command_for(names: list[str], report: Path) -> list[str]:
        if "crasher" in names:  # a spider process that dies hard, without a report
            return [sys.executable, "-c", "import os; os.abort()"]
        return crawl_command(None, names, report)

    done: list[CrawlOutcome] = []
    seen: list[CrawlOutcome | None] = []
    fast = settings.model_copy(update={"schedule": settings.schedule.model_copy(
        update={"crawl_interval_s": 1, "alert_interval_s": 3600})})
    scheduler = Scheduler(settings=fast, sources=sources, env=env, command_for=command_for, on_crawl_done=done.append,
                          post_crawl_jobs=[PostCrawlJob("record", seen.append)])
    thread = threading.Thread(target=scheduler.run)
    thread.start()
    try:
        # After the first (shared) child crashed, each source must have run at least twice more.
        wait_for(lambda: sum(o.sources == ("ok",) for o in done) >= 2 and sum(o.sources == ("crasher",) for o in done)
                 >= 2, 180, "two rounds of both sources")
    finally:
        scheduler.stop()
        thread.join(timeout=60)
    assert not thread.is_alive()
    assert done[0].sources == ("ok", "crasher") and not done[0].ok  # both were due: one child
    assert all(not o.ok and o.error and "exited with code" in o.error for o in done if "crasher" in o.sources)
    oks = [o.report for o in done if o.sources == ("ok",)]
    assert all(r is not None and r.sources[0].errors == 0 for r in oks)
    first = oks[0]
    assert first is not None and first.sources[0].indexed == 2  # later rounds: the feed answers 304
    assert count_posts(es_client, POSTS.alias(settings.elasticsearch.index_prefix)) == 2
    assert seen[0] is None and seen[1:] == done[: len(seen) - 1]  # at start-up, then after every crawl


def test_yuqing_run_indexes_and_stops_on_sigterm(
    settings: Settings, es_client: Elasticsearch, mockserver: MockServer, config_dir: Path
) -> None:
    write_feed(mockserver, config_dir, ["tests/ifeng/2.html"])
    env = crawl_env(settings, config_dir, YUQING_NLP__ENABLED="false", YUQING_SCHEDULE__CRAWL_INTERVAL_S="2")
    # --crawl-only: an extra crawling machine; the events update and the other jobs run elsewhere
    proc = subprocess.Popen([sys.executable, "-m", "yuqing.cli", "run", "--crawl-only"], cwd=PROJECT_ROOT,
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
    assert "after each crawl: no jobs" in out  # not even the events update: it has one writer, elsewhere


@pytest.mark.parametrize("name", ["privacy.yaml", "hotwords.yaml", "extraction.yaml", "keyword_groups.yaml"])
def test_yuqing_run_refuses_to_start_with_a_malformed_crawl_config(
    settings: Settings, config_dir: Path, name: str
) -> None:
    # Every crawl child reads these files: a malformed one would fail each crawl; the scheduler refuses to start
    # (even --crawl-only, which runs no job reading them), naming the file.
    (config_dir / name).write_text("patterns: [unclosed\n", encoding="utf-8")
    env = crawl_env(settings, config_dir, YUQING_NLP__ENABLED="false")
    proc = subprocess.Popen([sys.executable, "-m", "yuqing.cli", "run", "--crawl-only"], cwd=PROJECT_ROOT,
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        _, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 2 and str(config_dir / name) in err, err[-3000:]


def test_ctrl_c_mid_crawl_stops_a_crawl_child_without_tracebacks(
    settings: Settings, es_client: Elasticsearch, mockserver: MockServer, config_dir: Path, tmp_path: Path
) -> None:
    # Ctrl-C reaching a crawl child's whole process group while it crawls (its segmentation workers started):
    # the child stops gracefully, its workers ignore the signal; no traceback, no leaked semaphore.
    pages = ["tests/sina/1.html", "tests/qq/qq.html", "slow/8/tests/ifeng/2.html"]
    entries = [FeedEntry(link=f"{mockserver.url}/{'' if p.startswith('slow') else 'pages/'}{p}", title=p)
               for p in pages]
    feed = mockserver.write("feed.xml", rss_document("t", mockserver.url, entries,
                                                     built=datetime.now(ZoneInfo("Asia/Shanghai"))))
    (config_dir / "sources.yaml").write_text(f"sources:\n  - {{name: ok, kind: feed, start_urls: ['{feed}']}}\n",
                                             encoding="utf-8")
    env = crawl_env(settings, config_dir, YUQING_NLP__ENABLED="false", YUQING_CRAWL__INGEST_BATCH_SIZE="1",
                    YUQING_CRAWL__SEGMENT_WORKERS="2")
    report = tmp_path / "report.json"
    proc = subprocess.Popen(crawl_command(None, ["ok"], report), cwd=PROJECT_ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        alias = POSTS.alias(settings.elasticsearch.index_prefix)
        wait_for(lambda: es_client.indices.exists_alias(name=alias) and count_posts(es_client, alias) >= 1, 120,
                 "a post segmented and indexed while the slow page is still loading")
        os.killpg(proc.pid, signal.SIGINT)
        _, err = proc.communicate(timeout=90)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
    assert proc.returncode == 0, err[-3000:]
    assert "Traceback" not in err and "KeyboardInterrupt" not in err and "leaked semaphore" not in err, err[-3000:]
    assert "segmentation worker process died" not in err
