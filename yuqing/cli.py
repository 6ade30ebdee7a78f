"""The `yuqing` command: one entry point that builds the settings once and dispatches to a component."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable, Sequence

from yuqing.errors import YuqingError
from yuqing.settings import Settings, load_settings

Handler = Callable[[argparse.Namespace, Settings], int]
log = logging.getLogger("yuqing")


def _setup_command(args: argparse.Namespace, settings: Settings) -> int:
    from index.client import check_connection, make_client
    from index.layout import setup

    check_connection(settings.elasticsearch)
    for alias, index in setup(make_client(settings.elasticsearch), settings.elasticsearch).items():
        print(f"{alias} -> {index}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="yuqing", description="文化舆情监测与回应平台")
    parser.add_argument("-c", "--config", help="config file (default: $YUQING_CONFIG or config/yuqing.yaml)")
    parser.add_argument("-v", "--verbose", action="store_true")
    sub = parser.add_subparsers(dest="command", required=True)

    from yuqing.es_cli import add_subcommand as add_es

    add_es(sub)

    sub.add_parser("setup", help="create index templates, indices and aliases").set_defaults(func=_setup_command)

    from yuqing import commands

    commands.add_subcommands(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if not args.verbose:  # one line per HTTP request is noise on a terminal
        logging.getLogger("elastic_transport").setLevel(logging.WARNING)
    try:
        settings = load_settings(args.config)
        func: Handler = args.func
        return func(args, settings)
    except YuqingError as exc:
        print(f"yuqing: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
