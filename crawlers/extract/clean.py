"""Boilerplate removal before the main text is looked for (scripts, navigation, share bars, comments)."""

from __future__ import annotations

from lxml import etree

from crawlers.extract.dom import HtmlElement, safe_select, tag_name, visible_len
from crawlers.extract.rules import BoilerplateRules


def _drop(el: HtmlElement) -> None:
    """Remove an element but keep its tail text in the document."""
    parent = el.getparent()
    if parent is None:
        return
    try:
        el.drop_tree()
    except (AttributeError, ValueError):
        parent.remove(el)


def strip_tags(root: HtmlElement, tags: list[str]) -> None:
    """Remove every element with one of these tag names (and its content, keeping tails)."""
    if tags:
        etree.strip_elements(root, *tags, with_tail=False)


def remove_boilerplate(root: HtmlElement, rules: BoilerplateRules) -> None:
    """Remove configured tags, selectors and class/id-matched blocks in place.

    A class/id match is kept when it holds more than `keep_if_text_share_above` of the page's text:
    such a block is a page wrapper whose name happens to contain a boilerplate word.
    """
    strip_tags(root, rules.remove_tags)
    for selector in rules.remove_selectors:
        for el in safe_select(root, selector):
            if tag_name(el) not in ("html", "body"):
                _drop(el)
    regex = rules.class_id_regex
    if regex is None:
        return
    total = visible_len(root.text_content()) or 1
    doomed: list[HtmlElement] = []
    for el in root.iter():
        if not isinstance(el, HtmlElement) or tag_name(el) in ("html", "body", "head"):
            continue
        names = f"{el.get('class') or ''} {el.get('id') or ''}".strip()
        if names and regex.search(names):
            doomed.append(el)
    for el in doomed:
        # An ancestor may already be gone; then this element is detached from `root` too.
        if el.getroottree().getroot() is not root:
            continue
        if visible_len(el.text_content()) / total > rules.keep_if_text_share_above:
            continue
        _drop(el)
