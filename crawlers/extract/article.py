"""The extraction entry point: HTML in, an ExtractedArticle out."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from datetime import datetime
from zoneinfo import ZoneInfo

from crawlers.dates import DEFAULT_TZ
from crawlers.extract.clean import remove_boilerplate, strip_tags
from crawlers.extract.content import body_lines, find_main_block
from crawlers.extract.dom import (
    HtmlElement,
    element_text,
    meta_index,
    normalize_space,
    parse_html_fast,
    raw_lines,
    safe_select_many,
    select,
    visible_len,
)
from crawlers.extract.fields import find_author, find_published_at, find_site, find_title
from crawlers.extract.rules import ExtractionRules, default_rules

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


def _near_title_text(page_lines: list[str], title: str, chars: int) -> str:
    """The page text right after the headline: the first line that is the title (a heading), else the
    first line that contains it (a breadcrumb or "正在阅读：..." bar)."""
    if not title or not page_lines:
        return ""
    probe = title[: min(len(title), 12)]
    candidates = [i for i, line in enumerate(page_lines) if probe in line]
    if not candidates:
        return ""
    headings = [
        i for i in candidates if page_lines[i].startswith(probe) and len(page_lines[i]) <= len(title) + 20
    ]
    index = (headings or candidates)[0]
    line = page_lines[index]
    tail = line[line.find(probe) + len(probe) :] + "\n" + "\n".join(page_lines[index + 1 : index + 40])
    return tail[:chars]


def _selected_lines(root: HtmlElement, selector: str, blocks: frozenset[str]) -> list[str]:
    lines: list[str] = []
    for el in select(root, selector):
        lines.extend(raw_lines(el, blocks, count_links=False)[0])
    return lines


def _preferred_block(
    rules: ExtractionRules, selected: dict[str, list[HtmlElement]]
) -> HtmlElement | None:
    for selector in rules.content.preferred_selectors:
        for el in selected[selector]:
            if visible_len(el.text_content()) >= rules.content.preferred_min_chars:
                return el
    return None


@lru_cache(maxsize=16)
def _block_tags(tags: tuple[str, ...]) -> frozenset[str]:
    return frozenset(tags)


def extract_article(
    html: str,
    url: str | None = None,
    *,
    rules: ExtractionRules | None = None,
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
    rules = rules or default_rules()
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
    selected = safe_select_many(
        root, [*rules.title.heading_selectors, *rules.published_at.selectors, *rules.content.preferred_selectors]
    )
    metas = meta_index(root)
    title, title_suffix = find_title(root, rules.title, selected=selected, metas=metas)
    if title_selector:
        chosen = select(root, title_selector)
        title = element_text(chosen[0]) if chosen else ""
    body = root.find("body")
    page_lines = raw_lines(body, blocks, count_links=False)[0] if body is not None else []
    page_text = "\n".join(page_lines)
    near_title = _near_title_text(page_lines, title, rules.published_at.near_title_chars)
    published_at = find_published_at(
        root, html, near_title, page_text, rules.published_at, now=now, zone=zone, selected=selected, metas=metas
    )
    author = find_author(root, near_title, page_text, rules.author, metas=metas)
    site = find_site(root, title_suffix, url, rules.site, metas=metas)

    # Then the body, on a tree with the boilerplate removed.
    if body_selector:
        lines = _selected_lines(root, body_selector, blocks)
    else:
        container = _preferred_block(rules, selected)
        if container is None:
            remove_boilerplate(root, rules.boilerplate)
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
