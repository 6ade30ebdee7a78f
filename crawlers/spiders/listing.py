"""List pages: read each list page's item links (``selectors.item_links``), follow them to the article
pages and extract the articles; page on through ``selectors.next_page`` or a ``{page}`` placeholder in the
start URL.

Bounded by ``max_items`` (articles, over all start URLs) and ``max_pages`` (list pages per start URL). An
article page without a body selector gets automatic main-text extraction (``read_article``). The HTML helpers
here (page parsing, link and field selection) are shared with the message-board and search spiders.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any
from urllib.parse import urljoin

import scrapy
from scrapy.http import Response
from scrapy.spidermiddlewares.httperror import HttpError
from twisted.python.failure import Failure

from crawlers.dates import parse_datetime
from crawlers.extract.dom import HtmlElement, element_text, normalize_space, parse_html, select_any, text_lines
from crawlers.spiders.base import SourceSpider, response_text
from yuqing.models import Post, PostKind
from yuqing.sources import FieldRule, FieldSpec, fill_template, template_fields

_MARKUP = re.compile(r"<\s*[a-zA-Z!/?]")
_SKIP_LINK = re.compile(r"^\s*(?:javascript:|mailto:|tel:|#|$)", re.IGNORECASE)

# Request meta of list, result and JSON pages: always fetched in full, never as a conditional request (they
# change with every new item, and a message page's new reply shows only when its list page is read again).
# Item pages may be answered 304 Not Modified (crawlers.middlewares.ConditionalRequestMiddleware). These
# requests also bypass the dupefilter (dont_filter; it may persist between crawls): paging is bounded by
# max_pages and stops when a page brings nothing new.
FRESH = {"dont_condition": True}


# ---- HTML helpers ----------------------------------------------------------------------------------------


def html_root(text: str) -> HtmlElement | None:
    """The parsed document, or None when ``text`` is empty or not markup (e.g. JSON or binary)."""
    if not _MARKUP.search(text[:4096]):
        return None
    return parse_html(text)


def base_url(root: HtmlElement, url: str) -> str:
    """The URL relative links on the page resolve against (its <base href>, if any)."""
    for href in root.xpath("//base/@href"):
        if isinstance(href, str) and href.strip():
            return urljoin(url, href.strip())
    return url


def select_links(root: HtmlElement, selector: str, url: str) -> list[str]:
    """Absolute URLs of the links ``selector`` picks (an element with an href, the first ``<a href>`` inside
    an element, or href strings), in page order, without repeats or javascript:/mailto:/# links."""
    base = base_url(root, url)
    out: list[str] = []
    for found in select_any(root, selector):
        href: str | None
        if isinstance(found, str):
            href = found
        else:
            href = found.get("href")
            if href is None:
                inner = found.xpath(".//a[@href][1]/@href")
                href = inner[0] if inner else None
        if href is None or _SKIP_LINK.match(href):
            continue
        link = urljoin(base, href.strip()).split("#", 1)[0]
        if link.startswith(("http://", "https://")) and link not in out:
            out.append(link)
    return out


def read_field(root: HtmlElement, spec: FieldSpec | None, blocks: frozenset[str], *, multiline: bool = False) -> str:
    """The text of one configured field ('' when absent). ``multiline`` keeps the block structure (one
    line per paragraph, ``blocks`` being the tags that start one) and joins every matched element; otherwise the
    first match, whitespace collapsed. An invalid selector raises ValueError."""
    if spec is None:
        return ""
    rule = spec if isinstance(spec, FieldRule) else FieldRule(selector=spec)
    texts: list[str] = []
    for found in select_any(root, rule.selector):
        if isinstance(found, str):
            text = found.strip() if multiline else normalize_space(found)
        elif rule.attr:
            text = normalize_space(found.get(rule.attr) or "")
        elif multiline:
            text = "\n".join(line.text for line in text_lines(found, blocks))
        else:
            text = element_text(found)
        if rule.pattern:
            match = re.search(rule.pattern, text)
            text = (match.group(1) if match.groups() else match.group(0)).strip() if match else ""
        if text:
            texts.append(text)
            if not multiline:
                break
    return "\n".join(texts)


def on_page_error(spider: SourceSpider, failure: Failure) -> None:
    """Errback of list, result and JSON pages: a 404 past the first page is the end of the pages (paging by
    a {page} template runs into it); anything else is logged and counted by ``on_error``."""
    request = getattr(failure, "request", None)
    error = failure.value
    if (
        request is not None
        and request.cb_kwargs.get("page", 1) > 1
        and isinstance(error, HttpError)
        and error.response.status == 404
    ):
        spider.logger.debug("list page not found, the last was the one before: %s", request.url)
        return
    spider.on_error(failure)


# ---- the spider ------------------------------------------------------------------------------------------


