"""`yuqing crawl`: crawl the configured sources once, in this process."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import TYPE_CHECKING

from yuqing.settings import Settings

if TYPE_CHECKING:
    from crawlers.runner import CrawlReport

log = logging.getLogger(__name__)


def _crawl(args: argparse.Namespace, settings: Settings) -> int:
    from crawlers.runner import run_crawl
    from crawlers.sources import load_sources

    sources = load_sources(settings.config_file("sources.yaml")).by_name(args.source)
    report = run_crawl(settings, sources)
    _record_health(settings, report)
    if args.report_json:
        Path(args.report_json).write_text(report.to_json(), encoding="utf-8")
    for run in report.sources:
        print(f"{run.source}: found={run.found} indexed={run.indexed} new={run.new} errors={run.errors} "
              f"spooled={run.spooled} ({run.finish_reason})")
    return 0


def _record_health(settings: Settings, report: CrawlReport) -> None:
    """Store one source-health record per source of this crawl; ES being down is logged, not fatal."""
    from datetime import datetime

    from elasticsearch import ApiError, TransportError

    from crawlers.health import records_from_report, write_records
    from index.client import make_client

    client = make_client(settings.elasticsearch)
    try:
        records = records_from_report(report, datetime.now().astimezone())
        write_records(client, settings.elasticsearch.index_prefix, records)
    except (ApiError, TransportError) as exc:
        log.error("could not record source health: %s", exc)
    finally:
        client.close()


def _sources(args: argparse.Namespace, settings: Settings) -> int:
    """Print each configured source's health; exit 1 when any is silent or failing."""
    from crawlers.health import STATUS_LABELS, source_statuses
    from crawlers.sources import load_sources
    from index.client import make_client

    names = [s.name for s in load_sources(settings.config_file("sources.yaml")).enabled()]
    client = make_client(settings.elasticsearch)
    try:
        statuses = source_statuses(client, settings.elasticsearch.index_prefix, names,
                                   settings.crawl.silent_after_runs)
    finally:
        client.close()
    for s in statuses:
        last = s.last_success.isoformat(timespec="minutes") if s.last_success else "-"
        print(f"{s.source}\t{s.status}\t{STATUS_LABELS[s.status]}\tlast success {last}"
              + (f"\t{s.last_error}" if s.last_error else ""))
    return 1 if any(s.status in ("silent", "failing") for s in statuses) else 0


def add_subcommand(sub: argparse._SubParsersAction) -> None:
    sub.add_parser("sources", help="health of each configured source (silent, failing, calm, ok)").set_defaults(
        func=_sources)
    p = sub.add_parser("crawl", help="crawl the configured sources once")
    p.add_argument("--source", action="append", default=[], help="source name (repeatable; default: all)")
    p.add_argument("--report-json", help="write the crawl report as JSON to this path")
    p.set_defaults(func=_crawl)
