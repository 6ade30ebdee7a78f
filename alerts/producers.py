"""Signal producers: what the rules of ``config/alerts.yaml`` are evaluated on, read from indexed data.

* :func:`post_signals` — posts matching a post rule (the search of :mod:`alerts.query`), oldest first;
* :func:`keyword_group_signals` — posts carrying a 专题 (``keyword_groups``, set on ingest / by the events job);
* :func:`surge_signals` (:mod:`alerts.signal_queries`) — negative posts per topic in a window vs the one before;
* :func:`source_signals` — sources whose health (:mod:`index.source_health`) is silent or failing;
* :func:`event_signals` — events at their risk level, with the level before the latest change (level history on
  the event record) so that "level raised" can fire;
* :func:`ticket_signals` / :func:`foia_signals` — deadlines of open 处置单 and 依申请公开 requests;
  :func:`instruction_signals` — 领导批示 waiting for their report back.

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

from alerts.content import LEVELS, SENTIMENT_LABELS, EventAlert, PostLink, RiskLevel, TimelinePoint
from alerts.message import keyword_excerpt
from alerts.query import RULE_SORT, build_rule_search, own_sources_clause, window_clauses
from alerts.rules import AlertRule
from alerts.signal_queries import surge_signals
from alerts.signals import (
    EventSignal,
    FoiaDueSignal,
    InstructionSignal,
    KeywordGroupSignal,
    PostSignal,
    SourceSilentSignal,
    TicketDueSignal,
)
from index.search import post_from_source
from index.source_health import ALARMING, source_statuses
from yuqing.models import Post
from yuqing.text import display_title

log = logging.getLogger(__name__)

PAGE_SIZE = 200
__all__ = [
    "event_signals",
    "foia_signals",
    "instruction_signals",
    "keyword_group_signals",
    "post_link",
    "post_signals",
    "source_signals",
    "surge_signals",
    "ticket_signals",
]


def post_link(post_id: str, post: Post) -> PostLink:
    sentiment = post.analysis.sentiment if post.analysis is not None else None
    return PostLink(title=display_title(post.title, post.content), url=post.url, source=post.source,
                    published_at=post.published_at,
                    sentiment=sentiment if sentiment in SENTIMENT_LABELS else None,
                    post_id=post_id)


def _pages(client: Elasticsearch, alias: str, body_for: Callable[[list[Any] | None], dict[str, Any]],
           search_after: list[Any] | None = None) -> Iterator[list[dict[str, Any]]]:
    while True:
        hits = client.search(index=alias, **body_for(search_after))["hits"]["hits"]
        if not hits:
            return
        yield hits
        if len(hits) < PAGE_SIZE:
            return
        search_after = hits[-1]["sort"]


def post_signals(client: Elasticsearch, posts_alias: str, rule: AlertRule, *, since: datetime, until: datetime,
                 limit: int, fetched_after: datetime | None = None, after: list[Any] | None = None,
                 own_sources: Sequence[str] = ()) -> tuple[list[PostSignal], list[Any] | None]:
    """Up to ``limit`` posts indexed in ``[since, until]`` (fetched after ``fetched_after``; sorted after ``after``)
    matching ``rule``, not from the bureau's own channels (``own_sources``) unless the rule names them, first
    indexed first, and — when the limit cut the list — the sort key of the last one taken
    (the ``after`` of the run that continues)."""
    out: list[PostSignal] = []
    last: list[Any] | None = None
    for page in _pages(client, posts_alias,
                       lambda a: build_rule_search(rule, since, until, fetched_after=fetched_after, size=PAGE_SIZE,
                                                   search_after=a, own_sources=own_sources), after):
        for hit in page:
            if len(out) >= limit:
                return out, last
            post = post_from_source(hit["_source"])
            text = post.content or post.title
            out.append(PostSignal(
                rule=rule.name, post=post_link(hit["_id"], post), excerpt=keyword_excerpt(text, rule.keywords).text,
                keywords=tuple(k for k in rule.keywords if k in post.title or k in post.content),
                kind=post.kind, author=post.author or None,
                topic=post.analysis.topic if post.analysis is not None else None,
                fetched_at=post.fetched_at,
            ))
            last = hit["sort"]
    return out, None


def keyword_groups_body(since: datetime, until: datetime, groups: Sequence[str], *, size: int,
                        fetched_after: datetime | None = None, search_after: list[Any] | None = None,
                        own_sources: Sequence[str] = ()) -> dict[str, Any]:
    """Posts indexed in ``[since, until]`` (fetched after ``fetched_after``, :func:`alerts.query.window_clauses`)
    that match a 专题 (any of ``groups``; empty: any), first indexed first, reposts and the bureau's own posts
    (``own_sources``) left out (pure)."""
    filters: list[dict[str, Any]] = [*window_clauses(since, until, fetched_after=fetched_after),
                                     {"terms": {"keyword_groups": list(groups)}} if groups
                                     else {"exists": {"field": "keyword_groups"}}]
    must_not: list[dict[str, Any]] = [{"exists": {"field": "duplicate_of"}}]
    own = own_sources_clause((), own_sources)
    if own is not None:
        must_not.append(own)
    body: dict[str, Any] = {
        "query": {"bool": {"filter": filters, "must_not": must_not}},
        "sort": RULE_SORT, "size": size, "track_total_hits": False,
        "_source": {"excludes": ["title_seg", "content_seg"]},
    }
    if search_after is not None:
        body["search_after"] = search_after
    return body


def keyword_group_signals(client: Elasticsearch, posts_alias: str, *, since: datetime, until: datetime,
                          groups: Sequence[str] = (), limit: int = 1000,
                          unit_of: Callable[[str], str | None] | None = None,
                          fetched_after: datetime | None = None, after: list[Any] | None = None,
                          own_sources: Sequence[str] = ()) -> tuple[list[KeywordGroupSignal], list[Any] | None]:
    """One signal per (post, 专题 group) for the posts indexed in ``[since, until]`` (fetched after
    ``fetched_after``; sorted after ``after``), first indexed first, up to about ``limit`` (a post's signals are
    kept together), and — when the limit cut the list — the sort key of the last post taken (the ``after`` of the
    run that continues); ``unit_of``: topic → responsible unit, for routing; ``own_sources``: the bureau's own
    channels, whose posts are its own words, not 专题 news."""
    out: list[KeywordGroupSignal] = []
    wanted = set(groups)
    last: list[Any] | None = None
    for page in _pages(client, posts_alias,
                       lambda a: keyword_groups_body(since, until, groups, size=PAGE_SIZE,
                                                     fetched_after=fetched_after, search_after=a,
                                                     own_sources=own_sources), after):
        for hit in page:
            if len(out) >= limit:
                return out, last
            src = hit["_source"]
            post = post_from_source(src)
            last = hit["sort"]
            topic = post.analysis.topic if post.analysis is not None else None
            for group in src.get("keyword_groups") or ():
                if wanted and group not in wanted:
                    continue
                out.append(KeywordGroupSignal(group=group, post=post_link(hit["_id"], post), topic=topic,
                                              unit=unit_of(topic) if unit_of and topic else None,
                                              event_id=src.get("event_id")))
    return out, None


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


# ---- events -----------------------------------------------------------------------------------------------
TOP_POSTS = 5


def events_body(since: datetime, levels: Sequence[str], *, size: int = PAGE_SIZE,
                search_after: list[Any] | None = None) -> dict[str, Any]:
    """Open events changed since ``since`` at one of ``levels``, oldest change first (pure)."""
    body: dict[str, Any] = {
        "query": {"bool": {"filter": [{"term": {"status": "open"}}, {"terms": {"risk_level": list(levels)}},
                                      {"range": {"updated_at": {"gte": since.isoformat()}}}]}},
        "sort": [{"updated_at": "asc"}, {"event_id": "asc"}], "size": size,
        "_source": {"excludes": ["members"]},
    }
    if search_after is not None:
        body["search_after"] = search_after
    return body


def previous_level(history: Sequence[dict[str, Any]], level: str) -> RiskLevel | None:
    """The level before the latest change of ``history`` (the events job's ``level_history``, oldest first;
    its last entry is the current ``level``); None when the event never changed level (pure)."""
    levels = [h.get("level") for h in history]
    if len(levels) < 2 or levels[-1] != level or levels[-2] not in LEVELS:
        return None
    return levels[-2]


def _dt(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value.replace("Z", "+00:00")) if value else None


def event_alert(src: dict[str, Any], top_posts: Sequence[PostLink]) -> EventAlert:
    """The mail's view of a stored event record (``<prefix>-events`` ``_source``)."""
    first = src.get("first_post") or {}
    timeline = tuple(TimelinePoint(at=_dt(p["at"]), posts=p.get("posts", 0),
                                   negative=p.get("negative", 0)) for p in src.get("timeline") or ())
    share = float(src.get("negative_share") or 0.0)
    summary = (f"{first.get('source') or '未知来源'}首发，共 {src.get('count', 0)} 条信息，负面占 {share:.0%}"
               + (f"；关键词：{'、'.join(src.get('keywords', [])[:5])}" if src.get("keywords") else "") + "。")
    return EventAlert(
        event_id=src["event_id"], title=src.get("title") or src["event_id"], level=src["risk_level"],
        reasons=tuple(src.get("risk_reasons") or ()), heat=min(100.0, float(src.get("heat") or 0.0)),
        heat_6h=src.get("heat_6h"), heat_24h=src.get("heat_24h"), summary=summary, count=src.get("count", 0),
        negative_share=min(1.0, share), first_source=first.get("source"), started_at=_dt(src.get("started_at")),
        unit=src.get("unit"), topic=src.get("topic"), keywords=tuple(src.get("keywords") or ()),
        timeline=timeline, top_posts=tuple(top_posts), own_posts=int(src.get("own_posts") or 0),
    )


