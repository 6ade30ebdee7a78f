"""Parsing HTML into an lxml tree, selecting with CSS/XPath, and reading text as lines.

Everything here is iterative (no recursion over the tree), so pathologically deep documents cannot
exhaust the Python stack.

Speed notes (extraction is the crawl pipeline's hot spot; results are exactly those of the plain
implementations they replace): selectors are compiled once and cached; the simple selectors the
configuration uses (``h1``, ``.title``, ``#id``, ``[attr]``, ``[attr="v"]``, ``[attr*="v"]``,
``tag[attr]``) are answered from an ElementIndex (one pass reading the attributes involved) instead of
libxml2's XPath engine, which is slow on ``descendant-or-self::*[...]``; every walk over the tree is a
single ``el.iter()`` pass; whitespace is handled with str.split instead of regexes.
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
# The ASCII characters that `_CONTROL` does not match: deleting them from a text's ASCII characters
# leaves exactly its control characters. (Checking that way is 4x faster than a regex scan.)
_ASCII_NOT_CONTROL = bytes(b for b in range(128) if not _CONTROL.match(chr(b)))


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


def _without_control(text: str) -> str:
    if text.encode("ascii", "ignore").translate(None, _ASCII_NOT_CONTROL):  # 4x faster than the regex
        text = _CONTROL.sub("", text)
    return text


def _prepare_markup(text: str | None) -> str | None:
    """`text` without an XML declaration and control characters; None when there is nothing to parse."""
    text = text or ""
    decl = _XML_DECL.match(text)  # anchored: the only place `_XML_DECL.sub` could replace
    if decl is not None:
        text = text[decl.end() :]
    text = _without_control(text)
    if not text or text.isspace():
        return None
    return text


def _document(text: str | bytes, parser: etree.HTMLParser) -> HtmlElement | None:
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


# Parsers like parse_html's whose element classes are looked up in C: every element is a plain
# HtmlElement (lxml.html's Python-level lookup, which gives <form>/<input>/... their own subclasses,
# costs about a microsecond per element proxy, every time Python touches an element). Text, attributes
# and tree operations are the same. Made once per thread (lxml parsers are not meant to be shared).
_fast_parsers = threading.local()


def _fast_parser(encoding: str | None = None) -> etree.HTMLParser:
    key = f"parser_{encoding}"
    parser: etree.HTMLParser | None = getattr(_fast_parsers, key, None)
    if parser is None:
        parser = etree.HTMLParser(recover=True, remove_comments=True, remove_pis=True, encoding=encoding)
        parser.set_element_class_lookup(
            etree.ElementDefaultClassLookup(
                element=HtmlElement,
                comment=lxml_html.HtmlComment,
                pi=lxml_html.HtmlProcessingInstruction,
                entity=lxml_html.HtmlEntity,
            )
        )
        setattr(_fast_parsers, key, parser)
    return parser


# The bytes whose deletion from a text's UTF-8 encoding leaves exactly its `_CONTROL` characters
# (all other characters encode to bytes that are not control characters, multi-byte ones to >= 0x80).
_UTF8_NOT_CONTROL = bytes(b for b in range(256) if b >= 128 or not _CONTROL.match(chr(b)))


def parse_html_fast(text: str) -> HtmlElement | None:
    """Like `parse_html` (the same tree, the same text), but every element is a plain `HtmlElement`.

    For read-and-prune work such as extraction, where per-element Python overhead dominates. The text
    is handed to libxml2 as UTF-8, which it reads faster than the UTF-16/32 of a Python string.
    """
    text = text or ""
    decl = _XML_DECL.match(text)  # anchored: the only place `_XML_DECL.sub` could replace
    if decl is not None:
        text = text[decl.end() :]
    try:
        data = text.encode("utf-8")
    except UnicodeEncodeError:  # lone surrogates: leave them to lxml, as parse_html does
        text = _without_control(text)
        return None if not text or text.isspace() else _document(text, _fast_parser())
    if data.translate(None, _UTF8_NOT_CONTROL):  # faster than a regex scan for the rare case
        text = _CONTROL.sub("", text)
        data = text.encode("utf-8")
    if not text or text.isspace():
        return None
    if text.startswith("<?xml"):  # lxml refuses a str with an encoding declaration; keep that
        return _document(text, _fast_parser())
    return _document(data, _fast_parser("utf-8"))


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


def select_any(root: HtmlElement, selector: str) -> list[HtmlElement | str]:
    """Elements matching a CSS selector, or an XPath expression if it starts with '/' or '(' (whose result
    may also be strings, e.g. ``//a/@href``). The one selector engine of extraction and spiders.

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
    if isinstance(found, str):
        return [found]
    if not isinstance(found, list):
        return []
    return [x for x in found if isinstance(x, HtmlElement | str)]


def select(root: HtmlElement, selector: str) -> list[HtmlElement]:
    """The elements :func:`select_any` finds (strings left out). An invalid selector raises ValueError."""
    return [el for el in select_any(root, selector) if isinstance(el, HtmlElement)]


def safe_select(root: HtmlElement, selector: str) -> list[HtmlElement]:
    """`select`, but an invalid selector (e.g. from configuration) matches nothing."""
    try:
        return select(root, selector)
    except ValueError:
        return []


def selector_attributes(selectors: Iterable[str]) -> set[str]:
    """The attributes that the simple, tag-less selectors among `selectors` test (see ElementIndex)."""
    attrs: set[str] = set()
    for selector in selectors:
        try:
            simple = _compile(selector.strip()).simple
        except Exception:  # reported where the selector is used, as before
            continue
        if simple is not None and simple.tag is None and simple.attr is not None:
            attrs.add(simple.attr)
    return attrs


class ElementIndex:
    """The elements of a tree that carry some attributes, with their values, in document order.

    Read in one pass, so that several selectors and attribute scans need not each walk the tree (and
    the pass is cheap: no XPath). It describes the tree as it was when built: elements removed later
    are still listed.
    """

    def __init__(self, root: HtmlElement, attrs: Iterable[str]) -> None:
        self.root = root
        self._buckets: dict[str, list[tuple[int, HtmlElement, str]]] = {name: [] for name in attrs}
        buckets = self._buckets
        if not buckets:
            return
        # One call lists an element's attribute names (most carry one or two); read only those wanted.
        for position, el in enumerate(root.iter(etree.Element)):
            for name in el.keys():  # noqa: SIM118 (iterating an element gives its children)
                bucket = buckets.get(name)
                if bucket is not None:
                    bucket.append((position, el, el.get(name)))

    def having(self, attr: str) -> list[tuple[int, HtmlElement, str]] | None:
        """(position in document order, element, value) of the elements with `attr`; None if not indexed."""
        return self._buckets.get(attr)

    def select(self, selector: str) -> list[HtmlElement]:
        """`safe_select(root, selector)` on the tree as indexed.

        A tag-less simple selector on an indexed attribute is answered from the index; any other
        selector is evaluated on the tree as it is now.
        """
        try:
            simple = _compile(selector.strip()).simple
        except (etree.XPathError, SyntaxError, ValueError):
            return []
        bucket = self._buckets.get(simple.attr) if simple is not None and simple.attr is not None else None
        if simple is None or simple.tag is not None or bucket is None:
            return safe_select(self.root, selector)
        op, value = simple.op, simple.value
        if op == "":
            found = [el for _, el, _ in bucket]
        elif op == "=":
            found = [el for _, el, got in bucket if got == value]
        else:  # "*=" and "class" both need the value as a substring
            found = [el for _, el, got in bucket if value in got and simple.accepts(got)]
        return [el for el in found if isinstance(el, HtmlElement)]


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


def text_of(el: etree._Element) -> str:
    """`el.text_content()`: all text inside the element (not its tail), computed without XPath.

    libxml2's XPath string() and its text serialisation both concatenate the subtree's text nodes
    (xmlNodeGetContent); serialising skips the per-call XPath context, which costs more than the work.
    """
    return etree.tostring(el, method="text", encoding="unicode", with_tail=False)


def element_text(el: HtmlElement) -> str:
    """An element's text with whitespace collapsed (no line structure)."""
    try:
        return normalize_space(text_of(el))
    except (ValueError, etree.LxmlError):
        pass
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
_NOT_ELEMENT = 4  # a comment, processing instruction or entity reference


def _tag_kind(kinds: dict[Any, int], tag: Any, block_tags: frozenset[str]) -> int:
    if isinstance(tag, str):
        name = tag.lower()
        kind = (_BLOCK if name in block_tags else 0) | (_LINK if name == "a" else 0)
    else:
        kind = _NOT_ELEMENT
    kinds[tag] = kind
    return kind


def _normalized_line(parts: list[str]) -> str:
    line = "".join(parts)
    parts.clear()
    if _ZWSP in line or _BOM in line:
        line = line.replace(_ZWSP, " ").replace(_BOM, " ")
    return " ".join(line.split())  # normalize_space, inlined


def iter_lines(
    el: etree._Element, block_tags: frozenset[str], count_links: bool = True
) -> Iterator[tuple[str, int]]:
    """`text_lines` lazily, as (text, link characters) pairs; link characters are 0 without
    `count_links`.

    One pass in document order (``el.iter()``); an element's end -- where a block breaks the line
    again and its tail text follows -- is noticed when the next node is not inside it.
    """
    if not isinstance(el.tag, str):
        return
    kinds: dict[Any, int] = {}
    parts: list[str] = []  # the pieces of the current line
    add = parts.append
    link_chars = 0  # visible characters of the current line that are link text
    open_links = 0  # <a> elements open around the current position
    open_nodes: list[etree._Element] = []  # the elements open around the current position, and
    open_kinds: list[int] = []  # their kinds
    for node in el.iter():
        if open_nodes:
            parent = node.getparent()
            while open_nodes[-1] is not parent:  # close the elements that ended before `node`
                closed = open_nodes.pop()
                kind = open_kinds.pop()
                if kind & _BLOCK and parts:
                    line = _normalized_line(parts)
                    if line:
                        yield line, min(link_chars, len(line) - line.count(" "))
                    link_chars = 0
                if kind & _LINK:
                    open_links -= 1
                tail = closed.tail  # `closed` is not `el`: that stays open until the end
                if tail:
                    add(tail)
                    if count_links and open_links:
                        link_chars += visible_len(tail)
        tag = node.tag
        known = kinds.get(tag)
        kind = _tag_kind(kinds, tag, block_tags) if known is None else known
        if kind & _NOT_ELEMENT:  # a comment, processing instruction or entity: only its tail is text
            tail = node.tail
            if tail:  # (never `el`: that is an element)
                add(tail)
                if count_links and open_links:
                    link_chars += visible_len(tail)
            continue
        if kind & _BLOCK and parts:
            line = _normalized_line(parts)
            if line:
                yield line, min(link_chars, len(line) - line.count(" "))
            link_chars = 0
        if kind & _LINK:
            open_links += 1
        open_nodes.append(node)
        open_kinds.append(kind)
        text = node.text
        if text:
            add(text)
            if count_links and open_links:
                link_chars += visible_len(text)
    while open_nodes:
        closed = open_nodes.pop()
        kind = open_kinds.pop()
        if kind & _BLOCK and parts:
            line = _normalized_line(parts)
            if line:
                yield line, min(link_chars, len(line) - line.count(" "))
            link_chars = 0
        if kind & _LINK:
            open_links -= 1
        if closed is not el:
            tail = closed.tail
            if tail:
                add(tail)
                if count_links and open_links:
                    link_chars += visible_len(tail)
    if parts:
        line = _normalized_line(parts)
        if line:
            yield line, min(link_chars, len(line) - line.count(" "))


def raw_lines(
    el: etree._Element, block_tags: frozenset[str], count_links: bool = True
) -> tuple[list[str], list[int]]:
    """`text_lines` as two parallel lists (texts, link characters), without Line objects.

    With `count_links` False the link counts are not computed (the second list is empty).
    """
    texts: list[str] = []
    links: list[int] = []
    if count_links:
        for text, link_chars in iter_lines(el, block_tags):
            texts.append(text)
            links.append(link_chars)
    else:
        texts = [text for text, _ in iter_lines(el, block_tags, count_links=False)]
    return texts, links


def text_lines(el: HtmlElement, block_tags: frozenset[str]) -> list[Line]:
    """The text inside `el` as lines, breaking at block-level elements and ``<br>``. Iterative."""
    texts, links = raw_lines(el, block_tags)
    return [Line(text, link) for text, link in zip(texts, links, strict=True)]
