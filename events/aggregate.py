"""Running aggregates of an event's members: what the summary, heat, risk and forecast are computed from.

Kept incrementally (a post is added once; two aggregates merge), so an event of 10,000 posts costs the same
to score as one of ten. Serialises to JSON-able dicts.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from events.config import EventsConfig
from events.types import EventPost

HOUR = 3600
DAY = 86400
COLUMNS = 4  # timeline bucket: posts, authority-weighted posts, negative posts, board messages


def _inc(d: dict[str, int], key: str, n: int = 1) -> None:
    d[key] = d.get(key, 0) + n


def _counted(relevant: bool | None, topic: str | None) -> list[Any]:
    """How a member's relevance and topic are counted: [1 / 0 / -1 unknown, topic or ""]."""
    return [-1 if relevant is None else int(relevant), topic or ""]


def _top(terms: Mapping[str, float], n: int) -> tuple[tuple[str, float], ...]:
    ranked = sorted(((k, round(v, 5)) for k, v in terms.items()), key=lambda kv: (-kv[1], kv[0]))
    return tuple(ranked[:n])


def _bucket(values: list[Any]) -> list[float]:
    out = [float(x) for x in values]
    return out + [0.0] * (COLUMNS - len(out))


def _counts_of(post: EventPost) -> list[int]:
    return [post.likes, post.dislikes, post.comments, post.reposts]


def _add_counts(into: dict[str, int], other: Mapping[str, int]) -> None:
    for k, v in other.items():
        into[k] = into.get(k, 0) + v


