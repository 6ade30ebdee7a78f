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
from pathlib import Path
from typing import TYPE_CHECKING

from yuqing.settings import PROJECT_ROOT, Settings

if TYPE_CHECKING:
    from elasticsearch import Elasticsearch

    from alerts.service import AlertDecider, SenderThread
    from ingest.events_job import EventsUpdater
    from response.jobs import ResponseJobs
    from yuqing.demo.tickets import DemoTicketSeeder
    from yuqing.scheduler import CrawlOutcome, PostCrawlJob

log = logging.getLogger(__name__)


def _alert_job(settings: Settings, decider: AlertDecider, sender: SenderThread | None,
               _outcome: CrawlOutcome | None) -> object:
    """Alert decide: the signals of the rules in config/alerts.yaml into the outbox; the sender thread is woken
    when something new was decided (it delivers within seconds)."""
    from index.client import es_client

    with es_client(settings.elasticsearch) as client:
        report = decider.run(client)
    if report.created and sender is not None:
        sender.wake()
    return report


class _EventsJob:
    """The events update (``ingest.events_job``): the single writer of event records. Its configuration is read
    at start-up (a bad 专题 expression stops the start, naming the file and the group); the updater and its
    engine, held in memory between runs, are made on the first run."""

    def __init__(self, settings: Settings) -> None:
        from ingest.events_job import EventsConfigFiles

        self.settings = settings
        self.config = EventsConfigFiles.load(settings)
        self.updater: EventsUpdater | None = None

    def __call__(self, _outcome: CrawlOutcome | None) -> object:
        from index.client import es_client

        with es_client(self.settings.elasticsearch) as client:
            if self.updater is None:
                from ingest.events_job import EventsUpdater

                self.updater = EventsUpdater(self.settings, client, config=self.config)
            self.updater.client = client
            return self.updater.run_once()


def _judgements_job(settings: Settings, _outcome: CrawlOutcome | None) -> object:
    """人工研判 of the last ``schedule.judgement_reconcile_hours`` written into any judged post that does not show
    it (its post write failed, or a re-crawl raced it): before the events update, which then counts it."""
    from datetime import datetime, timedelta
    from zoneinfo import ZoneInfo

    from index.client import es_client
    from ingest.judgements import JudgementService

    since = datetime.now(ZoneInfo(settings.timezone)) - timedelta(hours=settings.schedule.judgement_reconcile_hours)
    with es_client(settings.elasticsearch) as client:
        # the topics are not needed to write stored judgements; no index set-up here (it runs every round)
        return JudgementService(client, settings.elasticsearch, ()).reconcile(since)


def _response_job(settings: Settings, jobs: ResponseJobs, which: str, _outcome: CrawlOutcome | None) -> object:
    """处置跟踪 after the events update: open tickets by rule (``tickets``), then the 失声 check (``silence``)."""
    from index.client import es_client

    with es_client(settings.elasticsearch) as client:
        return jobs.auto_open(client) if which == "tickets" else jobs.silence(client)


def _decider(settings: Settings) -> AlertDecider:
    from alerts.service import AlertDecider
    from yuqing.sources import load_sources

    return AlertDecider.for_sources(settings, load_sources(settings.config_file("sources.yaml")).sources)


def post_crawl_jobs(settings: Settings, *, alerts: bool = True, decider: AlertDecider | None = None,
                    sender: SenderThread | None = None) -> list[PostCrawlJob]:
    """What the scheduler runs, in order, after each crawl (and at start-up): one place to append a job.

    Alert decide comes last: it reads what the jobs before it wrote (events and their levels, tickets). The
    outbox sender is not a job: a thread of the scheduler process (alerts.service.SenderThread).
    """
    from response.jobs import ResponseJobs
    from yuqing.scheduler import PostCrawlJob

    # 人工研判 that did not reach their posts, first: the events update then counts the person's values.
    jobs: list[PostCrawlJob] = [PostCrawlJob("judgements", partial(_judgements_job, settings))]
    # The events update: the single writer of event records and the posts' event_id (ingest.events_job).
    jobs.append(PostCrawlJob("events", _EventsJob(settings)))
    # Response tracking reads the event records: keep these two after the events update job.
    response = ResponseJobs.from_settings(settings)  # config read now: a bad file stops the start
    jobs.append(PostCrawlJob("tickets", partial(_response_job, settings, response, "tickets")))
    jobs.append(PostCrawlJob("silence", partial(_response_job, settings, response, "silence")))
    if alerts:  # last: it reads the tickets and levels the jobs above wrote
        jobs.append(PostCrawlJob("alerts", partial(_alert_job, settings, decider or _decider(settings), sender)))
    return jobs


