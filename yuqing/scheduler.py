"""`yuqing run`: the periodic jobs — crawl the due sources, then the post-crawl jobs — with `schedule`.

Crawls. Each source has its own interval; a source whose time has come joins the queue of due sources. When no
crawl child runs, every queued source is crawled by ONE child process (`yuqing crawl --source A --source B …`):
the child pays the start-up (torch, the classifier, jieba: ~20 s of CPU) once for all of them, and still
reports, and records the health of, each source on its own. A child runs apart from the scheduler, so a
crashing or hanging spider cannot stop it: a child that dies without a report, or runs past
``schedule.crawl_timeout_s`` (killed), is logged and recorded as a failed run of each of its sources. The sources
of a failed batch are then crawled alone, one child each, until each has succeeded once: a source that keeps
killing its child fails alone instead of taking the others' crawls with it.

Warm child. When a child finishes, the next one is started at once (``schedule.warm_crawl_child``, default on):
it loads Scrapy and the classifier, then waits for the names of the sources it is to crawl (stdin), which it
gets when they are due — the ~20 s start-up is paid while nothing is due, not after a post appeared. It is
terminated with the scheduler. A child exits as soon as its report is written (no interpreter teardown).

Post-crawl jobs. An ordered list of named callables run here, in the scheduler's own process, after every crawl
child finished (told what it did: :class:`CrawlOutcome`), once at start-up, and when
``schedule.alert_interval_s`` passed without them running (mail retries and timed digests do not wait for a
crawl). Each job is isolated: a failure is logged with the job's name and what triggered it (Elasticsearch down:
one line, and one when the job recovers), and the next job runs. The service (`yuqing.service.post_crawl_jobs`)
creates the list: 人工研判 reconcile, the events update (the single writer of event records), the 处置单 and 失声
checks, alert decide last.

Sources. ``sources.yaml`` (edited on the dashboard's 设置 page, or by hand) is read again when it changes (checked
every few seconds): a new source is crawled at once and then at its interval, a removed or disabled one is no
longer crawled (also not from the queue), a changed interval applies from now; other changes reach the next
crawl child, which reads the file itself. A file that no longer loads is logged once and the sources stay as
they were.

SIGINT/SIGTERM stop the loop, terminate a running child and return. A child runs in a session of its own: Ctrl-C
at the terminal reaches the scheduler only, which stops the child with one SIGTERM (Scrapy's graceful stop). A
crawl child logs its own one-line summary per source (as ``crawl:NAMES``); the scheduler adds a line only when a
child fails.
"""

from __future__ import annotations

import logging
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType

import schedule

from crawlers.runner import (
    CommandFor,
    CrawlFailed,
    CrawlReport,
    collect_crawl,
    dispatch_warm_crawl,
    kill_crawl,
    start_crawl_subprocess,
    start_warm_crawl,
)
from index.job_log import JobLog
from yuqing.config_write import file_digest
from yuqing.errors import ConfigError
from yuqing.settings import Settings
from yuqing.sources import Source, load_sources

log = logging.getLogger(__name__)

SOURCES_CHECK_S = 5.0  # how often sources.yaml is looked at for a change


@dataclass(frozen=True)
class CrawlOutcome:
    """What one crawl child did: its sources, and its report (None when it failed; ``error`` says how)."""

    sources: tuple[str, ...]
    report: CrawlReport | None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.report is not None


# A post-crawl job is told the crawl it follows; None when it runs at start-up or because the interval passed.
JobFunction = Callable[[CrawlOutcome | None], object]
# Called with each finished crawl before the post-crawl jobs (the service records the health of a dead child).
CrawlHook = Callable[[CrawlOutcome], None]


@dataclass(frozen=True)
class PostCrawlJob:
    name: str
    run: JobFunction


@dataclass
class _Child:
    sources: tuple[str, ...]
    proc: subprocess.Popen[bytes]
    report_path: Path
    started: float


@dataclass
class _Warm:
    """A crawl child started ahead of time: it loads Scrapy and the classifier, then waits for its sources."""

    proc: subprocess.Popen[bytes]
    report_path: Path


def next_batch(due: list[str], suspects: set[str]) -> list[str]:
    """The sources the next child crawls (pure): a suspect (its last batch failed) first and alone, else every
    due source that is not a suspect, in queue order."""
    for name in due:
        if name in suspects:
            return [name]
    return list(due)


