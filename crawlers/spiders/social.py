"""Social-media JSON endpoints (Weibo-style): one document per post, with engagement and the repost chain.

Where the JSON keeps each field is configuration (``json_paths``, dotted paths, see yuqing.jsonpath). Each
item becomes a Post of kind ``social``; a repost's embedded original (``repost_of`` pointing at an object) is
indexed too, once, and the repost's ``repost_of`` is the original's URL (an id there is made a URL through
``url_template``). Paging: ``json_paths.next_page`` (a URL, or a cursor put in the query as ``cursor_param``)
or a ``{page}`` placeholder in the start URL; it stops on a page without items, at ``max_pages`` or at
``max_items``. A page that is not JSON, or lacks the items path, is logged with its URL and counted.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import datetime
from typing import Any
from urllib.parse import parse_qsl, urlencode, urljoin, urlsplit, urlunsplit
from zoneinfo import ZoneInfo

import scrapy
from lxml import etree
from lxml import html as lxml_html
from scrapy.http import Response
from twisted.python.failure import Failure

from crawlers.dates import parse_datetime
from crawlers.extract.dom import normalize_space, text_lines
from crawlers.spiders.base import SourceSpider
from crawlers.spiders.listing import FRESH, first_pages, on_page_error
from yuqing.jsonpath import get_all, get_one, parse_path
from yuqing.models import Engagement, Post, PostKind
from yuqing.sources import JsonPaths, fill_template

_JSONP = re.compile(r"^\s*[\w$.]+\s*\((?P<body>.*)\)\s*;?\s*$", re.DOTALL)
_MARKUP = re.compile(r"<\s*[a-zA-Z!/]")
_COUNT = re.compile(r"(?P<n>\d+(?:\.\d+)?)\s*(?P<unit>万|亿|[kKwW])?")
_UNITS = {"万": 10_000, "w": 10_000, "W": 10_000, "亿": 100_000_000, "k": 1_000, "K": 1_000}
_PLACEHOLDER = re.compile(r"\{([^{}]+)\}")
# Weibo's created_at: "Sat Nov 28 10:00:00 +0800 2026".
_WEIBO_TIME = "%a %b %d %H:%M:%S %z %Y"
_MAX_REPOST_DEPTH = 5


class NotJson(ValueError):
    pass


def json_document(body: bytes) -> Any:
    """The parsed JSON of a response body (a JSONP ``callback(...)`` wrapper is removed)."""
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError:
        try:
            return json.loads(body)
        except ValueError as exc:
            raise NotJson(str(exc)) from exc
    try:
        return json.loads(text)
    except ValueError as exc:
        match = _JSONP.match(text)
        if match is None:
            raise NotJson(str(exc)) from exc
        try:
            return json.loads(match.group("body"))
        except ValueError as exc2:
            raise NotJson(str(exc2)) from exc2


def items_at(doc: Any, path: str) -> list[Any] | None:
    """The items ``path`` points at: a list (or the values ``*`` collects); None when the path is missing."""
    values = get_all(doc, path)
    if not values:
        steps = parse_path(path)
        if "*" in steps and get_all(doc, ".".join(steps[: steps.index("*")])):
            return []  # the list is there, and empty (or none of its elements has the item): no items
        return None
    if len(values) == 1 and isinstance(values[0], list):
        return [v for v in values[0] if v is not None]
    if len(values) == 1 and not path.strip().endswith("*") and isinstance(values[0], dict):
        return [values[0]]
    return values


def markup_to_text(value: str, blocks: frozenset[str]) -> str:
    """Plain text of a post text that may carry HTML (Weibo: links, ``<br />``, emoji images with alt);
    ``blocks``: the tags that start a new line."""
    if not _MARKUP.search(value):
        return value.strip()
    try:
        root = lxml_html.fragment_fromstring(value, create_parent="div")
    except (etree.ParserError, etree.XMLSyntaxError, ValueError):
        return normalize_space(re.sub(r"<[^>]*>", " ", value))
    for img in list(root.iter("img")):
        img.tail = (img.get("alt") or "") + (img.tail or "")
        img.drop_tree()
    return "\n".join(line.text for line in text_lines(root, blocks))


def parse_count(value: Any) -> int:
    """An engagement count: 12, "12", "1,234", "1.2万", "100万+", "3亿"; anything else 0."""
    if isinstance(value, bool) or value is None:
        return 0
    if isinstance(value, int | float):
        return max(0, int(value))
    match = _COUNT.search(str(value).replace(",", ""))
    if match is None:
        return 0
    number = float(match.group("n")) * _UNITS.get(match.group("unit") or "", 1)
    return max(0, int(number))


def parse_time(value: Any, *, now: datetime, zone: ZoneInfo) -> datetime | None:
    """A post time: a unix timestamp (s or ms), Weibo's ``Sat Nov 28 10:00:00 +0800 2026`` or any notation
    crawlers.dates understands (2020-01-06 12:09, 3小时前, 昨天 10:20, ISO 8601, ...)."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        seconds = value / 1000 if value > 1e11 else value
        try:
            return datetime.fromtimestamp(seconds, tz=zone)
        except (OverflowError, OSError, ValueError):
            return None
    text = str(value).strip()
    try:
        return datetime.strptime(text, _WEIBO_TIME).astimezone(zone)
    except ValueError:
        pass
    return parse_datetime(text, now=now, tz=zone)


