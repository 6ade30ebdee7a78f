"""Scrapy settings derived from the project's settings (one place for politeness and limits)."""

from __future__ import annotations

from typing import Any

from yuqing.settings import Settings


def scrapy_settings(settings: Settings) -> dict[str, Any]:
    c = settings.crawl
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
        "LOG_LEVEL": c.log_level,
        "ITEM_PIPELINES": {"crawlers.pipelines.IndexPipeline": 500},
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
        # Scale-out: several machines share one request queue and one dupefilter in Redis (scrapy-redis).
        out.update({
            "SCHEDULER": "scrapy_redis.scheduler.Scheduler",
            "DUPEFILTER_CLASS": "crawlers.dupefilters.RedisLoopReportingDupeFilter",
            "SCHEDULER_PERSIST": True,
            "REDIS_URL": c.redis_url,
        })
    return out
