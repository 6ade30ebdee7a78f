"""Item pipeline: skip unchanged pages, classify, segment, link near-duplicates and index.

Posts are batched. A page whose content hash equals the one indexed last time is not re-indexed (counted as
unchanged); an edited page is re-indexed under the same id. Batches are processed in order by one background
thread while the crawl goes on downloading and extracting; jieba runs in worker processes
(``crawl.segment_workers``), and the classifier and Elasticsearch release the GIL, so a second core is used.

A batch that cannot be indexed because Elasticsearch is unreachable goes to the spool and is replayed by the
next crawl; per-document indexing errors are logged with their URL and counted, never dropped silently.
"""

from __future__ import annotations

import logging
import multiprocessing
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ProcessPoolExecutor, ThreadPoolExecutor
from pathlib import Path
from typing import Any

from elasticsearch import ApiError, Elasticsearch, TransportError
from scrapy import Spider
from scrapy.crawler import Crawler

from crawlers.dedupe import Deduper
from crawlers.enrich import Enricher
from crawlers.fingerprint import content_hash, post_content_hash
from crawlers.privacy import Redactor
from crawlers.spool import Spool
from crawlers.state import CrawlState
from index.client import make_client
from index.documents import Post
from index.layout import CRAWL_STATE, POSTS, setup
from index.writer import index_posts
from nlp.segment import segment_many
from yuqing.settings import Settings

log = logging.getLogger(__name__)

_ES_DOWN = (TransportError, ApiError, ConnectionError)


def _chunks(items: list[str], size: int) -> Iterator[list[str]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


def crawl_state(crawler: Crawler) -> CrawlState | None:
    """The crawl state shared by the pipeline and the conditional-request middleware (None: ES down)."""
    return getattr(crawler, "_yuqing_state", None)


class IndexPipeline:
    batch_size = 100

    def __init__(self, crawler: Crawler) -> None:
        self.crawler = crawler
        self.settings: Settings = crawler.settings["YUQING_SETTINGS"]
        self.stats = crawler.stats
        prefix = self.settings.elasticsearch.index_prefix
        self.alias = POSTS.alias(prefix)
        self.spool = Spool(self.settings.paths.data_dir / "spool")
        self.buffer: list[Post] = []
        self.client: Elasticsearch = make_client(self.settings.elasticsearch)
        self.enricher = Enricher.from_settings(self.settings)
        self.redactor = Redactor.from_file(self.settings.config_file("privacy.yaml"))
        self.deduper = Deduper(self.client, self.alias) if self.settings.crawl.dedupe else None
        self.worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="yuqing-index")
        self.pending: deque[Future[None]] = deque()
        self.segment_pool: ProcessPoolExecutor | None = None
        if self.settings.crawl.segment_workers > 0:
            self.segment_pool = ProcessPoolExecutor(self.settings.crawl.segment_workers,
                                                    mp_context=multiprocessing.get_context("spawn"))
            pool = self.segment_pool
            self.enricher.segmenter = lambda texts: [s for part in pool.map(segment_many, _chunks(texts, 16))
                                                     for s in part]

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> IndexPipeline:
        return cls(crawler)

    @property
    def spider(self) -> Spider:
        assert self.crawler.spider is not None
        return self.crawler.spider

    def inc(self, key: str, n: int = 1) -> None:
        if n:
            self.stats.inc_value(f"yuqing/{key}", n, spider=self.spider)

    def open_spider(self) -> None:
        try:
            setup(self.client, self.settings.elasticsearch)
            source = getattr(self.spider, "source", None)
            if source is not None:
                state = CrawlState(self.client, CRAWL_STATE.alias(self.settings.elasticsearch.index_prefix),
                                   source.name)
                state.load()
                self.crawler._yuqing_state = state  # type: ignore[attr-defined]
            self._replay_spool()
        except _ES_DOWN as exc:
            log.error("elasticsearch unavailable at the start of %s; posts will be spooled: %s",
                      self.spider.name, exc)

    def _replay_spool(self) -> None:
        """Index what earlier crawls spooled, through the same path as fresh posts (what is already analysed
        is not analysed again); posts that fail again for want of Elasticsearch are spooled anew."""
        for path in self.spool.files():
            posts, bad_lines = self.spool.read(path)
            log.info("replaying %d spooled posts from %s", len(posts), path)
            self.inc("spool_replayed", len(posts))
            self._index_batch(posts)
            self.spool.done(path, bad_lines=bad_lines)

    def process_item(self, item: Any) -> Any:
        if not isinstance(item, Post):
            return item
        item = self.redactor.redact_post(item)  # before anything is stored, analysed or mailed
        state = crawl_state(self.crawler)
        digest = post_content_hash(item)
        if state is not None and state.is_unchanged(item.url, self._state_hash(digest)):
            state.touch(item.url, item.fetched_at)
            self.inc("unchanged")
            return item
        self.buffer.append(item.model_copy(update={"content_hash": digest}))
        if len(self.buffer) >= self.batch_size:
            self._flush()
        return item

    def _state_hash(self, digest: str) -> str:
        """What the crawl state remembers of an indexed page: its content and what analysed it, so a page
        analysed by an older model (or by none) is analysed again when it is next fetched."""
        return content_hash(digest, self.enricher.version)

    def close_spider(self) -> None:
        try:
            self._flush()
            self.worker.shutdown(wait=True)
            while self.pending:
                self.pending.popleft().result()
            state = crawl_state(self.crawler)
            if state is not None:
                state.flush()
        except _ES_DOWN as exc:
            log.error("could not save the crawl state of %s: %s", self.spider.name, exc)
        finally:
            if self.segment_pool is not None:
                self.segment_pool.shutdown(wait=True)
            self.client.close()

    def _flush(self) -> None:
        """Hand the buffered posts to the background thread; wait when it is more than a few batches behind."""
        if not self.buffer:
            return
        batch, self.buffer = self.buffer, []
        self.pending.append(self.worker.submit(self._process, batch))
        while self.pending and (self.pending[0].done() or len(self.pending) > 3):
            self.pending.popleft().result()

    def _process(self, batch: list[Post]) -> None:
        """Classify, segment, link duplicates and index one batch (in the background thread). Anything that
        goes wrong is logged with its context and the batch is spooled: nothing is lost."""
        try:
            self._index_batch(batch)
        except Exception:
            path = self._spool(batch)
            log.exception("processing a batch of %d posts failed; spooled to %s", len(batch), path)

    def _spool(self, posts: list[Post]) -> Path:
        self.inc("spooled", len(posts))
        return self.spool.write(posts, tag=self.spider.name.replace(":", "_").replace("/", "_"))

    def _index_batch(self, batch: list[Post]) -> None:
        posts = self.enricher.enrich(batch)
        try:
            if self.deduper is not None:
                posts = self.deduper.link(posts)
            report = index_posts(self.client, self.alias, posts, raise_on_error=False, refresh=True,
                                 chunk_size=self.settings.elasticsearch.bulk_chunk_size)
        except _ES_DOWN as exc:
            path = self._spool(posts)
            log.error("elasticsearch unavailable; %d posts spooled to %s: %s", len(posts), path, exc)
            return
        self.inc("indexed", report.ok)
        self.inc("new", report.created)
        self.inc("duplicates", sum(1 for p in posts if p.duplicate_of))
        self.inc("index_errors", len(report.failures))
        failed = {f.doc_id for f in report.failures}
        state = crawl_state(self.crawler)
        if state is not None:
            for p in posts:
                if p.doc_id not in failed and p.content_hash:
                    state.record_content(p.url, self._state_hash(p.content_hash), p.fetched_at)
