"""What every source spider shares: its Source, the project settings and extraction rules, the start of the
crawl, article parsing and error accounting."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

import scrapy
from scrapy.crawler import Crawler
from scrapy.exceptions import IgnoreRequest
from scrapy.http import Response
from twisted.python.failure import Failure

from crawlers.encoding import decode_html
from crawlers.extract import ExtractedArticle, ExtractionRules, extract_article, load_extraction_rules
from crawlers.extract.rules import EXTRACTION_CONFIG_NAME
from crawlers.middlewares import NotModified
from crawlers.signals import page_unreadable
from yuqing.models import Post, PostKind
from yuqing.settings import Settings
from yuqing.sources import Source

log = logging.getLogger(__name__)


def response_text(response: Response) -> str:
    """The response body decoded (Content-Type charset, then <meta charset>, then detection)."""
    header = response.headers.get(b"Content-Type")
    charset = None
    if header:
        for part in header.decode("latin-1").split(";"):
            key, _, value = part.strip().partition("=")
            if key.lower() == "charset" and value:
                charset = value.strip("\"' ")
    text, _encoding = decode_html(response.body, charset)
    return text


class SourceSpider(scrapy.Spider):
    """Base of the per-kind spiders. Constructed with ``source=`` (a :class:`Source`)."""

    name = "source"
    yuqing_settings: Settings
    rules: ExtractionRules  # config/extraction.yaml of the settings
    blocks: frozenset[str]  # the tags that start a new line of text (from the rules)

    def __init__(self, source: Source, **kwargs: Any) -> None:
        super().__init__(name=f"{source.kind}:{source.name}", **kwargs)
        self.source = source
        self._requested: set[str] = set()
        if source.allowed_domains:
            self.allowed_domains = list(source.allowed_domains)

    @classmethod
    def from_crawler(cls, crawler: Crawler, *args: Any, **kwargs: Any) -> SourceSpider:
        spider = super().from_crawler(crawler, *args, **kwargs)
        spider.yuqing_settings = crawler.settings["YUQING_SETTINGS"]
        spider.rules = load_extraction_rules(spider.yuqing_settings.config_file(EXTRACTION_CONFIG_NAME))
        spider.blocks = frozenset(spider.rules.content.block_tags)
        return spider

    async def start(self) -> Any:  # Scrapy >= 2.13
        for request in self.first_requests():
            yield request

    def first_requests(self) -> Iterator[scrapy.Request]:
        """What each kind of spider asks for first (its start URLs, or searches)."""
        raise NotImplementedError

    @property
    def settings_obj(self) -> Settings:
        return self.yuqing_settings

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.settings_obj.timezone)

    def now(self) -> datetime:
        return datetime.now(self.zone)

    def unreadable(self, response: Response, message: str, *args: object) -> None:
        """A fetched page gave no post: logged (``message % args``) and counted as an error, and its HTTP validators
        forgotten, so that the next crawl fetches it in full rather than taking a 304 for it."""
        self.count("errors")
        self.logger.error(message, *args)
        self.crawler.signals.send_catch_log(page_unreadable, url=response.url)

    def count(self, key: str, n: int = 1) -> None:
        assert self.crawler.stats is not None
        self.crawler.stats.inc_value(f"yuqing/{key}", n)

    def on_error(self, failure: Failure) -> None:
        """Errback: a failed request is logged with its URL and counted; the crawl goes on."""
        request = getattr(failure, "request", None)
        url = request.url if request is not None else "?"
        if failure.check(NotModified):
            self.logger.debug("not modified since the last crawl: %s", url)
            return
        if failure.check(IgnoreRequest) and "robots.txt" in failure.getErrorMessage():
            self.count("robots_forbidden")
            self.logger.warning("not fetched, forbidden by the site's robots.txt: %s", url)
            return
        self.count("errors")
        self.logger.error("request failed: %s: %s", url, failure.getErrorMessage() or failure.type)

    def follow_once(self, url: str, callback: Any, **kwargs: Any) -> scrapy.Request | None:
        """A request for ``url`` unless this spider already asked for it in this run (the dupefilter, shared
        through Redis when crawling on several machines, also drops URLs requested elsewhere)."""
        if url in self._requested:
            return None
        self._requested.add(url)
        return scrapy.Request(url, callback=callback, errback=self.on_error, **kwargs)

    def read_article(self, response: Response) -> ExtractedArticle | None:
        """The article on ``response``; None (logged, counted) when the page cannot be read as HTML."""
        text = response_text(response)
        sel = self.source.selectors
        try:
            return extract_article(
                text, response.url, rules=self.rules, now=self.now(), body_selector=sel.body,
                title_selector=sel.title,
            )
        except ValueError as exc:
            self.unreadable(response, "cannot extract an article from %s: %s", response.url, exc)
            return None

    def page_post(
        self, response: Response, article: ExtractedArticle, *, kind: PostKind, title: str, content: str,
        author: str | None, published_at: datetime | None, now: datetime,
    ) -> Post | None:
        """The post of an article page; None (logged, counted) when it has neither a title nor text."""
        if not (title or content):
            self.unreadable(response, "no article text extracted: %s", response.url)
            return None
        return Post(url=response.url, title=title, content=content, source=self.source.name,
                    site=self.site_of(response.url, article.site), kind=kind, author=author,
                    published_at=published_at, fetched_at=now)

    def site_of(self, url: str, article_site: str | None) -> str:
        return self.source.site or article_site or (urlsplit(url).hostname or "")
