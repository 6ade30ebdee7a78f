"""Scrapy's per-item log lines without the item: a post's body (a citizen's message, personal data before
redaction) never goes to a log, at any level. The item is named by its URL."""

from __future__ import annotations

from typing import Any

from scrapy import Spider
from scrapy.http import Response
from scrapy.logformatter import LogFormatter, LogFormatterResult
from twisted.python.failure import Failure


def item_name(item: Any) -> str:
    url = getattr(item, "url", None)
    return f"<{type(item).__name__} {url}>" if url else f"<{type(item).__name__}>"


def _args(result: LogFormatterResult) -> dict[str, Any]:
    args = result["args"]
    assert isinstance(args, dict)
    return args


class ItemFreeLogFormatter(LogFormatter):
    def scraped(self, item: Any, response: Response | Failure | None, spider: Spider) -> LogFormatterResult:
        result = super().scraped(item, response, spider)
        return {**result, "msg": "Scraped %(item)s from %(src)s", "args": {**_args(result), "item": item_name(item)}}

    def dropped(self, item: Any, exception: BaseException, response: Response | Failure | None,
                spider: Spider) -> LogFormatterResult:
        result = super().dropped(item, exception, response, spider)
        return {**result, "msg": "Dropped %(item)s: %(exception)s", "args": {**_args(result), "item": item_name(item)}}

    def item_error(self, item: Any, exception: BaseException, response: Response | Failure | None,
                   spider: Spider) -> LogFormatterResult:
        result = super().item_error(item, exception, response, spider)
        return {**result, "args": {"item": item_name(item)}}
