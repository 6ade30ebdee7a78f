"""Logging: one line per event on the console, naming the component, never twice, never a post's body; the
full detail in the rotated log file. Progress: a bar on a terminal, periodic lines otherwise."""

from __future__ import annotations

import io
import logging
import re
import subprocess
from collections import Counter
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
from yuqing.progress import Progress
from yuqing.settings import PROJECT_ROOT, Settings

BODY = "本馆古籍修复室今年共修复善本二十三册，修复记录只应出现在索引里。"
PAGE = f"""<html><head><title>古籍修复成果展_测试站</title></head><body><h1>古籍修复成果展</h1>
<div class="article"><p>{BODY}</p><p>市民可于周末预约参观修复室，感受传统技艺的魅力与温度。</p>
<p>联系电话13912345678，报名时请说明参观人数。</p></div></body></html>"""
# A console line: date, time, level, component, logger: message.
CONSOLE_LINE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d (DEBUG|INFO|WARNING|ERROR|CRITICAL) (\S+) (\S+): (.*)$")


def test_a_crawl_child_logs_each_event_once_and_no_post_body(
    settings: Settings, es_client: Elasticsearch, mockserver: MockServer, config_dir: Path
) -> None:
    pages = [mockserver.write("news/1.html", PAGE), f"{mockserver.url}/pages/tests/sina/1.html"]
    entries = [FeedEntry(link=u, title="t") for u in pages]
    feed = mockserver.write("feed.xml", rss_document("t", mockserver.url, entries,
                                                     built=datetime.now(ZoneInfo("Asia/Shanghai"))))
    (config_dir / "sources.yaml").write_text(f"sources:\n  - {{name: logged, kind: feed, start_urls: ['{feed}']}}\n",
                                             encoding="utf-8")
    # As the scheduler runs it: a child `yuqing crawl --source NAME`, at the default level, with the classifier.
    env = crawl_env(settings, config_dir, YUQING_LOGGING__LEVEL="INFO")
    report = Path(settings.paths.data_dir) / "report.json"
    proc = subprocess.run(crawl_command(None, ["logged"], report), cwd=PROJECT_ROOT, env=env, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    console = [line for line in (proc.stdout + proc.stderr).splitlines() if line.strip()]

    alias = POSTS.alias(settings.elasticsearch.index_prefix)
    es_client.indices.refresh(index=alias)
    bodies = [h["_source"]["content"] for h in es_client.search(index=alias)["hits"]["hits"]]
    assert len(bodies) == 2 and any(BODY in b for b in bodies)  # indexed, so it was there to leak
    for line in console:
        match = CONSOLE_LINE.match(line)
        assert match, f"not a line of the one console format: {line!r}"
        assert match.group(2) == "crawl:logged", line
        for body in bodies:
            for i in range(0, max(1, len(body) - 20), 40):
                assert body[i : i + 20] not in line, f"post text on the console: {line!r}"
    messages = Counter(CONSOLE_LINE.match(line).group(4) for line in console)  # type: ignore[union-attr]
    assert all(n == 1 for n in messages.values()), messages.most_common(3)
    summary = [m for m in messages if m.startswith("logged: ")]
    assert summary == ["logged: found=2 indexed=2 new=2 unchanged=0 duplicates=0 errors=0 spooled=0 (finished)"]
    text = "\n".join(console)
    for noise in ("Dumping Scrapy stats", "Overridden settings", "Enabled extensions", "Crawled (200)",
                  "elastic_transport", "Scraped from", "Building prefix dict"):
        assert noise not in text

    # The file has the detail: the debug lines too, with the process id.
    log = (Path(settings.paths.data_dir) / "log" / "yuqing.log").read_text(encoding="utf-8")
    assert " DEBUG crawl:logged[" in log and "crawl state of logged: 0 known pages" in log
    assert "logged: found=2 indexed=2" in log


def test_setup_replaces_its_handlers_and_quiets_libraries(settings: Settings) -> None:
    out = io.StringIO()
    setup_logging(settings, "first", stream=io.StringIO())
    setup_logging(settings, "second", stream=out)
    ours = [h for h in logging.getLogger().handlers if getattr(h, "_yuqing_handler", False)]
    assert len(ours) == 2  # the console and the file, once each
    logging.getLogger("yuqing.probe").info("hello")
    logging.getLogger("scrapy.core.engine").info("Spider opened")
    logging.getLogger("elastic_transport.transport").info("POST http://127.0.0.1:9200/_bulk [status:200]")
    logging.getLogger("scrapy.core.scraper").error("Error processing <Post http://e.cn/1>")
    lines = out.getvalue().splitlines()
    assert len(lines) == 2
    assert lines[0].endswith(" INFO second yuqing.probe: hello")
    assert lines[1].endswith(" ERROR second scrapy.core.scraper: Error processing <Post http://e.cn/1>")
    assert "yuqing.probe: hello" in log_file(settings).read_text(encoding="utf-8")

    debug = settings.model_copy(update={"logging": settings.logging.model_copy(update={"level": "DEBUG"})})
    out = io.StringIO()
    setup_logging(debug, "third", stream=out)
    logging.getLogger("scrapy.core.engine").debug("Crawled (200)")
    assert out.getvalue().endswith("DEBUG third scrapy.core.engine: Crawled (200)\n")


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_is_a_bar_on_a_terminal_and_periodic_lines_otherwise(caplog: pytest.LogCaptureFixture) -> None:
    term = Terminal()
    with Progress("indexing", total=4, unit="posts", stream=term) as bar:
        for _ in range(4):
            bar.update()
    assert "indexing" in term.getvalue() and "4/4" in term.getvalue()

    now = [0.0]
    pipe = io.StringIO()
    with caplog.at_level(logging.INFO, logger="yuqing.progress"), Progress(
        "indexing", total=100, unit="posts", every_s=10, stream=pipe, clock=lambda: now[0]
    ) as bar:
        for _ in range(10):
            now[0] += 2.5
            bar.update(10)
    assert pipe.getvalue() == ""  # no bar drawn into a pipe
    assert [r.getMessage() for r in caplog.records] == [
        "indexing: 40/100 posts (40%), 4.0 posts/s",
        "indexing: 80/100 posts (80%), 4.0 posts/s",
    ]


def test_an_unwritable_log_file_is_said_once_not_a_traceback_per_record(
    settings: Settings, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    full = tmp_path / "yuqing.log"
    full.symlink_to("/dev/full")  # every write: ENOSPC, as on a full disk (the lock file stays in tmp_path)
    cfg = settings.logging.model_copy(update={"file": full, "level": "INFO", "file_level": "DEBUG"})
    setup_logging(settings.model_copy(update={"logging": cfg}), "full", stream=io.StringIO())
    log = logging.getLogger("yuqing.probe")
    for i in range(3):
        log.info("info %d", i)
        log.debug("debug %d", i)
    err = capfd.readouterr().err
    assert "Logging error" not in err and "Traceback" not in err, err
    naming = [line for line in err.splitlines() if str(full) in line]
    assert naming == [f"cannot write the log file {full} (No space left on device); "
                      "file logging paused until it can write again"], err

    # Space again (the file replaced, as a rotation by another process would): said once, the records go in.
    full.unlink()
    full.write_text("", encoding="utf-8")
    log.info("back")
    log.debug("back in detail")
    err = capfd.readouterr().err
    assert err.splitlines() == [f"the log file {full} can be written again; file logging resumed "
                                "(records logged while it was paused may be missing from it)"], err
    text = full.read_text(encoding="utf-8")
    assert "yuqing.probe: back" in text and "yuqing.probe: back in detail" in text
