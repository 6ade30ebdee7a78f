"""Main-text detection: a text-density heuristic in the spirit of GeneralNewsExtractor.

Every block-level element's own ("inline") text is measured: visible characters, characters inside
links, and sentence punctuation. A block whose own text looks like prose (long enough, few links) is a
paragraph; its score -- punctuation count plus a length bonus, scaled by its non-link share -- is
credited to the paragraph's container (the parent of a <p>-like block, or the block itself when it holds
<br>-separated lines) and, with decreasing weights, to the blocks above it. Article bodies are
where many prose paragraphs sit side by side, so their container collects the highest score, while
navigation (link-dense) and lists of headlines (no punctuation) collect little. The winner's score is
finally discounted by its overall link density. Three linear passes, no recursion.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from lxml import etree

from crawlers.extract.dom import HtmlElement, raw_lines, tag_name, visible_len
from crawlers.extract.rules import BoilerplateRules, ContentRules


@dataclass(slots=True)
class _Stats:
    """Own-text statistics of one block element and the score it collects."""

    chars: int = 0
    link_chars: int = 0
    punct: int = 0
    score: float = 0.0
    subtree_chars: int = 0
    subtree_link_chars: int = 0
    head: str = ""


def _count_punct(text: str, punctuation: frozenset[str]) -> int:
    if len(text) < 2 * len(punctuation):
        return sum(map(punctuation.__contains__, text))
    return sum(map(text.count, punctuation))


_HEAD_CHARS = 120


def find_main_block(
    root: HtmlElement, rules: ContentRules, boilerplate: BoilerplateRules | None = None
) -> HtmlElement | None:
    """The element that most likely holds the article body, or None if no block holds prose.

    Paragraphs that begin like boilerplate lines (disclaimers, copyright, editor credits) score nothing.
    """
    noise = (boilerplate.tail_regexes + boilerplate.drop_regexes) if boilerplate is not None else ()
    blocks = frozenset(rules.block_tags) - {"br", "hr"}
    punctuation = frozenset(rules.punctuation)
    paragraph_tags = frozenset(rules.paragraph_tags)
    body = root.find("body")
    top = body if body is not None else root

    stats: dict[HtmlElement, _Stats] = {}
    block_parent: dict[HtmlElement, HtmlElement | None] = {}

    def credit(block: HtmlElement, text: str | None, link: bool) -> None:
        if not text or text.isspace():  # (the whitespace between blocks, mostly)
            return
        size = visible_len(text)
        if not size:
            return
        st = stats[block]
        if len(st.head) < _HEAD_CHARS:
            st.head += text.strip()
        st.chars += size
        if link:
            st.link_chars += size
        else:
            st.punct += _count_punct(text, punctuation)

    # Pass 1 (document order, parents before children): who owns which text. The text of a non-block
    # element goes to the nearest block around it (its owner); a tail goes to the parent's owner.
    # `context` maps each element seen to (its owner or None, whether it is inside a link).
    context: dict[etree._Element, tuple[HtmlElement | None, bool]] = {}
    kinds: dict[object, tuple[bool, bool, bool]] = {}  # tag -> (element?, block?, link?)
    no_context: tuple[HtmlElement | None, bool] = (None, False)
    for el in top.iter():
        tag = el.tag
        kind = kinds.get(tag)
        if kind is None:
            name = tag.lower() if isinstance(tag, str) else ""
            kind = kinds[tag] = (bool(name), name in blocks, name == "a")
        is_element, block, is_link = kind
        parent_owner, parent_link = no_context if el is top else context.get(el.getparent(), no_context)
        if not is_element:  # comment, PI, entity: a tail only
            if parent_owner is not None:
                credit(parent_owner, el.tail, parent_link)
            continue
        link = parent_link or is_link
        own: HtmlElement | None
        if (block or el is top) and isinstance(el, HtmlElement):
            stats[el] = _Stats()
            block_parent[el] = parent_owner
            own = el
        else:
            own = parent_owner
        context[el] = (own, link)
        if own is None:
            continue
        credit(own, el.text, link)
        if el is not top and parent_owner is not None:
            credit(parent_owner, el.tail, parent_link)

    if not stats:
        return None

    # Pass 2 (reverse document order, children before parents): subtree sums.
    ordered = list(stats)
    for el in reversed(ordered):
        st = stats[el]
        st.subtree_chars += st.chars
        st.subtree_link_chars += st.link_chars
        up = block_parent.get(el)
        if up is not None:
            stats[up].subtree_chars += st.subtree_chars
            stats[up].subtree_link_chars += st.subtree_link_chars

    # Pass 3: paragraph scores credited upwards.
    weights = rules.ancestor_weights
    for el in ordered:
        st = stats[el]
        if st.chars < rules.min_paragraph_chars:
            continue
        link_density = st.link_chars / st.chars
        if link_density > rules.max_paragraph_link_density:
            continue
        if noise and _matches_any(st.head, noise):
            continue
        score = (1.0 + st.punct + min(st.chars / 50.0, 5.0)) * (1.0 - link_density)
        # A <p>-like block is one paragraph: its container is its parent. Any other block holding text
        # directly (lines separated by <br>) is itself the container of those lines.
        target: HtmlElement | None = el
        if tag_name(el) in paragraph_tags:
            target = block_parent.get(el)
        for weight in weights:
            if target is None:
                break
            stats[target].score += score * weight
            target = block_parent.get(target)

    best: HtmlElement | None = None
    best_score = 0.0
    for el in ordered:
        st = stats[el]
        if st.subtree_chars < rules.min_container_chars or st.score <= 0:
            continue
        density = st.subtree_link_chars / st.subtree_chars if st.subtree_chars else 0.0
        final = st.score * (1.0 - density)
        if final > best_score:
            best, best_score = el, final
    return best


def _matches_any(text: str, regexes: tuple[re.Pattern[str], ...]) -> bool:
    return any(r.search(text) for r in regexes)


def body_lines(container: HtmlElement, content: ContentRules, boilerplate: BoilerplateRules) -> list[str]:
    """The paragraphs of a body container, with link lists and boilerplate lines removed."""
    texts, links = raw_lines(container, frozenset(content.block_tags))
    drop = boilerplate.drop_regexes
    max_density = content.max_line_link_density
    kept: list[str] = []
    for text, link_chars in zip(texts, links, strict=True):
        if link_chars:
            size = len(text) - text.count(" ")  # visible_len of a normalized line
            if size and link_chars / size > max_density and size < 80:
                continue
        if drop and _matches_any(text, drop):
            continue
        kept.append(text)
    while kept and _matches_any(kept[0], boilerplate.head_regexes):
        kept.pop(0)
    while (
        kept
        and len(kept[-1]) <= boilerplate.max_tail_line_chars
        and _matches_any(kept[-1], boilerplate.tail_regexes)
    ):
        kept.pop()
    return kept
