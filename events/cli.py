"""``yuqing events …``: ``assign`` clusters and scores posts given as JSON lines (no Elasticsearch needed);
``list`` and ``show`` read the events index as the 热点事件 and 事件详情 pages do (:mod:`events.browse`);
``groups`` evaluates the 专题 keyword groups."""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from yuqing.settings import Settings

log = logging.getLogger(__name__)


def add_subcommands(sub: argparse._SubParsersAction,
                    more: Sequence[Callable[[argparse._SubParsersAction], None]] = ()) -> None:
    """``yuqing events …``; ``more`` adds sub-commands of higher layers (``events update``: ingest)."""
    ev = sub.add_parser("events", help="事件：聚类、热度、预警等级（issue 8）")
    evsub = ev.add_subparsers(dest="events_command", required=True)
    for add in more:
        add(evsub)
    a = evsub.add_parser(
        "assign",
        help="posts as JSON lines on stdin -> {id, event_id, heat, risk_level} lines on stdout",
        description="Reads posts (JSON lines: id, title, text, published_at, likes, dislikes, ...; in time order) "
        "and writes one line per post with its event, the event's heat (0-100) and risk level (I-IV) at that "
        "post's time. Runs the service's clustering and scoring on a simulated clock.",
    )
    a.add_argument("--events-out", type=Path, help="also write each event's final summary (JSON lines) here")
    a.set_defaults(func=cmd_assign)
    g = evsub.add_parser(
        "groups", help="专题: evaluate keyword groups (config/keyword_groups.yaml) against the index",
        description="For each group (default: all), the posts of the whole index matching its expression now: "
        "their number and the newest titles. --apply stores the group on every matching post and removes it from "
        "posts that no longer match (after adding a group or changing its expression).")
    g.add_argument("names", nargs="*", help="group names (default: every group)")
    g.add_argument("--show", type=int, default=10, help="newest matching titles shown per group (default 10)")
    g.add_argument("--apply", action="store_true", help="update the posts' stored keyword_groups to match")
    g.set_defaults(func=cmd_groups)
    ls = evsub.add_parser(
        "list", help="热点事件: the events, hottest first (as the dashboard lists them)",
        description="The open events, hottest first, with level, heat, size, last post and responsible unit. By "
        "default only the events in scope: those 与本局业务无关 or with only the bureau's own posts are counted "
        "but not listed (--all lists them).")
    ls.add_argument("--level", action="append", choices=["I", "II", "III", "IV"], help="risk level (repeatable)")
    ls.add_argument("--topic", action="append", help="topic (repeatable)")
    ls.add_argument("--unit", action="append", help="responsible unit (repeatable)")
    ls.add_argument("--hours", type=float, help="only events with a post in the last N hours")
    ls.add_argument("--closed", action="store_true", help="closed events too")
    ls.add_argument("--all", action="store_true", help="events out of scope too")
    ls.add_argument("--limit", type=int, default=30, help="events listed (default 30)")
    ls.add_argument("--json", action="store_true", help="one JSON object per event")
    ls.set_defaults(func=cmd_list)
    sh = evsub.add_parser("show", help="事件详情: one event's level and reasons, forecast, sources and posts")
    sh.add_argument("id", help="event id (the first column of `yuqing events list`)")
    sh.add_argument("--posts", type=int, default=0, metavar="N", help="also its first N posts in time order")
    sh.add_argument("--json", action="store_true", help="the record as JSON")
    sh.set_defaults(func=cmd_show)


def build_assigner(settings: Settings, adjust: Any = None) -> Any:
    """The engine and enrichment `events assign` uses, from the project's config files; ``adjust`` (an
    ``EventsConfig -> EventsConfig``) changes the events config first (benchmarks)."""
    from events.assign import Assigner
    from events.config import load_events_config
    from events.engine import EventEngine
    from events.keyword_groups import GroupMatcher, load_keyword_groups
    from nlp.segment import segment
    from nlp.taxonomy import load_taxonomy

    cfg = load_events_config(settings.config_file("events.yaml"))
    if adjust is not None:
        cfg = adjust(cfg)
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


