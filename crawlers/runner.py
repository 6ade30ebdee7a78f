"""Running crawls: in this process (the `yuqing crawl` command) or in a child process (the scheduler).

A child process per crawl means a crashing spider, a hung download or a leaked reactor cannot take the
scheduler down; the child reports what it did as JSON.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import subprocess
import sys
import tempfile
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, Field

from index.records import SourceRun
from index.source_health import run_ok
from yuqing.errors import YuqingError
from yuqing.settings import Settings
from yuqing.sources import Source

if TYPE_CHECKING:
    from scrapy.crawler import CrawlerProcess
    from twisted.python.failure import Failure

    from crawlers.spiders.search import KeywordSource

log = logging.getLogger(__name__)


class CrawlReport(BaseModel):
    """What a crawl did, per source (a child crawl hands it to the scheduler as JSON)."""

    started_at: datetime
    finished_at: datetime | None = None
    sources: list[SourceRun] = Field(default_factory=list)

    def to_json(self) -> str:
        return self.model_dump_json()

    @classmethod
    def from_json(cls, text: str) -> CrawlReport:
        return cls.model_validate_json(text)


class CrawlFailed(YuqingError):
    pass


# The finish reason of a source whose crawl could not start (its spider or the ingest pipeline failed to build or
# open: a malformed config file, a classifier that does not load): the run is a failure, its error says why.
NOT_STARTED = "failed to start"
# The exit code of a child crawl that wrote its report but some source could not start (the report says which).
EXIT_NOT_STARTED = 2


def summary_line(run: SourceRun) -> str:
    """The one line a crawl logs per source."""
    return (f"{run.source}: found={run.found} indexed={run.indexed} new={run.new} unchanged={run.unchanged} "
            f"duplicates={run.duplicates} errors={run.errors} spooled={run.spooled} ({run.finish_reason})")


def crawler_process(config: dict[str, Any]) -> CrawlerProcess:
    """A Scrapy process that keeps to the logging the entry point set up (yuqing.logs): Scrapy adds no root
    handler of its own, and the library levels its ``configure_logging()`` resets are applied again."""
    from scrapy.crawler import CrawlerProcess
    from scrapy.settings import default_settings

    from yuqing.logs import quiet_libraries

    if hasattr(default_settings, "LOG_INSTALL_ROOT_HANDLER"):  # Scrapy >= 2.14
        process = CrawlerProcess({**config, "LOG_INSTALL_ROOT_HANDLER": False})
    else:
        process = CrawlerProcess(config, install_root_handler=False)
    quiet_libraries()
    return process


def run_crawl(settings: Settings, sources: list[Source], *, search_keywords: KeywordSource | None = None
              ) -> CrawlReport:
    """Crawl ``sources`` in this process (blocks; a process can run this once: Twisted's reactor).

    ``search_keywords``: what ``search`` sources without keywords of their own search for."""
    from crawlers.scrapy_settings import scrapy_settings
    from crawlers.spiders import SPIDERS

    started = datetime.now().astimezone()
    process = crawler_process(scrapy_settings(settings))
    crawlers = []
    not_started: dict[str, str] = {}  # source -> why its crawl could not start
    for source in sources:
        spider_cls = SPIDERS.get(source.kind)
        if spider_cls is None:
            raise CrawlFailed(f"source {source.name!r}: kind {source.kind!r} has no spider yet")
        crawler = process.create_crawler(spider_cls)
        extra = {"keywords": search_keywords} if source.kind == "search" else {}
        process.crawl(crawler, source=source, **extra).addErrback(_could_not_start, source.name, not_started)
        crawlers.append((source, crawler))
    process.start()
    finished = datetime.now().astimezone()
    report = CrawlReport(started_at=started, finished_at=finished)
    for source, crawler in crawlers:
        if source.name in not_started:  # logged when it failed
            report.sources.append(SourceRun(source=source.name, kind=source.kind, started_at=started,
                                            finished_at=finished, ok=False, error=not_started[source.name],
                                            finish_reason=NOT_STARTED))
            continue
        stats: dict[str, Any] = crawler.stats.get_stats() if crawler.stats else {}
        found, indexed = int(stats.get("yuqing/found", 0)), int(stats.get("yuqing/indexed", 0))
        errors = int(stats.get("yuqing/errors", 0)) + int(stats.get("yuqing/index_errors", 0))
        run = SourceRun(
            source=source.name,
            kind=source.kind,
            started_at=started,
            finished_at=finished,
            found=found,
            indexed=indexed,
            new=int(stats.get("yuqing/new", 0)),
            unchanged=int(stats.get("yuqing/unchanged", 0)),
            duplicates=int(stats.get("yuqing/duplicates", 0)),
            errors=errors,
            spooled=int(stats.get("yuqing/spooled", 0)),
            ok=run_ok(found=found, indexed=indexed, errors=errors),
            finish_reason=str(stats.get("finish_reason", "")),
        )
        log.info(summary_line(run))
        report.sources.append(run)
    return report


def _could_not_start(failure: Failure, name: str, not_started: dict[str, str]) -> None:
    """The errback of a source's crawl: Scrapy could not build or open its spider or pipeline. One line (a
    ConfigError names the file); an unexpected exception (a bug) has its traceback."""
    exc = failure.value
    known = isinstance(exc, YuqingError)
    not_started[name] = str(exc) if known else f"{type(exc).__name__}: {exc}"
    log.error("crawl of %s could not start: %s", name, not_started[name], exc_info=None if known else exc)


def crawl_command(config: str | None, source_names: list[str], report_path: Path) -> list[str]:
    """The command line of a child crawl of this process (it ends when this process does)."""
    cmd = [sys.executable, "-m", "yuqing.cli"]
    if config:
        cmd += ["-c", config]
    cmd += ["crawl", "--report-json", str(report_path), "--parent", str(os.getpid())]
    for name in source_names:
        cmd += ["--source", name]
    return cmd


CommandFor = Callable[[list[str], Path], list[str]]


def start_warm_crawl(config: str | None, *, env: dict[str, str] | None = None
                     ) -> tuple[subprocess.Popen[bytes], Path]:
    """Start a child crawl that loads everything a crawl needs and then waits for its sources on stdin
    (:func:`dispatch_warm_crawl`); end of input makes it exit without crawling."""
    fd, name = tempfile.mkstemp(prefix="yuqing-crawl-", suffix=".json")
    os.close(fd)
    report_path = Path(name)
    cmd = [*crawl_command(config, [], report_path), "--warm"]
    return _popen(cmd, env, report_path, stdin=subprocess.PIPE), report_path


def dispatch_warm_crawl(proc: subprocess.Popen[bytes], source_names: list[str]) -> bool:
    """Tell a warm child which sources to crawl; False when it is gone (then start a cold one)."""
    if proc.poll() is not None or proc.stdin is None:
        return False
    try:
        proc.stdin.write((json.dumps(source_names, ensure_ascii=False) + "\n").encode("utf-8"))
        proc.stdin.close()
    except (BrokenPipeError, OSError):
        return False
    return True


def start_crawl_subprocess(
    config: str | None,
    source_names: list[str],
    *,
    env: dict[str, str] | None = None,
    command_for: CommandFor | None = None,
) -> tuple[subprocess.Popen[bytes], Path]:
    """Start a child crawl; ``command_for(sources, report_path)`` may replace the default command line.

    A child runs in a session (process group) of its own: Ctrl-C at the terminal reaches the scheduler only,
    which ends the child with one SIGTERM (Scrapy's graceful stop) or, when that is not enough,
    :func:`kill_crawl`."""
    fd, name = tempfile.mkstemp(prefix="yuqing-crawl-", suffix=".json")
    os.close(fd)
    report_path = Path(name)
    cmd = (command_for(source_names, report_path) if command_for is not None
           else crawl_command(config, source_names, report_path))
    return _popen(cmd, env, report_path), report_path


def _popen(cmd: list[str], env: dict[str, str] | None, report_path: Path, *, stdin: int | None = None
           ) -> subprocess.Popen[bytes]:
    """Start a child crawl in a session of its own; when it cannot start (OSError) its report file is removed."""
    try:
        return subprocess.Popen(cmd, env=env, stdin=stdin, start_new_session=True)
    except OSError:
        report_path.unlink(missing_ok=True)
        raise


def kill_crawl(proc: subprocess.Popen[bytes]) -> None:
    """SIGKILL a child crawl that is still running, with all its session started (segmentation workers, the
    resource tracker), and reap it."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):  # ended meanwhile
            os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


def collect_crawl(proc: subprocess.Popen[bytes], report_path: Path) -> CrawlReport:
    """The report of a finished child crawl; a child that failed raises CrawlFailed with its exit code. A child
    some of whose sources could not start (:data:`EXIT_NOT_STARTED`) gives its report: it says which, and the
    child logged why and recorded their health."""
    try:
        text = report_path.read_text(encoding="utf-8") if report_path.exists() else ""
    finally:
        report_path.unlink(missing_ok=True)
    if proc.returncode not in (0, EXIT_NOT_STARTED) or not text:
        raise CrawlFailed(f"crawl process exited with code {proc.returncode} and {'a' if text else 'no'} report")
    return CrawlReport.from_json(text)


def crawl_in_subprocess(
    config: str | None, source_names: list[str], *, timeout_s: float, env: dict[str, str] | None = None
) -> CrawlReport:
    proc, report_path = start_crawl_subprocess(config, source_names, env=env)
    try:
        proc.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        kill_crawl(proc)
        report_path.unlink(missing_ok=True)
        raise CrawlFailed(f"crawl did not finish within {timeout_s:.0f}s and was killed") from None
    return collect_crawl(proc, report_path)
