"""RSS/Atom feeds: read the feed, follow each item to its article page, extract the article."""

from __future__ import annotations

from collections.abc import Iterator

import scrapy
from scrapy.http import Response

from crawlers.dates import parse_datetime
from crawlers.feeds import FeedEntry, FeedError, parse_feed
from crawlers.spiders.base import SourceSpider
from yuqing.models import Post


class FeedSpider(SourceSpider):
    name = "feed"

    def first_requests(self) -> Iterator[scrapy.Request]:
        for url in self.source.start_urls:
            yield scrapy.Request(str(url), callback=self.parse_feed, errback=self.on_error, dont_filter=True)

    def parse_feed(self, response: Response) -> Iterator[scrapy.Request]:
        try:
            entries = parse_feed(response.body, response.url)
        except FeedError as exc:
            self.count("errors")
            self.logger.error("not a feed: %s: %s", response.url, exc)
            return
        self.count("found", len(entries))
        for entry in entries[: self.source.max_items]:
            request = self.follow_once(entry.link, self.parse_article, cb_kwargs={"entry": entry})
            if request is not None:
                yield request

    def parse_article(self, response: Response, entry: FeedEntry) -> Iterator[Post]:
        article = self.read_article(response)
        if article is None:
            return
        now = self.now()
        published = article.published_at
        if published is None and entry.published:
            published = parse_datetime(entry.published, now=now, tz=self.zone)
        post = self.page_post(response, article, kind="article", title=article.title or entry.title,
                              content=article.content or entry.summary, author=article.author or entry.author,
                              published_at=published, now=now)
        if post is not None:
            yield post
