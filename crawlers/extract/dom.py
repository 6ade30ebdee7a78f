"""Parsing HTML into an lxml tree, selecting with CSS/XPath, and reading text as lines.

Everything here is iterative (no recursion over the tree), so pathologically deep documents cannot
exhaust the Python stack.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from lxml import etree
from lxml import html as lxml_html
from lxml.html import HtmlElement

__all__ = ["HtmlElement", "Line", "parse_html", "select", "text_lines"]

_WS = re.compile(r"[\s\u00a0\u3000\u200b\ufeff]+")
_XML_DECL = re.compile(r"^\s*<\?xml[^>]*\?>", re.IGNORECASE)
# Characters that cannot appear in an XML/HTML tree (lxml refuses them).
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def normalize_space(text: str) -> str:
    """Collapse every run of whitespace (incl. NBSP, ideographic space, zero-width) to one space."""
    return _WS.sub(" ", text).strip()


def visible_len(text: str) -> int:
    """Number of non-whitespace characters."""
    return len(_WS.sub("", text))


def parse_html(text: str) -> HtmlElement | None:
    """An lxml document for `text`, or None when there is nothing to parse. Never raises."""
    text = _CONTROL.sub("", _XML_DECL.sub("", text or ""))
    if not text.strip():
        return None
    try:
        parser = lxml_html.HTMLParser(recover=True, remove_comments=True, remove_pis=True, encoding=None)
        root = lxml_html.document_fromstring(text, parser=parser)
    except (etree.ParserError, etree.XMLSyntaxError, ValueError):
        return None
    return root if isinstance(root, HtmlElement) else None


def tag_name(el: etree._Element) -> str:
    """Lower-case tag name; '' for comments, processing instructions and entities."""
    tag = el.tag
    return tag.lower() if isinstance(tag, str) else ""


def select(root: HtmlElement, selector: str) -> list[HtmlElement]:
    """Elements matching a CSS selector, or an XPath expression if it starts with '/' or '('.

    An invalid selector raises ValueError naming it.
    """
    selector = selector.strip()
    try:
        found = root.xpath(selector) if selector.startswith(("/", "(")) else root.cssselect(selector)
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


def meta_content(root: HtmlElement, names: Iterable[str]) -> Iterator[str]:
    """Non-empty ``content`` of ``<meta>`` tags whose property/name/itemprop is one of `names`, in order."""
    metas: dict[str, list[str]] = {}
    for el in root.iter("meta"):
        content = normalize_space(el.get("content") or "")
        if not content:
            continue
        for attr in ("property", "name", "itemprop"):
            key = (el.get(attr) or "").strip().lower()
            if key:
                metas.setdefault(key, []).append(content)
    for name in names:
        yield from metas.get(name.strip().lower(), [])


def element_text(el: HtmlElement) -> str:
    """An element's text with whitespace collapsed (no line structure)."""
    try:
        return normalize_space(el.text_content())
    except ValueError:
        return ""


@dataclass(frozen=True)
class Line:
    """One line of visible text: the text and how many of its characters are link text."""

    text: str
    link_chars: int

    @property
    def link_density(self) -> float:
        size = visible_len(self.text)
        return self.link_chars / size if size else 0.0


def text_lines(el: HtmlElement, block_tags: frozenset[str]) -> list[Line]:
    """The text inside `el` as lines, breaking at block-level elements and ``<br>``. Iterative."""
    lines: list[Line] = []
    parts: list[str] = []
    link_chars = 0

    def flush() -> None:
        nonlocal link_chars
        text = normalize_space("".join(parts))
        if text:
            lines.append(Line(text, min(link_chars, visible_len(text))))
        parts.clear()
        link_chars = 0

    def add(text: str | None, in_link: bool) -> None:
        nonlocal link_chars
        if text:
            parts.append(text)
            if in_link:
                link_chars += visible_len(text)

    # Stack items: (element, entering?, inside a link?)
    stack: list[tuple[etree._Element, bool, bool]] = [(el, True, False)]
    while stack:
        node, entering, in_link = stack.pop()
        name = tag_name(node)
        if entering:
            if not name:
                if node is not el:
                    add(node.tail, in_link)
                continue
            if name in block_tags:
                flush()
            here_link = in_link or name == "a"
            add(node.text, here_link)
            stack.append((node, False, in_link))
            for child in reversed(node):
                stack.append((child, True, here_link))
        else:
            if name in block_tags:
                flush()
            if node is not el:
                add(node.tail, in_link)
    flush()
    return lines
