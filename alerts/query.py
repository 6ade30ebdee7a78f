"""A rule as an Elasticsearch query over the posts index (pure functions; unit-tested).

Keywords reuse :func:`index.search.text_clauses`, so a rule keyword matches exactly as a dashboard search
for it would: as an exact substring (``match_phrase``) of the title or the body.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from alerts.rules import AlertRule
from index.search import PostQuery, filter_clauses, text_clauses

# Oldest first, so a backlog is worked through in order; canonical_url is unique per post (the id is its
# hash) and breaks ties for search_after paging (sorting on _id is disabled in Elasticsearch 8).
RULE_SORT: list[dict[str, Any]] = [
    {"fetched_at": {"order": "asc"}},
    {"canonical_url": {"order": "asc"}},
]


def keyword_clause(keyword: str) -> dict[str, Any]:
    """The clause that holds when ``keyword`` occurs verbatim in the title or the body."""
    must, _ = text_clauses(keyword)
    if len(must) != 1:
        raise ValueError(f"a rule keyword must be one non-empty term without spaces, got {keyword!r}")
    return must[0]


def build_rule_query(rule: AlertRule, since: datetime, until: datetime) -> dict[str, Any]:
    """Posts fetched in ``[since, until]`` that satisfy the rule's keyword lists and filters."""
    filters: list[dict[str, Any]] = [
        {"range": {"fetched_at": {"gte": since.isoformat(), "lte": until.isoformat()}}},
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
    return {"bool": {"filter": filters, "must_not": must_not}}


def build_rule_search(
    rule: AlertRule,
    since: datetime,
    until: datetime,
    *,
    size: int = 200,
    search_after: list[Any] | None = None,
) -> dict[str, Any]:
    """One page of the rule's matching posts, oldest first; pass the last hit's ``sort`` to get the next."""
    body: dict[str, Any] = {
        "query": build_rule_query(rule, since, until),
        "sort": RULE_SORT,
        "size": size,
        "track_total_hits": False,
        "_source": {"excludes": ["title_seg", "content_seg", "hot_terms"]},
    }
    if search_after is not None:
        body["search_after"] = search_after
    return body
