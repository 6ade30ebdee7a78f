"""The judgements index (人工研判): mapping, record model, index spec, query builder and store.

One document per judged post, id = the post's id. The latest judgement is at the top level (what the post
carries); every judgement made, the latest included, is in ``history``, written in the same request as the
change it records (compare-and-set, :mod:`index.versioned`). The classifier's own values at the first
judgement are kept (``model_*``), so an export can show where people and the model differ. A snapshot of the
post's title, URL and source makes the list readable without a second request; the text for a training
export is read from the posts index. The rules are :mod:`ingest.judgements`.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from elasticsearch import Elasticsearch, NotFoundError
from pydantic import ConfigDict, Field

from index.records import Record
from index.spec import IndexSpec
from index.versioned import VersionedStore

_KW = {"type": "keyword"}
_DATE = {"type": "date"}
_STORED = {"type": "text", "index": False}

JUDGEMENTS_MAPPING: dict[str, Any] = {
    "dynamic": "strict",
    "properties": {
        "post_id": _KW,
        "relevant": {"type": "boolean"},
        "topic": _KW,
        "judged_by": _KW,
        "judged_at": _DATE,
        "note": _STORED,
        "model_relevant": {"type": "boolean"},
        "model_topic": _KW,
        "relevance_prob": {"type": "float"},
        "model_version": _KW,
        "title": {"type": "text", "analyzer": "standard"},
        "url": {"type": "keyword", "index": False},
        "source": _KW,
        "history": {
            "properties": {"at": _DATE, "by": _KW, "relevant": {"type": "boolean"}, "topic": _KW, "note": _STORED}
        },
    },
}

JUDGEMENTS = IndexSpec("judgements", JUDGEMENTS_MAPPING, version=1)


class _Record(Record):
    """Written from the model field for field: an unknown field fails rather than vanishing."""

    model_config = ConfigDict(extra="forbid")


class JudgementEntry(_Record):
    """One judgement as made: who, when, what."""

    at: datetime
    by: str
    relevant: bool
    topic: str | None = None
    note: str | None = None


class JudgementRecord(_Record):
    """The ``_source`` of a judged post's document."""

    post_id: str
    relevant: bool
    topic: str | None = None
    judged_by: str
    judged_at: datetime
    note: str | None = None
    model_relevant: bool | None = None
    model_topic: str | None = None
    relevance_prob: float | None = None
    model_version: str | None = None
    title: str = ""
    url: str | None = None
    source: str | None = None
    history: list[JudgementEntry] = Field(default_factory=list)


def judgement_query(
    *,
    relevant: bool | None = None,
    judged_by: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    differs_from_model: bool = False,
    sources: Sequence[str] = (),
) -> dict[str, Any]:
    """The query for a list or an export of judgements (pure). ``differs_from_model``: only those where the
    person's relevance is not the classifier's (a judgement of a post the classifier never saw counts)."""
    filters: list[dict[str, Any]] = []
    if relevant is not None:
        filters.append({"term": {"relevant": relevant}})
    if judged_by:
        filters.append({"term": {"judged_by": judged_by}})
    if since is not None or until is not None:
        span: dict[str, str] = {}
        if since is not None:
            span["gte"] = since.isoformat()
        if until is not None:
            span["lt"] = until.isoformat()
        filters.append({"range": {"judged_at": span}})
    if sources:
        filters.append({"terms": {"source": list(sources)}})
    must_not: list[dict[str, Any]] = []
    if differs_from_model:
        # relevant != model_relevant, without a script (the minimal distribution has no painless)
        filters.append({"bool": {"should": [
            {"bool": {"filter": [{"term": {"relevant": True}}],
                      "must_not": [{"term": {"model_relevant": True}}]}},
            {"bool": {"filter": [{"term": {"relevant": False}}],
                      "must_not": [{"term": {"model_relevant": False}}]}},
        ], "minimum_should_match": 1}})
    if not filters and not must_not:
        return {"match_all": {}}
    return {"bool": {"filter": filters, "must_not": must_not}}


JUDGEMENT_SORT: list[dict[str, Any]] = [{"judged_at": {"order": "desc"}}, {"post_id": {"order": "asc"}}]


def judgement_store(client: Elasticsearch, prefix: str, *, refresh: str = "true") -> VersionedStore[JudgementRecord]:
    return VersionedStore(client, JUDGEMENTS.alias(prefix), JudgementRecord, refresh=refresh)


def judgements_of(client: Elasticsearch, prefix: str, post_ids: Sequence[str]) -> dict[str, JudgementRecord]:
    """The judgements of those posts that have one (one real-time ``mget``: no refresh needed); none while the
    index does not exist."""
    if not post_ids:
        return {}
    try:
        resp = client.mget(index=JUDGEMENTS.alias(prefix), ids=list(dict.fromkeys(post_ids)))
    except NotFoundError as exc:
        if exc.error != "index_not_found_exception":
            raise
        return {}  # no judgements index yet (setup makes it): nobody has judged anything
    return {d["_id"]: JudgementRecord.model_validate(d["_source"]) for d in resp["docs"] if d.get("found")}
