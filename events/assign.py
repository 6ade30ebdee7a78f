"""What ``yuqing events assign`` runs: JSON lines in, one assignment per post out, on a simulated clock.

Each input line is a JSON object with ``id``, ``title``, ``text``, ``published_at`` (ISO 8601; without an
offset it is taken in the configured time zone) and optionally ``likes``, ``dislikes``, ``comments``,
``reposts``, ``source``, ``kind``, ``url``, ``sentiment``, ``relevant``, ``topic``, ``duplicate_of``, ``own``
(true: published on one of the bureau's own channels, 本局发布).
Posts are expected in time order; the clock is the latest ``published_at`` seen. Where a line gives no
relevance or topic, the taxonomy's keyword rules supply them (as the classifier would, more roughly); the
专题 keyword groups are matched on every post. The engine is the one the service uses.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from datetime import datetime, tzinfo
from typing import Any, TextIO

from events.engine import EventEngine, PostResult
from events.keyword_groups import GroupMatcher
from events.types import SENTIMENTS, EventPost
from nlp.taxonomy import Taxonomy, rule_relevant, rule_topic
from yuqing.errors import YuqingError

_REQUIRED = ("id", "published_at")
_INTS = ("likes", "dislikes", "comments", "reposts")


class InputError(YuqingError):
    """A line of input that cannot be read; the message names the line."""


def _str(obj: dict[str, Any], key: str, lineno: int, default: str = "") -> str:
    value = obj.get(key, default)
    if value is None:
        return default
    if not isinstance(value, str):
        raise InputError(f"line {lineno}: '{key}' must be a string, got {type(value).__name__}")
    return value


def parse_line(line: str, lineno: int, tz: tzinfo) -> EventPost | None:
    """One input line as an :class:`EventPost` (None for a blank line); :class:`InputError` names the line."""
    if not line.strip():
        return None
    try:
        obj = json.loads(line)
    except json.JSONDecodeError as exc:
        raise InputError(f"line {lineno}: not valid JSON ({exc.msg} at column {exc.colno})") from exc
    if not isinstance(obj, dict):
        raise InputError(f"line {lineno}: expected a JSON object, got {type(obj).__name__}")
    missing = [k for k in _REQUIRED if obj.get(k) in (None, "")]
    if missing:
        raise InputError(f"line {lineno}: missing field(s) {', '.join(missing)}")
    if not (obj.get("title") or obj.get("text")):
        raise InputError(f"line {lineno}: a post needs a title or a text")
    raw_time = obj["published_at"]
    if not isinstance(raw_time, str):
        raise InputError(f"line {lineno}: 'published_at' must be an ISO 8601 string")
    try:
        at = datetime.fromisoformat(raw_time.replace("Z", "+00:00"))
    except ValueError as exc:
        raise InputError(f"line {lineno}: 'published_at' is not an ISO 8601 time: {raw_time!r}") from exc
    if at.tzinfo is None:
        at = at.replace(tzinfo=tz)
    counts: dict[str, int] = {}
    for key in _INTS:
        value = obj.get(key, 0) or 0
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise InputError(f"line {lineno}: '{key}' must be a non-negative integer, got {value!r}")
        counts[key] = value
    sentiment = obj.get("sentiment")
    if sentiment is not None and sentiment not in SENTIMENTS:
        raise InputError(f"line {lineno}: 'sentiment' must be one of {', '.join(SENTIMENTS)}")
    relevant = obj.get("relevant")
    if relevant is not None and not isinstance(relevant, bool):
        raise InputError(f"line {lineno}: 'relevant' must be true or false")
    own = obj.get("own", False)
    if not isinstance(own, bool):
        raise InputError(f"line {lineno}: 'own' must be true or false")
    post_id = obj["id"]
    if not isinstance(post_id, str | int) or isinstance(post_id, bool):
        raise InputError(f"line {lineno}: 'id' must be a string or an integer")
    try:
        return EventPost(
            id=str(post_id),
            title=_str(obj, "title", lineno),
            text=_str(obj, "text", lineno),
            published_at=at,
            source=_str(obj, "source", lineno),
            kind=_str(obj, "kind", lineno, "message") or "message",
            url=_str(obj, "url", lineno) or None,
            sentiment=sentiment,
            relevant=relevant,
            own=own,
            topic=_str(obj, "topic", lineno) or None,
            duplicate_of=_str(obj, "duplicate_of", lineno) or None,
            likes=counts["likes"],
            dislikes=counts["dislikes"],
            comments=counts["comments"],
            reposts=counts["reposts"],
        )
    except ValueError as exc:
        raise InputError(f"line {lineno}: {exc}") from exc


@dataclass
class Assigner:
    """The engine plus the enrichment the service's earlier stages would have done."""

    engine: EventEngine
    taxonomy: Taxonomy | None = None
    groups: GroupMatcher | None = None

    def enrich(self, post: EventPost) -> EventPost:
        text = f"{post.title}\n{post.text}"
        updates: dict[str, Any] = {}
        if self.taxonomy is not None:
            if post.relevant is None and post.relevance_prob is None:
                updates["relevant"] = rule_relevant(text, self.taxonomy)
            if post.topic is None and not post.judged:  # a person's 人工研判 stands as given
                updates["topic"] = rule_topic(text, self.taxonomy)
        if self.groups is not None and not post.keyword_groups:
            updates["keyword_groups"] = self.groups.match(post.title, post.text)
        return replace(post, **updates) if updates else post

    def process(self, post: EventPost) -> PostResult:
        return self.engine.process(self.enrich(post))

    def run(self, lines: Iterable[str], tz: tzinfo) -> Iterator[tuple[EventPost, PostResult]]:
        for lineno, line in enumerate(lines, start=1):
            post = parse_line(line, lineno, tz)
            if post is not None:
                post = self.enrich(post)
                yield post, self.engine.process(post)


def output_line(result: PostResult) -> str:
    return json.dumps(
        {
            "id": result.post_id,
            "event_id": result.event_id,
            "heat": round(result.score.heat, 1),
            "risk_level": result.score.risk.level,
        },
        ensure_ascii=False,
    )


def write_results(assigner: Assigner, lines: Iterable[str], out: TextIO, tz: tzinfo) -> int:
    """Process ``lines`` and write one output line per post; returns the number of posts."""
    n = 0
    for _, result in assigner.run(lines, tz):
        out.write(output_line(result) + "\n")
        n += 1
    return n