def first_pages(spider: SourceSpider, callback: Any, errback: Any) -> Iterator[scrapy.Request]:
    """Requests for page 1 of each start URL (``{page}`` in a URL is filled with ``first_page``); list and
    result pages are always fetched in full (``FRESH``) and never dropped as duplicates."""
    for url in spider.source.start_urls:
        template = str(url) if "page" in template_fields(str(url)) else None
        first = fill_template(template, page=str(spider.source.first_page)) if template else str(url)
        yield scrapy.Request(first, callback=callback, errback=errback, dont_filter=True,
                             cb_kwargs={"page": 1, "template": template}, meta=FRESH)


class ListSpider(SourceSpider):
    name = "list"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.taken: set[str] = set()  # item URLs scheduled so far (max_items counts these)

    def first_requests(self) -> Iterator[scrapy.Request]:
        yield from first_pages(self, self.parse_list, self.on_page_error)

    def on_page_error(self, failure: Failure) -> None:
        on_page_error(self, failure)

    # -- list pages

    def page_root(self, response: Response, what: str) -> HtmlElement | None:
        """The parsed page; a page that is not HTML is logged with its URL and counted as an error."""
        root = html_root(response_text(response))
        if root is None:
            self.count("errors")
            self.logger.error("%s is not an HTML page: %s", what, response.url)
        return root

    @property
    def remaining(self) -> int:
        return self.source.max_items - len(self.taken)

    def take(self, links: list[str]) -> list[str]:
        """The links not scheduled before, up to max_items in all; counted as found."""
        new = [link for link in links if link not in self.taken][: max(self.remaining, 0)]
        self.taken.update(new)
        if new:
            self.count("found", len(new))
        return new

    def parse_list(self, response: Response, page: int, template: str | None) -> Iterator[scrapy.Request]:
        root = self.page_root(response, "list page")
        if root is None:
            return
        item_selector = self.source.selectors.item_links or ""
        try:
            links = select_links(root, item_selector, response.url)
        except ValueError as exc:
            self.count("errors")
            self.logger.error("list page %s: %s", response.url, exc)
            return
        if not links:
            if page > 1:  # past the last page
                self.logger.info("no item links on list page %d, the last: %s", page, response.url)
                return
            # An empty first list page usually means the site changed its layout: worth an error in the report.
            self.count("errors")
            self.logger.error("no item links (%s) on list page %s", item_selector, response.url)
            return
        new = self.take(links)
        for link in new:
            request = self.follow_once(link, self.parse_item)
            if request is not None:
                yield request
        # No new links (a site that ignores the page number, a loop of next links): stop paging.
        if not new or self.remaining <= 0 or page >= self.source.max_pages:
            return
        next_url = self.next_list_url(root, response, page, template)
        if next_url:
            yield scrapy.Request(
                next_url, callback=self.parse_list, errback=self.on_page_error, dont_filter=True,
                cb_kwargs={"page": page + 1, "template": template}, meta=FRESH,
            )

    def next_list_url(
        self, root: HtmlElement, response: Response, page: int, template: str | None
    ) -> str | None:
        if template is not None:
            return fill_template(template, page=str(self.source.first_page + page))
        selector = self.source.selectors.next_page
        if not selector:
            return None
        try:
            links = select_links(root, selector, response.url)
        except ValueError as exc:
            self.count("errors")
            self.logger.error("list page %s: next_page: %s", response.url, exc)
            return None
        links = [link for link in links if link != response.url]
        return links[0] if links else None

    # -- item pages

    def parse_item(self, response: Response) -> Iterator[Post]:
        post = self.article_post(response, "article")
        if post is not None:
            yield post

    def article_post(
        self, response: Response, kind: PostKind, fallback: dict[str, Any] | None = None
    ) -> Post | None:
        """The article on ``response`` as a Post (``fallback`` fills title/content/author/published_at the
        page lacks); None, logged and counted, when nothing can be extracted."""
        fallback = fallback or {}
        article = self.read_article(response)  # None: not HTML (logged and counted)
        if article is None:
            return None
        now = self.now()
        title = article.title or fallback.get("title") or ""
        content = article.content or fallback.get("content") or ""
        author = article.author or fallback.get("author")
        published = article.published_at or fallback.get("published_at")
        sel = self.source.selectors
        if sel.author or sel.published_at:
            root = html_root(response_text(response))
            try:
                if root is not None and sel.author:
                    author = read_field(root, sel.author, self.blocks) or author
                if root is not None and sel.published_at:
                    text = read_field(root, sel.published_at, self.blocks)
                    published = (parse_datetime(text, now=now, tz=self.zone) if text else None) or published
            except ValueError as exc:
                self.count("errors")
                self.logger.error("article %s: %s", response.url, exc)
        return self.page_post(response, article, kind=kind, title=title, content=content, author=author,
                              published_at=published, now=now)