@dataclass
class Scheduler:
    settings: Settings
    sources: list[Source]
    config: str | None = None
    env: dict[str, str] | None = None
    post_crawl_jobs: list[PostCrawlJob] = field(default_factory=list)
    on_crawl_done: CrawlHook | None = None
    command_for: CommandFor | None = None
    jobs: schedule.Scheduler = field(default_factory=schedule.Scheduler)
    due: list[str] = field(default_factory=list)
    suspects: set[str] = field(default_factory=set)
    child: _Child | None = None
    warm: _Warm | None = None
    stop_event: threading.Event = field(default_factory=threading.Event)
    _jobs_ran_at: float | None = None
    _job_logs: dict[str, JobLog] = field(default_factory=dict)
    _start_failures: int = 0  # child starts failed in a row (the system out of processes, memory, files)
    _retry_at: float = 0.0  # no child start before this (time.monotonic)
    sources_file: Path | None = None  # read again when it changes (None: the sources stay as given)
    _sources_digest: str | None = None
    _sources_checked_at: float = 0.0

    def __post_init__(self) -> None:
        for source in self.sources:
            self._schedule(source)
        if self.sources_file is not None:
            self._sources_digest = file_digest(self.sources_file)
            self._sources_checked_at = time.monotonic()

    def _interval(self, source: Source) -> int:
        return source.interval_s or self.settings.schedule.crawl_interval_s

    def _schedule(self, source: Source) -> None:
        self.jobs.every(self._interval(source)).seconds.do(self._enqueue, source.name).tag("crawl", source.name)

    # -- sources --------------------------------------------------------------------------------------
    def reload_sources(self) -> None:
        """Take up a changed ``sources_file`` (see the module docstring); at most every ``SOURCES_CHECK_S``."""
        if self.sources_file is None or time.monotonic() - self._sources_checked_at < SOURCES_CHECK_S:
            return
        self._sources_checked_at = time.monotonic()
        digest = file_digest(self.sources_file)
        if digest == self._sources_digest:
            return
        self._sources_digest = digest
        try:
            new = load_sources(self.sources_file).enabled()
        except ConfigError as exc:
            log.error("%s changed but cannot be used (%s); the %d sources are crawled as before",
                      self.sources_file, exc, len(self.sources))
            return
        old = {s.name: s for s in self.sources}
        names = {s.name: s for s in new}
        added = [n for n in names if n not in old]
        removed = [n for n in old if n not in names]
        retimed = [n for n in names if n in old and self._interval(names[n]) != self._interval(old[n])]
        edited = [n for n in names if n in old and n not in retimed and names[n] != old[n]]
        for name in (*removed, *retimed):
            self.jobs.clear(name)
        for name in (*added, *retimed):
            self._schedule(names[name])
        self.sources = new
        self.due = [n for n in self.due if n in names]
        self.suspects &= set(names)
        for name in added:
            self._enqueue(name)  # a new source is crawled now, then at its interval
        parts = [f"{what}: {', '.join(which)}" for what, which in (
            ("added", added), ("removed", removed), ("interval changed", retimed), ("edited", edited)) if which]
        log.info("%s changed: %d sources (%s)", self.sources_file.name, len(new), "; ".join(parts) or "no change")

    # -- crawls ---------------------------------------------------------------------------------------
    def _enqueue(self, name: str) -> None:
        running = self.child is not None and name in self.child.sources
        if name in self.due or running:
            log.debug("crawl of %s still queued or running; this tick is skipped", name)
            return
        self.due.append(name)

    def _start_next(self) -> None:
        if self.child is not None or not self.due or time.monotonic() < self._retry_at:
            return
        batch = next_batch(self.due, self.suspects)
        self.due = [name for name in self.due if name not in batch]
        warm, self.warm = self.warm, None
        if warm is not None and dispatch_warm_crawl(warm.proc, batch):
            proc, report_path = warm.proc, warm.report_path
            log.debug("crawl of %s handed to the warm child (pid %d)", ", ".join(batch), proc.pid)
        else:
            if warm is not None:
                log.warning("the warm crawl child (pid %d) had exited with code %s; starting a new one",
                            warm.proc.pid, warm.proc.returncode)
                self._end((warm.proc, warm.report_path))
            try:
                proc, report_path = start_crawl_subprocess(self.config, batch, env=self.env,
                                                           command_for=self.command_for)
            except OSError as exc:  # no process, memory or file to spare now: the batch waits its turn again
                self.due = batch + self.due
                self._start_failed(f"the crawl of {', '.join(batch)}", exc)
                return
            log.debug("crawl of %s started (pid %d)", ", ".join(batch), proc.pid)
        self._start_failures = 0
        self.child = _Child(tuple(batch), proc, report_path, time.monotonic())

    def _start_failed(self, what: str, exc: OSError) -> None:
        """One line per failed child start; the next start waits 1, 2, 4 … 60 s."""
        self._start_failures += 1
        delay = min(60, 2 ** (self._start_failures - 1))
        self._retry_at = time.monotonic() + delay
        log.error("could not start %s: %s; trying again in %ds", what, exc, delay)

    def _start_warm(self) -> None:
        """Start the next crawl child now (``schedule.warm_crawl_child``; not with a test's ``command_for``)."""
        if (self.warm is not None or self.command_for is not None or self.stop_event.is_set()
                or not self.settings.schedule.warm_crawl_child or time.monotonic() < self._retry_at):
            return
        try:
            proc, report_path = start_warm_crawl(self.config, env=self.env)
        except OSError as exc:  # the next crawl starts cold (or waits, when the system is still short)
            self._start_failed("the warm crawl child", exc)
            return
        log.debug("warm crawl child started (pid %d)", proc.pid)
        self.warm = _Warm(proc, report_path)

    def _check_child(self) -> CrawlOutcome | None:
        """The outcome of the running child once it has finished (or was killed for running too long)."""
        child = self.child
        if child is None:
            return None
        names = ", ".join(child.sources)
        if child.proc.poll() is None:
            if time.monotonic() - child.started <= self.settings.schedule.crawl_timeout_s:
                return None
            log.error("crawl of %s exceeded %ss; killing it", names, self.settings.schedule.crawl_timeout_s)
            kill_crawl(child.proc)
        self.child = None
        try:
            outcome = CrawlOutcome(child.sources, collect_crawl(child.proc, child.report_path))
            log.debug("crawl of %s done", names)
            self.suspects.difference_update(child.sources)
        except Exception as exc:  # CrawlFailed; anything else (a report that does not parse) is a bug: its traceback
            known = isinstance(exc, CrawlFailed)
            error = str(exc) if known else f"its report could not be read: {type(exc).__name__}"
            outcome = CrawlOutcome(child.sources, None, error)
            alone = " (each will be crawled alone until it succeeds)" if len(child.sources) > 1 else ""
            log.error("crawl of %s failed: %s%s", names, error, alone, exc_info=not known)
            self.suspects.update(child.sources)
        if self.on_crawl_done is not None:
            try:
                self.on_crawl_done(outcome)
            except Exception:
                log.exception("recording the crawl of %s failed", names)
        return outcome

    # -- post-crawl jobs ------------------------------------------------------------------------------
    def run_post_crawl_jobs(self, outcome: CrawlOutcome | None) -> None:
        """Every post-crawl job in order; a failing job is logged with its context (while Elasticsearch is down:
        once, then when it recovers; :class:`~index.job_log.JobLog`) and the next one runs."""
        self._jobs_ran_at = time.monotonic()
        for job in self.post_crawl_jobs:
            job_log = self._job_logs.setdefault(job.name, JobLog(log, f"post-crawl job {job.name}"))
            try:
                job.run(outcome)
            except Exception as exc:
                if outcome is None:
                    after = "a run without a crawl (start-up or alert_interval_s)"
                else:
                    after = f"the crawl of {', '.join(outcome.sources)}" + ("" if outcome.ok else " (failed)")
                job_log.failed(exc, f" after {after}")
            else:
                job_log.succeeded()

    def _jobs_overdue(self) -> bool:
        return (bool(self.post_crawl_jobs) and self._jobs_ran_at is not None
                and time.monotonic() - self._jobs_ran_at >= self.settings.schedule.alert_interval_s)

    # -- loop -----------------------------------------------------------------------------------------
    def tick(self) -> None:
        self.reload_sources()
        self.jobs.run_pending()
        outcome = self._check_child()
        if outcome is not None:
            self._start_warm()  # loads while the jobs below run and until the next sources are due
        self._start_next()  # the next crawl runs while the jobs below do
        if outcome is not None:
            self.run_post_crawl_jobs(outcome)
        elif self._jobs_overdue():
            self.run_post_crawl_jobs(None)

    def run(self) -> None:
        """Queue every source and run the post-crawl jobs once now, then run on schedule until stop() or a
        signal."""
        try:
            self.jobs.run_all()
            self._start_next()
            self.run_post_crawl_jobs(None)
            while not self.stop_event.is_set():
                self.tick()
                self.stop_event.wait(0.5)
        finally:  # whatever ended the loop, no child is left running
            self._terminate_child()
        log.info("scheduler stopped")

    def stop(self, signum: int | None = None, _frame: FrameType | None = None) -> None:
        # Ctrl-C under `yuqing up` brings SIGINT from the terminal and SIGTERM from `up`: one line is enough
        if signum is not None and not self.stop_event.is_set():
            log.info("received %s; stopping", signal.Signals(signum).name)
        self.stop_event.set()

    def install_signal_handlers(self) -> None:
        signal.signal(signal.SIGTERM, self.stop)
        signal.signal(signal.SIGINT, self.stop)

    @staticmethod
    def _end(*children: tuple[subprocess.Popen[bytes], Path]) -> None:
        """One SIGTERM to each child (Scrapy's graceful stop: the spiders and their ingest sessions close), then
        SIGKILL to the whole session of any still running 20 s later (:func:`~crawlers.runner.kill_crawl`)."""
        for proc, _ in children:
            if proc.poll() is None:
                proc.terminate()
        deadline = time.monotonic() + 20
        for proc, report_path in children:
            try:
                proc.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                kill_crawl(proc)
            if proc.stdin is not None:
                proc.stdin.close()
            report_path.unlink(missing_ok=True)

    def _terminate_child(self) -> None:
        """End the warm child and the running one together (within `yuqing up`'s wait for the scheduler)."""
        warm, self.warm = self.warm, None
        child, self.child = self.child, None
        self._end(*[(c.proc, c.report_path) for c in (warm, child) if c is not None])
