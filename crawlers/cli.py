"""`yuqing crawl`: crawl the configured sources once, in this process."""

from __future__ import annotations

import argparse
from pathlib import Path

from yuqing.settings import Settings


def _crawl(args: argparse.Namespace, settings: Settings) -> int:
    from crawlers.runner import run_crawl
    from crawlers.sources import load_sources

    sources = load_sources(settings.config_file("sources.yaml")).by_name(args.source)
    report = run_crawl(settings, sources)
    if args.report_json:
        Path(args.report_json).write_text(report.to_json(), encoding="utf-8")
    for run in report.sources:
        print(f"{run.source}: found={run.found} indexed={run.indexed} new={run.new} errors={run.errors} "
              f"spooled={run.spooled} ({run.finish_reason})")
    return 0


def add_subcommand(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("crawl", help="crawl the configured sources once")
    p.add_argument("--source", action="append", default=[], help="source name (repeatable; default: all)")
    p.add_argument("--report-json", help="write the crawl report as JSON to this path")
    p.set_defaults(func=_crawl)