def cmd_groups(args: argparse.Namespace, settings: Settings) -> int:
    from events.keyword_groups import es_query, load_keyword_groups
    from index.client import check_connection, es_client
    from index.events import sync_group
    from index.layout import POSTS, setup
    from yuqing.errors import YuqingError

    path = settings.config_file("keyword_groups.yaml")
    groups = {g.name: g for g in load_keyword_groups(path).groups}
    unknown = [n for n in args.names if n not in groups]
    if unknown:
        raise YuqingError(f"{path}: no group named {', '.join(unknown)} (groups: {', '.join(groups) or 'none'})")
    check_connection(settings.elasticsearch)
    alias = POSTS.alias(settings.elasticsearch.index_prefix)
    with es_client(settings.elasticsearch) as client:
        setup(client, settings.elasticsearch, [POSTS])
        for name in args.names or list(groups):
            group = groups[name]
            query = es_query(group.parsed)
            resp = client.search(index=alias, query=query, size=max(0, args.show), track_total_hits=True,
                                 sort=[{"published_at": {"order": "desc", "missing": "_last"}}],
                                 source_includes=["title", "source", "published_at"])
            total = resp["hits"]["total"]["value"]
            print(f"{name}  [{group.expression}]  {total} 条")
            for h in resp["hits"]["hits"]:
                src = h["_source"]
                when = (src.get("published_at") or "")[:16]
                print(f"  {when}  {src.get('title') or h['_id']}  ({src.get('source')})")
            if args.apply:
                added, removed = sync_group(client, alias, name, query)
                print(f"  已更新：新增 {added} 条，移除 {removed} 条")
    return 0


def _events_index(settings: Settings) -> str:
    """A connected client and the events alias; refuses clearly when Elasticsearch is unreachable."""
    from index.client import check_connection
    from index.events import EVENTS

    check_connection(settings.elasticsearch)
    return EVENTS.alias(settings.elasticsearch.index_prefix)


_NO_EVENTS = "尚未建立事件数据：事件聚类任务（`yuqing run` 每次采集后运行，或 `yuqing events update`）还没有运行。"


def cmd_list(args: argparse.Namespace, settings: Settings) -> int:
    from datetime import UTC, datetime, timedelta
    from zoneinfo import ZoneInfo

    from elasticsearch import NotFoundError

    from events.browse import event_line, list_footer, record_json
    from index.client import es_client
    from index.events import EventFilter, hot_events
    from yuqing.errors import YuqingError

    if args.limit < 1:
        raise YuqingError("--limit must be at least 1")
    if args.hours is not None and args.hours <= 0:
        raise YuqingError("--hours must be more than 0")
    since = datetime.now(UTC) - timedelta(hours=args.hours) if args.hours is not None else None
    f = EventFilter(levels=tuple(args.level or ()), topics=tuple(args.topic or ()), units=tuple(args.unit or ()),
                    since=since, include_closed=args.closed, in_scope_only=not args.all, size=args.limit)
    alias = _events_index(settings)
    with es_client(settings.elasticsearch) as client:
        try:
            found = hot_events(client, alias, f)
        except NotFoundError as exc:
            raise YuqingError(_NO_EVENTS) from exc
    if args.json:
        for r in found.records:
            print(record_json(r))
        return 0
    tz = ZoneInfo(settings.timezone)
    for r in found.records:
        print(event_line(r, tz))
    print(list_footer(found, f.in_scope_only))
    return 0


def cmd_show(args: argparse.Namespace, settings: Settings) -> int:
    from zoneinfo import ZoneInfo

    from elasticsearch import NotFoundError

    from events.browse import event_detail, post_lines, record_json
    from index.client import es_client
    from index.events import event_posts_query, get_events
    from index.hits import read_hits
    from index.layout import POSTS
    from yuqing.errors import YuqingError

    alias = _events_index(settings)
    with es_client(settings.elasticsearch) as client:
        try:
            record = get_events(client, alias, [args.id]).get(args.id)
        except NotFoundError as exc:
            raise YuqingError(_NO_EVENTS) from exc
        if record is None:
            raise YuqingError(f"没有事件 {args.id}（yuqing events list 列出事件及其编号）")
        posts = None
        if args.posts > 0:
            resp = client.search(index=POSTS.alias(settings.elasticsearch.index_prefix),
                                 **event_posts_query(args.id, args.posts))
            posts = (int(resp["hits"]["total"]["value"]), read_hits(resp["hits"]["hits"]).hits)
    if args.json:
        print(record_json(record))
        return 0
    tz = ZoneInfo(settings.timezone)
    for line in event_detail(record, tz):
        print(line)
    if posts is not None:
        for line in post_lines(*posts, tz):
            print(line)
    return 0
