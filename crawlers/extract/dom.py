"""Parsing HTML into an lxml tree, selecting with CSS/XPath, and reading text as lines.

Everything here is iterative (no recursion over the tree), so pathologically deep documents cannot
exhaust the Python stack.

Speed notes (extraction is the crawl pipeline's hot spot): selectors are compiled once and cached; the
simple selectors the configuration uses (``h1``, ``.title``, ``#id``, ``[attr]``, ``[attr="v"]``,
``[attr*="v"]``, ``tag[attr]``) are matched in Python in one pass over the tree, which is much cheaper than
libxml2's XPath engine on ``descendant-or-self::*[...]``; text is walked with ``etree.iterwalk``.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from lxml import etree
from lxml import html as lxml_html
from lxml.cssselect import CSSSelector
from lxml.html import HtmlElement

__all__ = ["HtmlElement", "Line", "parse_html", "select", "text_lines"]

# The definition of "whitespace" everywhere here: what str.split()/str.isspace() see (Unicode
# whitespace: this is exactly what `\s` matches in a str pattern; NBSP and U+3000 included) plus the
# zero-width space and the BOM. The regex is the reference; the functions below are faster equivalents.
_WS = re.compile(r"[\s\u00a0\u3000\u200b\ufeff]+")
_ZWSP = "\u200b"
_BOM = "\ufeff"
_XML_DECL = re.compile(r"^\s*<\?xml[^>]*\?>", re.IGNORECASE)
# Characters that cannot appear in an XML/HTML tree (lxml refuses them).
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def normalize_space(text: str) -> str:
    """Collapse every run of whitespace (incl. NBSP, ideographic space, zero-width) to one space."""
    if _ZWSP in text or _BOM in text:
        text = text.replace(_ZWSP, " ").replace(_BOM, " ")
    return " ".join(text.split())


def visible_len(text: str) -> int:
    """Number of non-whitespace characters."""
    size = len("".join(text.split()))
    if _ZWSP in text:
        size -= text.count(_ZWSP)
    if _BOM in text:
        size -= text.count(_BOM)
    return size


def _normalized_visible_len(text: str) -> int:
    """`visible_len` of a `normalize_space` result (its only whitespace is single spaces)."""
    return len(text) - text.count(" ")


def _prepare_markup(text: str | None) -> str | None:
    """`text` without an XML declaration and control characters; None when there is nothing to parse."""
    text = text or ""
    decl = _XML_DECL.match(text)  # anchored: the only place `_XML_DECL.sub` could replace
    if decl is not None:
        text = text[decl.end() :]
    text = _CONTROL.sub("", text)
    if not text or text.isspace():
        return None
    return text


def _document(text: str, parser: etree.HTMLParser) -> HtmlElement | None:
    try:
        root = lxml_html.document_fromstring(text, parser=parser)
    except (etree.ParserError, etree.XMLSyntaxError, ValueError):
        return None
    return root if isinstance(root, HtmlElement) else None


def parse_html(text: str) -> HtmlElement | None:
    """An lxml document for `text`, or None when there is nothing to parse. Never raises."""
    prepared = _prepare_markup(text)
    if prepared is None:
        return None
    parser = lxml_html.HTMLParser(recover=True, remove_comments=True, remove_pis=True, encoding=None)
    return _document(prepared, parser)


# A parser like parse_html's whose element classes are looked up in C: every element is a plain
# HtmlElement (lxml.html's Python-level lookup, which gives <form>/<input>/... their own subclasses,
# costs about a microsecond per element proxy, every time Python touches an element). Text, attributes
# and tree operations are the same. One parser per thread: lxml parsers are not meant to be shared.
_fast_parsers = threading.local()


def _fast_parser() -> etree.HTMLParser:
    parser: etree.HTMLParser | None = getattr(_fast_parsers, "parser", None)
    if parser is None:
        parser = etree.HTMLParser(recover=True, remove_comments=True, remove_pis=True, encoding=None)
        parser.set_element_class_lookup(
            etree.ElementDefaultClassLookup(
                element=HtmlElement,
                comment=lxml_html.HtmlComment,
                pi=lxml_html.HtmlProcessingInstruction,
                entity=lxml_html.HtmlEntity,
            )
        )
        _fast_parsers.parser = parser
    return parser


def parse_html_fast(text: str) -> HtmlElement | None:
    """Like `parse_html` (same tree, same text), but every element is a plain `HtmlElement`.

    For read-and-prune work such as extraction, where per-element Python overhead dominates.
    """
    prepared = _prepare_markup(text)
    if prepared is None:
        return None
    return _document(prepared, _fast_parser())


def tag_name(el: etree._Element) -> str:
    """Lower-case tag name; '' for comments, processing instructions and entities."""
    tag = el.tag
    return tag.lower() if isinstance(tag, str) else ""


# --- selectors ----------------------------------------------------------------------------------------

_IDENT = r"[A-Za-z_][A-Za-z0-9_-]*"
_CSS_WS = r"[ \t\n\r\f]*"
_SIMPLE_SELECTOR = re.compile(
    rf"""(?P<tag>{_IDENT})?
    (?: \.(?P<cls>{_IDENT})
      | \#(?P<id>{_IDENT})
      | \[{_CSS_WS}(?P<attr>{_IDENT}){_CSS_WS}
          (?:(?P<op>\*?=){_CSS_WS}(?:"(?P<dq>[^"\\\n]*)"|'(?P<sq>[^'\\\n]*)'|(?P<bare>{_IDENT})){_CSS_WS})?\]
    )?""",
    re.VERBOSE,
)
# What XPath's normalize-space() treats as whitespace (cssselect matches classes with it).
_XML_SPACE = re.compile(r"[ \t\r\n]+")


@dataclass(frozen=True)
class _Simple:
    """A selector that is a tag, a class, an id or one attribute test (optionally on a tag)."""

    tag: str | None
    attr: str | None = None  # the attribute tested; None: any element with `tag`
    op: str = ""  # "class", "=", "*=", or "" (the attribute exists)
    value: str = ""

    def accepts(self, got: str) -> bool:
        """Whether an element whose `attr` is `got` matches."""
        op = self.op
        if op == "":
            return True
        if op == "=":
            return got == self.value
        if op == "*=":
            return self.value in got
        # "class": `value` is one of the attribute's XML-whitespace-separated words.
        return self.value in got and self.value in _XML_SPACE.split(got)

    def matches(self, el: etree._Element) -> bool:
        if self.attr is None:
            return True
        got = el.get(self.attr)
        return got is not None and self.accepts(got)


def _parse_simple(selector: str) -> _Simple | None:
    """The `_Simple` form of a CSS selector, or None when it is anything more complex.

    Equivalent to lxml's HTML translation via cssselect: tag and attribute names are lower-cased,
    values are compared as they are, class words are split on XML whitespace.
    """
    m = _SIMPLE_SELECTOR.fullmatch(selector)
    if m is None or m.end() == 0:
        return None
    tag = m["tag"].lower() if m["tag"] else None
    if m["cls"] is not None:
        return _Simple(tag, "class", "class", m["cls"])
    if m["id"] is not None:
        return _Simple(tag, "id", "=", m["id"])
    if m["attr"] is not None:
        attr = m["attr"].lower()
        if m["op"] is None:
            return _Simple(tag, attr)
        value = next(v for v in (m["dq"], m["sq"], m["bare"]) if v is not None)
        if m["op"] == "*=" and not value:
            return None  # cssselect: matches nothing; leave such oddities to it
        return _Simple(tag, attr, m["op"], value)
    return _Simple(tag)


@dataclass(frozen=True)
class _Compiled:
    simple: _Simple | None
    evaluate: Callable[[etree._Element], Any]


@lru_cache(maxsize=1024)
def _compile(selector: str) -> _Compiled:
    """A selector compiled once: CSS (lxml's HTML translation) or XPath. Raises like evaluation would."""
    if selector.startswith(("/", "(")):
        return _Compiled(None, etree.XPath(selector))
    css = CSSSelector(selector, translator="html")  # validates the selector, simple or not
    return _Compiled(_parse_simple(selector), css)


def select(root: HtmlElement, selector: str) -> list[HtmlElement]:
    """Elements matching a CSS selector, or an XPath expression if it starts with '/' or '('.

    An invalid selector raises ValueError naming it.
    """
    selector = selector.strip()
    try:
        compiled = _compile(selector)
        simple = compiled.simple
        if simple is not None:
            return [
                el
                for el in root.iter(simple.tag or etree.Element)
                if simple.matches(el) and isinstance(el, HtmlElement)
            ]
        found = compiled.evaluate(root)
    except (etree.XPathError, SyntaxError, ValueError) as exc:
        raise ValueError(f"invalid selector {selector!r}: {exc}") from exc
    if not isinstance(found, list):
        return []
    return [el for el in found if isinstance(el, HtmlElement)]


def safe_select(root: HtmlElement, selector: str) -> list[HtmlElement]:
    """`select`, but an invalid selector (e.g. from configuration) matches nothing."""
    try:
        return select(root, selector)
    except ValueError:
        return []


def safe_select_many(root: HtmlElement, selectors: Iterable[str]) -> dict[str, list[HtmlElement]]:
    """`safe_select` of several selectors, keyed by the selector as given; the simple ones are
    matched together in one pass over the tree."""
    results: dict[str, list[HtmlElement]] = {}
    # Tests, grouped so that each element's tag is looked up once and each attribute read once.
    by_tag: dict[str, list[tuple[_Simple, list[HtmlElement]]]] = {}
    by_attr: dict[str, list[tuple[_Simple, list[HtmlElement]]]] = {}
    for selector in selectors:
        if selector in results:
            continue
        try:
            simple = _compile(selector.strip()).simple
        except (etree.XPathError, SyntaxError, ValueError):
            results[selector] = []
            continue
        if simple is None:
            results[selector] = safe_select(root, selector)
            continue
        found: list[HtmlElement] = []
        results[selector] = found
        if simple.tag is not None:
            by_tag.setdefault(simple.tag, []).append((simple, found))
        else:
            assert simple.attr is not None  # a simple selector without a tag tests an attribute
            by_attr.setdefault(simple.attr, []).append((simple, found))
    if not by_tag and not by_attr:
        return results
    attr_tests = list(by_attr.items())
    elements = root.iter(etree.Element) if attr_tests else root.iter(*by_tag)
    for el in elements:
        tag_tests = by_tag.get(el.tag)  # type: ignore[call-overload]
        if tag_tests is not None:
            for simple, found in tag_tests:
                if simple.matches(el) and isinstance(el, HtmlElement):
                    found.append(el)
        for attr, tests in attr_tests:
            got = el.get(attr)
            if got is not None:
                for simple, found in tests:
                    if simple.accepts(got) and isinstance(el, HtmlElement):
                        found.append(el)
    return results


def meta_index(root: HtmlElement) -> dict[str, list[str]]:
    """Non-empty ``content`` of ``<meta>`` tags by lower-cased property/name/itemprop, in document order."""
    metas: dict[str, list[str]] = {}
    for el in root.iter("meta"):
        content = normalize_space(el.get("content") or "")
        if not content:
            continue
        for attr in ("property", "name", "itemprop"):
            key = (el.get(attr) or "").strip().lower()
            if key:
                metas.setdefault(key, []).append(content)
    return metas


def meta_content(
    root: HtmlElement, names: Iterable[str], index: dict[str, list[str]] | None = None
) -> Iterator[str]:
    """Non-empty ``content`` of ``<meta>`` tags whose property/name/itemprop is one of `names`, in order.

    `index`: `meta_index(root)`, when the caller already has it.
    """
    metas = meta_index(root) if index is None else index
    for name in names:
        yield from metas.get(name.strip().lower(), [])


def element_text(el: HtmlElement) -> str:
    """An element's text with whitespace collapsed (no line structure)."""
    try:
        return normalize_space(el.text_content())
    except ValueError:
        return ""


# --- text as lines ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Line:
    """One line of visible text: the text and how many of its characters are link text."""

    text: str
    link_chars: int

    @property
    def link_density(self) -> float:
        size = visible_len(self.text)
        return self.link_chars / size if size else 0.0


_BLOCK = 1
_LINK = 2
_WALK_EVENTS = ("start", "end", "comment", "pi")


def _kind(kinds: dict[Any, int], tag: Any, block_tags: frozenset[str]) -> int:
    name = tag.lower()
    kind = (_BLOCK if name in block_tags else 0) | (_LINK if name == "a" else 0)
    kinds[tag] = kind
    return kind


def raw_lines(el: etree._Element, block_tags: frozenset[str], count_links: bool = True) -> tuple[list[str], list[int]]:
    """`text_lines` as two parallel lists (texts, link characters), without Line objects.

    With `count_links` False the link counts are not computed (the second list is empty).
    """
    texts: list[str] = []
    links: list[int] = []
    if not isinstance(el.tag, str):
        return texts, links
    parts: list[str] = []
    link_chars = 0
    open_links = 0  # <a> elements open around the current position
    kinds: dict[Any, int] = {}

    def flush() -> None:
        text = normalize_space("".join(parts))
        if text:
            texts.append(text)
            if count_links:
                links.append(min(link_chars, _normalized_visible_len(text)))
        parts.clear()

    for event, node in etree.iterwalk(el, events=_WALK_EVENTS):
        tag = node.tag
        if event == "start":
            if not isinstance(tag, str):  # an entity: only its tail is text
                if node is not el:
                    tail = node.tail
                    if tail:
                        parts.append(tail)
                        if count_links and open_links:
                            link_chars += visible_len(tail)
                continue
            kind = kinds.get(tag)
            if kind is None:
                kind = _kind(kinds, tag, block_tags)
            if kind & _BLOCK and parts:
                flush()
                link_chars = 0
            if kind & _LINK:
                open_links += 1
            text = node.text
            if text:
                parts.append(text)
                if count_links and open_links:
                    link_chars += visible_len(text)
        elif event == "end":
            if not isinstance(tag, str):
                continue
            kind = kinds[tag]
            if kind & _BLOCK and parts:
                flush()
                link_chars = 0
            if kind & _LINK:
                open_links -= 1
            if node is not el:
                tail = node.tail
                if tail:
                    parts.append(tail)
                    if count_links and open_links:
                        link_chars += visible_len(tail)
        else:  # a comment or processing instruction: only its tail is text
            tail = node.tail
            if tail:
                parts.append(tail)
                if count_links and open_links:
                    link_chars += visible_len(tail)
    if parts:
        flush()
    return texts, links


def text_lines(el: HtmlElement, block_tags: frozenset[str]) -> list[Line]:
    """The text inside `el` as lines, breaking at block-level elements and ``<br>``. Iterative."""
    texts, links = raw_lines(el, block_tags)
    return [Line(text, link) for text, link in zip(texts, links, strict=True)]
