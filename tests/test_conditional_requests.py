"""Conditional requests: robots.txt and list pages always go out in full, article pages carry the validators."""

from __future__ import annotations

from datetime import datetime
from typing import Any, cast

from scrapy import Request
from scrapy.utils.test import get_crawler

from crawlers.middlewares import ConditionalRequestMiddleware
from index.crawl_state import CrawlState


def test_robots_txt_and_list_pages_are_never_conditional() -> None:
    state = CrawlState(cast(Any, None), "unused", "board")
    now = datetime.now().astimezone()
    for url in ("http://e.cn/robots.txt", "http://e.cn/list.html", "http://e.cn/msg/1.html"):
        state.record_http(url, etag='"v1"', last_modified=None, now=now)
    middleware = ConditionalRequestMiddleware(get_crawler())
    middleware._state_loaded(state)

    robots = Request("http://e.cn/robots.txt", meta={"dont_obey_robotstxt": True})
    listing = Request("http://e.cn/list.html", meta={"dont_condition": True})
    article = Request("http://e.cn/msg/1.html")
    for request in (robots, listing, article):
        middleware.process_request(request)
    assert b"If-None-Match" not in robots.headers and b"If-None-Match" not in listing.headers
    assert article.headers[b"If-None-Match"] == b'"v1"'
