"""Progress of long commands (``yuqing ingest``, ``nlp train``/``eval``, benchmarks): a tqdm bar on a terminal,
plain periodic log lines otherwise (a log file, a pipe, a CI job).

    with progress("indexing", total=len(posts), unit="posts") as bar:
        for batch in batches:
            ...
            bar.update(len(batch))

    for row in track(rows, "reading"):
        ...
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from types import TracebackType
from typing import IO, Any, TypeVar

T = TypeVar("T")
log = logging.getLogger(__name__)


class Progress:
    """Counts work done; shows it as a bar on a terminal, else logs ``desc: n/total`` every ``every_s`` s."""

    def __init__(
        self,
        desc: str,
        total: int | None = None,
        *,
        unit: str = "it",
        every_s: float = 10.0,
        stream: IO[str] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.desc = desc
        self.total = total
        self.unit = unit
        self.every_s = every_s
        self.n = 0
        self._clock = clock
        self._started = self._last = clock()
        out = stream if stream is not None else sys.stderr
        self._bar: Any = None
        if out.isatty():
            from tqdm import tqdm

            self._bar = tqdm(total=total, desc=desc, unit=unit, file=out, dynamic_ncols=True, leave=True)

    def update(self, n: int = 1) -> None:
        self.n += n
        if self._bar is not None:
            self._bar.update(n)
            return
        now = self._clock()
        if now - self._last >= self.every_s:
            self._last = now
            log.info("%s: %s", self.desc, self._status(now))

    def _status(self, now: float) -> str:
        elapsed = max(now - self._started, 1e-9)
        done = f"{self.n}/{self.total}" if self.total else str(self.n)
        share = f" ({100 * self.n / self.total:.0f}%)" if self.total else ""
        return f"{done} {self.unit}{share}, {self.n / elapsed:.1f} {self.unit}/s"

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    def __enter__(self) -> Progress:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def progress(desc: str, total: int | None = None, **kwargs: Any) -> Progress:
    """A :class:`Progress` (use it as a context manager)."""
    return Progress(desc, total, **kwargs)


def track(items: Iterable[T], desc: str, total: int | None = None, **kwargs: Any) -> Iterator[T]:
    """``items``, counted as they are consumed (``total`` defaults to ``len(items)`` when it has one)."""
    if total is None and hasattr(items, "__len__"):
        total = len(items)  # type: ignore[arg-type]
    with Progress(desc, total, **kwargs) as bar:
        for item in items:
            yield item
            bar.update()
