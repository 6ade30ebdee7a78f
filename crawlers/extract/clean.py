"""Boilerplate removal before the main text is looked for (scripts, navigation, share bars, comments)."""

from __future__ import annotations

from lxml import etree

from crawlers.extract.dom import (
    ElementIndex,
    HtmlElement,
    selector_attributes,
    tag_name,
    text_of,
    visible_len,
)
from crawlers.extract.rules import BoilerplateRules

# The attributes whose words (`remove_class_id_pattern`) mark boilerplate blocks.
BOILERPLATE_ATTRIBUTES = ("class", "id")
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


class _Attachment:
    """Whether elements are still in `root`'s tree, for elements asked about in document order.

    Answers are memoized along the parent chain; an element removed after being asked about must be
    reported with `removed`. Elements asked about later in document order cannot lie below an
    element asked about earlier that was still attached then and removed since, other than below that
    element itself, so the memo stays right.
    """

    def __init__(self, root: HtmlElement) -> None:
        self._known: dict[etree._Element, bool] = {root: True}

    def __call__(self, el: etree._Element) -> bool:
        known = self._known
        path: list[etree._Element] = []
        node: etree._Element | None = el
        answer = False
        while node is not None:
            hit = known.get(node)
            if hit is not None:
                answer = hit
                break
            path.append(node)
            node = node.getparent()
        for seen in path:
            known[seen] = answer
        return answer

    def removed(self, el: etree._Element) -> None:
        self._known[el] = False


def _class_id_words(class_: str | None, id_: str | None) -> str:
    return f"{class_ or ''} {id_ or ''}".strip()


def _position(entry: tuple[int, HtmlElement]) -> int:
    return entry[0]


def remove_boilerplate(root: HtmlElement, rules: BoilerplateRules, *, index: ElementIndex | None = None) -> None:
    """Remove configured tags, selectors and class/id-matched blocks in place.

    A class/id match is kept when it holds more than `keep_if_text_share_above` of the page's text:
    such a block is a page wrapper whose name happens to contain a boilerplate word.

    `index`: an ElementIndex of this tree (before the removals; including the class and id attributes
    and those of the remove selectors) when the caller has one; elements it lists that are no longer
    in the tree are skipped.
    """
    strip_tags(root, rules.remove_tags)
    if index is None:
        index = ElementIndex(root, (*BOILERPLATE_ATTRIBUTES, *selector_attributes(rules.remove_selectors)))
    # Each selector matches on the tree as the previous ones left it. Answers from the index may name
    # elements already removed (or inside removed ones): removing those changes nothing in `root`.
    for selector in rules.remove_selectors:
        for el in index.select(selector):
            if tag_name(el) not in ("html", "body"):
                _drop(el)
    regex = rules.class_id_regex
    if regex is None:
        return
    total = visible_len(text_of(root)) or 1
    classes = index.having("class")
    ids = index.having("id")
    if classes is None or ids is None:  # an index without them: read them now
        index = ElementIndex(root, BOILERPLATE_ATTRIBUTES)
        classes, ids = index.having("class") or [], index.having("id") or []
    # The elements whose class and id words match, in document order (the order matters: whether a
    # block is kept depends on its text, which shrinks as blocks inside it are removed). Pages repeat
    # the same classes a lot: verdicts are kept by (class, id).
    verdicts: dict[tuple[str | None, str | None], bool] = {}
    doomed: list[tuple[int, HtmlElement]] = []
    id_at = {position: id_value for position, _, id_value in ids}
    for position, el, class_value in classes:
        key = (class_value, id_at.pop(position, None))  # popped: ids left over belong to class-less ones
        verdict = verdicts.get(key)
        if verdict is None:
            names = _class_id_words(*key)
            verdict = verdicts[key] = bool(names) and regex.search(names) is not None
        if verdict:
            doomed.append((position, el))
    if id_at:
        for position, el, id_value in ids:
            if position in id_at:
                names = _class_id_words(None, id_value)
                if names and regex.search(names):
                    doomed.append((position, el))
        doomed.sort(key=_position)
    attached = _Attachment(root)
    keep_share = rules.keep_if_text_share_above
    for _, el in doomed:
        if not isinstance(el, HtmlElement) or tag_name(el) in _NEVER_DOOMED:
            continue
        # Skipping removed elements (or those inside removed ones) changes nothing in `root`.
        if not attached(el):
            continue
        text = text_of(el)
        # visible_len(text) <= len(text): most blocks are too small to be kept without counting.
        if len(text) / total > keep_share and visible_len(text) / total > keep_share:
            continue
        _drop(el)
        attached.removed(el)
