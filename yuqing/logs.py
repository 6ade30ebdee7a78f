"""Logging for every entry point and child process: :func:`setup_logging` (settings section ``logging``).

- One console handler (stderr) at ``logging.level``, one line per event, naming the component that wrote it
  (``crawl:demo-news``, ``scheduler``, ``dashboard``, …), so the interleaved output of ``yuqing up`` and its
  children stays readable and no line appears twice.
- One rotating file (``logging.file``, default ``<paths.data_dir>/log/yuqing.log``) at ``logging.file_level``
  with the full detail: date, component, process id, thread and logger. Every process of one installation
  appends to the same file; rotation is coordinated between them with a lock file.
- Libraries (Scrapy, Twisted, urllib3, the Elasticsearch transport, Tornado, …) are heard from at WARNING and
  above unless ``logging.level`` is DEBUG: no per-request lines, settings lists or stats dumps otherwise.
- The Elasticsearch transport's retry warnings (a traceback per retry when a node is down) become one line each:
  the attempt and the error's one-line reason.

Calling :func:`setup_logging` again replaces what an earlier call installed (nothing else is touched).
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import logging.handlers
import os
import sys
from pathlib import Path
from typing import IO, TYPE_CHECKING

if TYPE_CHECKING:
    from yuqing.settings import Settings

CONSOLE_FORMAT = "%(asctime)s %(levelname)s %(component)s %(name)s: %(message)s"
FILE_FORMAT = "%(asctime)s %(levelname)s %(component)s[%(process)d] %(threadName)s %(name)s: %(message)s"
DATE_FORMAT = "%Y-%m-%d %H:%M:%S"

# Loggers of libraries that are chatty at INFO/DEBUG (per request, per item, settings dumps).
LIBRARIES: tuple[str, ...] = (
    "scrapy", "twisted", "py.warnings", "urllib3", "elastic_transport", "elasticsearch", "filelock", "hpack",
    "tornado", "asyncio", "jieba", "transformers", "torch", "PIL", "matplotlib", "watchdog", "h2", "redis",
    "scrapy_redis", "aiosmtpd", "mail.log",
)
_MARK = "_yuqing_handler"
_library_level = logging.WARNING


class _Component(logging.Filter):
    """Stamps each record with the component that wrote it (``%(component)s`` in the formats)."""

    def __init__(self, component: str) -> None:
        super().__init__()
        self.component = component

    def filter(self, record: logging.LogRecord) -> bool:
        record.component = self.component
        return True


class _QuietLibraries(logging.Filter):
    """Drops library records below ``threshold``. A handler-level guard: libraries (Scrapy's
    ``configure_logging``) may reset their own loggers' levels after :func:`setup_logging` ran."""

    def __init__(self, threshold: int) -> None:
        super().__init__()
        self.threshold = threshold

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno >= self.threshold:
            return True
        name = record.name
        return not any(name == lib or name.startswith(lib + ".") for lib in LIBRARIES)


class _OneLineRetries(logging.Filter):
    """The transport logs "Retrying request after failure" with the exception's traceback, once per retry: keep
    the event, as one line with the error's reason. Its node pool's "has failed for N times in a row, putting
    on a timeout" (a second line for the same retry) is left to DEBUG."""

    def filter(self, record: logging.LogRecord) -> bool:
        if (record.name == "elastic_transport.node_pool" and record.levelno == logging.WARNING
                and str(record.msg).startswith("Node %r has failed for")):
            return _library_level <= logging.DEBUG
        if record.exc_info and record.name.startswith("elastic_transport"):
            exc = record.exc_info[1]
            reason = " ".join(f"{type(exc).__name__}: {exc}".split())[:300]
            record.msg = f"{record.getMessage()}: {reason}"
            record.args = ()
            record.exc_info = None
            record.exc_text = None
        return True


