"""Sub-commands contributed by the components: each component adds its own parsers.

The components' modules import only argparse and the settings at module level; everything heavy (Scrapy,
torch, Streamlit) is imported inside the handlers, so `yuqing --help` stays fast. This is where components
that must not import each other are wired together (the crawl's search keywords come from the alert rules).
"""

from __future__ import annotations

import argparse

from alerts.cli import add_subcommand as add_alert
from alerts.report_cli import add_subcommand as add_report
from alerts.rules import search_keywords
from crawlers.cli import add_subcommand as add_crawl
from crawlers.extract_cli import add_subcommand as add_extract
from dashboard.cli import add_subcommand as add_dashboard
from dashboard.users_cli import add_subcommand as add_users
from events.cli import add_subcommands as add_events
from ingest.cli import add_subcommand as add_ingest
from ingest.events_cli import add_update as add_events_update
from ingest.judgements_cli import add_subcommand as add_judgements
from nlp.cli import add_subcommands as add_nlp
from response.cli import add_subcommands as add_response
from yuqing.service import add_subcommands as add_service


def add_subcommands(sub: argparse._SubParsersAction) -> None:
    add_crawl(sub, search_keywords=search_keywords)
    for add in (add_ingest, add_extract, add_alert, add_report, add_dashboard, add_users, add_service, add_response,
                add_judgements):
        add(sub)
    add_events(sub, more=[add_events_update])
    nlp = sub.add_parser("nlp", help="train, evaluate and run the Chinese classifier")
    add_nlp(nlp.add_subparsers(dest="nlp_command", required=True))
