"""What every benchmark does first: its arguments, the settings, logging, the local Elasticsearch."""

from __future__ import annotations

import argparse

from index.es_server import LocalElasticsearch
from yuqing.logs import setup_logging
from yuqing.settings import Settings, load_settings


def start(description: str | None, default_n: int, component: str) -> tuple[argparse.Namespace, Settings]:
    """(arguments with ``--n``, settings) of a benchmark, with logging set up and Elasticsearch started."""
    ap = argparse.ArgumentParser(description=description)
    ap.add_argument("--n", type=int, default=default_n)
    args = ap.parse_args()
    settings = load_settings()
    setup_logging(settings, component)
    LocalElasticsearch(settings.local_es).start()
    return args, settings