@dataclass(frozen=True)
class Brief:
    """A member as the summary shows it: id, title, source, time, link and its top terms."""

    id: str
    title: str
    source: str
    kind: str
    at: float
    url: str | None = None
    terms: tuple[tuple[str, float], ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id, "title": self.title, "source": self.source, "kind": self.kind, "at": self.at,
            "url": self.url, "terms": [list(t) for t in self.terms],
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Brief:
        return cls(
            id=d["id"], title=d["title"], source=d["source"], kind=d["kind"], at=float(d["at"]), url=d.get("url"),
            terms=tuple((str(t), float(w)) for t, w in d.get("terms", [])),
        )


@dataclass
class Decayed:
    """A sum of contributions that halve every ``half_life`` seconds, stored at reference time ``ref``."""

    value: float = 0.0
    ref: float | None = None

    def add(self, amount: float, t: float, half_life: float) -> None:
        if self.ref is None:
            self.value, self.ref = amount, t
        elif t >= self.ref:
            self.value = self.value * math.pow(2.0, -(t - self.ref) / half_life) + amount
            self.ref = t
        else:
            self.value += amount * math.pow(2.0, -(self.ref - t) / half_life)

    def at(self, now: float, half_life: float) -> float:
        if self.ref is None:
            return 0.0
        return self.value * math.pow(2.0, -(now - self.ref) / half_life)

    def merge(self, other: Decayed, half_life: float) -> None:
        if other.ref is not None:
            self.add(other.value, other.ref, half_life)


@dataclass
class EventAggregate:
    """Counts, breakdowns, engagement, decayed heat accumulators and the timeline of one event."""

    count: int = 0
    first: Brief | None = None  # 首发: the earliest member (ties: smaller id)
    started: float | None = None
    last: float | None = None
    sources: dict[str, int] = field(default_factory=dict)
    kinds: dict[str, int] = field(default_factory=dict)
    sentiments: dict[str, int] = field(default_factory=dict)  # negative/neutral/positive/unknown
    engagement: dict[str, int] = field(default_factory=lambda: {"likes": 0, "dislikes": 0, "comments": 0, "reposts": 0})
    relevant: int = 0
    relevance_known: int = 0
    own: int = 0  # members from the bureau's own channels (本局发布)
    topics: dict[str, int] = field(default_factory=dict)
    places: dict[str, int] = field(default_factory=dict)
    orgs: dict[str, int] = field(default_factory=dict)
    sensitive: dict[str, int] = field(default_factory=dict)
    groups: dict[str, int] = field(default_factory=dict)
    media: int = 0
    official: int = 0
    volume: Decayed = field(default_factory=Decayed)  # authority-weighted posts
    engaged: Decayed = field(default_factory=Decayed)  # weighted engagement
    negative: Decayed = field(default_factory=Decayed)  # authority-weighted negative posts
    # hour index -> [posts, authority-weighted posts, negative posts, board messages]; days likewise
    hourly: dict[int, list[float]] = field(default_factory=dict)
    daily: dict[int, list[float]] = field(default_factory=dict)
    briefs: list[Brief] = field(default_factory=list)
    members: list[str] = field(default_factory=list)  # the first members (capped), for the record
    # member -> [likes, dislikes, comments, reposts] as last seen (members with any): a re-crawl that finds more
    # engagement on a post adds the difference (update_engagement)
    engaged_by: dict[str, list[int]] = field(default_factory=dict)
    # judged member (人工研判) -> [relevance counted (1, 0, -1 unknown), topic counted ("" none)]: a judgement made
    # after the post joined replaces what was counted (update_judgement)
    judged: dict[str, list[Any]] = field(default_factory=dict)

    # ---- adding -----------------------------------------------------------------------------------------
    def add(self, post: EventPost, cfg: EventsConfig, terms: Mapping[str, float] | None = None) -> None:
        """Count ``post`` as a member. A post of the bureau's own channels (``post.own``, 本局发布) is a member —
        it counts in the size, the sources, 首发, the topic and relevance, and in ``own`` — but it is the bureau's
        response, not public opinion: it adds nothing to the sentiment mix, the engagement, the sensitive words,
        the heat accumulators or the timeline, so the bureau speaking on a matter never raises its heat or level."""
        t = post.published_at.timestamp()
        self.count += 1
        brief = Brief(
            id=post.id, title=post.title or post.text[:40], source=post.source, kind=post.kind, at=t, url=post.url,
            terms=_top(terms or {}, 12),
        )
        if self.first is None or (t, post.id) < (self.first.at, self.first.id):
            self.first = brief
        self.started = t if self.started is None else min(self.started, t)
        self.last = t if self.last is None else max(self.last, t)
        _inc(self.sources, post.source or "未知")
        _inc(self.kinds, post.kind)
        self.own += int(post.own)
        rel = post.is_relevant
        if rel is not None:
            self.relevance_known += 1
            self.relevant += int(rel)
        if post.topic:
            _inc(self.topics, post.topic)
        if post.judged:
            self.judged[post.id] = _counted(rel, post.topic)
        for p in dict.fromkeys(post.places):
            _inc(self.places, p)
        for o in dict.fromkeys(post.orgs):
            _inc(self.orgs, o)
        for g in dict.fromkeys(post.keyword_groups):
            _inc(self.groups, g)
        if not post.own:
            self._add_opinion(post, cfg, t)
        if len(self.briefs) < cfg.clustering.briefs:
            self.briefs.append(brief)
        if len(self.members) < cfg.clustering.members_kept:
            self.members.append(post.id)
        self._fold(cfg.timeline.hourly_hours)

    def _add_opinion(self, post: EventPost, cfg: EventsConfig, t: float) -> None:
        """What a post from outside the bureau adds: sentiment, engagement, sensitive words, heat, timeline."""
        heat = cfg.heat
        half_life = heat.half_life_hours * HOUR
        w = heat.authority.weight(post.source, post.kind)
        ew = heat.engagement
        e = (
            ew.likes * post.likes + ew.dislikes * post.dislikes + ew.comments * post.comments
            + ew.reposts * post.reposts
        )
        neg = 1.0 if post.sentiment == "negative" else 0.0
        _inc(self.sentiments, post.sentiment or "unknown")
        self.engagement["likes"] += post.likes
        self.engagement["dislikes"] += post.dislikes
        self.engagement["comments"] += post.comments
        self.engagement["reposts"] += post.reposts
        if e:
            self.engaged_by[post.id] = _counts_of(post)
        text = f"{post.title}\n{post.text}"
        for word in cfg.risk.sensitive_words:
            if word and word in text:
                _inc(self.sensitive, word)
        if post.kind in cfg.risk.media_kinds:
            self.media += 1
        if post.source in cfg.risk.official_sources:
            self.official += 1
        self.volume.add(w, t, half_life)
        self.engaged.add(e, t, half_life)
        if neg:
            self.negative.add(w, t, half_life)
        h = int(t // HOUR)
        bucket = self.hourly.setdefault(h, [0.0] * COLUMNS)
        bucket[0] += 1
        bucket[1] += w
        bucket[2] += neg
        bucket[3] += 1.0 if post.kind in cfg.risk.board_kinds else 0.0

    def update_judgement(self, post: EventPost) -> bool:
        """A member a person judged (人工研判) after it was counted: its relevance and topic are counted again
        with the person's values. What was counted is the classifier's (``post.model_*``) unless the member
        joined already judged, or was judged before (``judged``). Returns whether anything changed."""
        if not post.judged:
            return False
        was = self.judged.get(post.id) or _counted(post.model_relevant, post.model_topic)
        now = _counted(post.is_relevant, post.topic)
        self.judged[post.id] = now
        if now == was:
            return False
        for (rel, topic), sign in ((was, -1), (now, 1)):
            if rel >= 0:
                self.relevance_known += sign
                self.relevant += sign * rel
            if topic:
                _inc(self.topics, topic, sign)
                if self.topics[topic] <= 0:
                    del self.topics[topic]
        return True

    def update_engagement(self, post: EventPost, cfg: EventsConfig, at: float) -> bool:
        """A member seen again with other engagement counts (a Weibo post spreading): the totals take the new
        counts, and the growth joins the decayed engagement as of ``at`` (it happened since the last look).
        Returns whether anything changed. The bureau's own posts count no engagement (see :meth:`add`)."""
        if post.own:
            return False
        new = _counts_of(post)
        old = self.engaged_by.get(post.id, [0, 0, 0, 0])
        if new == old:
            return False
        ew = cfg.heat.engagement
        for name, a, b in zip(("likes", "dislikes", "comments", "reposts"), old, new, strict=True):
            self.engagement[name] = max(0, self.engagement.get(name, 0) + b - a)
        grown = sum(w * max(0, b - a) for w, a, b in zip((ew.likes, ew.dislikes, ew.comments, ew.reposts), old, new,
                                                         strict=True))
        if grown:
            self.engaged.add(grown, at, cfg.heat.half_life_hours * HOUR)
        self.engaged_by[post.id] = new
        return True

    def merge(self, other: EventAggregate, cfg: EventsConfig) -> None:
        """Fold ``other`` (an event merged into this one) into this aggregate."""
        half_life = cfg.heat.half_life_hours * HOUR
        self.count += other.count
        first, theirs = self.first, other.first
        if theirs is not None and (first is None or (theirs.at, theirs.id) < (first.at, first.id)):
            self.first = theirs
        for attr in ("started",):
            a, b = getattr(self, attr), getattr(other, attr)
            setattr(self, attr, b if a is None else a if b is None else min(a, b))
        a, b = self.last, other.last
        self.last = b if a is None else a if b is None else max(a, b)
        for name in ("sources", "kinds", "sentiments", "engagement", "topics", "places", "orgs", "sensitive", "groups"):
            _add_counts(getattr(self, name), getattr(other, name))
        self.relevant += other.relevant
        self.relevance_known += other.relevance_known
        self.own += other.own
        self.media += other.media
        self.official += other.official
        self.volume.merge(other.volume, half_life)
        self.engaged.merge(other.engaged, half_life)
        self.negative.merge(other.negative, half_life)
        for series in ("hourly", "daily"):
            mine: dict[int, list[float]] = getattr(self, series)
            for k, v in getattr(other, series).items():
                cur = mine.setdefault(k, [0.0] * len(v))
                for i, x in enumerate(v):
                    cur[i] += x
        self.engaged_by.update(other.engaged_by)
        self.judged.update(other.judged)
        room = cfg.clustering.briefs - len(self.briefs)
        if room > 0:
            self.briefs.extend(other.briefs[:room])
        room = cfg.clustering.members_kept - len(self.members)
        if room > 0:
            self.members.extend(other.members[:room])
        self._fold(cfg.timeline.hourly_hours)

    def _fold(self, hourly_hours: int) -> None:
        """Move hourly buckets older than ``hourly_hours`` before the last post into daily buckets."""
        if self.last is None:
            return
        limit = int(self.last // HOUR) - hourly_hours
        old = [h for h in self.hourly if h < limit]
        for h in sorted(old):
            v = self.hourly.pop(h)
            d = self.daily.setdefault(h * HOUR // DAY, [0.0] * COLUMNS)
            for i, x in enumerate(v):
                d[i] += x

    # ---- derived ----------------------------------------------------------------------------------------
    def in_hours(self, first_hour: int, last_hour: int, column: int = 1) -> float:
        """Sum of one timeline column over the hourly buckets ``first_hour..last_hour`` (inclusive hour indices;
        column 0: posts, 1: authority-weighted posts, 2: negative posts, 3: board messages)."""
        if last_hour - first_hour < len(self.hourly):
            return sum(self.hourly[h][column] for h in range(first_hour, last_hour + 1) if h in self.hourly)
        return sum(v[column] for h, v in self.hourly.items() if first_hour <= h <= last_hour)

    def since(self, start: float, column: int = 0) -> float:
        """Sum of one column over every bucket from ``start`` (epoch seconds) on, hourly and daily (a day bucket
        counts when its day starts at or after ``start``'s day)."""
        first_hour = math.ceil(start / HOUR)
        first_day = int(start // DAY)
        hours = sum(v[column] for h, v in self.hourly.items() if h >= first_hour)
        days = sum(v[column] for d, v in self.daily.items() if d >= first_day)
        return hours + days

    @property
    def negative_share(self) -> float:
        """Of the posts from outside the bureau whose sentiment is known, the negative share."""
        known = sum(self.sentiments.values()) - self.sentiments.get("unknown", 0)
        return self.sentiments.get("negative", 0) / known if known > 0 else 0.0

    @property
    def relevance_share(self) -> float:
        return self.relevant / self.relevance_known if self.relevance_known else 0.0

    @property
    def opinion_count(self) -> int:
        """Members from outside the bureau's own channels: the public's posts and the media's."""
        return self.count - self.own

    @property
    def own_only(self) -> bool:
        """Every member came from the bureau's own channels (本局发布): the bureau speaking, not public opinion."""
        return self.count > 0 and self.own >= self.count

    # ---- state ------------------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {
            "count": self.count,
            "first": self.first.to_dict() if self.first else None,
            "started": self.started,
            "last": self.last,
            "sources": self.sources,
            "kinds": self.kinds,
            "sentiments": self.sentiments,
            "engagement": self.engagement,
            "relevant": self.relevant,
            "relevance_known": self.relevance_known,
            "own": self.own,
            "topics": self.topics,
            "places": self.places,
            "orgs": self.orgs,
            "sensitive": self.sensitive,
            "groups": self.groups,
            "media": self.media,
            "official": self.official,
            "volume": [self.volume.value, self.volume.ref],
            "engaged": [self.engaged.value, self.engaged.ref],
            "negative": [self.negative.value, self.negative.ref],
            "hourly": {str(k): v for k, v in self.hourly.items()},
            "daily": {str(k): v for k, v in self.daily.items()},
            "briefs": [b.to_dict() for b in self.briefs],
            "members": self.members,
            "engaged_by": self.engaged_by,
            "judged": self.judged,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> EventAggregate:
        def counts(x: Mapping[str, Any]) -> dict[str, int]:
            return {str(k): int(v) for k, v in x.items()}

        return cls(
            count=int(d["count"]),
            first=Brief.from_dict(d["first"]) if d.get("first") else None,
            started=d.get("started"),
            last=d.get("last"),
            sources=counts(d["sources"]),
            kinds=counts(d["kinds"]),
            sentiments=counts(d["sentiments"]),
            engagement=counts(d["engagement"]),
            relevant=int(d["relevant"]),
            relevance_known=int(d["relevance_known"]),
            own=int(d.get("own", 0)),  # states saved before the field: no member counted as own
            topics=counts(d["topics"]),
            places=counts(d["places"]),
            orgs=counts(d["orgs"]),
            sensitive=counts(d["sensitive"]),
            groups=counts(d["groups"]),
            media=int(d["media"]),
            official=int(d["official"]),
            volume=Decayed(*d["volume"]),
            engaged=Decayed(*d["engaged"]),
            negative=Decayed(*d["negative"]),
            hourly={int(k): _bucket(v) for k, v in d["hourly"].items()},
            daily={int(k): _bucket(v) for k, v in d["daily"].items()},
            briefs=[Brief.from_dict(b) for b in d["briefs"]],
            members=[str(m) for m in d["members"]],
            engaged_by={str(k): [int(x) for x in v] for k, v in d.get("engaged_by", {}).items()},
            judged={str(k): [int(v[0]), str(v[1])] for k, v in d.get("judged", {}).items()},
        )
