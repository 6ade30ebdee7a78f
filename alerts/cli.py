"""``yuqing alert``: run the alert rules once and print the report (``--check``: only check the rules)."""

from __future__ import annotations

import argparse

from yuqing.settings import Settings


def add_subcommand(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("alert", help="send alert emails for new posts matching the rules (once)")
    parser.add_argument(
        "--check", action="store_true", help="only load and check the rules file, then list the rules"
    )
    parser.set_defaults(func=handler)


def handler(args: argparse.Namespace, settings: Settings) -> int:
    """Exit status: 0 when every alert went out, 1 when the SMTP server rejected some (they are retried)."""
    from alerts.rules import load_rules, rules_path

    if not args.check:
        settings.require_smtp()  # refuse before anything else
    path = rules_path(settings)
    rules = load_rules(path)
    if args.check:
        print(f"{path}: {len(rules)} enabled rules")
        for rule in rules:
            print(f"  {rule.name}: {rule.summary()} -> {', '.join(rule.recipients)}")
        return 0

    from alerts.service import run_alerts
    from index.client import es_client

    with es_client(settings.elasticsearch) as client:
        report = run_alerts(settings, client, rules=rules)
    print(report.summary())
    for error in report.errors:
        print(f"  failed: {error}")
    return 0 if report.failed == 0 else 1
