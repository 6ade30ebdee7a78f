"""Keyword search endpoints: each start URL is a template with ``{keyword}`` and ``{page}``.

The keywords are the source's ``keywords`` list, or by default what the crawl's caller gives (the ``yuqing crawl``
command: the ``any`` keywords of the enabled alert rules, so what the office is alerted on is also what it
searches for). For
each keyword the result pages are read one after the other from ``first_page`` until a page without results or
``max_pages``. Results are either links on an HTML page (``selectors.item_links``, followed to the article
pages) or items of a JSON response (``json_paths``; followed to the article pages when ``search.follow``,
else indexed from the JSON). An article found by several keywords is fetched and indexed once.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import quote

import scrapy
from scrapy.http import Response

from crawlers.spiders.listing import FRESH, ListSpider, select_links
from crawlers.spiders.social import (
    JsonPosts,
    NotJson,
    items_at,
    json_document,
    markup_to_text,
    parse_time,
    text_value,
)
from yuqing.errors import ConfigError
from yuqing.jsonpath import get_one
from yuqing.models import Post
from yuqing.sources import SearchOptions, fill_template

# The keywords to search for when a source names none (may raise ConfigError, counted as the source's error).
KeywordSource = Callable[[], list[str]]


class SearchSpider(ListSpider):
    name = "search"

    def __init__(self, *args: Any, keywords: KeywordSource | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.default_keywords = keywords
        self.options: SearchOptions = self.source.search or SearchOptions()
        paths = self.source.json_paths
        self.json_reader = JsonPosts(self, paths, self.options.post_kind) if paths is not None else None

    def keywords(self) -> list[str]:
        """The source's keywords, or the caller's (in their order, once each)."""
        if self.source.keywords is not None:
            words = self.source.keywords
        elif self.default_keywords is not None:
            words = self.default_keywords()
        else:
            words = []
        return list(dict.fromkeys(words))

    def search_url(self, template: str, keyword: str, page: int) -> str:
        encoded = quote(keyword.encode(self.options.keyword_encoding, errors="replace"), safe="")
        return fill_template(template, keyword=encoded, page=str(self.source.first_page + page - 1))

    def first_requests(self) -> Iterator[scrapy.Request]:
        try:
            keywords = self.keywords()
        except ConfigError as exc:
            self.count("errors")
            self.logger.error("no search keywords: %s", exc)
            return
        if not keywords:
            self.count("errors")
            self.logger.error("no search keywords: set the source's keywords (or `any` in the alert rules)")
            return
        for url in self.source.start_urls:
            for keyword in keywords:
                yield self.results_request(str(url), keyword, 1)

    def results_request(self, template: str, keyword: str, page: int) -> scrapy.Request:
        return scrapy.Request(
            self.search_url(template, keyword, page), callback=self.parse_results, errback=self.on_page_error,
            dont_filter=True, cb_kwargs={"template": template, "keyword": keyword, "page": page}, meta=FRESH,
        )

    def parse_results(self, response: Response, template: str, keyword: str, page: int) -> Iterator[Any]:
        if self.options.results == "json":
            found, out = self.json_results(response, page)
        else:
            found, out = self.html_results(response)
        yield from out
        if found and self.remaining > 0 and page < self.source.max_pages:
            yield self.results_request(template, keyword, page + 1)

    def html_results(self, response: Response) -> tuple[bool, list[Any]]:
        """(whether the page had results, the requests for the new ones)."""
        root = self.page_root(response, "search result page")
        if root is None:
            return False, []
        try:
            links = select_links(root, self.source.selectors.item_links or "", response.url)
        except ValueError as exc:
            self.count("errors")
            self.logger.error("search result page %s: %s", response.url, exc)
            return False, []
        requests = [self.follow_once(link, self.parse_result_page) for link in self.take(links)]
        return bool(links), [r for r in requests if r is not None]

    def json_results(self, response: Response, page: int) -> tuple[bool, list[Any]]:
        assert self.json_reader is not None and self.source.json_paths is not None
        paths = self.source.json_paths
        try:
            doc = json_document(response.body)
        except NotJson as exc:
            self.count("errors")
            self.logger.error("not JSON: %s: %s", response.url, exc)
            return False, []
        items = items_at(doc, paths.items)
        if items is None:
            if page > 1:  # some APIs answer past the last page without the list
                self.logger.info("no results on page %d, the end: %s", page, response.url)
                return False, []
            self.count("errors")
            self.logger.error("no items at %r in the JSON of %s", paths.items, response.url)
            return False, []
        out: list[Any] = []
        for item in items:
            if not isinstance(item, dict) or self.remaining <= 0:
                continue
            url = self.json_reader.url_of(item, response.url)
            if url is None:
                self.count("errors")
                self.logger.error("search result without URL on %s: %.200s", response.url, item)
                continue
            if not self.take([url]):
                continue
            if self.options.follow:
                now = self.now()
                fallback = {
                    "title": markup_to_text(text_value(get_one(item, paths.title)), self.blocks),
                    "content": markup_to_text(text_value(get_one(item, paths.text)), self.blocks),
                    "author": text_value(get_one(item, paths.author)) or None,
                    "published_at": parse_time(get_one(item, paths.published_at), now=now, zone=self.zone),
                }
                request = self.follow_once(url, self.parse_result_page, cb_kwargs={"fallback": fallback})
                if request is not None:
                    out.append(request)
            else:
                out.extend(self.json_reader.read(item, response.url))
        return bool(items), out

    def parse_result_page(self, response: Response, fallback: dict[str, Any] | None = None) -> Iterator[Post]:
        post = self.article_post(response, self.options.post_kind, fallback)
        if post is not None:
            yield post
