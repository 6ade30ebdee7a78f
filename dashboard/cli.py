"""`yuqing dashboard`: serve the Streamlit dashboard on ``dashboard.host``:``dashboard.port``."""

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
    """The command line that serves the dashboard.

    Headless (no browser is opened), no usage statistics sent, no source-file watching (a served app is not
    edited in place, and watching costs CPU), and a toolbar without the developer menu.
    """
    return [
        python or sys.executable, "-m", "streamlit", "run", str(APP_PATH),
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


def add_subcommand(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("dashboard", help="serve the press officers' dashboard (Streamlit)")
    parser.add_argument("--host", help="listen address (default: dashboard.host)")
    parser.add_argument("--port", type=int, help="port (default: dashboard.port)")
    parser.set_defaults(func=_dashboard_command)
