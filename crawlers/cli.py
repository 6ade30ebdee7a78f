"""`yuqing crawl`: crawl the configured sources once, in this process, and record their health."""

from __future__ import annotations

import argparse
import logging
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

from yuqing.settings import Settings

if TYPE_CHECKING:
    from crawlers.runner import CrawlReport

log = logging.getLogger(__name__)

# The keywords of search sources that name none, from the settings (the entry point passes the alert rules').
SearchKeywords = Callable[[Settings], list[str]]


def _crawl(args: argparse.Namespace, settings: Settings, *, search_keywords: SearchKeywords | None = None) -> int:
    from crawlers.runner import run_crawl
    from yuqing.sources import load_sources

    sources = load_sources(settings.config_file("sources.yaml")).by_name(args.source)
    keywords = partial(search_keywords, settings) if search_keywords is not None else None
    report = run_crawl(settings, sources, search_keywords=keywords)
    _record_health(settings, report)
    if args.report_json:
        Path(args.report_json).write_text(report.to_json(), encoding="utf-8")
    return 0


def _record_health(settings: Settings, report: CrawlReport) -> None:
    """Store one source-health record per source of this crawl; ES being down is logged, not fatal."""
    from elasticsearch import ApiError, TransportError

    from index.client import es_client
    from index.source_health import write_runs

    try:
        with es_client(settings.elasticsearch) as client:
            write_runs(client, settings.elasticsearch.index_prefix, report.sources)
    except (ApiError, TransportError) as exc:
        log.error("could not record source health: %s", exc)


def add_subcommand(sub: argparse._SubParsersAction, *, search_keywords: SearchKeywords | None = None) -> None:
    """``yuqing crawl``; ``search_keywords`` gives the keywords of search sources that name none."""
    p = sub.add_parser("crawl", help="crawl the configured sources once")
    p.add_argument("--source", action="append", default=[], help="source name (repeatable; default: all)")
    p.add_argument("--report-json", help="write the crawl report as JSON to this path")
    p.set_defaults(func=partial(_crawl, search_keywords=search_keywords))
