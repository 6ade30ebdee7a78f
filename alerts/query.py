"""A rule as an Elasticsearch query over the posts index (pure functions; unit-tested).

Keywords reuse :func:`index.search.text_clauses`, so a rule keyword matches exactly as a dashboard search
for it would: as an exact substring (``match_phrase``) of the title or the body.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from alerts.rules import AlertRule
from index.search import PostQuery, filter_clauses, text_clauses

# First indexed, first taken, so a backlog is worked through in order (posts written before ``indexed_at`` existed
# first, by fetched_at); canonical_url is unique per post (the id is its hash) and breaks ties for search_after
# paging, within a run and from a run cut by ``alerts.max_per_run`` to the next (sorting on _id is disabled in
# Elasticsearch 8).
RULE_SORT: list[dict[str, Any]] = [
    {"indexed_at": {"order": "asc", "missing": "_first"}},
    {"fetched_at": {"order": "asc"}},
    {"canonical_url": {"order": "asc"}},
]


def window_clauses(since: datetime, until: datetime, *, fetched_after: datetime | None = None
                   ) -> list[dict[str, Any]]:
    """Posts indexed in ``[since, until]`` (a post written before ``indexed_at`` existed: fetched then), and —
    with ``fetched_after`` — fetched after it.

    The window is on the time of indexing, not of fetching: a post fetched while Elasticsearch was down is
    spooled and indexed later with its original ``fetched_at``, and must still be evaluated then.
    """
    def within(field: str) -> dict[str, Any]:
        return {"range": {field: {"gte": since.isoformat(), "lte": until.isoformat()}}}

    legacy = {"bool": {"must_not": [{"exists": {"field": "indexed_at"}}], "filter": [within("fetched_at")]}}
    clauses: list[dict[str, Any]] = [{"bool": {"should": [within("indexed_at"), legacy], "minimum_should_match": 1}}]
    if fetched_after is not None:
        clauses.append({"range": {"fetched_at": {"gte": fetched_after.isoformat()}}})
    return clauses


def own_sources_clause(rule_sources: Sequence[str], own_sources: Sequence[str]) -> dict[str, Any] | None:
    """The ``must_not`` clause that leaves out posts of the bureau's own channels (本局发布: its notices and
    情况说明 are its response, not public opinion to alert on), except those a rule names in its ``sources``
    (a rule written to watch the bureau's own website gets them); None when there is nothing to leave out."""
    left_out = sorted(set(own_sources) - set(rule_sources))
    return {"terms": {"source": left_out}} if left_out else None


def keyword_clause(keyword: str) -> dict[str, Any]:
    """The clause that holds when ``keyword`` occurs verbatim in the title or the body."""
    must, _ = text_clauses(keyword)
    if len(must) != 1:
        raise ValueError(f"a rule keyword must be one non-empty term without spaces, got {keyword!r}")
    return must[0]


def build_rule_query(rule: AlertRule, since: datetime, until: datetime, *,
                     fetched_after: datetime | None = None, own_sources: Sequence[str] = ()) -> dict[str, Any]:
    """Posts indexed in ``[since, until]`` (and fetched after ``fetched_after``, :func:`window_clauses`) that
    satisfy the rule's keyword lists and filters, not from the bureau's own channels (``own_sources``,
    :func:`own_sources_clause`)."""
    filters: list[dict[str, Any]] = [
        *window_clauses(since, until, fetched_after=fetched_after),
        *filter_clauses(PostQuery(sources=rule.sources, kinds=rule.kinds, sentiments=rule.sentiments,
                                  topics=rule.topics, relevant_only=rule.relevant_only)),
        *(keyword_clause(k) for k in rule.all_of),
    ]
    if rule.any_of:
        any_clauses = [keyword_clause(k) for k in rule.any_of]
        filters.append({"bool": {"should": any_clauses, "minimum_should_match": 1}})
    must_not: list[dict[str, Any]] = [keyword_clause(k) for k in rule.exclude]
    if not rule.include_duplicates:
        must_not.append({"exists": {"field": "duplicate_of"}})
    own = own_sources_clause(rule.sources, own_sources)
    if own is not None:
        must_not.append(own)
    return {"bool": {"filter": filters, "must_not": must_not}}


def build_rule_search(
    rule: AlertRule,
    since: datetime,
    until: datetime,
    *,
    fetched_after: datetime | None = None,
    own_sources: Sequence[str] = (),
    size: int = 200,
    search_after: list[Any] | None = None,
) -> dict[str, Any]:
    """One page of the rule's matching posts, oldest first; pass the last hit's ``sort`` to get the next."""
    body: dict[str, Any] = {
        "query": build_rule_query(rule, since, until, fetched_after=fetched_after, own_sources=own_sources),
        "sort": RULE_SORT,
        "size": size,
        "track_total_hits": False,
        "_source": {"excludes": ["title_seg", "content_seg", "hot_terms"]},
    }
    if search_after is not None:
        body["search_after"] = search_after
    return body