def text_value(value: Any) -> str:
    """A scalar JSON value as stripped text; objects, lists and null give ''."""
    if value is None or isinstance(value, dict | list):
        return ""
    return str(value).strip()


class JsonPosts:
    """Reads Posts from JSON items with a source's ``json_paths``; each URL is given out once."""

    def __init__(self, spider: SourceSpider, paths: JsonPaths, kind: PostKind) -> None:
        self.spider = spider
        self.paths = paths
        self.kind = kind
        self.seen: set[str] = set()

    def url_of(self, item: dict[str, Any], base: str) -> str | None:
        paths = self.paths
        if paths.url:
            url = text_value(get_one(item, paths.url))
            if url:
                return urljoin(base, url)
        if paths.url_template:
            return self._from_template(item, paths.url_template, base)
        return None

    def _from_template(self, item: dict[str, Any], template: str, base: str) -> str | None:
        values: dict[str, str] = {}
        for name in _PLACEHOLDER.findall(template):
            path = self.paths.id if name == "id" and self.paths.id else name
            value = text_value(get_one(item, path))
            if not value:
                return None
            values[name] = value
        return urljoin(base, _PLACEHOLDER.sub(lambda m: values[m.group(1)], template))

    def _original_url(self, value: Any, base: str) -> str | None:
        """The URL of an original given by id (or URL) only."""
        ident = text_value(value)
        if not ident:
            return None
        if ident.startswith(("http://", "https://", "/")):
            return urljoin(base, ident)
        template = self.paths.url_template
        if template and _PLACEHOLDER.findall(template) == ["id"]:
            return urljoin(base, template.replace("{id}", ident))
        return ident

    def read(self, item: Any, base: str, *, depth: int = 0) -> list[Post]:
        """The post of ``item`` (first) and the originals it reposts, leaving out URLs given out before.
        An item without a URL or without text is skipped, logged and counted."""
        if not isinstance(item, dict):
            return []
        spider = self.spider
        paths = self.paths
        url = self.url_of(item, base)
        text = markup_to_text(text_value(get_one(item, paths.text)), spider.blocks)
        title = markup_to_text(text_value(get_one(item, paths.title)), spider.blocks)
        if not url or not (text or title):
            spider.count("errors")
            spider.logger.error(
                "JSON item without %s on %s: %.200s", "URL" if not url else "text", base,
                json.dumps(item, ensure_ascii=False),
            )
            return []
        out: list[Post] = []
        repost_of = None
        original = get_one(item, paths.repost_of)
        if isinstance(original, dict):
            if depth < _MAX_REPOST_DEPTH:
                chain = self.read(original, base, depth=depth + 1)
                out.extend(chain)
            repost_of = self.url_of(original, base)
        elif original is not None:
            repost_of = self._original_url(original, base)
        if url in self.seen:
            return out
        self.seen.add(url)
        now = spider.now()
        try:
            post = self._post(item, url, title, text, repost_of, now)
        except ValueError as exc:  # pydantic's ValidationError included
            spider.count("errors")
            spider.logger.error("JSON item %s on %s: %s", url, base, exc)
            return out
        return [post, *out]

    def _post(
        self, item: dict[str, Any], url: str, title: str, text: str, repost_of: str | None, now: datetime
    ) -> Post:
        spider = self.spider
        paths = self.paths
        return Post(
            url=url,
            title=title,
            content=text,
            source=spider.source.name,
            site=spider.site_of(url, None),
            kind=self.kind,
            author=text_value(get_one(item, paths.author)) or None,
            published_at=parse_time(get_one(item, paths.published_at), now=now, zone=spider.zone),
            fetched_at=now,
            category=text_value(get_one(item, paths.category)) or None,
            engagement=Engagement(
                reposts=parse_count(get_one(item, paths.reposts)),
                comments=parse_count(get_one(item, paths.comments)),
                likes=parse_count(get_one(item, paths.likes)),
                views=parse_count(get_one(item, paths.views)),
            ),
            repost_of=repost_of if repost_of != url else None,
        )


