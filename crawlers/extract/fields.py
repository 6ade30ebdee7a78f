"""Title, publish time, author and site: metadata around the body, found by configured rules."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime
from datetime import time as dt_time
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

from crawlers.dates import find_datetime, has_year, parse_datetime, year_from
from crawlers.extract.dom import (
    ElementIndex,
    HtmlElement,
    element_text,
    meta_content,
    normalize_space,
    safe_select,
)
from crawlers.extract.rules import AuthorRules, SiteRules, TimeRules, TitleRules

# Optional precomputed lookups that extract_article passes in (the tree is read many times but not
# changed while metadata is looked for): an ElementIndex of the tree, and `dom.meta_index` of it.
Metas = dict[str, list[str]]
# The page text, or a function that gives it (it is only needed when nothing better is found).
PageText = str | Callable[[], str]


def _page_text(text: PageText) -> str:
    return text if isinstance(text, str) else text()


def _select(root: HtmlElement, selector: str, index: ElementIndex | None) -> list[HtmlElement]:
    return index.select(selector) if index is not None else safe_select(root, selector)


def strip_title_suffixes(title: str, rules: TitleRules) -> tuple[str, str | None]:
    """(title without site/channel suffixes, the outermost suffix removed or None)."""
    outermost: str | None = None
    for _ in range(rules.max_suffix_strips):
        for regex in rules.suffix_regexes:
            match = regex.search(title)
            if match and match.start() >= 4:
                if outermost is None:
                    outermost = match.group(0)
                title = title[: match.start()].rstrip()
                break
        else:
            break
    return title, outermost


def _is_title_prefix(heading: str, page_title: str) -> bool:
    return bool(heading) and page_title.startswith(heading)


def find_title(
    root: HtmlElement,
    rules: TitleRules,
    *,
    index: ElementIndex | None = None,
    metas: Metas | None = None,
) -> tuple[str, str | None]:
    """(headline, site suffix of <title> or None).

    Preference: a page heading with which <title> begins (exact, un-truncated text); else a meta title
    (og:title) that is not a mangled fragment; else <title> with its suffixes stripped; else a heading.
    """
    title_el = root.find(".//title")
    raw_title = element_text(title_el) if title_el is not None else ""
    stripped, suffix = strip_title_suffixes(raw_title, rules)

    headings: list[str] = []
    for selector in rules.heading_selectors:
        for el in _select(root, selector, index):
            text = element_text(el)
            if len(text) >= rules.min_heading_chars and text not in headings:
                headings.append(text)
    # The longest heading that <title> starts with and that covers most of the stripped title.
    matching = [h for h in headings if _is_title_prefix(h, raw_title) and len(h) >= 0.6 * len(stripped)]
    if not matching and rules.scan_for_title_prefix and stripped:
        # Any element whose own text begins <title> (headlines in <span class="Title"> and the like).
        # Cheap necessary conditions first: normalizing never lengthens a text, and a non-empty prefix of
        # <title> starts with its first character.
        min_chars = max(rules.min_heading_chars, 0.6 * len(stripped))
        first = raw_title[0]
        for el in root.iter():
            tag = el.tag
            if not isinstance(tag, str) or tag == "title":
                continue
            text = el.text
            if not text or len(text) < min_chars or first not in text:
                continue
            own = normalize_space(text)
            if len(own) >= min_chars and raw_title.startswith(own):
                matching.append(own)
    if matching:
        return max(matching, key=len), suffix
    for meta in meta_content(root, rules.meta, metas):
        meta_title, _ = strip_title_suffixes(meta, rules)
        if not stripped or len(meta_title) >= 0.6 * len(stripped):
            return meta_title, suffix
    if stripped:
        return stripped, suffix
    return (headings[0] if headings else ""), suffix


def _parse(value: str, now: datetime, zone: ZoneInfo) -> datetime | None:
    return parse_datetime(value, now=now, tz=zone)


def _declared_time(
    root: HtmlElement | None,
    raw_html: str,
    rules: TimeRules,
    now: datetime,
    zone: ZoneInfo,
    index: ElementIndex | None = None,
    metas: Metas | None = None,
) -> datetime | None:
    """A machine-readable publish time: meta tags, then script variables, then time elements."""

    def candidates() -> Iterator[str]:  # in order of trust, read lazily: the first that parses wins
        if root is not None:
            yield from meta_content(root, rules.meta, metas)
        for regex in rules.script_regexes:
            yield from (match.group("value") for match in regex.finditer(raw_html))
        if root is not None:
            for selector in rules.selectors:
                yield from (el.get("datetime") or el.get("content") or element_text(el)
                            for el in _select(root, selector, index))

    return _first_time(candidates(), lambda value: _parse(value, now, zone))


def _first_time(values: Iterable[str], parse: Callable[[str], datetime | None]) -> datetime | None:
    for value in values:
        found = parse(value)
        if found is not None:
            return found
    return None


def _labelled_time(text: str, rules: TimeRules, now: datetime, zone: ZoneInfo,
                   raw_html: str | None = None) -> datetime | None:
    """The first labelled date (发布时间：…) in ``text``; one written without a year takes its year from the full
    dates of ``raw_html`` on the same month and day (:func:`crawlers.dates.year_from`)."""
    for regex in rules.labelled_regexes:
        for match in regex.finditer(text):
            value = match.group("value")
            found = find_datetime(value, now=now, tz=zone)
            if found is not None:
                return year_from(found, raw_html, now=now) if raw_html and not has_year(value) else found
    return None


def find_published_at(
    root: HtmlElement | None,
    raw_html: str,
    near_title: str,
    page_text: PageText,
    rules: TimeRules,
    *,
    now: datetime,
    zone: ZoneInfo,
    index: ElementIndex | None = None,
    metas: Metas | None = None,
) -> datetime | None:
    """The publish time.

    The byline (a labelled date in the text right after the title, or an unlabelled one on a short
    line there -- long lines are body text, whose dates are events, not publication) is what readers
    see; a declared time (meta, script, time element) is what the CMS says. When both exist and lie
    within `byline_max_gap_hours` of each other the byline wins (portals often declare the time they
    republished a story); otherwise the declared time wins. Without either, a labelled date anywhere in
    the page (发布时间：...) is used.
    """
    declared = _declared_time(root, raw_html, rules, now, zone, index, metas)
    short_lines = "\n".join(
        line for line in near_title.split("\n") if len(line) <= rules.byline_max_line_chars
    )
    byline = _labelled_time(near_title, rules, now, zone, raw_html) or find_datetime(short_lines, now=now, tz=zone)
    if declared is not None and byline is not None:
        if byline.time() == dt_time(0, 0) and declared.date() == byline.date():
            return declared  # a date-only byline adds nothing to a declared time on the same day
        gap_hours = abs((declared - byline).total_seconds()) / 3600
        return byline if rules.prefer_byline and gap_hours <= rules.byline_max_gap_hours else declared
    if declared is not None or byline is not None:
        return declared or byline
    return _labelled_time(_page_text(page_text), rules, now, zone)


def _clean_author(value: str, rules: AuthorRules) -> str | None:
    value = value.strip(" :：|丨/()（）[]【】\t")
    if not value or len(value) > rules.max_chars:
        return None
    if any(r.search(value) for r in rules.reject_regexes):
        return None
    return value


def _first_author(regexes: tuple[re.Pattern[str], ...], text: str, rules: AuthorRules) -> str | None:
    for regex in regexes:
        for match in regex.finditer(text):
            author = _clean_author(match.group("value"), rules)
            if author:
                return author
    return None


def find_author(
    root: HtmlElement | None,
    near_title: str,
    page_text: PageText,
    rules: AuthorRules,
    *,
    metas: Metas | None = None,
) -> str | None:
    """A byline (作者：...) near the title, then meta tags, then 来源/责任编辑-style lines."""
    author = _first_author(rules.regexes, near_title, rules)
    if author:
        return author
    if root is not None:
        for value in meta_content(root, rules.meta, metas):
            author = _clean_author(value, rules)
            if author:
                return author
    return _first_author(rules.fallback_regexes, near_title, rules) or _first_author(
        rules.fallback_regexes, _page_text(page_text), rules
    )


_SEPARATORS = re.compile(r"^[\s_｜|\-—–]+")


def find_site(
    root: HtmlElement | None,
    title_suffix: str | None,
    url: str | None,
    rules: SiteRules,
    *,
    metas: Metas | None = None,
) -> str | None:
    """Site name: meta (og:site_name ...), else the suffix cut off <title>, else the URL's host."""
    if root is not None:
        for value in meta_content(root, rules.meta, metas):
            return value
    if title_suffix:
        site = _SEPARATORS.sub("", title_suffix).strip()
        if site:
            return site
    if url:
        host = urlsplit(url).hostname
        if host:
            return host
    return None
