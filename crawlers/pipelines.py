"""The Scrapy item pipeline: a thin adapter that feeds the crawled posts into an ingest session (``ingest``).

At the start of a spider it opens the session (indices, crawl state, spool replay) and announces the crawl
state on the crawler's signals (:data:`crawlers.signals.crawl_state_loaded`) for the conditional-request
middleware; each post goes to the session; at the end the session's report becomes the crawl's ``yuqing/*``
stats.
"""

from __future__ import annotations

from typing import Any

from scrapy.crawler import Crawler

from crawlers.signals import crawl_state_loaded
from ingest.session import IngestSession
from yuqing.models import Post
from yuqing.settings import Settings

# IngestReport field -> the crawl stat it adds to.
STATS = {"received": "received", "unchanged": "unchanged", "indexed": "indexed", "new": "new",
         "duplicates": "duplicates", "index_errors": "index_errors", "spooled": "spooled",
         "replayed": "spool_replayed"}


class IngestPipeline:
    def __init__(self, crawler: Crawler) -> None:
        self.crawler = crawler
        settings: Settings = crawler.settings["YUQING_SETTINGS"]
        spider = crawler.spider
        assert spider is not None  # Scrapy makes the spider before its pipelines
        source = getattr(spider, "source", None)
        self.session = IngestSession(settings, source=source.name if source is not None else None, tag=spider.name)

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> IngestPipeline:
        return cls(crawler)

    def open_spider(self) -> None:
        state = self.session.open()
        self.crawler.signals.send_catch_log(signal=crawl_state_loaded, state=state)

    def process_item(self, item: Any) -> Any:
        if isinstance(item, Post):
            self.session.add(item)
        return item

    def close_spider(self) -> None:
        report = self.session.close()
        assert self.crawler.stats is not None
        for name, value in report.counts().items():
            if value:
                self.crawler.stats.inc_value(f"yuqing/{STATS[name]}", value)
