"""Reading search hits into posts without letting one unreadable document break a page or an export.

A document written by an older version or another tool (say, without ``analysis.relevance_prob``) does not
validate as a post record (:class:`index.records.PostRecord`). Readers skip it, count it, and log its id once per
process (a page that refreshes every few seconds must not repeat the same line).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from index.search import PostHit, post_from_source

log = logging.getLogger(__name__)

_REPORTED_MAX = 10_000
_reported: set[str] = set()
_reported_lock = threading.Lock()


@dataclass(frozen=True)
class ReadHits:
    """The posts that could be read, and the ids of the documents that could not."""

    hits: list[PostHit] = field(default_factory=list)
    unreadable: list[str] = field(default_factory=list)


def _first_error(exc: ValidationError) -> str:
    err = exc.errors()[0]
    where = ".".join(str(p) for p in err["loc"])
    more = f" (+{exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
    return f"{where}: {err['msg']}{more}"


def _report(doc_id: str, index: str, problem: str) -> None:
    with _reported_lock:
        first = doc_id not in _reported
        if first:
            if len(_reported) >= _REPORTED_MAX:
                _reported.clear()
            _reported.add(doc_id)
    (log.warning if first else log.debug)("skipped unreadable document %s in %s: %s", doc_id, index, problem)


def read_hit(hit: Mapping[str, Any]) -> PostHit | None:
    """The post of one search hit, or None (logged with its id) when the document is not a readable post."""
    doc_id = str(hit.get("_id", "?"))
    try:
        post = post_from_source(dict(hit["_source"]))
    except ValidationError as exc:
        _report(doc_id, str(hit.get("_index", "?")), _first_error(exc))
        return None
    except (KeyError, TypeError, ValueError) as exc:
        _report(doc_id, str(hit.get("_index", "?")), f"{type(exc).__name__}: {exc}")
        return None
    score = hit.get("_score")
    return PostHit(id=doc_id, post=post, score=float(score) if score is not None else None)


def read_hits(hits: Iterable[Mapping[str, Any]]) -> ReadHits:
    """Every readable post of ``hits`` in order; the ids of the others."""
    out = ReadHits()
    for hit in hits:
        item = read_hit(hit)
        if item is None:
            out.unreadable.append(str(hit.get("_id", "?")))
        else:
            out.hits.append(item)
    return out
