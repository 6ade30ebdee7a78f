"""Per-run keys for distributed crawling with scrapy-redis.

Machines that crawl the same source in the same run share ``yuqing:<spider>:<run>:requests`` and
``…:dupefilter``; the next run gets fresh keys, so pages (a message whose official reply arrived later, say)
are fetched again, and the finished run's keys expire instead of piling up in Redis.
"""

from __future__ import annotations

import logging

from scrapy import Spider, signals
from scrapy.crawler import Crawler
from scrapy_redis.connection import get_redis_from_settings

log = logging.getLogger(__name__)

QUEUE_KEY = "yuqing:%(spider)s:{run}:requests"
DUPEFILTER_KEY = "yuqing:%(spider)s:{run}:dupefilter"


def run_id(explicit: str | None, now_s: float, interval_s: int) -> str:
    """The run all machines agree on: the configured id, else the schedule slot the crawl started in."""
    return explicit or f"slot{int(now_s // interval_s)}"


class ExpireRunKeys:
    """When the spider closes, give this run's Redis keys a time to live (the other machines may still be
    working on them)."""

    def __init__(self, crawler: Crawler) -> None:
        self.crawler = crawler
        self.ttl = crawler.settings.getint("YUQING_REDIS_KEY_TTL_S", 3600)

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> ExpireRunKeys:
        ext = cls(crawler)
        crawler.signals.connect(ext.spider_closed, signal=signals.spider_closed)
        return ext

    def spider_closed(self, spider: Spider) -> None:
        settings = self.crawler.settings
        server = get_redis_from_settings(settings)
        for setting in ("SCHEDULER_QUEUE_KEY", "SCHEDULER_DUPEFILTER_KEY"):
            key = settings.get(setting) % {"spider": spider.name}
            server.expire(key, self.ttl)
        log.info("redis keys of %s expire in %ss", spider.name, self.ttl)
