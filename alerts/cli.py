"""``yuqing alert``: decide once (every rule over the current signals, into the outbox) and deliver what is due;
``--check``: only check the rules file and explain every rule in Chinese."""

from __future__ import annotations

import argparse

from yuqing.settings import Settings


def add_subcommand(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("alert", help="decide alerts for the current signals into the outbox and send what is "
                            "due (once; `yuqing run` does this continuously)")
    parser.add_argument(
        "--check", action="store_true", help="only load and check the rules file, then explain every rule"
    )
    parser.add_argument(
        "--retry-failed", action="store_true",
        help="first give every mail given up on (status failed) a new round of attempts, e.g. after the mail "
             "server was fixed"
    )
    parser.set_defaults(func=handler)


def handler(args: argparse.Namespace, settings: Settings) -> int:
    """Exit status: 0 when nothing failed, 1 when some mail failed (retried later, or given up: see the dashboard)."""
    from alerts.rules import alert_config, rules_path

    if not args.check:
        settings.require_smtp()  # refuse before anything else
    path = rules_path(settings)
    config = alert_config(settings)
    if args.check:
        n = len(config.post_rules) + len(config.signal_rules.rules)
        print(f"{path}: {n} enabled rules, {len(config.signal_rules.directory.people)} people")
        for line in config.explain():
            print(f"  {line}")
        return 0

    from alerts.service import AlertDecider, deliver_once
    from index.client import check_connection, es_client
    from yuqing.sources import load_sources

    sources = load_sources(settings.config_file("sources.yaml")).sources
    check_connection(settings.elasticsearch)  # wrong credentials or CA: refuse now, naming the setting
    with es_client(settings.elasticsearch) as client:
        if args.retry_failed:
            from datetime import UTC, datetime

            from index.outbox import OUTBOX, requeue_failed

            again = requeue_failed(client, OUTBOX.alias(settings.elasticsearch.index_prefix), datetime.now(UTC))
            print(f"{len(again)} failed mails queued again")
        decided = AlertDecider.for_sources(settings, sources).run(client)
        delivered = deliver_once(settings, client)
    print(decided.summary())
    print(delivered.summary())
    for error in delivered.errors:
        print(f"  failed: {error}")
    return 0 if not delivered.errors else 1
