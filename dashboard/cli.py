"""`yuqing dashboard`: serve the Streamlit dashboard on ``dashboard.host``:``dashboard.port``; `yuqing sources`:
each source's health, as the 信源状态 page shows it."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

from yuqing.settings import PROJECT_ROOT, Settings

APP_PATH = Path(__file__).resolve().parent / "app.py"


def streamlit_command(host: str, port: int, *, python: str | None = None) -> list[str]:
    """The command line that serves the dashboard: ``streamlit run dashboard/app.py`` through
    :mod:`dashboard.serve`, which warms the process as it starts (the first user's overview does not pay for it).

    Headless (no browser is opened), no usage statistics sent, no source-file watching (a served app is not
    edited in place, and watching costs CPU), and a toolbar without the developer menu.
    """
    return [
        python or sys.executable, "-m", "dashboard.serve",
        "--server.address", host,
        "--server.port", str(port),
        "--server.headless", "true",
        "--server.fileWatcherType", "none",
        "--browser.gatherUsageStats", "false",
        "--client.toolbarMode", "minimal",
    ]


def streamlit_env(config: str | None, environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The server's environment: ours, plus ``YUQING_CONFIG`` when a config file was named with ``-c``.

    The Streamlit process builds its own settings from this environment, so it sees the same configuration.
    """
    env = dict(os.environ if environ is None else environ)
    if config:
        env["YUQING_CONFIG"] = str(Path(config).resolve())
    return env


def _dashboard_command(args: argparse.Namespace, settings: Settings) -> int:
    host = args.host or settings.dashboard.host
    port = args.port or settings.dashboard.port
    print(f"仪表盘地址 http://{host}:{port}", flush=True)
    return subprocess.call(
        streamlit_command(host, port), cwd=PROJECT_ROOT, env=streamlit_env(getattr(args, "config", None))
    )


def _sources_command(args: argparse.Namespace, settings: Settings) -> int:
    """Print each configured source's health; exit 1 when any is silent or failing."""
    from dashboard.format import STATUS_LABELS
    from index.client import es_client
    from index.source_health import ALARMING, source_statuses
    from yuqing.sources import load_sources

    names = [s.name for s in load_sources(settings.config_file("sources.yaml")).enabled()]
    with es_client(settings.elasticsearch) as client:
        statuses = source_statuses(client, settings.elasticsearch.index_prefix, names,
                                   settings.crawl.silent_after_runs)
    for s in statuses:
        last = s.last_success.isoformat(timespec="minutes") if s.last_success else "-"
        print(f"{s.source}\t{s.status}\t{STATUS_LABELS[s.status]}\tlast success {last}"
              + (f"\t{s.last_error}" if s.last_error else ""))
    return 1 if any(s.status in ALARMING for s in statuses) else 0


def add_subcommand(sub: argparse._SubParsersAction) -> None:
    sub.add_parser("sources", help="health of each configured source (silent, failing, calm, ok)").set_defaults(
        func=_sources_command)
    parser = sub.add_parser("dashboard", help="serve the press officers' dashboard (Streamlit)")
    parser.add_argument("--host", help="listen address (default: dashboard.host)")
    parser.add_argument("--port", type=int, help="port (default: dashboard.port)")
    parser.set_defaults(func=_dashboard_command)
