"""The baseline of bench/crawl.py: a bare Scrapy spider that downloads every page a feed links to and does
nothing else (no extraction, no dedupe, no indexing). Prints one JSON line: pages and seconds.

    python -m bench.bare_spider FEED_URL
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Iterator
from typing import Any

import scrapy
from scrapy.http import Response

from crawlers.feeds import parse_feed
from crawlers.runner import crawler_process
from crawlers.scrapy_settings import scrapy_settings
from yuqing.logs import setup_logging
from yuqing.settings import load_settings


class BareSpider(scrapy.Spider):
    name = "bare"
    pages = 0

    def __init__(self, feed_url: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.feed_url = feed_url

    async def start(self) -> Any:
        yield scrapy.Request(self.feed_url, callback=self.parse_feed)

    def parse_feed(self, response: Response) -> Iterator[scrapy.Request]:
        for entry in parse_feed(response.body, response.url):
            yield scrapy.Request(entry.link, callback=self.parse_page)

    def parse_page(self, response: Response) -> None:
        BareSpider.pages += 1


def main() -> None:
    settings = load_settings()
    setup_logging(settings, "bench:bare-spider")
    config = scrapy_settings(settings)
    config.pop("ITEM_PIPELINES")
    config.pop("DOWNLOADER_MIDDLEWARES")
    process = crawler_process(config)  # logging as in a crawl
    process.crawl(BareSpider, feed_url=sys.argv[1])
    t0 = time.perf_counter()
    process.start()
    print(json.dumps({"pages": BareSpider.pages, "seconds": time.perf_counter() - t0}))


if __name__ == "__main__":
    main()