def _record_crawl(settings: Settings, kinds: dict[str, str], outcome: CrawlOutcome) -> None:
    """A crawl child records its own sources' health; the sources of a child that died without a report are
    recorded here, each as a failed run (kept on disk when Elasticsearch cannot take them)."""
    if outcome.report is None:
        from datetime import datetime

        from index.health_record import record_runs
        from index.source_health import crashed_run

        now = datetime.now().astimezone()
        error = outcome.error or "crawl failed without a report"
        runs = [crashed_run(source, kinds.get(source, ""), error, now) for source in outcome.sources]
        record_runs(settings.elasticsearch, settings.paths.data_dir, runs)


def _setup_indices(settings: Settings) -> None:
    from index.client import es_client
    from index.layout import setup

    with es_client(settings.elasticsearch) as client:
        setup(client, settings.elasticsearch)


def _migrate_local(settings: Settings, client: Elasticsearch) -> None:
    from index.hotwords import load_hot_words
    from index.migrations import migrate_outdated
    from response.service import MIGRATIONS

    for m in migrate_outdated(client, settings.elasticsearch, load_hot_words(settings.config_file("hotwords.yaml")),
                              transforms=MIGRATIONS):
        log.info("migrated %s: %s -> %s (%d documents; %s kept)", m.alias, m.old, m.new, m.documents, m.old)


def _check_crawl_config(settings: Settings) -> None:
    """Read the files every crawl child reads (privacy.yaml, hotwords.yaml, extraction.yaml,
    keyword_groups.yaml): a malformed one refuses the start now, naming the file, instead of failing every
    crawl."""
    from crawlers.extract import load_extraction_rules
    from crawlers.extract.rules import EXTRACTION_CONFIG_NAME
    from index.hotwords import load_hot_words
    from ingest.privacy import Redactor
    from ingest.service import load_groups

    Redactor.from_file(settings.config_file("privacy.yaml"))
    load_hot_words(settings.config_file("hotwords.yaml"))
    load_extraction_rules(settings.config_file(EXTRACTION_CONFIG_NAME))
    load_groups(settings)


def _run(args: argparse.Namespace, settings: Settings) -> int:
    from index.client import check_connection
    from yuqing.scheduler import Scheduler
    from yuqing.sources import load_sources

    sources_file = load_sources(settings.config_file("sources.yaml"))
    sources = sources_file.enabled()
    _check_crawl_config(settings)
    sender: SenderThread | None = None
    decider: AlertDecider | None = None
    alerts = not (args.no_alerts or args.crawl_only)
    if alerts:
        from alerts.chart import cjk_font
        from alerts.rules import alert_config
        from alerts.service import AlertDecider, SenderThread

        settings.require_smtp()
        alert_config(settings)  # a bad rules file: refuse now, naming the file and the field
        font = cjk_font(settings.alerts.cjk_font)  # no Chinese font: refuse now, not at the first chart
        decider = AlertDecider.for_sources(settings, sources_file.sources, font=font)
        sender = SenderThread(settings, font=font)
    # an extra crawling machine runs no post-crawl job: the events update and 处置跟踪 must have one writer
    jobs = [] if args.crawl_only else post_crawl_jobs(settings, alerts=alerts, decider=decider, sender=sender)
    check_connection(settings.elasticsearch)  # wrong credentials or CA: refuse now, naming the setting
    _setup_indices(settings)
    scheduler = Scheduler(
        settings=settings,
        sources=sources,
        config=args.config,
        post_crawl_jobs=jobs,
        sources_file=settings.config_file("sources.yaml"),
    )
    # the kinds of the sources as they are when a crawl ends (sources.yaml is read again when it changes)
    scheduler.on_crawl_done = lambda outcome: _record_crawl(settings, {s.name: s.kind for s in scheduler.sources},
                                                            outcome)
    scheduler.install_signal_handlers()
    log.info("scheduler: %d sources (due ones crawled together in one child), default interval %ss; after each "
             "crawl: %s", len(sources), settings.schedule.crawl_interval_s,
             ", ".join(j.name for j in jobs) or "no jobs")
    if sender is not None:
        from alerts.report_jobs import ReportJob

        reports = ReportJob(settings, font=font)
        reports.register(scheduler.jobs, on_made=sender.wake)  # 舆情日报/周报 from alerts.*_report_at on
        sender.start()
        try:
            reports.catch_up()  # a report whose time passed while the service was down goes out now
        except Exception:
            log.exception("catching up on today's reports failed; the scheduled run tries again")
    try:
        scheduler.run()
    finally:
        if sender is not None:
            sender.close()
    return 0


