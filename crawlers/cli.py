"""`yuqing crawl`: crawl the configured sources once, in this process, and record their health."""

from __future__ import annotations

import argparse
import logging
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

from yuqing.settings import Settings

if TYPE_CHECKING:
    from crawlers.runner import CrawlReport

log = logging.getLogger(__name__)

# The keywords of search sources that name none, from the settings (the entry point passes the alert rules').
SearchKeywords = Callable[[Settings], list[str]]


def _crawl(args: argparse.Namespace, settings: Settings, *, search_keywords: SearchKeywords | None = None) -> int:
    """Exit code 2 (:data:`~crawlers.runner.EXIT_NOT_STARTED`) when a source's crawl could not start."""
    from crawlers.runner import EXIT_NOT_STARTED, NOT_STARTED, run_crawl
    from index.client import ClusterUnavailable, check_connection
    from yuqing.processes import die_with_parent
    from yuqing.sources import load_sources

    if args.parent is not None:  # a child of the scheduler, in a session of its own: it ends with the scheduler
        die_with_parent(args.parent)
    if args.warm:
        names = _wait_for_sources(settings)
        if names is None:
            return 0
        args.source = names
    configured = load_sources(settings.config_file("sources.yaml"))
    if args.parent is not None and args.source:  # the scheduler's child: the file may have changed since
        known = {s.name for s in configured.enabled()}
        gone = [n for n in args.source if n not in known]
        if gone:
            log.warning("not crawled, no longer enabled in sources.yaml: %s", ", ".join(gone))
            args.source = [n for n in args.source if n in known]
            if not args.source:  # nothing left: an empty report, not a crash of those sources
                from datetime import UTC, datetime

                from crawlers.runner import CrawlReport

                now = datetime.now(UTC)
                return _finish(args, CrawlReport(started_at=now, finished_at=now), 0)
    sources = configured.by_name(args.source)
    try:  # wrong credentials or CA: refuse now, naming the setting (ConfigError, exit 2)
        check_connection(settings.elasticsearch)
    except ClusterUnavailable as exc:  # down: crawl anyway, what is found is spooled
        log.warning("%s; the crawl goes on and spools what it finds", exc)
    keywords = partial(search_keywords, settings) if search_keywords is not None else None
    try:
        report = run_crawl(settings, sources, search_keywords=keywords)
    finally:  # a pool an ingest session left open (it failed to open, say): its workers end with the crawl
        from ingest.stages.segment import close_segmenters

        close_segmenters()
    _record_health(settings, report)
    return _finish(args, report, EXIT_NOT_STARTED if any(r.finish_reason == NOT_STARTED for r in report.sources)
                   else 0)


def _finish(args: argparse.Namespace, report: CrawlReport, code: int) -> int:
    """Hand ``report`` to the scheduler (``--report-json``: written, then the child exits) and return ``code``."""
    if args.report_json:
        Path(args.report_json).write_text(report.to_json(), encoding="utf-8")
        _exit_child(code)
    return code


def _exit_child(code: int) -> NoReturn:
    """The scheduler's child (``--report-json``) is done once its report is written: exit now, without the
    interpreter's teardown of torch, Scrapy and the rest (3 s of CPU, ~10 s on a loaded machine, while the
    scheduler waited to run the post-crawl jobs). Everything was written and closed before: the report, the
    posts (the ingest session closed with the spider), source health; the log is flushed here."""
    import os
    import sys

    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def _wait_for_sources(settings: Settings) -> list[str] | None:
    """A warm child (``--warm``, started by the scheduler ahead of time): load the classifier now, then wait
    for the names of the sources to crawl (one JSON list on stdin); end of input: not needed after all."""
    import json
    import sys

    from ingest.service import load_analyzer

    load_analyzer(settings)  # cached for the process: the crawl's ingest session finds it loaded
    line = sys.stdin.readline()
    if not line.strip():
        log.debug("warm crawl child not needed; exiting")
        return None
    names = json.loads(line)
    if not isinstance(names, list) or not names or not all(isinstance(n, str) for n in names):
        raise ValueError(f"expected a JSON list of source names on stdin, got {line!r}")
    return names


def _record_health(settings: Settings, report: CrawlReport) -> None:
    """Store one source-health record per source of this crawl; when Elasticsearch is down or blocks writes the
    records are kept on disk and recorded by the next crawl (``index.health_record``)."""
    from index.health_record import record_runs

    record_runs(settings.elasticsearch, settings.paths.data_dir, report.sources)


def add_subcommand(sub: argparse._SubParsersAction, *, search_keywords: SearchKeywords | None = None) -> None:
    """``yuqing crawl``; ``search_keywords`` gives the keywords of search sources that name none."""
    p = sub.add_parser("crawl", help="crawl the configured sources once")
    p.add_argument("--source", action="append", default=[], help="source name (repeatable; default: all)")
    p.add_argument("--report-json", help="write the crawl report as JSON to this path")
    p.add_argument("--parent", type=int, metavar="PID",
                   help="end when process PID (the scheduler that started this crawl) ends")
    p.add_argument("--warm", action="store_true",
                   help="load everything first, then read the sources to crawl from stdin (the scheduler's warm child)")
    p.set_defaults(func=partial(_crawl, search_keywords=search_keywords))
