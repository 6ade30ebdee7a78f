"""Query building (pure functions) and running queries for analysts and the dashboard."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from elasticsearch import Elasticsearch

from index.records import PostRecord
from yuqing.models import Post

SortOrder = Literal["newest", "relevance"]
HAN_WORD = "[\u4e00-\u9fff]{2,}"
# Splits a search term into the tokens of the ``*_seg`` fields (jieba, given by the caller: the store layer
# does not segment).
Tokenize = Callable[[str], list[str]]


@dataclass(frozen=True)
class PostQuery:
    """What an analyst or press officer asks for. Every field is optional."""

    text: str = ""
    sources: tuple[str, ...] = ()
    kinds: tuple[str, ...] = ()
    sentiments: tuple[str, ...] = ()
    topics: tuple[str, ...] = ()
    relevant_only: bool = False
    since: datetime | None = None
    until: datetime | None = None
    exclude_duplicates: bool = False
    size: int = 50
    offset: int = 0
    sort: SortOrder = "newest"


def search_terms(text: str) -> list[str]:
    """The user's search text split into terms; each must occur verbatim (whitespace separates terms)."""
    return [t for t in text.split() if t]


def text_clauses(text: str, tokenize: Tokenize | None = None) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(must, should) clauses for free text.

    Each term must occur as an exact substring of the title or the body: ``match_phrase`` on the per-character
    ``standard`` fields. The segmented fields only rank (should; only with ``tokenize``), so a search for
    图书馆 never returns a post that merely mentions 图书 and 馆 apart.
    """
    must: list[dict[str, Any]] = []
    should: list[dict[str, Any]] = []
    for term in search_terms(text):
        must.append(
            {
                "bool": {
                    "should": [
                        {"match_phrase": {"title": {"query": term, "boost": 3}}},
                        {"match_phrase": {"content": {"query": term}}},
                    ],
                    "minimum_should_match": 1,
                }
            }
        )
        tokens = " ".join(t.lower() for t in tokenize(term)) if tokenize is not None else ""
        if tokens:
            should.append({"match": {"title_seg": {"query": tokens, "boost": 2}}})
            should.append({"match": {"content_seg": {"query": tokens}}})
    return must, should


def filter_clauses(q: PostQuery) -> list[dict[str, Any]]:
    filters: list[dict[str, Any]] = []
    if q.sources:
        filters.append({"terms": {"source": list(q.sources)}})
    if q.kinds:
        filters.append({"terms": {"kind": list(q.kinds)}})
    if q.sentiments:
        filters.append({"terms": {"analysis.sentiment": list(q.sentiments)}})
    if q.topics:
        filters.append({"terms": {"analysis.topic": list(q.topics)}})
    if q.relevant_only:
        filters.append({"term": {"analysis.relevant": True}})
    if q.since or q.until:
        rng: dict[str, str] = {}
        if q.since:
            rng["gte"] = q.since.isoformat()
        if q.until:
            rng["lt"] = q.until.isoformat()
        filters.append({"range": {"published_at": rng}})
    return filters


def build_query(q: PostQuery, tokenize: Tokenize | None = None) -> dict[str, Any]:
    must, should = text_clauses(q.text, tokenize)
    must_not: list[dict[str, Any]] = []
    if q.exclude_duplicates:
        must_not.append({"exists": {"field": "duplicate_of"}})
    if not (must or should or must_not) and not filter_clauses(q):
        return {"match_all": {}}
    return {"bool": {"must": must, "should": should, "filter": filter_clauses(q), "must_not": must_not}}


def build_sort(q: PostQuery) -> list[dict[str, Any]]:
    newest = [
        {"published_at": {"order": "desc", "missing": "_last", "unmapped_type": "date"}},
        {"fetched_at": {"order": "desc", "unmapped_type": "date"}},
    ]
    if q.sort == "relevance" and q.text.strip():
        return [{"_score": {"order": "desc"}}, *newest]
    return newest


def build_search(q: PostQuery, tokenize: Tokenize | None = None) -> dict[str, Any]:
    """The complete search request body for ``q`` (pure; unit-tested); ``tokenize`` ranks by the segmented
    fields."""
    return {
        "query": build_query(q, tokenize),
        "sort": build_sort(q),
        "size": q.size,
        "from": q.offset,
        "track_total_hits": True,
        "_source": {"excludes": ["title_seg", "content_seg"]},
    }


@dataclass(frozen=True)
class PostHit:
    id: str
    post: Post
    score: float | None


@dataclass(frozen=True)
class SearchResult:
    total: int
    hits: list[PostHit] = field(default_factory=list)


def post_from_source(source: dict[str, Any]) -> Post:
    """The post of a posts-index ``_source``."""
    return PostRecord.model_validate(source).to_post()


def search_posts(client: Elasticsearch, alias: str, q: PostQuery, tokenize: Tokenize | None = None) -> SearchResult:
    resp = client.search(index=alias, **build_search(q, tokenize))
    hits = [
        PostHit(id=h["_id"], post=post_from_source(h["_source"]), score=h.get("_score"))
        for h in resp["hits"]["hits"]
    ]
    return SearchResult(total=int(resp["hits"]["total"]["value"]), hits=hits)


def build_hot_terms(q: PostQuery, size: int = 30, exclude: Sequence[str] = ()) -> dict[str, Any]:
    """Aggregation request for the most frequent words (jieba tokens of two or more Han characters),
    ``exclude`` (stopwords) left out."""
    terms: dict[str, Any] = {"field": "content_seg", "size": size, "include": HAN_WORD}
    if exclude:
        terms["exclude"] = list(exclude)
    return {"query": build_query(q), "size": 0, "aggs": {"terms": {"terms": terms}}}


def hot_terms(
    client: Elasticsearch, alias: str, q: PostQuery, size: int = 30, exclude: Sequence[str] = ()
) -> list[tuple[str, int]]:
    resp = client.search(index=alias, **build_hot_terms(q, size, exclude))
    return [(b["key"], int(b["doc_count"])) for b in resp["aggregations"]["terms"]["buckets"]]


def count_by(client: Elasticsearch, alias: str, q: PostQuery, field_name: str, size: int = 20) -> dict[str, int]:
    """Document counts per value of a keyword field (sources, sentiments, topics) under ``q``."""
    resp = client.search(
        index=alias, query=build_query(q), size=0,
        aggs={"by": {"terms": {"field": field_name, "size": size}}},
    )
    return {str(b["key"]): int(b["doc_count"]) for b in resp["aggregations"]["by"]["buckets"]}