def _top_posts(client: Elasticsearch, posts_alias: str, event_id: str) -> list[PostLink]:
    hits = client.search(index=posts_alias, size=TOP_POSTS, query={"bool": {
        "filter": [{"term": {"event_id": event_id}}], "must_not": [{"exists": {"field": "duplicate_of"}}]}},
        sort=[{"published_at": {"order": "asc", "missing": "_last"}}],
        source_excludes=["title_seg", "content_seg"])["hits"]["hits"]
    return [post_link(h["_id"], post_from_source(h["_source"])) for h in hits]


def event_signals(client: Elasticsearch, events_alias: str, posts_alias: str, *, since: datetime,
                  levels: Sequence[str] = LEVELS) -> list[EventSignal]:
    """An :class:`EventSignal` for each open event at one of ``levels`` changed since ``since`` (its level, the
    level before its latest change, its first posts), oldest change first."""
    if not client.indices.exists_alias(name=events_alias):
        return []
    client.indices.refresh(index=events_alias)  # the events job that ran just before: searchable
    out = []
    for page in _pages(client, events_alias,
                       lambda after: events_body(since, levels, size=PAGE_SIZE, search_after=after)):
        for hit in page:
            src = hit["_source"]
            alert = event_alert(src, _top_posts(client, posts_alias, src["event_id"]))
            out.append(EventSignal(alert, previous_level=previous_level(src.get("level_history") or (), alert.level),
                                   keyword_groups=tuple(src.get("keyword_groups") or ())))
    return out


