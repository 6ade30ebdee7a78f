"""`yuqing run` (the scheduler) and `yuqing up` (everything, locally: ES, demo source, mail sink, scheduler,
dashboard)."""

from __future__ import annotations

import argparse
import logging
import signal
import subprocess
import sys
import threading
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING

from yuqing.errors import ConfigError
from yuqing.settings import PROJECT_ROOT, Settings

if TYPE_CHECKING:
    from crawlers.runner import CrawlReport

log = logging.getLogger(__name__)


def _alert_job(settings: Settings) -> object:
    from alerts.service import run_alerts
    from index.client import es_client

    with es_client(settings.elasticsearch) as client:
        return run_alerts(settings, client)


def _record_crawl(settings: Settings, kinds: dict[str, str], source: str, report: CrawlReport | None,
                  error: str | None) -> None:
    """A crawl child records its own health; a child that died without a report is recorded here."""
    if report is None:
        from datetime import datetime

        from index.client import es_client
        from index.source_health import crashed_run, write_runs

        run = crashed_run(source, kinds.get(source, ""), error or "crawl failed without a report",
                          datetime.now().astimezone())
        with es_client(settings.elasticsearch) as client:
            write_runs(client, settings.elasticsearch.index_prefix, [run])


def _setup_indices(settings: Settings) -> None:
    from index.client import es_client
    from index.layout import setup

    with es_client(settings.elasticsearch) as client:
        setup(client, settings.elasticsearch)


def _run(args: argparse.Namespace, settings: Settings) -> int:
    from yuqing.scheduler import Scheduler
    from yuqing.sources import load_sources

    sources = load_sources(settings.config_file("sources.yaml")).enabled()
    alert_job = None
    if not args.no_alerts:
        settings.require_smtp()
        alert_job = partial(_alert_job, settings)
    _setup_indices(settings)
    scheduler = Scheduler(
        settings=settings,
        sources=sources,
        config=args.config,
        alert_job=alert_job,
        on_crawl_done=partial(_record_crawl, settings, {s.name: s.kind for s in sources}),
    )
    scheduler.install_signal_handlers()
    log.info("scheduler: %d sources every %ss, alerts every %ss", len(sources),
             settings.schedule.crawl_interval_s, settings.schedule.alert_interval_s)
    scheduler.run()
    return 0


@dataclass
class _Proc:
    name: str
    popen: subprocess.Popen[bytes]


def _up(args: argparse.Namespace, settings: Settings) -> int:
    from dashboard.cli import streamlit_command, streamlit_env
    from index.es_server import LocalElasticsearch

    gne = settings.paths.shared_data / "html" / "gne"
    if not (gne / "index.csv").exists():
        raise ConfigError(
            f"the demo source replays the saved pages under {gne}, which is missing: point paths.shared_data "
            "(YUQING_PATHS__SHARED_DATA) at the shared data folder",
            field="paths.shared_data",
        )
    server = LocalElasticsearch(settings.local_es)
    health = server.start()
    log.info("elasticsearch at %s: %s", server.url, health.status)
    _setup_indices(settings)

    py = sys.executable
    cfg = ["-c", args.config] if args.config else []
    commands: list[tuple[str, list[str]]] = [
        ("demo-source", [py, "-m", "yuqing.demo", "--pages", str(gne), "--host", settings.demo.host,
                         "--port", str(settings.demo.port), "--per-step", str(settings.demo.pages_per_step),
                         "--step-seconds", str(settings.demo.step_interval_s)]),
    ]
    if settings.smtp.host in ("127.0.0.1", "localhost"):
        commands.append(("mail-sink", [py, "-m", "yuqing.mailsink", "--host", settings.smtp.host,
                                       "--port", str(settings.smtp.port),
                                       "--dir", str(settings.paths.data_dir / "mail")]))
    commands += [
        ("scheduler", [py, "-m", "yuqing.cli", *cfg, "run"]),
        ("dashboard", streamlit_command(settings.dashboard.host, settings.dashboard.port)),
    ]
    procs: list[_Proc] = []
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    try:
        for name, cmd in commands:
            procs.append(_Proc(name, subprocess.Popen(cmd, cwd=PROJECT_ROOT, env=streamlit_env(args.config))))
            log.info("started %s (pid %d)", name, procs[-1].popen.pid)
        print(f"\nyuqing is up: dashboard http://{settings.dashboard.host}:{settings.dashboard.port}  "
              f"demo feed http://{settings.demo.host}:{settings.demo.port}/feed.xml  "
              f"alert mails in {settings.paths.data_dir / 'mail'}  (Ctrl-C stops)\n", flush=True)
        while not stop.wait(1.0):
            dead = [p for p in procs if p.popen.poll() is not None]
            if dead:
                for p in dead:
                    log.error("%s exited with code %s; stopping everything", p.name, p.popen.returncode)
                return 1
        return 0
    finally:
        for p in reversed(procs):
            if p.popen.poll() is None:
                p.popen.terminate()
        for p in procs:
            try:
                p.popen.wait(timeout=30)
            except subprocess.TimeoutExpired:
                p.popen.kill()
        if args.stop_es:
            server.stop()


def add_subcommands(sub: argparse._SubParsersAction) -> None:
    run = sub.add_parser("run", help="run the periodic crawl → index → alert jobs until stopped")
    run.add_argument("--no-alerts", action="store_true", help="crawl and index only")
    run.set_defaults(func=_run)
    up = sub.add_parser("up", help="start everything locally: Elasticsearch, demo source, scheduler, dashboard")
    up.add_argument("--stop-es", action="store_true", help="stop Elasticsearch too on exit")
    up.set_defaults(func=_up)
