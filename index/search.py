"""Query building (pure functions) and running queries for analysts and the dashboard."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from elasticsearch import Elasticsearch

from index.records import PostRecord
from yuqing.models import Post

# "least_sure": the classifier's relevance probability, lowest first (the 人工研判 queue of posts it called
# relevant: those closest to the threshold are the likeliest mistakes), then newest.
SortOrder = Literal["newest", "relevance", "least_sure"]
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
    irrelevant_only: bool = False
    since: datetime | None = None
    until: datetime | None = None
    exclude_duplicates: bool = False
    size: int = 50
    offset: int = 0
    sort: SortOrder = "newest"
    # 专题 syntax (events.keyword_groups.Expression, split by the caller): every must term, at least one of the
    # any terms, none of the exclude terms; each an exact phrase of the title or the body.
    must_terms: tuple[str, ...] = ()
    any_terms: tuple[str, ...] = ()
    exclude_terms: tuple[str, ...] = ()
    units: tuple[str, ...] = ()  # the replying unit (reply.unit)
    groups: tuple[str, ...] = ()  # 专题 keyword groups stored on the post
    # The posts of these events only (e.g. the events of a risk level); None: no such filter, (): no post.
    event_ids: tuple[str, ...] | None = None
    # 人工研判: True only posts a person judged, False only those nobody judged yet; None: either.
    judged: bool | None = None
    # The classifier's relevance probability within [low, high] (the 人工研判 queue of uncertain posts).
    relevance_prob: tuple[float, float] | None = None

    @property
    def has_text(self) -> bool:
        return bool(self.text.strip() or self.must_terms or self.any_terms)


def highlight_terms(q: PostQuery) -> list[str]:
    """The words a result is highlighted with: the free-text terms, the must and any terms."""
    return [*search_terms(q.text), *q.must_terms, *q.any_terms]


def search_terms(text: str) -> list[str]:
    """The user's search text split into terms; each must occur verbatim (whitespace separates terms)."""
    return [t for t in text.split() if t]


def text_clauses(text: str, tokenize: Tokenize | None = None) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(must, should) clauses for free text.

    Each term must occur as an exact substring of the title or the body: ``match_phrase`` on the per-character
    ``standard`` fields. The segmented fields only rank (should; only with ``tokenize``), so a search for
    图书馆 never returns a post that merely mentions 图书 and 馆 apart.
    """
    must = [phrase_clause(term) for term in search_terms(text)]
    return must, rank_clauses(search_terms(text), tokenize)


def phrase_clause(term: str) -> dict[str, Any]:
    """``term`` occurs verbatim in the title or the body (``match_phrase`` on the per-character fields)."""
    return {
        "bool": {
            "should": [
                {"match_phrase": {"title": {"query": term, "boost": 3}}},
                {"match_phrase": {"content": {"query": term}}},
            ],
            "minimum_should_match": 1,
        }
    }


def rank_clauses(terms: Sequence[str], tokenize: Tokenize | None) -> list[dict[str, Any]]:
    """Scoring-only clauses on the segmented fields (jieba tokens of ``terms``)."""
    should: list[dict[str, Any]] = []
    for term in terms:
        tokens = " ".join(t.lower() for t in tokenize(term)) if tokenize is not None else ""
        if tokens:
            should.append({"match": {"title_seg": {"query": tokens, "boost": 2}}})
            should.append({"match": {"content_seg": {"query": tokens}}})
    return should


def expression_clauses(q: PostQuery) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(must, must_not) clauses of the 专题 terms of ``q``."""
    must = [phrase_clause(t) for t in q.must_terms]
    if q.any_terms:
        must.append({"bool": {"should": [phrase_clause(t) for t in q.any_terms], "minimum_should_match": 1}})
    return must, [phrase_clause(t) for t in q.exclude_terms]


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
    if q.irrelevant_only:
        filters.append({"term": {"analysis.relevant": False}})
    if q.units:
        filters.append({"terms": {"reply.unit": list(q.units)}})
    if q.groups:
        filters.append({"terms": {"keyword_groups": list(q.groups)}})
    if q.event_ids is not None:
        filters.append({"terms": {"event_id": list(q.event_ids)}})
    if q.judged is True:
        filters.append({"exists": {"field": "judgement.by"}})
    elif q.judged is False:
        filters.append({"bool": {"must_not": [{"exists": {"field": "judgement.by"}}]}})
    if q.relevance_prob is not None:
        low, high = q.relevance_prob
        filters.append({"range": {"analysis.relevance_prob": {"gte": low, "lte": high}}})
    if q.since or q.until:
        rng: dict[str, str] = {}
        if q.since:
            rng["gte"] = q.since.isoformat()
        if q.until:
            rng["lt"] = q.until.isoformat()
        filters.append(time_clause(rng))
    return filters


