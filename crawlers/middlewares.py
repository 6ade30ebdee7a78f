"""Downloader middlewares."""

from __future__ import annotations

from scrapy import Request, Spider
from scrapy.crawler import Crawler


class ProxyMiddleware:
    """Sends every request through the configured proxy (crawl.proxy)."""

    def __init__(self, proxy: str) -> None:
        self.proxy = proxy

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> ProxyMiddleware:
        return cls(crawler.settings["YUQING_PROXY"])

    def process_request(self, request: Request, spider: Spider) -> None:
        request.meta.setdefault("proxy", self.proxy)
