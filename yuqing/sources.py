"""Source declarations (config/sources.yaml): what to crawl, how, how often and how much it weighs."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, HttpUrl, field_validator, model_validator

from yuqing.config_files import load_model
from yuqing.errors import ConfigError
from yuqing.jsonpath import parse_path

SourceKind = Literal["feed", "list", "message_board", "social", "search"]


class Selectors(BaseModel):
    """CSS (or XPath when starting with '/' or '(') selectors; an absent body selector means automatic
    main-text extraction. ``item_links``: the links to item pages on a list (or search result) page, as
    elements with an href (or containing an ``<a href>``), or an XPath to href strings; ``next_page``: the
    link to the next list page."""

    model_config = ConfigDict(extra="forbid")
    title: str | None = None
    body: str | None = None
    published_at: str | None = None
    author: str | None = None
    item_links: str | None = None
    next_page: str | None = None


class FieldRule(BaseModel):
    """A page field read by a selector, optionally from an attribute and/or through a regular expression.

    ``pattern``: the value is the regex's first group (or the whole match) in the selected text, e.g.
    ``留言用户[:：]\\s*(\\S+)`` for a label and value in one element. No match means no value.
    """

    model_config = ConfigDict(extra="forbid")
    selector: str = Field(min_length=1)
    attr: str | None = None
    pattern: str | None = None

    @field_validator("pattern")
    @classmethod
    def _compiles(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                re.compile(value)
            except re.error as exc:
                raise ValueError(f"invalid regular expression {value!r}: {exc}") from exc
        return value


# A field: a selector string (CSS, or XPath when starting with '/' or '(') or a FieldRule.
FieldSpec = str | FieldRule


class MessageFields(BaseModel):
    """Where a message page (留言详情页) keeps each field. An absent title/content/published_at/author falls
    back to automatic article extraction; absent category/reply fields mean none."""

    model_config = ConfigDict(extra="forbid")
    title: FieldSpec | None = None
    content: FieldSpec | None = None
    author: FieldSpec | None = None
    published_at: FieldSpec | None = None
    category: FieldSpec | None = None
    reply: FieldSpec | None = None
    replied_at: FieldSpec | None = None
    reply_unit: FieldSpec | None = None


class JsonPaths(BaseModel):
    """Where a JSON endpoint keeps each field, as dotted paths (see yuqing.jsonpath):
    ``data.cards.*.mblog`` (``*`` flattens a list), ``items.0.id`` or ``items[0].id`` (an index).
    Field paths are relative to an item."""

    model_config = ConfigDict(extra="forbid")
    items: str = ""  # path to the list of posts; empty: the document itself
    id: str | None = "id"
    url: str | None = None  # path to the post's URL (absolute, or relative to the endpoint)
    url_template: str | None = None  # the post's URL from its fields, e.g. https://m.weibo.cn/detail/{id}
    title: str | None = None
    text: str = "text"  # may carry HTML (links, <br>, emoji <img alt>): read as plain text
    author: str | None = None
    published_at: str | None = None
    category: str | None = None
    reposts: str | None = None
    comments: str | None = None
    likes: str | None = None
    views: str | None = None
    # The original of a repost: an object (read with these same paths, indexed too) or its id / URL.
    repost_of: str | None = None
    # The next page: a URL, or a cursor value set in the endpoint's query as `cursor_param`.
    next_page: str | None = None
    cursor_param: str | None = None

    @model_validator(mode="after")
    def _paths_parse(self) -> JsonPaths:
        for name, value in self:
            if isinstance(value, str) and name not in ("url_template", "cursor_param"):
                parse_path(value)  # a malformed path raises ValueError naming it
        return self

    @model_validator(mode="after")
    def _has_url(self) -> JsonPaths:
        if not (self.url or self.url_template):
            raise ValueError("set 'url' (a path to the post's URL) or 'url_template' (e.g. https://host/{id})")
        return self


class SearchOptions(BaseModel):
    """Keyword search endpoints. start_urls are templates with {keyword} and {page}."""

    model_config = ConfigDict(extra="forbid")
    results: Literal["html", "json"] = "html"  # html: selectors.item_links; json: json_paths
    follow: bool = True  # json results: follow each result's URL to its article page
    post_kind: Literal["search", "article"] = "search"
    keyword_encoding: str = "utf-8"  # how the keyword is percent-encoded (gbk for some older sites)

    @field_validator("keyword_encoding")
    @classmethod
    def _known_codec(cls, value: str) -> str:
        import codecs

        try:
            codecs.lookup(value)
        except LookupError as exc:
            raise ValueError(f"unknown encoding {value!r}") from exc
        return value


_TEMPLATE_FIELD = re.compile(r"\{(\w+)\}|%7B(\w+)%7D", re.IGNORECASE)


def template_fields(url: str) -> set[str]:
    """The ``{name}`` placeholders of a URL template (also when URL validation percent-encoded the braces)."""
    return {a or b for a, b in _TEMPLATE_FIELD.findall(url)}


def fill_template(url: str, **values: str) -> str:
    """``url`` with each ``{name}`` (or ``%7Bname%7D``) placeholder given in ``values`` replaced."""

    def sub(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2)
        return values[name] if name in values else match.group(0)

    return _TEMPLATE_FIELD.sub(sub, url)


class Source(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1)
    kind: SourceKind
    start_urls: list[HttpUrl] = Field(min_length=1)
    site: str | None = None
    selectors: Selectors = Field(default_factory=Selectors)
    interval_s: int | None = Field(
        None, ge=1, description="crawl interval; default: schedule.crawl_interval_s"
    )
    weight: float = Field(1.0, ge=0)
    enabled: bool = True
    # One of the bureau's own channels (官网, 公众号, 官方微博, 留言板答复): its posts are candidate responses in
    # the 失声 check (response.silence).
    own: bool = False
    max_items: int = Field(200, ge=1)
    allowed_domains: list[str] = Field(default_factory=list)
    # list / message_board / social / search: how many list (result) pages to read per start URL (keyword).
    max_pages: int = Field(5, ge=1)
    # The number a {page} placeholder in a start URL takes on the first page (then +1 per page).
    first_page: int = Field(1, ge=0)
    # message_board: the message page's fields.
    message: MessageFields | None = None
    # social (and search with results: json): where the JSON keeps each field.
    json_paths: JsonPaths | None = None
    # search: the keywords; default: the `any` keywords of the enabled rules in the alert rules file.
    keywords: list[str] | None = None
    search: SearchOptions | None = None

    @field_validator("name")
    @classmethod
    def _no_slash(cls, value: str) -> str:
        if "/" in value:
            raise ValueError("a source name must not contain '/'")
        return value

    @field_validator("keywords")
    @classmethod
    def _keywords(cls, values: list[str] | None) -> list[str] | None:
        if values is None:
            return None
        out = [v.strip() for v in values]
        if not all(out):
            raise ValueError("keywords must not be empty")
        return out

    @model_validator(mode="after")
    def _kind_needs(self) -> Source:
        if self.kind in ("list", "message_board") and not self.selectors.item_links:
            raise ValueError(f"a {self.kind} source needs selectors.item_links (the links to its item pages)")
        if self.kind == "social" and self.json_paths is None:
            raise ValueError("a social source needs json_paths (where the JSON keeps each field)")
        if self.kind == "search":
            options = self.search or SearchOptions()
            for url in self.start_urls:
                if "keyword" not in template_fields(str(url)):
                    raise ValueError(f"a search URL needs a {{keyword}} placeholder: {url}")
            if options.results == "json" and self.json_paths is None:
                raise ValueError("a search source with results: json needs json_paths")
            if options.results == "html" and not self.selectors.item_links:
                raise ValueError("a search source with results: html needs selectors.item_links")
        return self


class SourcesFile(BaseModel):
    model_config = ConfigDict(extra="forbid")
    sources: list[Source] = Field(default_factory=list)

    def enabled(self) -> list[Source]:
        return [s for s in self.sources if s.enabled]

    def by_name(self, names: list[str] | None = None) -> list[Source]:
        if not names:
            return self.enabled()
        known = {s.name: s for s in self.sources}
        missing = [n for n in names if n not in known]
        if missing:
            raise ConfigError(f"unknown source(s): {', '.join(missing)}; known: {', '.join(known)}")
        return [known[n] for n in names]


def load_sources(path: Path) -> SourcesFile:
    sources = load_model(path, SourcesFile)
    seen: set[str] = set()
    for i, s in enumerate(sources.sources):
        if s.name in seen:
            raise ConfigError(f"duplicate source name {s.name!r}", file=path, field=f"sources[{i}].name")
        seen.add(s.name)
    return sources