def time_clause(rng: dict[str, str]) -> dict[str, Any]:
    """Published in the range; a post without a publication time (a page that gave none), fetched in it — so it is
    not missing from every time range (the reports count the same way) (pure)."""
    return {"bool": {"should": [
        {"range": {"published_at": rng}},
        {"bool": {"must_not": [{"exists": {"field": "published_at"}}], "filter": [{"range": {"fetched_at": rng}}]}},
    ], "minimum_should_match": 1}}


def build_query(q: PostQuery, tokenize: Tokenize | None = None) -> dict[str, Any]:
    must, should = text_clauses(q.text, tokenize)
    expr_must, must_not = expression_clauses(q)
    must.extend(expr_must)
    should.extend(rank_clauses([*q.must_terms, *q.any_terms], tokenize))
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
    if q.sort == "relevance" and q.has_text:
        return [{"_score": {"order": "desc"}}, *newest]
    if q.sort == "least_sure":
        return [{"analysis.relevance_prob": {"order": "asc", "missing": "_last", "unmapped_type": "float"}}, *newest]
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
        "_source": {"excludes": ["title_seg", "content_seg", "hot_terms"]},
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


# The seed of the hot-words sample: the same posts are sampled each time, so the list does not flicker.
SAMPLE_SEED = 17


def sample_probability(matched: int, sample_docs: int) -> float:
    """The share of the ``matched`` posts the hot-words aggregation looks at (pure): all of them (1.0) up to twice
    ``sample_docs``, else about ``sample_docs`` of them (``random_sampler`` takes exactly 1 or less than 0.5)."""
    if sample_docs <= 0 or matched <= 2 * sample_docs:
        return 1.0
    return sample_docs / matched


def build_hot_terms(q: PostQuery, size: int = 30, exclude: Sequence[str] = (),
                    probability: float = 1.0) -> dict[str, Any]:
    """Aggregation request for the words most posts use: the ``hot_terms`` keyword field, filled at ingest
    (:func:`index.hotwords.hot_terms_of`), ``exclude`` (stopwords added since those posts were indexed) left out.
    Counts are numbers of posts. ``probability`` < 1: over a random sample of the posts (``random_sampler``,
    seeded; Elasticsearch scales the counts back to estimates of all posts)."""
    terms: dict[str, Any] = {"field": "hot_terms", "size": size}
    if exclude:
        terms["exclude"] = list(exclude)
    aggs: dict[str, Any] = {"terms": {"terms": terms}}
    if probability < 1:
        aggs = {"sample": {"random_sampler": {"probability": probability, "seed": SAMPLE_SEED}, "aggs": aggs}}
    return {"query": build_query(q), "size": 0, "aggs": aggs}


def hot_terms(
    client: Elasticsearch, alias: str, q: PostQuery, size: int = 30, exclude: Sequence[str] = (),
    sample_docs: int = 0,
) -> list[tuple[str, int]]:
    """(word, posts) of the most used words under ``q``; with ``sample_docs`` > 0 and more than twice that many
    posts matching, counted over a random sample of about ``sample_docs`` posts (counts are then estimates):
    the cost stays flat however many posts a window holds."""
    probability = 1.0
    if sample_docs > 0:
        matched = int(client.count(index=alias, query=build_query(q))["count"])
        probability = sample_probability(matched, sample_docs)
    resp = client.search(index=alias, **build_hot_terms(q, size, exclude, probability))
    aggs = resp["aggregations"]
    buckets = aggs.get("sample", aggs)["terms"]["buckets"]
    return [(b["key"], int(b["doc_count"])) for b in buckets]


def count_by(client: Elasticsearch, alias: str, q: PostQuery, field_name: str, size: int = 20) -> dict[str, int]:
    """Document counts per value of a keyword field (sources, sentiments, topics) under ``q``."""
    resp = client.search(
        index=alias, query=build_query(q), size=0,
        aggs={"by": {"terms": {"field": field_name, "size": size}}},
    )
    return {str(b["key"]): int(b["doc_count"]) for b in resp["aggregations"]["by"]["buckets"]}
