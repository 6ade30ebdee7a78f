"""The `yuqing` command: one entry point that builds the settings once, sets logging up and dispatches to a
component."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable, Sequence

from yuqing.errors import YuqingError
from yuqing.logs import setup_logging
from yuqing.settings import Settings, load_settings

Handler = Callable[[argparse.Namespace, Settings], int]
log = logging.getLogger("yuqing")


def _setup_command(args: argparse.Namespace, settings: Settings) -> int:
    from index.client import check_connection, es_client
    from index.layout import setup

    check_connection(settings.elasticsearch)
    with es_client(settings.elasticsearch) as client:
        for alias, index in setup(client, settings.elasticsearch).items():
            print(f"{alias} -> {index}")
    return 0


def _migrate_command(args: argparse.Namespace, settings: Settings) -> int:
    from index.client import check_connection, es_client
    from index.hotwords import load_hot_words
    from index.migrations import migrate_outdated
    from response.service import MIGRATIONS

    check_connection(settings.elasticsearch)
    with es_client(settings.elasticsearch) as client:
        done = migrate_outdated(client, settings.elasticsearch, load_hot_words(settings.config_file("hotwords.yaml")),
                                transforms=MIGRATIONS)
    for m in done:
        print(f"{m.alias}: {m.old} -> {m.new} ({m.documents} documents; {m.old} kept, delete it when satisfied)")
    if not done:
        print("every index is up to date")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="yuqing", description="文化舆情监测与回应平台")
    parser.add_argument("-c", "--config", help="config file (default: $YUQING_CONFIG or config/yuqing.yaml)")
    parser.add_argument("-v", "--verbose", action="store_true", help="log at DEBUG (overrides logging.level)")
    sub = parser.add_subparsers(dest="command", required=True)

    from yuqing.es_cli import add_subcommand as add_es

    add_es(sub)

    sub.add_parser("setup", help="create index templates, indices and aliases").set_defaults(func=_setup_command)
    sub.add_parser(
        "migrate", help="copy indices made by an older layout version into new ones and swap their aliases "
        "(stop the scheduler first)",
    ).set_defaults(func=_migrate_command)

    from yuqing import commands

    commands.add_subcommands(sub)
    return parser


def component_of(args: argparse.Namespace) -> str:
    """What this process's log lines are named after: ``crawl:SOURCE``, ``scheduler``, ``alert``, …"""
    if args.command == "crawl" and args.source:
        return "crawl:" + ",".join(args.source)
    return {"run": "scheduler", "nlp": f"nlp:{getattr(args, 'nlp_command', '')}"}.get(args.command, args.command)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    settings: Settings | None = None
    try:
        settings = load_settings(args.config)
        setup_logging(settings, component_of(args), verbose=args.verbose)
        func: Handler = args.func
        return func(args, settings)
    except YuqingError as exc:
        print(f"yuqing: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except Exception as exc:
        message = _unreachable_cluster(exc, settings)
        if message is None:
            raise  # a bug: the traceback is what is needed
        log.debug("elasticsearch did not answer", exc_info=exc)  # the full detail, in the log file
        print(f"yuqing: {message}", file=sys.stderr)
        return 2


def _unreachable_cluster(exc: BaseException, settings: Settings | None) -> str | None:
    """The one line for a command that found no Elasticsearch node answering (a connection error or timeout of
    the client, wherever it arose), or None for any other failure."""
    from elastic_transport import ConnectionError as NoConnection
    from elastic_transport import ConnectionTimeout

    if settings is None or not isinstance(exc, NoConnection | ConnectionTimeout):
        return None
    from index.client import describe, shown_hosts

    return (f"elasticsearch at {', '.join(shown_hosts(settings.elasticsearch))}: {describe(exc)}; "
            "start it (yuqing es start) or set elasticsearch.hosts")


if __name__ == "__main__":
    sys.exit(main())
