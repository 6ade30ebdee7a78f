"""Downloader middlewares: proxy, and conditional requests (ETag / Last-Modified) from the crawl state."""

from __future__ import annotations

from datetime import datetime

from scrapy import Request
from scrapy.crawler import Crawler
from scrapy.exceptions import IgnoreRequest
from scrapy.http import Response

from crawlers.signals import crawl_state_loaded, page_unreadable
from index.crawl_state import CrawlState


class ProxyMiddleware:
    """Sends every request through the configured proxy (crawl.proxy)."""

    def __init__(self, proxy: str) -> None:
        self.proxy = proxy

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> ProxyMiddleware:
        return cls(crawler.settings["YUQING_PROXY"])

    def process_request(self, request: Request) -> None:
        request.meta.setdefault("proxy", self.proxy)


class NotModified(IgnoreRequest):
    """The server answered 304: the page did not change since the last crawl."""


class ConditionalRequestMiddleware:
    """Adds If-None-Match / If-Modified-Since from the previous crawl; a 304 ends the request as unchanged. The
    validators of a 200 are remembered, and forgotten again when the spider could not read the page
    (:data:`~crawlers.signals.page_unreadable`).

    The crawl state arrives with the :data:`~crawlers.signals.crawl_state_loaded` signal (the ingest pipeline
    loads it when the spider opens); until then, or without one, requests go out unconditionally."""

    def __init__(self, crawler: Crawler) -> None:
        self.crawler = crawler
        self.state: CrawlState | None = None
        crawler.signals.connect(self._state_loaded, signal=crawl_state_loaded)
        crawler.signals.connect(self._page_unreadable, signal=page_unreadable)

    def _state_loaded(self, state: CrawlState | None) -> None:
        self.state = state

    def _page_unreadable(self, url: str) -> None:
        if self.state is not None:
            self.state.forget_http(url)

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> ConditionalRequestMiddleware:
        return cls(crawler)

    @staticmethod
    def _exempt(request: Request) -> bool:
        """Requests always sent in full and never recorded: those marked ``dont_condition`` (list pages) and
        robots.txt (Scrapy's own request: a 304 there would leave the crawl without its rules)."""
        return bool(request.meta.get("dont_condition") or request.meta.get("dont_obey_robotstxt")
                    or request.url.endswith("/robots.txt"))

    def process_request(self, request: Request) -> None:
        state = self.state
        if state is None or self._exempt(request):
            return
        page = state.get(request.url)
        if page is None:
            return
        if page.etag:
            request.headers.setdefault(b"If-None-Match", page.etag.encode("latin-1"))
        if page.last_modified:
            request.headers.setdefault(b"If-Modified-Since", page.last_modified.encode("latin-1"))

    def process_response(self, request: Request, response: Response) -> Response:
        state = self.state
        if state is None or self._exempt(request):
            return response
        now = datetime.now().astimezone()
        if response.status == 304:
            state.touch(request.url, now)
            assert self.crawler.stats is not None
            self.crawler.stats.inc_value("yuqing/unchanged")
            raise NotModified(f"not modified: {request.url}")
        if response.status == 200:
            etag = response.headers.get(b"ETag")
            modified = response.headers.get(b"Last-Modified")
            if etag or modified:
                state.record_http(request.url, etag=etag.decode("latin-1") if etag else None,
                                  last_modified=modified.decode("latin-1") if modified else None, now=now)
        return response
