"""`yuqing run`: the periodic jobs — crawl each source, then index and alert — with `schedule`.

Each source is crawled in its own child process (`yuqing crawl --source NAME`), one child at a time, so a
crashing or hanging spider cannot stop the scheduler: its failure is logged and the next run goes ahead.
Alerts run in this process. SIGINT/SIGTERM stop the loop, terminate a running child and return. A crawl child
logs its own one-line summary per source (as ``crawl:NAME``); the scheduler adds a line only when one fails.
"""

from __future__ import annotations

import logging
import signal
import subprocess
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType

import schedule

from crawlers.runner import CommandFor, CrawlFailed, CrawlReport, collect_crawl, start_crawl_subprocess
from yuqing.settings import Settings
from yuqing.sources import Source

log = logging.getLogger(__name__)

AlertJob = Callable[[], object]
ReportHook = Callable[[str, CrawlReport | None, str | None], None]


@dataclass
class _Child:
    source: str
    proc: subprocess.Popen[bytes]
    report_path: Path
    started: float


@dataclass
class Scheduler:
    settings: Settings
    sources: list[Source]
    config: str | None = None
    env: dict[str, str] | None = None
    alert_job: AlertJob | None = None
    on_crawl_done: ReportHook | None = None
    command_for: CommandFor | None = None
    jobs: schedule.Scheduler = field(default_factory=schedule.Scheduler)
    queue: deque[str] = field(default_factory=deque)
    child: _Child | None = None
    stop_event: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        for source in self.sources:
            interval = source.interval_s or self.settings.schedule.crawl_interval_s
            self.jobs.every(interval).seconds.do(self._enqueue, source.name).tag("crawl", source.name)
        if self.alert_job is not None:
            self.jobs.every(self.settings.schedule.alert_interval_s).seconds.do(self._run_alerts).tag("alerts")

    # -- jobs -----------------------------------------------------------------------------------------
    def _enqueue(self, name: str) -> None:
        running = self.child is not None and self.child.source == name
        if name in self.queue or running:
            log.info("crawl of %s still queued or running; this tick is skipped", name)
            return
        self.queue.append(name)

    def _run_alerts(self) -> None:
        assert self.alert_job is not None
        try:
            self.alert_job()  # logs its own summary
        except Exception:  # a failing alert run must not stop the scheduler; the next run retries
            log.exception("alert run failed; will retry in %ss", self.settings.schedule.alert_interval_s)

    def _start_next(self) -> None:
        if self.child is not None or not self.queue:
            return
        name = self.queue.popleft()
        proc, report_path = start_crawl_subprocess(self.config, [name], env=self.env,
                                                   command_for=self.command_for)
        log.debug("crawl of %s started (pid %d)", name, proc.pid)
        self.child = _Child(name, proc, report_path, time.monotonic())

    def _check_child(self) -> None:
        child = self.child
        if child is None:
            return
        if child.proc.poll() is None:
            if time.monotonic() - child.started > self.settings.schedule.crawl_timeout_s:
                log.error("crawl of %s exceeded %ss; killing it", child.source,
                          self.settings.schedule.crawl_timeout_s)
                child.proc.kill()
                child.proc.wait()
            else:
                return
        self.child = None
        report: CrawlReport | None = None
        error: str | None = None
        try:
            report = collect_crawl(child.proc, child.report_path)
            log.debug("crawl of %s done", child.source)
        except CrawlFailed as exc:
            error = str(exc)
            log.error("crawl of %s failed: %s", child.source, exc)
        if self.on_crawl_done is not None:
            try:
                self.on_crawl_done(child.source, report, error)
            except Exception:
                log.exception("recording the crawl of %s failed", child.source)

    # -- loop -----------------------------------------------------------------------------------------
    def tick(self) -> None:
        self.jobs.run_pending()
        self._check_child()
        self._start_next()

    def run(self) -> None:
        """Run every job once now, then on schedule until stop() or a signal."""
        self.jobs.run_all()
        while not self.stop_event.is_set():
            self.tick()
            self.stop_event.wait(0.5)
        self._terminate_child()
        log.info("scheduler stopped")

    def stop(self, signum: int | None = None, _frame: FrameType | None = None) -> None:
        if signum is not None:
            log.info("received %s; stopping", signal.Signals(signum).name)
        self.stop_event.set()

    def install_signal_handlers(self) -> None:
        signal.signal(signal.SIGTERM, self.stop)
        signal.signal(signal.SIGINT, self.stop)

    def _terminate_child(self) -> None:
        child = self.child
        if child is None:
            return
        child.proc.terminate()
        try:
            child.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            child.proc.kill()
            child.proc.wait()
        child.report_path.unlink(missing_ok=True)
        self.child = None