@dataclass
class _Proc:
    name: str
    popen: subprocess.Popen[bytes]
    output: Path | None = None  # where its stdout/stderr go, when not to `up`'s own


def dashboard_output(settings: Settings) -> Path:
    """Where `up` sends the dashboard server's standard output (Streamlit's banner, "Stopping..."): beside the
    log file. Not `up`'s terminal: the banner would repeat `up`'s own line, and a Streamlit server whose
    standard output is a pipe nobody reads any more cannot stop (its SIGTERM handler fails printing
    "Stopping..." and the signal is lost). Its log lines and tracebacks (standard error) still reach `up`'s."""
    from yuqing.logs import log_file

    return log_file(settings).parent / "dashboard.out"


def start_child(name: str, cmd: list[str], env: dict[str, str], output: Path | None = None) -> _Proc:
    """A child of `up`, in the project root; its standard output goes to ``output`` (appended) when given,
    else to `up`'s own; its standard error always to `up`'s."""
    if output is None:
        return _Proc(name, subprocess.Popen(cmd, cwd=PROJECT_ROOT, env=env))
    output.parent.mkdir(parents=True, exist_ok=True)
    with output.open("ab") as sink:  # the child holds its own descriptor
        return _Proc(name, subprocess.Popen(cmd, cwd=PROJECT_ROOT, env=env, stdout=sink, stdin=subprocess.DEVNULL),
                     output)


def _last_lines(path: Path, n: int = 8) -> str:
    try:
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError as e:
        return f"(cannot read {path}: {e})"
    return "\n".join(lines[-n:])


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


def _seed_demo_requests(settings: Settings, client: Elasticsearch) -> None:
    """A few 依申请公开 requests for the demo (registered once; see yuqing.demo.requests)."""
    from datetime import UTC, datetime
    from zoneinfo import ZoneInfo

    from response.service import ensure_indices
    from yuqing.demo.requests import seed_demo_requests

    ensure_indices(client, settings.elasticsearch)
    seed_demo_requests(client, settings.elasticsearch.index_prefix,
                       datetime.now(UTC).astimezone(ZoneInfo(settings.timezone)))


def _demo_ticket_seeder(settings: Settings, client: Elasticsearch, demo_url: str) -> DemoTicketSeeder:
    """The demo's 处置单 with 领导批示, opened by `up`'s loop once its event exists (see yuqing.demo.tickets)."""
    from datetime import UTC, datetime
    from zoneinfo import ZoneInfo

    from response.config import load_response_config
    from yuqing.demo.tickets import DemoTicketSeeder

    return DemoTicketSeeder(client, settings.elasticsearch.index_prefix, demo_url,
                            load_response_config(settings.config_file("response.yaml")),
                            datetime.now(UTC).astimezone(ZoneInfo(settings.timezone)))


def _poll_demo_ticket(seeder: DemoTicketSeeder, tz: str) -> None:
    """One look of the demo's 处置单 seeder (yuqing.demo.tickets); Elasticsearch failing is said, and tried again."""
    from datetime import UTC, datetime
    from zoneinfo import ZoneInfo

    from elasticsearch import ApiError, TransportError

    try:
        seeder.poll(datetime.now(UTC).astimezone(ZoneInfo(tz)))
    except (ApiError, TransportError) as exc:
        log.warning("demo: looking for the 魁星阁 event failed (%s); trying again", exc)


