"""Sub-commands contributed by the components: each component adds its own parsers.

The components' modules import only argparse and the settings at module level; everything heavy (Scrapy,
torch, Streamlit) is imported inside the handlers, so `yuqing --help` stays fast. This is where components
that must not import each other are wired together (the crawl's search keywords come from the alert rules).
"""

from __future__ import annotations

import argparse

from alerts.cli import add_subcommand as add_alert
from alerts.rules import search_keywords
from crawlers.cli import add_subcommand as add_crawl
from crawlers.extract_cli import add_subcommand as add_extract
from dashboard.cli import add_subcommand as add_dashboard
from ingest.cli import add_subcommand as add_ingest
from nlp.cli import add_subcommands as add_nlp
from yuqing.service import add_subcommands as add_service


def add_subcommands(sub: argparse._SubParsersAction) -> None:
    add_crawl(sub, search_keywords=search_keywords)
    for add in (add_ingest, add_extract, add_alert, add_dashboard, add_service):
        add(sub)
    nlp = sub.add_parser("nlp", help="train, evaluate and run the Chinese classifier")
    add_nlp(nlp.add_subparsers(dest="nlp_command", required=True))
