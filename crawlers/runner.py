"""Running crawls: in this process (the `yuqing crawl` command) or in a child process (the scheduler).

A child process per crawl means a crashing spider, a hung download or a leaked reactor cannot take the
scheduler down; the child reports what it did as JSON.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from crawlers.sources import Source
from yuqing.errors import YuqingError
from yuqing.settings import Settings

log = logging.getLogger(__name__)


@dataclass
class SourceRun:
    source: str
    kind: str
    found: int = 0
    indexed: int = 0
    new: int = 0
    unchanged: int = 0
    duplicates: int = 0
    errors: int = 0
    spooled: int = 0
    finish_reason: str = ""


@dataclass
class CrawlReport:
    started_at: str
    finished_at: str = ""
    sources: list[SourceRun] = field(default_factory=list)

    def to_json(self) -> str:
        return json.dumps(asdict(self), ensure_ascii=False)

    @classmethod
    def from_json(cls, text: str) -> CrawlReport:
        data = json.loads(text)
        return cls(
            started_at=data["started_at"],
            finished_at=data.get("finished_at", ""),
            sources=[SourceRun(**s) for s in data.get("sources", [])],
        )


class CrawlFailed(YuqingError):
    pass


def run_crawl(settings: Settings, sources: list[Source]) -> CrawlReport:
    """Crawl ``sources`` in this process (blocks; a process can run this once: Twisted's reactor)."""
    from scrapy.crawler import CrawlerProcess

    from crawlers.scrapy_settings import scrapy_settings
    from crawlers.spiders import SPIDERS

    report = CrawlReport(started_at=datetime.now().astimezone().isoformat())
    process = CrawlerProcess(scrapy_settings(settings))
    crawlers = []
    for source in sources:
        spider_cls = SPIDERS.get(source.kind)
        if spider_cls is None:
            raise CrawlFailed(f"source {source.name!r}: kind {source.kind!r} has no spider yet")
        crawler = process.create_crawler(spider_cls)
        process.crawl(crawler, source=source)
        crawlers.append((source, crawler))
    process.start()
    for source, crawler in crawlers:
        stats: dict[str, Any] = crawler.stats.get_stats() if crawler.stats else {}
        report.sources.append(
            SourceRun(
                source=source.name,
                kind=source.kind,
                found=int(stats.get("yuqing/found", 0)),
                indexed=int(stats.get("yuqing/indexed", 0)),
                new=int(stats.get("yuqing/new", 0)),
                unchanged=int(stats.get("yuqing/unchanged", 0)),
                duplicates=int(stats.get("yuqing/duplicates", 0)),
                errors=int(stats.get("yuqing/errors", 0)) + int(stats.get("yuqing/index_errors", 0)),
                spooled=int(stats.get("yuqing/spooled", 0)),
                finish_reason=str(stats.get("finish_reason", "")),
            )
        )
    report.finished_at = datetime.now().astimezone().isoformat()
    return report


def crawl_command(config: str | None, source_names: list[str], report_path: Path) -> list[str]:
    """The command line of a child crawl."""
    cmd = [sys.executable, "-m", "yuqing.cli"]
    if config:
        cmd += ["-c", config]
    cmd += ["crawl", "--report-json", str(report_path)]
    for name in source_names:
        cmd += ["--source", name]
    return cmd


CommandFor = Callable[[list[str], Path], list[str]]


def start_crawl_subprocess(
    config: str | None,
    source_names: list[str],
    *,
    env: dict[str, str] | None = None,
    command_for: CommandFor | None = None,
) -> tuple[subprocess.Popen[bytes], Path]:
    """Start a child crawl; ``command_for(sources, report_path)`` may replace the default command line."""
    fd, name = tempfile.mkstemp(prefix="yuqing-crawl-", suffix=".json")
    os.close(fd)
    report_path = Path(name)
    cmd = (command_for(source_names, report_path) if command_for is not None
           else crawl_command(config, source_names, report_path))
    proc = subprocess.Popen(cmd, env=env)
    return proc, report_path


def collect_crawl(proc: subprocess.Popen[bytes], report_path: Path) -> CrawlReport:
    """The report of a finished child crawl; a child that failed raises CrawlFailed with its exit code."""
    try:
        text = report_path.read_text(encoding="utf-8") if report_path.exists() else ""
    finally:
        report_path.unlink(missing_ok=True)
    if proc.returncode != 0 or not text:
        raise CrawlFailed(f"crawl process exited with code {proc.returncode} and {'a' if text else 'no'} report")
    return CrawlReport.from_json(text)


def crawl_in_subprocess(
    config: str | None, source_names: list[str], *, timeout_s: float, env: dict[str, str] | None = None
) -> CrawlReport:
    proc, report_path = start_crawl_subprocess(config, source_names, env=env)
    try:
        proc.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        report_path.unlink(missing_ok=True)
        raise CrawlFailed(f"crawl did not finish within {timeout_s:.0f}s and was killed") from None
    return collect_crawl(proc, report_path)