# ---- tickets and 依申请公开 (response/reminders.py; fields equal the signals') ----------------------------------
def ticket_signals(client: Elasticsearch, prefix: str, now: datetime, *, before_hours: float,
                   config: Any = None) -> list[TicketDueSignal]:
    """Unmet 处置单 deadlines due within ``before_hours`` or passed (``config``: the ResponseConfig, default
    config/response.yaml's defaults)."""
    from dataclasses import asdict

    from response.config import ResponseConfig
    from response.reminders import due_ticket_reminders

    cfg = config or ResponseConfig()
    cfg = cfg.model_copy(update={"reminders": cfg.reminders.model_copy(update={"ticket_before_hours": before_hours})})
    return [TicketDueSignal(**asdict(d)) for d in due_ticket_reminders(client, prefix, cfg, now)]


def instruction_signals(client: Elasticsearch, prefix: str, page: int = 200) -> list[InstructionSignal]:
    """Every 领导批示 waiting for its report back, on tickets of any status (the rule decides each once)."""
    from response.service import TicketService

    service = TicketService(client, prefix)
    out: list[InstructionSignal] = []
    seen = 0
    while True:
        total, tickets = service.list(instructions_pending=True, size=page, offset=seen)
        seen += len(tickets)
        for t in tickets:
            out += [InstructionSignal(ticket_id=t.id, title=t.title, unit=t.unit, no=i.no, leader=i.leader,
                                      text=i.text, at=i.at, due_at=i.due_at, status=t.status, level=t.risk_level,
                                      topic=t.subject.topic)
                    for i in t.pending_instructions()]
        if not tickets or seen >= total:
            return out


def foia_signals(client: Elasticsearch, prefix: str, today: Any, *, within_working_days: int,
                 config: Any = None) -> list[FoiaDueSignal]:
    """依申请公开 requests due within ``within_working_days`` working days or overdue (``today``: the bureau's date)."""
    from dataclasses import asdict

    from response.config import ResponseConfig
    from response.reminders import due_foia_reminders

    cfg = config or ResponseConfig()
    foia = cfg.foia.model_copy(update={"remind_within_working_days": within_working_days})
    cfg = cfg.model_copy(update={"foia": foia})
    return [FoiaDueSignal(**asdict(d)) for d in due_foia_reminders(client, prefix, cfg, today)]
