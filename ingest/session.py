"""One ingest run — a crawl of one source, a file import — around the :class:`~ingest.service.IngestService`.

:meth:`IngestSession.open` makes the client, sets the indices up, loads the source's crawl state and replays
the spool; :meth:`IngestSession.add` collects posts into batches that one background thread ingests in order
while the caller goes on (crawling, reading the file); :meth:`IngestSession.close` waits for them, saves the
crawl state and returns the report. jieba runs in worker processes (``crawl.segment_workers``), the
classifier and Elasticsearch release the GIL, so a second core is used.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import ExitStack

from elasticsearch import ApiError, TransportError

from index.client import WriteBlocked, describe, es_client
from index.crawl_state import CrawlState
from index.layout import CRAWL_STATE, setup
from ingest.batch import IngestReport
from ingest.privacy import Redactor
from ingest.service import IngestService, load_analyzer, load_groups, standard_stages
from ingest.spool import Spool
from ingest.stages import PooledSegmenter
from yuqing.models import Post
from yuqing.settings import Settings

log = logging.getLogger(__name__)

_ES_ERRORS = (ApiError, TransportError, ConnectionError, WriteBlocked)


class IngestSession:
    """See the module docstring. ``source``: whose crawl state to use (None: no change detection); ``tag``
    names the run in logs and spool files; ``on_batch`` is called (in the caller's thread) with each finished
    batch's report."""

    max_pending = 3  # batches queued behind the one being ingested before add() waits

    def __init__(self, settings: Settings, *, source: str | None, tag: str,
                 on_batch: Callable[[IngestReport], None] | None = None) -> None:
        self.settings = settings
        self.source = source
        self.tag = tag
        self.on_batch = on_batch
        self.report = IngestReport()
        self.state: CrawlState | None = None
        self._stack = ExitStack()
        self._buffer: list[Post] = []
        self._pending: deque[Future[IngestReport]] = deque()
        self._worker: ThreadPoolExecutor | None = None
        self._service: IngestService | None = None
        # Configuration and the model are read now, so a mistake shows before anything runs.
        self._redactor = Redactor.from_file(settings.config_file("privacy.yaml"))
        self._analyzer = load_analyzer(settings)
        self._groups = load_groups(settings)

    def open(self) -> CrawlState | None:
        """Prepare the run; returns the source's crawl state (None without a source or when Elasticsearch
        could not be used: then nothing is skipped and what cannot be indexed is spooled)."""
        settings = self.settings
        client = self._stack.enter_context(es_client(settings.elasticsearch))
        segmenter = None
        if settings.crawl.segment_workers > 0:
            segmenter = PooledSegmenter(settings.crawl.segment_workers)
            self._stack.callback(segmenter.close)  # if open() fails before the ingest thread exists
        ready = False
        try:
            setup(client, settings.elasticsearch)
            if self.source is not None:
                state = CrawlState(client, CRAWL_STATE.alias(settings.elasticsearch.index_prefix), self.source)
                state.load()
                self.state = state
            ready = True
        except _ES_ERRORS as exc:
            log.error("elasticsearch unavailable at the start of %s; posts will be spooled: %s", self.tag,
                      describe(exc))
        self._service = IngestService(
            standard_stages(settings, client, state=self.state, analyzer=self._analyzer, segmenter=segmenter,
                            redactor=self._redactor, groups=self._groups),
            Spool(settings.paths.data_dir / "spool"), tag=self.tag, state=self.state)
        self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="yuqing-ingest")
        self._stack.callback(self._worker.shutdown, wait=True)
        if segmenter is not None:  # its workers start in the ingest thread: ended there, after the last batch
            worker = self._worker
            self._stack.callback(lambda: worker.submit(segmenter.close).result())
        if ready:
            self._collect(self._service.replay_spool())
        return self.state

    def add(self, post: Post) -> None:
        self._buffer.append(post)
        if len(self._buffer) >= self.settings.crawl.ingest_batch_size:
            self.flush()

    def flush(self) -> None:
        """Hand the buffered posts to the background thread; wait while it is more than a few batches behind."""
        if not self._buffer:
            return
        assert self._worker is not None and self._service is not None, "open() the session first"
        batch, self._buffer = self._buffer, []
        self._pending.append(self._worker.submit(self._service.run, batch))
        while self._pending and (self._pending[0].done() or len(self._pending) > self.max_pending):
            self._collect(self._pending.popleft().result())

    def _collect(self, report: IngestReport) -> None:
        self.report.add(report)
        if self.on_batch is not None:
            self.on_batch(report)

    def close(self) -> IngestReport:
        """Ingest what is left, wait for it, save the crawl state; returns the session's report."""
        try:
            if self._worker is not None:
                self.flush()
                while self._pending:
                    self._collect(self._pending.popleft().result())
            if self.state is not None:
                try:
                    self.state.flush()
                except _ES_ERRORS as exc:
                    log.error("could not save the crawl state of %s (its pages are fetched and compared again "
                              "next time): %s", self.tag, describe(exc))
        finally:
            self._stack.close()
        return self.report
