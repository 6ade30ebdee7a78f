"""Dotted paths into parsed JSON, as written in config/sources.yaml (``json_paths``).

    data.cards            key after key
    data.cards.0.id       a list index (also ``data.cards[0].id``; negative indexes count from the end)
    data.cards.*.mblog    ``*`` takes every element of a list (or every value of an object) and flattens
    $.data.cards          a leading ``$`` / ``$.`` is allowed and ignored
    ""                    the document itself

A path that does not match (missing key, index out of range, a scalar where an object was expected) gives
nothing; it never raises on data. Only a malformed path raises :class:`ValueError` (see :func:`parse_path`).
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any

__all__ = ["get_all", "get_one", "parse_path"]

_BRACKET = re.compile(r"\[(-?\d+|\*)\]")
_MISSING = object()


@lru_cache(maxsize=256)
def parse_path(path: str) -> tuple[str, ...]:
    """The steps of ``path``. Raises ValueError on an empty step (``a..b``) or an unclosed bracket."""
    text = path.strip()
    if text.startswith("$"):
        text = text[1:].lstrip(".")
    if not text:
        return ()
    text = _BRACKET.sub(lambda m: "." + m.group(1), text)
    if "[" in text or "]" in text:
        raise ValueError(f"malformed JSON path {path!r}: brackets take an index or '*'")
    steps = tuple(step.strip() for step in text.split("."))
    if any(not step for step in steps):
        raise ValueError(f"malformed JSON path {path!r}: empty step")
    return steps


def _step(value: Any, step: str) -> list[Any]:
    if step == "*":
        if isinstance(value, list):
            return list(value)
        if isinstance(value, dict):
            return list(value.values())
        return []
    if isinstance(value, dict):
        found = value.get(step, _MISSING)
        return [] if found is _MISSING else [found]
    if isinstance(value, list) and re.fullmatch(r"-?\d+", step):
        index = int(step)
        if -len(value) <= index < len(value):
            return [value[index]]
    return []


def get_all(data: Any, path: str) -> list[Any]:
    """Every value ``path`` reaches in ``data`` (several only through ``*``), ``null``s left out."""
    values = [data]
    for step in parse_path(path):
        values = [found for value in values for found in _step(value, step)]
        if not values:
            break
    return [v for v in values if v is not None]


def get_one(data: Any, path: str | None) -> Any:
    """The first value ``path`` reaches in ``data``, or None (also when ``path`` is None)."""
    if path is None:
        return None
    values = get_all(data, path)
    return values[0] if values else None
