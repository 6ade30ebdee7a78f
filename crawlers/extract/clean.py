"""Boilerplate removal before the main text is looked for (scripts, navigation, share bars, comments)."""

from __future__ import annotations

from lxml import etree

from crawlers.extract.dom import HtmlElement, safe_select_many, tag_name, visible_len
from crawlers.extract.rules import BoilerplateRules

_NEVER_DOOMED = frozenset({"html", "body", "head"})


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
    # All selectors are matched on the same tree, before any removal: what one selector's removal
    # takes out of the document can still be matched by another, but removing it again (or removing
    # something inside it) no longer changes the document.
    selected = safe_select_many(root, rules.remove_selectors)
    for selector in rules.remove_selectors:
        for el in selected[selector]:
            if tag_name(el) not in ("html", "body"):
                _drop(el)
    regex = rules.class_id_regex
    if regex is None:
        return
    total = visible_len(root.text_content()) or 1
    doomed: list[HtmlElement] = []
    for el in root.iter(etree.Element):
        class_ = el.get("class")
        id_ = el.get("id")
        if class_ is None and id_ is None:
            continue
        names = f"{class_ or ''} {id_ or ''}".strip()
        if (
            names
            and regex.search(names)
            and isinstance(el, HtmlElement)
            and tag_name(el) not in _NEVER_DOOMED
        ):
            doomed.append(el)
    keep_share = rules.keep_if_text_share_above
    for el in doomed:
        # An ancestor may already be gone; then this element is detached from `root` too.
        if el.getroottree().getroot() is not root:
            continue
        text = el.text_content()
        # visible_len(text) <= len(text): most blocks are too small to be kept without counting.
        if len(text) / total > keep_share and visible_len(text) / total > keep_share:
            continue
        _drop(el)