def _up(args: argparse.Namespace, settings: Settings) -> int:
    from dashboard.accounts import ensure_demo_admin
    from dashboard.cli import streamlit_command, streamlit_env
    from index.client import es_client, make_client
    from index.es_server import LocalElasticsearch
    from index.layout import setup
    from yuqing.demo.corpus import RISE_MINUTES

    server = LocalElasticsearch(settings.local_es)
    health = server.start()
    log.info("elasticsearch at %s: %s", server.url, health.status)
    demo_url = f"http://{settings.demo.host}:{settings.demo.port}/"
    with es_client(settings.elasticsearch) as client:
        setup(client, settings.elasticsearch)
        _migrate_local(settings, client)  # nothing runs yet: a local index of an older layout is brought up to date
        if settings.demo.fresh and settings.demo.port:
            from events.config import load_events_config
            from yuqing.demo.reset import forget_earlier_replay

            text_cfg = load_events_config(settings.config_file("events.yaml")).text
            forget_earlier_replay(client, settings.elasticsearch.index_prefix, demo_url, text_cfg)
        if settings.demo.port:
            _seed_demo_requests(settings, client)
    log.info("%s", _shared_data_line(settings))
    admin_password = ensure_demo_admin(settings)  # a new random one only when users.yaml has no admin

    py = sys.executable
    cfg = ["-c", args.config] if args.config else []
    commands: list[tuple[str, list[str]]] = [("demo-site", [py, "-m", "yuqing.demo", *cfg])]
    dash_out = dashboard_output(settings)
    if settings.smtp.host in ("127.0.0.1", "localhost"):
        commands.append(("mail-sink", [py, "-m", "yuqing.mailsink", "--host", settings.smtp.host,
                                       "--port", str(settings.smtp.port),
                                       "--dir", str(settings.paths.data_dir / "mail")]))
    commands += [
        ("scheduler", [py, "-m", "yuqing.cli", *cfg, "run"]),
        ("dashboard", streamlit_command(settings.dashboard.host, settings.dashboard.port)),
    ]
    procs: list[_Proc] = []
    seeder_client = make_client(settings.elasticsearch) if settings.demo.port else None
    seeder = _demo_ticket_seeder(settings, seeder_client, demo_url) if seeder_client is not None else None
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    try:
        for name, cmd in commands:
            procs.append(start_child(name, cmd, streamlit_env(args.config), dash_out if name == "dashboard" else None))
            log.info("started %s (pid %d%s)", name, procs[-1].popen.pid,
                     f", output in {dash_out}" if name == "dashboard" else "")
        print(f"\nyuqing is up: dashboard http://{settings.dashboard.host}:{settings.dashboard.port}  "
              f"demo site {demo_url}  "
              f"alert mails in {settings.paths.data_dir / 'mail'}  (Ctrl-C stops)\n"
              f"demo: 青川市图书馆 closes overnight without notice; the story rises over the next "
              f"{_duration(RISE_MINUTES * settings.demo.minute_s)} (README: The demo)\n", flush=True)
        if admin_password:  # printed once, never logged
            print(f"dashboard login: admin / {admin_password}  (shown only now; change it with "
                  "`yuqing users passwd admin`)\n", flush=True)
        while not stop.wait(1.0):
            if seeder is not None and not seeder.done:
                _poll_demo_ticket(seeder, settings.timezone)
            dead = [p for p in procs if p.popen.poll() is not None]
            if dead:
                for p in dead:
                    tail = f"; its last output ({p.output}):\n{_last_lines(p.output)}" if p.output else ""
                    log.error("%s exited with code %s; stopping everything%s", p.name, p.popen.returncode, tail)
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
        if seeder_client is not None:
            seeder_client.close()
        if args.stop_es:
            server.stop()


def add_subcommands(sub: argparse._SubParsersAction) -> None:
    run = sub.add_parser("run", help="crawl the due sources (one child per round), then the post-crawl jobs (人工研判 "
                         "reconcile, events update, 处置单 and 失声 check, alert decide), until stopped")
    run.add_argument("--no-alerts", action="store_true",
                     help="every post-crawl job but alert decide; no mail sender, no 日报/周报")
    run.add_argument("--crawl-only", action="store_true",
                     help="crawl and index only, no post-crawl job: for every crawling machine but the one that runs "
                          "the jobs (the events update and 处置跟踪 must have a single writer)")
    run.set_defaults(func=_run)
    up = sub.add_parser("up", help="start everything locally: Elasticsearch, demo source, scheduler, dashboard")
    up.add_argument("--stop-es", action="store_true", help="stop Elasticsearch too on exit")
    up.set_defaults(func=_up)
