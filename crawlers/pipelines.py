"""Item pipeline: skip unchanged pages, classify, segment, link near-duplicates and index.

Posts are batched. A page whose content hash equals the one indexed last time is not re-indexed (counted as
unchanged); an edited page is re-indexed under the same id. A batch that cannot be indexed because
Elasticsearch is unreachable goes to the spool and is replayed by the next crawl; per-document indexing
errors are logged with their URL and counted, never dropped silently.
"""

from __future__ import annotations

import logging
from typing import Any

from elasticsearch import ApiError, Elasticsearch, TransportError
from scrapy import Spider
from scrapy.crawler import Crawler

from crawlers.dedupe import Deduper
from crawlers.enrich import Enricher
from crawlers.fingerprint import post_content_hash
from crawlers.spool import Spool
from crawlers.state import CrawlState
from index.client import make_client
from index.documents import Post
from index.layout import CRAWL_STATE, POSTS, setup
from index.writer import index_posts
from yuqing.settings import Settings

log = logging.getLogger(__name__)

_ES_DOWN = (TransportError, ApiError, ConnectionError)


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
        self.deduper = Deduper(self.client, self.alias) if self.settings.crawl.dedupe else None
        self.es_up = False

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
            self.es_up = True
            self._replay_spool()
        except _ES_DOWN as exc:
            log.error("elasticsearch unavailable at the start of %s; posts will be spooled: %s",
                      self.spider.name, exc)

    def _replay_spool(self) -> None:
        for path in self.spool.files():
            posts = list(self.spool.read(path))
            report = index_posts(self.client, self.alias, posts, raise_on_error=False,
                                 chunk_size=self.settings.elasticsearch.bulk_chunk_size)
            self.inc("spool_replayed", report.ok)
            if report.failures:
                log.error("spool %s: %d posts still failing; file kept", path, len(report.failures))
                continue
            path.unlink()

    def process_item(self, item: Any) -> Any:
        if not isinstance(item, Post):
            return item
        state = crawl_state(self.crawler)
        digest = post_content_hash(item)
        if state is not None and state.is_unchanged(item.url, digest):
            state.touch(item.url, item.fetched_at)
            self.inc("unchanged")
            return item
        self.buffer.append(item.model_copy(update={"content_hash": digest}))
        if len(self.buffer) >= self.batch_size:
            self._flush()
        return item

    def close_spider(self) -> None:
        try:
            self._flush()
            state = crawl_state(self.crawler)
            if state is not None:
                state.flush()
        except _ES_DOWN as exc:
            log.error("could not save the crawl state of %s: %s", self.spider.name, exc)
        finally:
            self.client.close()

    def _flush(self) -> None:
        if not self.buffer:
            return
        batch, self.buffer = self.buffer, []
        posts = self.enricher.enrich(batch)
        try:
            if self.deduper is not None:
                posts = self.deduper.link(posts)
            report = index_posts(self.client, self.alias, posts, raise_on_error=False, refresh=True,
                                 chunk_size=self.settings.elasticsearch.bulk_chunk_size)
        except _ES_DOWN as exc:
            path = self.spool.write(posts, tag=self.spider.name.replace(":", "_").replace("/", "_"))
            self.inc("spooled", len(posts))
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
                    state.record_content(p.url, p.content_hash, p.fetched_at)
