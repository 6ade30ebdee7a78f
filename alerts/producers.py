"""Signal producers: what the rules of ``config/alerts.yaml`` are evaluated on, read from indexed data.

* :func:`post_signals` — posts matching a post rule (the search of :mod:`alerts.query`), oldest first;
* :func:`keyword_group_signals` — posts carrying a 专题 (``keyword_groups``, set on ingest / by the events job);
* :func:`surge_signals` (:mod:`alerts.signal_queries`) — negative posts per topic in a window vs the one before;
* :func:`source_signals` — sources whose health (:mod:`index.source_health`) is silent or failing;
* :func:`event_signals` — events at their risk level, with the level before the latest change (level history on
  the event record) so that "level raised" can fire;
* :func:`ticket_signals` / :func:`foia_signals` — deadlines of open 处置单 and 依申请公开 requests.

Each returns typed :mod:`alerts.signals` values; deciding (rules, routing, cooldown, digests) is
:func:`alerts.event_rules.evaluate`, and the outbox keeps each decision once, so a producer may return a
signal again at the next run without a second mail.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime
from typing import Any

from elasticsearch import Elasticsearch

from alerts.content import SENTIMENT_LABELS, PostLink
from alerts.message import keyword_excerpt
from alerts.query import build_rule_search
from alerts.rules import AlertRule
from alerts.signal_queries import surge_signals
from alerts.signals import KeywordGroupSignal, PostSignal, SourceSilentSignal
from index.search import post_from_source
from index.source_health import ALARMING, source_statuses
from yuqing.models import Post

log = logging.getLogger(__name__)

PAGE_SIZE = 200
__all__ = ["keyword_group_signals", "post_link", "post_signals", "source_signals", "surge_signals"]


def post_link(post_id: str, post: Post) -> PostLink:
    sentiment = post.analysis.sentiment if post.analysis is not None else None
    return PostLink(title=post.title, url=post.url, source=post.source, published_at=post.published_at,
                    sentiment=sentiment if sentiment in SENTIMENT_LABELS else None,
                    post_id=post_id)


def _pages(client: Elasticsearch, alias: str, body_for: Callable[[list[Any] | None], dict[str, Any]]
           ) -> Iterator[list[dict[str, Any]]]:
    search_after: list[Any] | None = None
    while True:
        hits = client.search(index=alias, **body_for(search_after))["hits"]["hits"]
        if not hits:
            return
        yield hits
        if len(hits) < PAGE_SIZE:
            return
        search_after = hits[-1]["sort"]


def post_signals(client: Elasticsearch, posts_alias: str, rule: AlertRule, *, since: datetime, until: datetime,
                 limit: int) -> tuple[list[PostSignal], datetime | None]:
    """Up to ``limit`` posts fetched in ``[since, until]`` matching ``rule``, oldest first, and — when the limit
    cut the list — the ``fetched_at`` of the last one taken (where the next run continues)."""
    out: list[PostSignal] = []
    for page in _pages(client, posts_alias,
                       lambda after: build_rule_search(rule, since, until, size=PAGE_SIZE, search_after=after)):
        for hit in page:
            if len(out) >= limit:
                return out, out[-1].fetched_at
            post = post_from_source(hit["_source"])
            text = post.content or post.title
            out.append(PostSignal(
                rule=rule.name, post=post_link(hit["_id"], post), excerpt=keyword_excerpt(text, rule.keywords).text,
                keywords=tuple(k for k in rule.keywords if k in post.title or k in post.content),
                kind=post.kind, author=post.author or None,
                topic=post.analysis.topic if post.analysis is not None else None,
                fetched_at=post.fetched_at,
            ))
    return out, None


def keyword_groups_body(since: datetime, until: datetime, groups: Sequence[str], *, size: int,
                        search_after: list[Any] | None = None) -> dict[str, Any]:
    """Posts fetched in ``[since, until]`` that match a 专题 (any of ``groups``; empty: any), oldest first,
    reposts left out (pure)."""
    filters: list[dict[str, Any]] = [{"range": {"fetched_at": {"gte": since.isoformat(), "lte": until.isoformat()}}},
                                     {"terms": {"keyword_groups": list(groups)}} if groups
                                     else {"exists": {"field": "keyword_groups"}}]
    body: dict[str, Any] = {
        "query": {"bool": {"filter": filters, "must_not": [{"exists": {"field": "duplicate_of"}}]}},
        "sort": [{"fetched_at": "asc"}, {"canonical_url": "asc"}], "size": size, "track_total_hits": False,
        "_source": {"excludes": ["title_seg", "content_seg"]},
    }
    if search_after is not None:
        body["search_after"] = search_after
    return body


def keyword_group_signals(client: Elasticsearch, posts_alias: str, *, since: datetime, until: datetime,
                          groups: Sequence[str] = (), limit: int = 1000,
                          unit_of: Callable[[str], str | None] | None = None) -> list[KeywordGroupSignal]:
    """One signal per (post, 专题 group) for the posts fetched in ``[since, until]`` (oldest first)."""
    out: list[KeywordGroupSignal] = []
    wanted = set(groups)
    for page in _pages(client, posts_alias,
                       lambda after: keyword_groups_body(since, until, groups, size=PAGE_SIZE, search_after=after)):
        for hit in page:
            src = hit["_source"]
            post = post_from_source(src)
            topic = post.analysis.topic if post.analysis is not None else None
            for group in src.get("keyword_groups") or ():
                if wanted and group not in wanted:
                    continue
                out.append(KeywordGroupSignal(group=group, post=post_link(hit["_id"], post), topic=topic,
                                              unit=unit_of(topic) if unit_of and topic else None,
                                              event_id=src.get("event_id")))
            if len(out) >= limit:
                return out
    return out


def source_signals(client: Elasticsearch, prefix: str, sources: Sequence[tuple[str, str]], *,
                   silent_after: int) -> list[SourceSilentSignal]:
    """A signal for each of ``sources`` (name, kind) whose health is silent or failing."""
    kinds = dict(sources)
    out = []
    for status in source_statuses(client, prefix, list(kinds), silent_after):
        if status.status in ALARMING:
            out.append(SourceSilentSignal(
                source=status.source, kind=kinds[status.source], status=status.status,  # type: ignore[arg-type]
                last_success=status.last_success, consecutive_empty=status.consecutive_empty,
                last_error=status.last_error,
            ))
    return out
