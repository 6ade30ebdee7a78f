"""The event summary (事件概要): what the events index stores and the dashboard shows for one event."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from events.aggregate import DAY, HOUR, EventAggregate
from events.cluster import ClusterEvent
from events.text import cosine, top_terms

_MAX_LIST = 10


def _dt(value: float) -> datetime:
    return datetime.fromtimestamp(value, UTC)


def _ranked(counts: Mapping[str, int], n: int = _MAX_LIST) -> list[tuple[str, int]]:
    return sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:n]


@dataclass(frozen=True)
class FirstPost:
    """首发: the earliest post of the event and where it appeared."""

    id: str
    title: str
    source: str
    kind: str
    published_at: datetime
    url: str | None = None


@dataclass(frozen=True)
class NameCount:
    name: str
    count: int


@dataclass(frozen=True)
class TimelinePoint:
    """Posts in one hour (``hours`` = 1) or, for old parts of long events, one day (``hours`` = 24)."""

    at: datetime
    hours: int
    posts: int
    negative: int


@dataclass(frozen=True)
class Engagement:
    likes: int = 0
    dislikes: int = 0
    comments: int = 0
    reposts: int = 0


@dataclass(frozen=True)
class SentimentMix:
    negative: int = 0
    neutral: int = 0
    positive: int = 0
    unknown: int = 0


@dataclass(frozen=True)
class EventSummary:
    event_id: str
    status: str
    title: str
    keywords: tuple[str, ...]
    first_post: FirstPost
    started_at: datetime
    last_post_at: datetime
    updated_at: datetime
    count: int
    sources: tuple[NameCount, ...]
    kinds: tuple[NameCount, ...]
    sentiment: SentimentMix
    negative_share: float
    engagement: Engagement
    timeline: tuple[TimelinePoint, ...]
    places: tuple[str, ...]
    orgs: tuple[str, ...]
    relevance_share: float
    own_posts: int  # members from the bureau's own channels (本局发布): has the bureau spoken on the matter?
    topic: str | None
    unit: str | None
    heat: float
    heat_6h: float
    heat_24h: float
    growth: float
    risk_level: str
    risk_colour: str
    risk_reasons: tuple[str, ...]
    sensitive_words: tuple[str, ...]
    keyword_groups: tuple[str, ...]
    members: tuple[str, ...]
    merged_into: str | None = None
    merged_from: tuple[str, ...] = ()
    hashtags: tuple[str, ...] = ()  # the 话题 its posts carry, the commonest first
    # False: 与本局业务无关 or 本局发布 only (events.risk): left out of 热点事件 and the reports by default
    in_scope: bool = True


# A 话题 carried by at least this share of an event's posts, and by this many, names the event: Weibo users chose
# it to name the matter (#青川市图书馆突然闭馆#), which reads better in a list or a mail subject than one post.
TAG_TITLE_SHARE = 0.5
TAG_TITLE_MIN_POSTS = 3


def event_title(ev: ClusterEvent, agg: EventAggregate) -> str:
    """The event's 话题 when most of its posts carry it (see above), else :func:`representative_title`."""
    ranked = _ranked(ev.tags, 1)
    if ranked and ranked[0][1] >= max(TAG_TITLE_MIN_POSTS, TAG_TITLE_SHARE * agg.count):
        return f"#{ranked[0][0]}#"
    return representative_title(agg, ev.centroid)


def representative_title(agg: EventAggregate, centroid: Mapping[str, float]) -> str:
    """The title of the kept member whose terms are closest to the centroid (ties: the earliest member)."""
    best: tuple[float, float, str] | None = None
    title = ""
    for b in agg.briefs:
        sim = cosine(dict(b.terms), centroid) if b.terms else 0.0
        key = (-sim, b.at, b.id)
        if best is None or key < best:
            best, title = key, b.title
    if not title and agg.first is not None:
        title = agg.first.title
    return title


def keywords_of(centroid: Mapping[str, float], n: int = 8) -> tuple[str, ...]:
    """The centroid's top terms that read as words (two or more characters, not a bare number)."""
    out = [t for t in top_terms(centroid, 4 * n) if len(t) >= 2 and not t.isdigit()]
    return tuple(out[:n])


def timeline_of(agg: EventAggregate) -> tuple[TimelinePoint, ...]:
    days = [
        TimelinePoint(at=_dt(d * DAY), hours=24, posts=int(v[0]), negative=int(v[2]))
        for d, v in sorted(agg.daily.items())
    ]
    hours = [
        TimelinePoint(at=_dt(h * HOUR), hours=1, posts=int(v[0]), negative=int(v[2]))
        for h, v in sorted(agg.hourly.items())
    ]
    return tuple(days + hours)


def majority(counts: Mapping[str, int]) -> str | None:
    ranked = _ranked(counts, 1)
    return ranked[0][0] if ranked else None


def build_summary(
    ev: ClusterEvent,
    agg: EventAggregate,
    *,
    now: float,
    heat: float,
    heat_6h: float,
    heat_24h: float,
    growth: float,
    risk_level: str,
    risk_colour: str,
    risk_reasons: tuple[str, ...],
    in_scope: bool = True,
    unit_of: Any = None,
) -> EventSummary:
    """The summary of one event at ``now``; ``unit_of`` maps a topic to its responsible unit (taxonomy)."""
    if agg.first is None or agg.started is None or agg.last is None:
        raise ValueError(f"event {ev.id} has no members")
    first = agg.first
    topic = majority(agg.topics)
    s = agg.sentiments
    e = agg.engagement
    return EventSummary(
        event_id=ev.id,
        status=ev.status,
        title=event_title(ev, agg),
        keywords=keywords_of(ev.centroid),
        first_post=FirstPost(
            id=first.id, title=first.title, source=first.source, kind=first.kind, published_at=_dt(first.at),
            url=first.url,
        ),
        started_at=_dt(agg.started),
        last_post_at=_dt(agg.last),
        updated_at=_dt(now),
        count=agg.count,
        sources=tuple(NameCount(k, v) for k, v in _ranked(agg.sources, 50)),
        kinds=tuple(NameCount(k, v) for k, v in _ranked(agg.kinds)),
        sentiment=SentimentMix(
            negative=s.get("negative", 0), neutral=s.get("neutral", 0), positive=s.get("positive", 0),
            unknown=s.get("unknown", 0),
        ),
        negative_share=round(agg.negative_share, 4),
        engagement=Engagement(**{k: int(v) for k, v in e.items()}),
        timeline=timeline_of(agg),
        # the classifier's place names; without them, the place names clustering found in the texts
        places=tuple(k for k, _ in _ranked(agg.places or {**ev.city, **ev.county})),
        orgs=tuple(k for k, _ in _ranked(agg.orgs)),
        relevance_share=round(agg.relevance_share, 4),
        own_posts=agg.own,
        topic=topic,
        unit=unit_of(topic) if (unit_of is not None and topic) else None,
        heat=round(heat, 2),
        heat_6h=round(heat_6h, 2),
        heat_24h=round(heat_24h, 2),
        growth=round(growth, 3),
        risk_level=risk_level,
        risk_colour=risk_colour,
        risk_reasons=risk_reasons,
        sensitive_words=tuple(k for k, _ in _ranked(agg.sensitive)),
        keyword_groups=tuple(k for k, _ in _ranked(agg.groups, 50)),
        members=tuple(agg.members),
        merged_into=ev.merged_into,
        merged_from=tuple(ev.merged_from),
        hashtags=tuple(k for k, _ in _ranked(ev.tags, 5)),
        in_scope=in_scope,
    )
