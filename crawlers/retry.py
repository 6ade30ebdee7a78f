"""Retries with exponential backoff: Scrapy's retry policy, but each retry waits before it is sent.

The wait does not block the crawl: other requests go on while a retried one sleeps.
"""

from __future__ import annotations

from scrapy import Request
from scrapy.crawler import Crawler
from scrapy.downloadermiddlewares.retry import RetryMiddleware
from scrapy.http import Response
from scrapy.utils.defer import maybe_deferred_to_future
from twisted.internet import reactor, task


def backoff_delay(retry_times: int, base_s: float, max_s: float) -> float:
    """Seconds to wait before retry number ``retry_times`` (1, 2, ...): base, 2·base, 4·base … capped."""
    return min(max_s, base_s * (2 ** max(0, retry_times - 1)))


class BackoffRetryMiddleware(RetryMiddleware):
    def __init__(self, crawler: Crawler) -> None:
        super().__init__(crawler.settings)
        self.crawler = crawler
        self.base_s = crawler.settings.getfloat("YUQING_RETRY_BACKOFF_S", 1.0)
        self.max_s = crawler.settings.getfloat("YUQING_RETRY_BACKOFF_MAX_S", 30.0)

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> BackoffRetryMiddleware:
        return cls(crawler)

    async def _wait(self, retry: Request) -> Request:
        delay = backoff_delay(int(retry.meta.get("retry_times", 1)), self.base_s, self.max_s)
        if delay > 0:
            await maybe_deferred_to_future(task.deferLater(reactor, delay, lambda: None))
        return retry

    async def process_response(  # type: ignore[override]
        self, request: Request, response: Response, spider: object = None
    ) -> Request | Response:
        result = super().process_response(request, response)
        return await self._wait(result) if isinstance(result, Request) else result

    async def process_exception(  # type: ignore[override]
        self, request: Request, exception: Exception, spider: object = None
    ) -> Request | Response | None:
        result = super().process_exception(request, exception)
        return await self._wait(result) if isinstance(result, Request) else result
