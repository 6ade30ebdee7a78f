"""Scrapy settings derived from the project's settings (one place for politeness and limits)."""

from __future__ import annotations

import time
from typing import Any

from crawlers.redis_keys import DUPEFILTER_KEY, QUEUE_KEY, run_id
from yuqing.settings import Settings


def scrapy_settings(settings: Settings, now_s: float | None = None) -> dict[str, Any]:
    c = settings.crawl
    debug = settings.logging.level == "DEBUG"
    out: dict[str, Any] = {
        "YUQING_SETTINGS": settings,
        "BOT_NAME": "yuqing",
        "USER_AGENT": c.user_agent,
        "ROBOTSTXT_OBEY": c.obey_robots,
        "CONCURRENT_REQUESTS_PER_DOMAIN": c.concurrent_requests_per_domain,
        "DOWNLOAD_TIMEOUT": c.download_timeout_s,
        "DOWNLOAD_MAXSIZE": c.download_maxsize_mb * 1024 * 1024,
        "DOWNLOAD_WARNSIZE": min(c.download_maxsize_mb, 5) * 1024 * 1024,
        "RETRY_ENABLED": c.retry_times > 0,
        "RETRY_TIMES": c.retry_times,
        "YUQING_RETRY_BACKOFF_S": c.retry_backoff_s,
        "YUQING_RETRY_BACKOFF_MAX_S": c.retry_backoff_max_s,
        "AUTOTHROTTLE_ENABLED": c.autothrottle,
        "AUTOTHROTTLE_START_DELAY": 0.5,
        "AUTOTHROTTLE_MAX_DELAY": 30.0,
        "REDIRECT_MAX_TIMES": 10,
        "COOKIES_ENABLED": False,
        "TELNETCONSOLE_ENABLED": False,
        # Logging is yuqing.logs' (one handler, set up by the entry point); Scrapy adds no handler of its own
        # (crawlers.runner), prints its periodic "Crawled N pages" and its stats dump only at DEBUG, and
        # names items by URL, never by their content.
        "LOG_LEVEL": settings.logging.level,
        "LOGSTATS_INTERVAL": 60.0 if debug else 0.0,
        "STATS_DUMP": debug,
        "LOG_FORMATTER": "crawlers.logformat.ItemFreeLogFormatter",
        "ITEM_PIPELINES": {"crawlers.pipelines.IngestPipeline": 500},
        "DUPEFILTER_CLASS": "crawlers.dupefilters.LoopReportingDupeFilter",
        "REQUEST_FINGERPRINTER_IMPLEMENTATION": "2.7",
        "FEED_EXPORT_ENCODING": "utf-8",
    }
    middlewares = {
        "crawlers.middlewares.ConditionalRequestMiddleware": 560,
        "scrapy.downloadermiddlewares.retry.RetryMiddleware": None,
        "crawlers.retry.BackoffRetryMiddleware": 550,
    }
    if c.proxy:
        out["HTTPPROXY_ENABLED"] = True
        out["YUQING_PROXY"] = c.proxy
        middlewares["crawlers.middlewares.ProxyMiddleware"] = 350
    out["DOWNLOADER_MIDDLEWARES"] = middlewares
    if c.redis_url:
        # Scale-out: several machines share one request queue and one dupefilter in Redis (scrapy-redis),
        # under keys of this run (crawlers.redis_keys).
        run = run_id(c.redis_run_id, time.time() if now_s is None else now_s, settings.schedule.crawl_interval_s)
        out.update({
            "SCHEDULER": "scrapy_redis.scheduler.Scheduler",
            "DUPEFILTER_CLASS": "crawlers.dupefilters.RedisLoopReportingDupeFilter",
            "SCHEDULER_PERSIST": True,
            "SCHEDULER_QUEUE_KEY": QUEUE_KEY.format(run=run),
            "SCHEDULER_DUPEFILTER_KEY": DUPEFILTER_KEY.format(run=run),
            "REDIS_URL": c.redis_url,
            "YUQING_REDIS_KEY_TTL_S": 2 * settings.schedule.crawl_interval_s,
            "EXTENSIONS": {"crawlers.redis_keys.ExpireRunKeys": 500},
        })
    return out
