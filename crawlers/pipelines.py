"""Item pipeline: batch posts, classify them, segment them and index them in Elasticsearch.

A batch that cannot be indexed because Elasticsearch is unreachable goes to the spool and is replayed by the
next crawl; per-document indexing errors are logged with their URL and counted, never dropped silently.
"""

from __future__ import annotations

import logging
from typing import Any

from elasticsearch import ApiError, Elasticsearch, TransportError
from scrapy import Spider
from scrapy.crawler import Crawler

from crawlers.enrich import Enricher
from crawlers.spool import Spool
from index.client import make_client
from index.documents import Post
from index.layout import POSTS, setup
from index.writer import index_posts
from yuqing.settings import Settings

log = logging.getLogger(__name__)


class IndexPipeline:
    batch_size = 100

    def __init__(self, crawler: Crawler) -> None:
        self.crawler = crawler
        self.settings: Settings = crawler.settings["YUQING_SETTINGS"]
        self.stats = crawler.stats
        settings = self.settings
        self.alias = POSTS.alias(settings.elasticsearch.index_prefix)
        self.spool = Spool(settings.paths.data_dir / "spool")
        self.buffer: list[Post] = []
        self.client: Elasticsearch | None = None
        self.enricher: Enricher | None = None

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> IndexPipeline:
        return cls(crawler)

    @property
    def spider(self) -> Spider:
        assert self.crawler.spider is not None
        return self.crawler.spider

    def open_spider(self) -> None:
        spider = self.spider
        self.client = make_client(self.settings.elasticsearch)
        self.enricher = Enricher.from_settings(self.settings)
        try:
            setup(self.client, self.settings.elasticsearch)
            self._replay_spool(spider)
        except (TransportError, ApiError) as exc:
            log.error("elasticsearch unavailable at start of %s (posts will be spooled): %s", spider.name, exc)

    def _replay_spool(self, spider: Spider) -> None:
        assert self.client is not None
        for path in self.spool.files():
            posts = list(self.spool.read(path))
            report = index_posts(self.client, self.alias, posts, raise_on_error=False,
                                 chunk_size=self.settings.elasticsearch.bulk_chunk_size)
            self.stats.inc_value("yuqing/spool_replayed", report.ok, spider=spider)
            if report.failures:
                log.error("spool %s: %d posts still failing; file kept", path, len(report.failures))
                continue
            path.unlink()

    def process_item(self, item: Any) -> Any:
        if isinstance(item, Post):
            self.buffer.append(item)
            if len(self.buffer) >= self.batch_size:
                self._flush(self.spider)
        return item

    def close_spider(self) -> None:
        self._flush(self.spider)
        if self.client is not None:
            self.client.close()

    def _flush(self, spider: Spider) -> None:
        if not self.buffer:
            return
        batch, self.buffer = self.buffer, []
        assert self.client is not None and self.enricher is not None
        posts = self.enricher.enrich(batch)
        try:
            report = index_posts(self.client, self.alias, posts, raise_on_error=False,
                                 chunk_size=self.settings.elasticsearch.bulk_chunk_size)
        except (TransportError, ApiError, ConnectionError) as exc:
            path = self.spool.write(posts, tag=spider.name.replace(":", "_").replace("/", "_"))
            self.stats.inc_value("yuqing/spooled", len(posts), spider=spider)
            log.error("elasticsearch unavailable; %d posts spooled to %s: %s", len(posts), path, exc)
            return
        self.stats.inc_value("yuqing/indexed", report.ok, spider=spider)
        self.stats.inc_value("yuqing/new", report.created, spider=spider)
        if report.failures:
            self.stats.inc_value("yuqing/index_errors", len(report.failures), spider=spider)
