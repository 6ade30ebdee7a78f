"""Duplicate-request filters that report redirect loops.

A redirect back to a URL already requested is dropped by the dupefilter, normally with only a debug line.
When the dropped request's URL is in its own redirect chain it is a redirect loop: a broken page the
press office should hear about, so it is logged as an error with its URL and counted.
"""

from __future__ import annotations

from typing import Any

from scrapy import Request, Spider
from scrapy.dupefilters import RFPDupeFilter
from scrapy_redis.dupefilter import RFPDupeFilter as RedisRFPDupeFilter


def report_redirect_loop(request: Request, spider: Spider) -> None:
    chain = request.meta.get("redirect_urls") or []
    if request.url in chain:
        spider.crawler.stats.inc_value("yuqing/errors")
        spider.logger.error("redirect loop: %s redirects back to %s", chain[0], request.url)


class LoopReportingDupeFilter(RFPDupeFilter):
    def log(self, request: Request, spider: Spider) -> None:
        report_redirect_loop(request, spider)
        super().log(request, spider)


class RedisLoopReportingDupeFilter(RedisRFPDupeFilter):
    """The scrapy-redis dupefilter (shared by every crawling machine), reporting loops the same way."""

    def log(self, request: Request, spider: Spider) -> Any:
        report_redirect_loop(request, spider)
        return super().log(request, spider)