def with_query(url: str, name: str, value: str) -> str:
    """``url`` with the query parameter ``name`` set to ``value``."""
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k != name]
    query.append((name, value))
    return urlunsplit((parts.scheme, parts.netloc, parts.path, urlencode(query), parts.fragment))


class SocialSpider(SourceSpider):
    name = "social"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        assert self.source.json_paths is not None  # Source validation guarantees it for social sources
        self.paths: JsonPaths = self.source.json_paths
        self.reader = JsonPosts(self, self.paths, "social")
        self.taken = 0

    def first_requests(self) -> Iterator[scrapy.Request]:
        yield from first_pages(self, self.parse_page, self.on_page_error)

    def on_page_error(self, failure: Failure) -> None:
        on_page_error(self, failure)

    def parse_page(self, response: Response, page: int, template: str | None) -> Iterator[Any]:
        try:
            doc = json_document(response.body)
        except NotJson as exc:
            self.count("errors")
            self.logger.error("not JSON: %s: %s", response.url, exc)
            return
        items = items_at(doc, self.paths.items)
        if items is None:
            if page > 1:  # Weibo answers past the last page with {"ok": 0, "msg": "这里还没有内容"}
                self.logger.info("no items on JSON page %d, the end: %s", page, response.url)
                return
            self.count("errors")
            self.logger.error("no items at %r in the JSON of %s", self.paths.items, response.url)
            return
        posts: list[Post] = []
        for item in items:
            if self.taken >= self.source.max_items:
                break
            read = self.reader.read(item, response.url)
            # The item's own post counts against max_items; the originals it carries come along.
            if read:
                self.taken += 1
            posts.extend(read)
        if posts:
            self.count("found", len(posts))
        yield from posts
        if not items or self.taken >= self.source.max_items or page >= self.source.max_pages:
            return
        next_url = self.next_url(doc, response, page, template)
        if next_url and next_url != response.url:
            yield scrapy.Request(
                next_url, callback=self.parse_page, errback=self.on_page_error, dont_filter=True,
                cb_kwargs={"page": page + 1, "template": template}, meta=FRESH,
            )

    def next_url(self, doc: Any, response: Response, page: int, template: str | None) -> str | None:
        if self.paths.next_page:
            value = text_value(get_one(doc, self.paths.next_page))
            if not value or value in ("0", "-1"):
                return None
            if self.paths.cursor_param:
                return with_query(response.url, self.paths.cursor_param, value)
            return urljoin(response.url, value)
        if template is not None:
            return fill_template(template, page=str(self.source.first_page + page))
        return None
