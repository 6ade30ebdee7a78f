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

from yuqing.settings import PROJECT_ROOT, Settings

if TYPE_CHECKING:
    from yuqing.scheduler import CrawlOutcome, PostCrawlJob

log = logging.getLogger(__name__)


def _alert_job(settings: Settings, _outcome: CrawlOutcome | None) -> object:
    """The alert run (rules over the posts indexed since the last run, mails over SMTP): the first post-crawl job."""
    from alerts.service import run_alerts
    from index.client import es_client

    with es_client(settings.elasticsearch) as client:
        return run_alerts(settings, client)


def post_crawl_jobs(settings: Settings, *, alerts: bool = True) -> list[PostCrawlJob]:
    """What the scheduler runs, in order, after each crawl (and at start-up): one place to append a job.

    Still to come here (phase 2): the events update (clustering as the single writer of event records), the 失声
    check of open tickets, alert decide + outbox send, the daily/weekly reports.
    """
    from yuqing.scheduler import PostCrawlJob

    jobs: list[PostCrawlJob] = []
    if alerts:
        jobs.append(PostCrawlJob("alerts", partial(_alert_job, settings)))
    return jobs


def _record_crawl(settings: Settings, kinds: dict[str, str], outcome: CrawlOutcome) -> None:
    """A crawl child records its own sources' health; the sources of a child that died without a report are
    recorded here, each as a failed run."""
    if outcome.report is None:
        from datetime import datetime

        from index.client import es_client
        from index.source_health import crashed_run, write_runs

        now = datetime.now().astimezone()
        error = outcome.error or "crawl failed without a report"
        runs = [crashed_run(source, kinds.get(source, ""), error, now) for source in outcome.sources]
        with es_client(settings.elasticsearch) as client:
            write_runs(client, settings.elasticsearch.index_prefix, runs)


def _setup_indices(settings: Settings) -> None:
    from index.client import es_client
    from index.layout import setup

    with es_client(settings.elasticsearch) as client:
        setup(client, settings.elasticsearch)


def _run(args: argparse.Namespace, settings: Settings) -> int:
    from index.client import check_connection
    from yuqing.scheduler import Scheduler
    from yuqing.sources import load_sources

    sources = load_sources(settings.config_file("sources.yaml")).enabled()
    if not args.no_alerts:
        settings.require_smtp()
    jobs = post_crawl_jobs(settings, alerts=not args.no_alerts)
    check_connection(settings.elasticsearch)  # wrong credentials or CA: refuse now, naming the setting
    _setup_indices(settings)
    scheduler = Scheduler(
        settings=settings,
        sources=sources,
        config=args.config,
        post_crawl_jobs=jobs,
        on_crawl_done=partial(_record_crawl, settings, {s.name: s.kind for s in sources}),
    )
    scheduler.install_signal_handlers()
    log.info("scheduler: %d sources (due ones crawled together in one child), default interval %ss; after each "
             "crawl: %s", len(sources), settings.schedule.crawl_interval_s,
             ", ".join(j.name for j in jobs) or "no jobs")
    scheduler.run()
    return 0


@dataclass
class _Proc:
    name: str
    popen: subprocess.Popen[bytes]


def _duration(seconds: float) -> str:
    return f"{seconds:.0f} seconds" if seconds < 120 else f"{seconds / 60:.0f} minutes"


def _shared_data_line(settings: Settings) -> str:
    """The one line `up` says about the shared data: joined the demo replay, or not (and why)."""
    from yuqing.demo.shared import present

    folder = settings.paths.shared_data
    if not settings.demo.join_shared:
        return "shared data: not joining the demo (demo.join_shared is false); the demo replays its own corpus"
    if present(folder):
        return f"shared data: the real pages and board messages of {folder} join the demo replay"
    return (f"shared data: {folder} not found, so it did not join; the demo replays its own corpus "
            "(set paths.shared_data / YUQING_PATHS__SHARED_DATA to add the real pages and board messages)")


def _up(args: argparse.Namespace, settings: Settings) -> int:
    from dashboard.accounts import ensure_demo_admin
    from dashboard.cli import streamlit_command, streamlit_env
    from index.client import es_client
    from index.es_server import LocalElasticsearch
    from index.layout import setup
    from yuqing.demo.corpus import RISE_MINUTES

    server = LocalElasticsearch(settings.local_es)
    health = server.start()
    log.info("elasticsearch at %s: %s", server.url, health.status)
    demo_url = f"http://{settings.demo.host}:{settings.demo.port}/"
    with es_client(settings.elasticsearch) as client:
        setup(client, settings.elasticsearch)
        if settings.demo.fresh and settings.demo.port:
            from yuqing.demo.reset import forget_earlier_replay

            forget_earlier_replay(client, settings.elasticsearch.index_prefix, demo_url)
    log.info("%s", _shared_data_line(settings))
    admin_password = ensure_demo_admin(settings)  # a new random one only when users.yaml has no admin

    py = sys.executable
    cfg = ["-c", args.config] if args.config else []
    commands: list[tuple[str, list[str]]] = [("demo-site", [py, "-m", "yuqing.demo", *cfg])]
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
              f"demo site {demo_url}  "
              f"alert mails in {settings.paths.data_dir / 'mail'}  (Ctrl-C stops)\n"
              f"demo: 青川市图书馆 closes overnight without notice; the story rises over the next "
              f"{_duration(RISE_MINUTES * settings.demo.minute_s)} (README: The demo)\n", flush=True)
        if admin_password:  # printed once, never logged
            print(f"dashboard login: admin / {admin_password}  (shown only now; change it with "
                  "`yuqing users passwd admin`)\n", flush=True)
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
    run = sub.add_parser("run", help="crawl the due sources (one child per round), then the post-crawl jobs (alerts), "
                         "until stopped")
    run.add_argument("--no-alerts", action="store_true", help="crawl and index only")
    run.set_defaults(func=_run)
    up = sub.add_parser("up", help="start everything locally: Elasticsearch, demo source, scheduler, dashboard")
    up.add_argument("--stop-es", action="store_true", help="stop Elasticsearch too on exit")
    up.set_defaults(func=_up)