class SharedRotatingFileHandler(logging.handlers.RotatingFileHandler):
    """A size-rotated file that several processes append to.

    Rotation happens under an exclusive lock on ``<file>.lock``; a process whose file was rotated by another
    reopens the current one before writing, so no process keeps writing into a rotated file.

    A file that cannot be written (a full disk) is said once on stderr, not with logging's "--- Logging error
    ---" traceback per record; the records are dropped from the file until a write succeeds again, which is
    said once too.
    """

    def __init__(self, filename: Path, max_bytes: int, backup_count: int) -> None:
        filename.parent.mkdir(parents=True, exist_ok=True)
        self._lock_path = f"{filename}.lock"
        self._paused = False  # the last write failed with an OSError (said on stderr)
        self._emit_failed = False
        super().__init__(filename, maxBytes=max_bytes, backupCount=backup_count, encoding="utf-8")

    def _reopen_if_rotated(self) -> None:
        if self.stream is None:
            return
        try:
            current = os.stat(self.baseFilename)
            mine = os.fstat(self.stream.fileno())
        except FileNotFoundError:
            current = None
            mine = None
        if current is None or mine is None or (current.st_dev, current.st_ino) != (mine.st_dev, mine.st_ino):
            with contextlib.suppress(OSError):  # what it buffered cannot be written (a full disk): lost, said
                self.stream.close()
            self.stream = self._open()

    def emit(self, record: logging.LogRecord) -> None:
        self._emit_failed = False
        try:
            with open(self._lock_path, "a") as lock:
                fcntl.flock(lock, fcntl.LOCK_EX)
                try:
                    self._reopen_if_rotated()
                    super().emit(record)  # rotates (shouldRollover / doRollover) under the lock
                finally:
                    fcntl.flock(lock, fcntl.LOCK_UN)
        except Exception:
            self.handleError(record)
        if self._paused and not self._emit_failed:
            self._paused = False
            self._say(f"the log file {self.baseFilename} can be written again; file logging resumed "
                      "(records logged while it was paused may be missing from it)")

    def handleError(self, record: logging.LogRecord) -> None:
        """Called (under the handler's lock) by :meth:`emit` and by the base class's emit on an exception."""
        exc = sys.exc_info()[1]
        if not isinstance(exc, OSError):
            super().handleError(record)
            return
        self._emit_failed = True
        if not self._paused:
            self._paused = True
            self._say(f"cannot write the log file {self.baseFilename} ({exc.strerror or exc}); "
                      "file logging paused until it can write again")

    def close(self) -> None:
        """Close the file; records still buffered that cannot be written are lost, said once (not raised: a
        full disk must not break :func:`reset_logging` / a new :func:`setup_logging`)."""
        try:
            super().close()  # the base class closes the file and unregisters the handler even when flush fails
        except OSError as exc:
            if not self._paused:
                self._say(f"cannot write the log file {self.baseFilename} ({exc.strerror or exc}); "
                          "its last records are lost")

    @staticmethod
    def _say(line: str) -> None:
        try:
            sys.stderr.write(line + "\n")
            sys.stderr.flush()
        except (OSError, ValueError):  # stderr closed or unwritable too: nowhere left to say it
            pass


def _level(name: str) -> int:
    return logging.getLevelNamesMapping()[name.upper()]


def log_file(settings: Settings) -> Path:
    """Where the full log goes: ``logging.file``, by default ``<paths.data_dir>/log/yuqing.log``."""
    return settings.logging.file or settings.paths.data_dir / "log" / "yuqing.log"


def setup_logging(settings: Settings, component: str, *, verbose: bool = False,
                  stream: IO[str] | None = None) -> None:
    """Install the console and file handlers for this process (see the module docstring).

    ``verbose`` (``yuqing -v``) forces DEBUG on the console; ``stream`` replaces stderr (tests).
    """
    global _library_level
    cfg = settings.logging
    console_level = logging.DEBUG if verbose else _level(cfg.level)
    file_level = min(_level(cfg.file_level), console_level)
    _library_level = logging.DEBUG if console_level <= logging.DEBUG else logging.WARNING

    reset_logging()
    root = logging.getLogger()
    console = logging.StreamHandler(stream or sys.stderr)
    console.setLevel(console_level)
    console.setFormatter(logging.Formatter(CONSOLE_FORMAT, DATE_FORMAT))
    handlers: list[logging.Handler] = [console]
    problem: OSError | None = None
    if cfg.to_file:
        try:
            handler: logging.Handler = SharedRotatingFileHandler(log_file(settings), cfg.max_bytes,
                                                                 cfg.backup_count)
        except OSError as exc:
            problem = exc
        else:
            handler.setLevel(file_level)
            handler.setFormatter(logging.Formatter(FILE_FORMAT))
            handlers.append(handler)
    for h in handlers:
        h.addFilter(_Component(component))
        h.addFilter(_QuietLibraries(_library_level))
        h.addFilter(_OneLineRetries())
        setattr(h, _MARK, True)
        root.addHandler(h)
    root.setLevel(min(h.level for h in handlers))
    logging.captureWarnings(True)
    quiet_libraries()
    if problem is not None:
        logging.getLogger(__name__).warning("cannot write the log file %s (%s); logging to the console only",
                                            log_file(settings), problem)


def quiet_libraries() -> None:
    """(Re)apply the libraries' levels chosen by :func:`setup_logging`; for code that lets a library reset
    them (Scrapy's ``CrawlerProcess`` does). Cheap: a level check stops a record before it is formatted."""
    for name in LIBRARIES:
        logging.getLogger(name).setLevel(_library_level)


def reset_logging() -> None:
    """Remove (and close) what :func:`setup_logging` installed."""
    root = logging.getLogger()
    for handler in [h for h in root.handlers if getattr(h, _MARK, False)]:
        root.removeHandler(handler)
        handler.close()
