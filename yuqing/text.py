"""Text helpers shared by what people read (dashboard, alert mails): one-line text, excerpts around search
terms or keywords, and which URLs may become links. Pure functions."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit

_SPACE = re.compile(r"\s+")


def one_line(text: str) -> str:
    """Whitespace (newlines included) collapsed to single spaces: safe for headers and table cells."""
    return _SPACE.sub(" ", text).strip()


def display_title(title: str, content: str, width: int = 30) -> str:
    """A post's title; a post without one (a Weibo post, a short message) is named by the start of its text."""
    if title.strip():
        return title
    text = one_line(content)
    return text if len(text) <= width else text[:width] + "…"


def http_url(url: str) -> str | None:
    """``url`` (stripped) when it is an http(s) URL, the only kind that may become a clickable link; else None."""
    url = url.strip()
    return url if urlsplit(url).scheme.lower() in ("http", "https") else None


def display_host(url: str) -> str:
    """A cluster URL fit to show on screen or in a log line: any ``user:password@`` part removed."""
    parts = urlsplit(url)
    if not parts.netloc or "@" not in parts.netloc:
        return url
    return parts._replace(netloc=parts.netloc.rsplit("@", 1)[1]).geturl()


def find_first(text: str, terms: Iterable[str]) -> tuple[int, int] | None:
    """(position, length) of the earliest occurrence of any term in ``text`` (case-insensitive; the longest
    term wins at one position)."""
    words = sorted({t for t in terms if t}, key=len, reverse=True)
    if not words:
        return None
    match = re.search("|".join(re.escape(w) for w in words), text, re.IGNORECASE)
    return (match.start(), match.end() - match.start()) if match else None


@dataclass(frozen=True)
class Excerpt:
    """A piece of a text around its first matched term: ``before`` + ``match`` + ``after`` (ellipses included
    where the text was cut)."""

    before: str
    match: str
    after: str

    @property
    def text(self) -> str:
        return self.before + self.match + self.after


def excerpt(text: str, terms: Iterable[str], *, before: int, after: int) -> Excerpt:
    """``text`` on one line, cut to ``before`` characters before the first matched term and ``after`` after it.

    The window keeps its length near either end of the text (more after the term when it is near the start,
    more before it near the end). Without a match the excerpt is the start of the text (``match`` empty).
    """
    flat = one_line(text)
    found = find_first(flat, terms)
    if found is None:
        end = min(len(flat), before + after)
        return Excerpt("", "", flat[:end] + ("…" if end < len(flat) else ""))
    pos, length = found
    start, end = pos - before, pos + length + after
    if start < 0:
        start, end = 0, min(len(flat), end - start)
    if end > len(flat):
        start, end = max(0, start - (end - len(flat))), len(flat)
    return Excerpt(
        ("…" if start > 0 else "") + flat[start:pos],
        flat[pos : pos + length],
        flat[pos + length : end] + ("…" if end < len(flat) else ""),
    )
