"""Logging of a job that runs again and again (a post-crawl job, the outbox sender, the report check), also while
Elasticsearch is down: one line when it starts failing, quiet repeats, one line when it works again."""

from __future__ import annotations

import logging

from index.client import describe, unavailable
from yuqing.errors import YuqingError


class JobLog:
    """Change-of-state logging of the repeating job ``name`` on ``logger``.

    :meth:`failed` with Elasticsearch unavailable (:func:`~index.client.unavailable`), a :class:`YuqingError`
    (a ConfigError, an AlertRunError …) or an instance of ``expected``: one ERROR line naming the job with the
    one-line reason, the traceback at DEBUG (the log file); the same reason again: DEBUG only. Any other
    exception is a bug: ERROR with its traceback, each time. :meth:`succeeded` after a failure: one INFO line
    "NAME recovered"."""

    def __init__(self, logger: logging.Logger, name: str, *, expected: tuple[type[BaseException], ...] = ()
                 ) -> None:
        self.log = logger
        self.name = name
        self.expected = expected
        self.failing: str | None = None  # why the last run failed; None when it succeeded

    def failed(self, exc: BaseException, context: str = "") -> None:
        """Log the failure of a run; ``context`` follows "NAME failed" (e.g. " after the crawl of a")."""
        if not (isinstance(exc, (YuqingError, *self.expected)) or unavailable(exc)):
            self.log.error("%s failed%s", self.name, context, exc_info=exc)
            self.failing = f"{type(exc).__name__}: {exc}"
            return
        reason = str(exc) if isinstance(exc, YuqingError) else describe(exc)
        if reason == self.failing:
            self.log.debug("%s failed again%s: %s", self.name, context, reason, exc_info=exc)
        else:
            self.log.error("%s failed%s: %s", self.name, context, reason)
            self.log.debug("%s: the failure in full", self.name, exc_info=exc)
        self.failing = reason

    def succeeded(self) -> None:
        if self.failing is not None:
            self.log.info("%s recovered", self.name)
            self.failing = None
