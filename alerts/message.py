"""The excerpt of a post an alert quotes: the text around the first keyword of the rule (pure)."""

from __future__ import annotations

from yuqing.text import Excerpt, excerpt

EXCERPT_RADIUS = 80  # characters of context either side of the matched keyword


def keyword_excerpt(text: str, keywords: tuple[str, ...]) -> Excerpt:
    """The first occurrence of any keyword in ``text`` with ``EXCERPT_RADIUS`` characters either side (the
    start of the text when the keyword was only in the title)."""
    return excerpt(text, keywords, before=EXCERPT_RADIUS, after=EXCERPT_RADIUS)
