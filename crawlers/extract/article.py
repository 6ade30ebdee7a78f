"""The extraction entry point: HTML in, an ExtractedArticle out."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from zoneinfo import ZoneInfo

from crawlers.dates import DEFAULT_TZ
from crawlers.extract.clean import BOILERPLATE_ATTRIBUTES, remove_boilerplate, strip_tags
from crawlers.extract.content import body_lines, find_main_block
from crawlers.extract.dom import (
    ElementIndex,
    HtmlElement,
    element_text,
    iter_lines,
    meta_index,
    normalize_space,
    parse_html_fast,
    raw_lines,
    select,
    selector_attributes,
    visible_len,
)
from crawlers.extract.fields import find_author, find_published_at, find_site, find_title
from crawlers.extract.rules import ExtractionRules

# Non-HTML input (see extract_article): no "<" at all in the first few KB, or mostly binary there.
_MARKUP_SNIFF_CHARS = 4096
_BINARY_CHARS = re.compile(r"[\x00-\x08\x0e-\x1f\ufffd]")
_MAX_BINARY_SHARE = 0.1


def _looks_like_garbage(html: str) -> bool:
    head = html[:_MARKUP_SNIFF_CHARS]
    if not head.strip():
        return False
    if "<" not in head:
        return True
    return len(_BINARY_CHARS.findall(head)) > _MAX_BINARY_SHARE * len(head)


@dataclass(frozen=True)
class ExtractedArticle:
    """What a page says about itself. Empty strings / None where the page gives nothing."""

    title: str
    content: str
    published_at: datetime | None
    author: str | None
    site: str | None


EMPTY_ARTICLE = ExtractedArticle(title="", content="", published_at=None, author=None, site=None)


class _PageText:
    """`"\\n".join(page lines)`, made on first call and kept."""

    def __init__(self, lines: _PageLines) -> None:
        self._lines = lines
        self._text: str | None = None

    def __call__(self) -> str:
        if self._text is None:
            self._text = self._lines.text()
        return self._text


class _PageLines:
    """The text lines of the page body, read from the tree only as far as they are asked for.

    Only valid while the tree is unchanged (metadata is looked for before anything is removed).
    """

    def __init__(self, body: HtmlElement | None, blocks: frozenset[str]) -> None:
        self.lines: list[str] = []
        self._source: Iterator[tuple[str, int]] = (
            iter_lines(body, blocks, count_links=False) if body is not None else iter(())
        )

    def get(self, index: int) -> str | None:
        """Line `index`, or None when the page has fewer lines."""
        lines = self.lines
        while len(lines) <= index:
            nxt = next(self._source, None)
            if nxt is None:
                return None
            lines.append(nxt[0])
        return lines[index]

    def text(self) -> str:
        self.lines.extend(text for text, _ in self._source)
        return "\n".join(self.lines)


def _near_title_text(page_lines: _PageLines, title: str, chars: int) -> str:
    """The page text right after the headline: the first line that is the title (a heading), else the
    first line that contains it (a breadcrumb or "正在阅读：..." bar)."""
    if not title:
        return ""
    probe = title[: min(len(title), 12)]
    first_candidate: int | None = None
    index: int | None = None
    i = 0
    while (line := page_lines.get(i)) is not None:
        if probe in line:
            if first_candidate is None:
                first_candidate = i
            if line.startswith(probe) and len(line) <= len(title) + 20:
                index = i  # the first heading: no need to read further
                break
        i += 1
    if index is None:
        if first_candidate is None:
            return ""
        index = first_candidate
    page_lines.get(index + 39)  # read the lines used below
    lines = page_lines.lines
    line = lines[index]
    tail = line[line.find(probe) + len(probe) :] + "\n" + "\n".join(lines[index + 1 : index + 40])
    return tail[:chars]


def _selected_lines(root: HtmlElement, selector: str, blocks: frozenset[str]) -> list[str]:
    lines: list[str] = []
    for el in select(root, selector):
        lines.extend(raw_lines(el, blocks, count_links=False)[0])
    return lines


def _preferred_block(rules: ExtractionRules, index: ElementIndex) -> HtmlElement | None:
    for selector in rules.content.preferred_selectors:
        for el in index.select(selector):
            if visible_len(el.text_content()) >= rules.content.preferred_min_chars:
                return el
    return None


@lru_cache(maxsize=16)
def _block_tags(tags: tuple[str, ...]) -> frozenset[str]:
    return frozenset(tags)


def _indexed_attributes(rules: ExtractionRules) -> tuple[str, ...]:
    """Attributes read in the one pass over the tree: those of the configured selectors, plus class and
    id for the boilerplate scan."""
    selectors = [
        *rules.title.heading_selectors,
        *rules.published_at.selectors,
        *rules.content.preferred_selectors,
        *rules.boilerplate.remove_selectors,
    ]
    return tuple(sorted(selector_attributes(selectors) | set(BOILERPLATE_ATTRIBUTES)))


def extract_article(
    html: str,
    url: str | None = None,
    *,
    rules: ExtractionRules,
    now: datetime | None = None,
    body_selector: str | None = None,
    title_selector: str | None = None,
) -> ExtractedArticle:
    """Extract title, body text, publish time, author and site from one article page.

    Broken, truncated or empty HTML never raises: missing parts come back as "" / None. Input that is
    not markup at all raises ValueError: no "<" in its first 4 KB (plain text), or more than 10% control
    characters / U+FFFD there (binary data decoded as text). An
    invalid `body_selector` / `title_selector` also raises ValueError. `now` (default: the current
    time) resolves relative dates such as "3小时前". Selectors are CSS, or XPath when they start with
    '/' or '('; a selector that matches nothing gives an empty title / content (a sign that the site's
    layout changed), not a fallback to the automatic extraction.
    """
    zone = ZoneInfo(DEFAULT_TZ)
    now = now or datetime.now(zone)
    if _looks_like_garbage(html):
        raise ValueError("input does not look like HTML (no markup, or binary data, in its first 4 KB)")
    root = parse_html_fast(html)
    if root is None:
        return EMPTY_ARTICLE
    blocks = _block_tags(tuple(rules.content.block_tags))

    # Metadata first, on the lightly cleaned tree (headers and bylines are still there). The tree does
    # not change until the boilerplate is removed: configured selectors and meta tags are read once.
    strip_tags(root, ["script", "style", "noscript", "template"])
    index = ElementIndex(root, _indexed_attributes(rules))
    metas = meta_index(root)
    title, title_suffix = find_title(root, rules.title, index=index, metas=metas)
    if title_selector:
        chosen = select(root, title_selector)
        title = element_text(chosen[0]) if chosen else ""
    page_lines = _PageLines(root.find("body"), blocks)
    near_title = _near_title_text(page_lines, title, rules.published_at.near_title_chars)
    page_text = _PageText(page_lines)
    published_at = find_published_at(
        root, html, near_title, page_text, rules.published_at, now=now, zone=zone, index=index, metas=metas
    )
    author = find_author(root, near_title, page_text, rules.author, metas=metas)
    site = find_site(root, title_suffix, url, rules.site, metas=metas)
    del page_lines, page_text  # they read the tree as it is now

    # Then the body, on a tree with the boilerplate removed.
    if body_selector:
        lines = _selected_lines(root, body_selector, blocks)
    else:
        container = _preferred_block(rules, index)
        if container is None:
            remove_boilerplate(root, rules.boilerplate, index=index)
            container = find_main_block(root, rules.content, rules.boilerplate)
        lines = body_lines(container, rules.content, rules.boilerplate) if container is not None else []
    if lines and title and normalize_space(lines[0]) == title:
        lines = lines[1:]
    return ExtractedArticle(
        title=title,
        content="\n".join(lines),
        published_at=published_at,
        author=author,
        site=site,
    )
