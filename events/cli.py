"""``yuqing events assign``: cluster and score posts given as JSON lines (no Elasticsearch needed)."""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import sys
from pathlib import Path
from typing import Any

from yuqing.settings import Settings

log = logging.getLogger(__name__)


def add_subcommands(sub: argparse._SubParsersAction) -> None:
    ev = sub.add_parser("events", help="事件：聚类、热度、预警等级（issue 8）")
    evsub = ev.add_subparsers(dest="events_command", required=True)
    a = evsub.add_parser(
        "assign",
        help="posts as JSON lines on stdin -> {id, event_id, heat, risk_level} lines on stdout",
        description="Reads posts (JSON lines: id, title, text, published_at, likes, dislikes, ...; in time order) "
        "and writes one line per post with its event, the event's heat (0-100) and risk level (I-IV) at that "
        "post's time. Runs the service's clustering and scoring on a simulated clock.",
    )
    a.add_argument("--events-out", type=Path, help="also write each event's final summary (JSON lines) here")
    a.set_defaults(func=cmd_assign)


def build_assigner(settings: Settings) -> Any:
    """The engine and enrichment `events assign` uses, from the project's config files."""
    from events.assign import Assigner
    from events.config import load_events_config
    from events.engine import EventEngine
    from events.keyword_groups import GroupMatcher, load_keyword_groups
    from nlp.segment import segment
    from nlp.taxonomy import load_taxonomy

    cfg = load_events_config(settings.config_file("events.yaml"))
    taxonomy = load_taxonomy(settings.config_file("taxonomy.yaml"))
    groups = load_keyword_groups(settings.config_file("keyword_groups.yaml"))
    engine = EventEngine(cfg, unit_of=taxonomy.unit_of, segment=segment)
    return Assigner(engine, taxonomy=taxonomy, groups=GroupMatcher(groups.groups))


def _summary_json(summary: Any) -> str:
    def default(value: Any) -> Any:
        if hasattr(value, "isoformat"):
            return value.isoformat()
        raise TypeError(f"not serialisable: {type(value).__name__}")

    return json.dumps(dataclasses.asdict(summary), ensure_ascii=False, default=default)


def cmd_assign(args: argparse.Namespace, settings: Settings) -> int:
    from zoneinfo import ZoneInfo

    from events.assign import write_results

    assigner = build_assigner(settings)
    n = write_results(assigner, sys.stdin, sys.stdout, ZoneInfo(settings.timezone))
    sys.stdout.flush()
    engine = assigner.engine
    log.info("events assign: %d posts -> %d events (%d merges)", n, len(engine.clusterer.events),
             len(engine.clusterer.merges))
    if args.events_out is not None:
        with args.events_out.open("w", encoding="utf-8") as fh:
            for eid in engine.event_ids():
                fh.write(_summary_json(engine.summary(eid)) + "\n")
    return 0
