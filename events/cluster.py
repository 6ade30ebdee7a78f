"""Incremental single-pass clustering of posts into events.

Each post, in time order, is turned into a unit TF-IDF vector (:mod:`events.text`; the document frequencies
are updated first, so the IDF grows with the stream). The vocabulary is bounded: when it holds more than
``max_vocabulary`` terms, the rarest are dropped down to :data:`VOCAB_PRUNE_TO` of it (as gensim's
``Dictionary(prune_at=…)`` does), so that the state saved after every batch stops growing with the years of
posts behind it while the terms that tie posts into events, seen again and again, stay. Then:

1. **Already assigned** (its id is in the state, or it carries an ``event_id`` from an earlier run): it keeps
   its event; nothing changes (idempotent re-runs). A carried ``event_id`` of an event the state holds but
   that does not list the post (a restart from an older state) is honoured: the post joins that event.
2. **Hard link**: a post that is a near-duplicate of an assigned post (``duplicate_of``, from the crawl's
   SimHash) joins that post's event, whatever the similarity or the time (a closed event reopens).
3. **Candidates** come from an inverted index over the top ``index_terms`` terms of each open event's
   centroid: the post's top ``query_terms`` terms are looked up, events are ranked by the partial dot
   product and the best ``max_candidates`` are scored exactly.
4. **Score** = cosine(post, centroid) × 2^(-gap / decay), ``gap`` = hours from the event's last post to the
   post (0 if earlier), ``decay`` by the post's kind. An event whose last post is more than the window (by the
   post's kind) before the post is not a candidate; with ``place_veto`` an event naming county-level (or
   city-level) places, none of which the post names while it names others at that level, is skipped.
   An open event whose members carry a 话题 (Weibo's ``#…#`` topic tag, at least ``hashtag_min_chars`` long and
   not in ``hashtag_ignore``) that the post carries too is a candidate whatever its terms, and ``hashtag_bonus``
   is added to its score: short posts on one matter share few words, their 话题 says they are on the same matter.
5. The best candidate with score ≥ ``threshold`` takes the post (ties: the older event, then the smaller id);
   none: the post founds a new event whose id is derived from its own id (:func:`event_id_for`).
6. **Merges**: every other candidate that also reached the threshold and whose centroid has cosine ≥
   ``merge_threshold`` with the winner's is merged into the older of the two. A merge is recorded
   (:class:`Merge`), the merged event keeps its record with ``merged_into`` and its members are reassigned.

An event closes when the clock (the latest post time) is more than its window after its last post — its
window being the longest of its members' kinds (a board matter stays open for months, a social-media flurry
for days); closed events leave the inverted index. The whole state serialises to JSON-able dicts
(:meth:`Clusterer.to_state` / :meth:`Clusterer.from_state`) and the same posts in the same order always give
the same events (no randomness; every choice has a deterministic tie-break).
"""

from __future__ import annotations

import hashlib
import heapq
import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from events.config import ClusteringConfig
from events.text import PostTerms, Vector, Vocabulary, cosine, dot, norm, top_terms
from events.types import EventPost

log = logging.getLogger(__name__)

VOCAB_PRUNE_TO = 0.9  # a vocabulary past its bound keeps this share of it (not the bound: no prune per post)

Status = Literal["open", "closed", "merged"]
HOUR = 3600.0


def event_id_for(post_id: str) -> str:
    """The id of the event a post founds: stable, derived from the founding post's id."""
    return "ev-" + hashlib.sha1(post_id.encode("utf-8")).hexdigest()[:16]


def _expiry(ev: ClusterEvent) -> float:
    return ev.last + ev.window * HOUR


def ts(dt: datetime) -> float:
    return dt.timestamp()


def dt_of(value: float) -> datetime:
    return datetime.fromtimestamp(value, UTC)


@dataclass
class ClusterEvent:
    """The clustering state of one event."""

    id: str
    founder: str
    started: float  # earliest member time (epoch seconds)
    last: float  # latest member time
    centroid: Vector  # sum of member unit vectors (truncated)
    members: list[str]
    county: dict[str, int] = field(default_factory=dict)
    city: dict[str, int] = field(default_factory=dict)
    tags: dict[str, int] = field(default_factory=dict)  # 话题 (#…#) of its members, with counts
    window: float = 0.0  # hours: the longest window of its members' kinds
    status: Status = "open"
    merged_into: str | None = None
    merged_from: list[str] = field(default_factory=list)
    indexed: list[str] = field(default_factory=list)  # its terms in the inverted index (open events)
    norm: float = 0.0  # |centroid|, kept up to date by the clusterer (not saved)

    @property
    def count(self) -> int:
        return len(self.members)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "founder": self.founder,
            "started": self.started,
            "last": self.last,
            "centroid": self.centroid,
            "members": self.members,
            "county": self.county,
            "city": self.city,
            "tags": self.tags,
            "window": self.window,
            "status": self.status,
            "merged_into": self.merged_into,
            "merged_from": self.merged_from,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> ClusterEvent:
        return cls(
            id=d["id"],
            founder=d["founder"],
            started=float(d["started"]),
            last=float(d["last"]),
            centroid={str(k): float(v) for k, v in d["centroid"].items()},
            members=[str(m) for m in d["members"]],
            county={str(k): int(v) for k, v in d.get("county", {}).items()},
            city={str(k): int(v) for k, v in d.get("city", {}).items()},
            tags={str(k): int(v) for k, v in d.get("tags", {}).items()},
            window=float(d["window"]),
            status=d.get("status", "open"),
            merged_into=d.get("merged_into"),
            merged_from=list(d.get("merged_from", [])),
        )


@dataclass(frozen=True)
class Merge:
    """Event ``source`` was merged into ``target`` when post ``post_id`` arrived (its members moved)."""

    source: str
    target: str
    at: datetime
    post_id: str
    similarity: float
    members: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "target": self.target,
            "at": self.at.isoformat(),
            "post_id": self.post_id,
            "similarity": self.similarity,
            "members": list(self.members),
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Merge:
        return cls(
            source=d["source"],
            target=d["target"],
            at=datetime.fromisoformat(d["at"]),
            post_id=d["post_id"],
            similarity=float(d["similarity"]),
            members=tuple(d["members"]),
        )


How = Literal["known", "kept", "carried", "hard_link", "joined", "new"]


@dataclass(frozen=True)
class Assignment:
    """Where a post went: its event, how, the similarity that decided it, and merges it caused."""

    post_id: str
    event_id: str
    how: How
    similarity: float = 0.0
    merges: tuple[Merge, ...] = ()

    @property
    def changed(self) -> bool:
        """False for a post that was already assigned (nothing changed)."""
        return self.how not in ("known", "kept")


class Clusterer:
    """Single-pass clustering state and algorithm (see the module docstring)."""

    def __init__(self, cfg: ClusteringConfig, max_post_terms: int, max_vocabulary: int | None = None) -> None:
        self.cfg = cfg
        self.max_post_terms = max_post_terms
        self.max_vocabulary = max_vocabulary  # None: unbounded
        self.vocab = Vocabulary()
        self.events: dict[str, ClusterEvent] = {}
        self.assigned: dict[str, str] = {}
        self.postings: dict[str, dict[str, float]] = {}
        self.tag_postings: dict[str, set[str]] = {}  # 话题 -> open events whose members carry it
        self.merges: list[Merge] = []
        self.clock: float | None = None
        self._heap: list[tuple[float, str]] = []
        self.dirty: set[str] = set()  # events changed since the last state save
        self.touched: set[str] = set()  # events changed since the caller last cleared it (a batch)
        self.removed: set[str] = set()  # events forgotten since the last state save

    # ---- public API -------------------------------------------------------------------------------------
    def resolve(self, event_id: str) -> str:
        """Follow ``merged_into`` links to the surviving event."""
        seen = 0
        while True:
            ev = self.events.get(event_id)
            if ev is None or ev.merged_into is None:
                return event_id
            event_id = ev.merged_into
            seen += 1
            if seen > len(self.events):
                raise RuntimeError(f"merge cycle at event {event_id}")

    def event_of(self, post_id: str) -> str | None:
        ev = self.assigned.get(post_id)
        return self.resolve(ev) if ev is not None else None

    def assign(self, post: EventPost, terms: PostTerms) -> tuple[Assignment, Vector | None]:
        """Assign ``post`` (see the module docstring); returns the assignment and the post's vector (None when
        the post was already assigned and nothing was computed)."""
        known = self.assigned.get(post.id)
        if known is not None:
            return Assignment(post.id, self.resolve(known), "known"), None
        t = ts(post.published_at)
        self._advance(t)
        if post.event_id is not None:
            target = self.resolve(post.event_id)
            if target not in self.events:
                # assigned in an earlier run to an event this state no longer holds (closed and pruned)
                return Assignment(post.id, target, "kept"), None
            vec = self._vectorise(terms)
            self._join(self.events[target], post.id, t, vec, terms, post.kind)
            return Assignment(post.id, target, "carried"), vec
        vec = self._vectorise(terms)
        if post.duplicate_of is not None:
            linked = self.event_of(post.duplicate_of)
            if linked is not None and linked in self.events:
                ev = self.events[linked]
                if ev.status == "closed":
                    self._reopen(ev)
                self._join(ev, post.id, t, vec, terms, post.kind)
                return Assignment(post.id, ev.id, "hard_link", similarity=1.0), vec
        scored = self._candidates(post, t, vec, terms)
        passing = [(s, e) for s, e in scored if s >= self.cfg.threshold]
        if not passing:
            ev = self._found(post.id, t, vec, terms, post.kind)
            return Assignment(post.id, ev.id, "new"), vec
        best_sim, best = passing[0]
        self._join(best, post.id, t, vec, terms, post.kind)
        merges: list[Merge] = []
        for _, other in passing[1:]:
            winner = self.events[self.resolve(best.id)]
            if other.status != "open" or other.id == winner.id:
                continue
            sim = cosine(winner.centroid, other.centroid)
            if sim >= self.cfg.merge_threshold:
                merges.append(self._merge(winner, other, post, sim))
        final = self.resolve(best.id)
        return Assignment(post.id, final, "joined", similarity=best_sim, merges=tuple(merges)), vec

    def close_idle(self, now: float | None = None) -> list[str]:
        """Close open events idle for longer than their window at ``now`` (default: the clock)."""
        now = self.clock if now is None else now
        if now is None:
            return []
        closed: list[str] = []
        while self._heap and self._heap[0][0] < now:
            expiry, eid = heapq.heappop(self._heap)
            ev = self.events.get(eid)
            if ev is None or ev.status != "open" or _expiry(ev) != expiry:
                continue  # stale heap entry
            self._unindex(ev)
            ev.status = "closed"
            self.dirty.add(ev.id)
            self.touched.add(ev.id)
            closed.append(eid)
        return closed

    def prune(self, event_ids: list[str]) -> None:
        """Forget closed or merged events (after their records were saved): their members' assignments go too
        (posts keep their ``event_id`` in the store, which :meth:`assign` honours)."""
        for eid in event_ids:
            ev = self.events.get(eid)
            if ev is None:
                continue
            if ev.status == "open":
                raise ValueError(f"event {eid} is open; only closed or merged events can be pruned")
            if ev.status == "merged" and ev.merged_into in self.events:
                continue  # still needed to resolve its members via the survivor
            self._forget(ev)
        # merges are on the records of both events; the state keeps those of events it still holds
        self.merges = [m for m in self.merges if m.source in self.events or m.target in self.events]

    def _forget(self, ev: ClusterEvent) -> None:
        """Drop ``ev`` and the events merged into it, with their members' assignments."""
        for src in ev.merged_from:
            merged = self.events.get(src)
            if merged is not None and merged.merged_into == ev.id:
                self._forget(merged)
        for m in ev.members:
            current = self.assigned.get(m)
            if current is not None and (current == ev.id or self.resolve(current) == ev.id):
                del self.assigned[m]
        self.events.pop(ev.id, None)
        self.dirty.discard(ev.id)
        self.touched.discard(ev.id)
        self.removed.add(ev.id)

    # ---- internals --------------------------------------------------------------------------------------
    def _vectorise(self, terms: PostTerms) -> Vector:
        self.vocab.add(terms.counts.keys())
        if self.max_vocabulary is not None and len(self.vocab.df) > self.max_vocabulary:
            self._prune_vocabulary()
        return self.vocab.vector(terms.counts, max_terms=self.max_post_terms)

    def _prune_vocabulary(self) -> None:
        assert self.max_vocabulary is not None
        before = len(self.vocab.df)
        dropped = self.vocab.prune(int(self.max_vocabulary * VOCAB_PRUNE_TO))
        log.info("events vocabulary: %d terms, over its bound of %d (events.yaml text.max_vocabulary): the %d "
                 "rarest dropped", before, self.max_vocabulary, dropped)

    def _advance(self, t: float) -> None:
        if self.clock is None or t > self.clock:
            self.clock = t
            self.close_idle()

    def _candidates(
        self, post: EventPost, t: float, vec: Vector, terms: PostTerms
    ) -> list[tuple[float, ClusterEvent]]:
        cfg = self.cfg
        scores: dict[str, float] = {}
        for term in top_terms(vec, cfg.query_terms):
            posting = self.postings.get(term)
            if not posting:
                continue
            w = vec[term]
            for eid, cw in posting.items():
                scores[eid] = scores.get(eid, 0.0) + w * cw
        if len(scores) > cfg.max_candidates:
            ranked = heapq.nsmallest(cfg.max_candidates, scores.items(), key=lambda kv: (-kv[1], kv[0]))
        else:
            ranked = sorted(scores.items(), key=lambda kv: (-kv[1], kv[0]))
        tags = self._tags(terms) if cfg.hashtag_bonus else []
        tagged = {eid for tag in tags for eid in self.tag_postings.get(tag, ())}
        candidates = [eid for eid, _ in ranked] + sorted(tagged.difference(eid for eid, _ in ranked))
        window = cfg.window_hours.of(post.kind) * HOUR
        decay = cfg.decay_hours.of(post.kind) * HOUR
        out: list[tuple[float, ClusterEvent]] = []
        for eid in candidates:
            ev = self.events[eid]
            gap = max(0.0, t - ev.last)
            if gap > window or (cfg.place_veto and self._vetoed(ev, terms)):
                continue
            cos = dot(vec, ev.centroid) / (ev.norm or 1.0)
            bonus = cfg.hashtag_bonus if eid in tagged else 0.0
            out.append((cos * math.pow(2.0, -gap / decay) + bonus, ev))
        out.sort(key=lambda se: (-se[0], se[1].started, se[1].id))
        return out

    def _tags(self, terms: PostTerms) -> list[str]:
        """The post's 话题 that count: an event keeps them (its record names them), and with ``hashtag_bonus``
        they link the post to the events that carry them too."""
        cfg = self.cfg
        return [tag for tag in terms.hashtags if len(tag) >= cfg.hashtag_min_chars and tag not in cfg.hashtag_ignore]

    @staticmethod
    def _vetoed(ev: ClusterEvent, terms: PostTerms) -> bool:
        """The post and the event name places at the same level and share none of them."""
        if terms.county and ev.county and not any(p in ev.county for p in terms.county):
            return True
        return bool(terms.city and ev.city and not any(p in ev.city for p in terms.city))

    def _found(self, post_id: str, t: float, vec: Vector, terms: PostTerms, kind: str) -> ClusterEvent:
        eid = event_id_for(post_id)
        if eid in self.events:  # only if two post ids hash alike in 64 bits; keep ids unique anyway
            eid = event_id_for(f"{post_id}\x00{len(self.events)}")
        ev = ClusterEvent(id=eid, founder=post_id, started=t, last=t, centroid={}, members=[])
        self.events[eid] = ev
        self._join(ev, post_id, t, vec, terms, kind)
        return ev

    def _join(self, ev: ClusterEvent, post_id: str, t: float, vec: Vector, terms: PostTerms, kind: str) -> None:
        ev.members.append(post_id)
        ev.window = max(ev.window, self.cfg.window_hours.of(kind))
        self.assigned[post_id] = ev.id
        ev.started = min(ev.started, t)
        ev.last = max(ev.last, t)
        c = ev.centroid
        for term, w in vec.items():
            c[term] = c.get(term, 0.0) + w
        self._truncate(ev)
        ev.norm = norm(ev.centroid)
        for p in terms.county:
            ev.county[p] = ev.county.get(p, 0) + 1
        for p in terms.city:
            ev.city[p] = ev.city.get(p, 0) + 1
        for tag in self._tags(terms):
            ev.tags[tag] = ev.tags.get(tag, 0) + 1
        if ev.status == "open":
            self._reindex(ev)
            heapq.heappush(self._heap, (_expiry(ev), ev.id))
        self.dirty.add(ev.id)
        self.touched.add(ev.id)

    def _truncate(self, ev: ClusterEvent) -> None:
        keep = self.cfg.centroid_terms
        if len(ev.centroid) > 2 * keep:
            ev.centroid = {t: ev.centroid[t] for t in top_terms(ev.centroid, keep)}

    def _reindex(self, ev: ClusterEvent) -> None:
        new = top_terms(ev.centroid, self.cfg.index_terms)
        n = ev.norm or 1.0
        new_set = set(new)
        for term in ev.indexed:
            if term not in new_set:
                posting = self.postings.get(term)
                if posting is not None:
                    posting.pop(ev.id, None)
                    if not posting:
                        del self.postings[term]
        for term in new:
            self.postings.setdefault(term, {})[ev.id] = ev.centroid[term] / n
        ev.indexed = new
        for tag in ev.tags:
            self.tag_postings.setdefault(tag, set()).add(ev.id)

    def _unindex(self, ev: ClusterEvent) -> None:
        for term in ev.indexed:
            posting = self.postings.get(term)
            if posting is not None:
                posting.pop(ev.id, None)
                if not posting:
                    del self.postings[term]
        ev.indexed = []
        for tag in ev.tags:
            holders = self.tag_postings.get(tag)
            if holders is not None:
                holders.discard(ev.id)
                if not holders:
                    del self.tag_postings[tag]

    def _reopen(self, ev: ClusterEvent) -> None:
        ev.status = "open"
        self._reindex(ev)
        heapq.heappush(self._heap, (_expiry(ev), ev.id))

    def _merge(self, a: ClusterEvent, b: ClusterEvent, post: EventPost, sim: float) -> Merge:
        target, source = (a, b) if (a.started, a.id) <= (b.started, b.id) else (b, a)
        self._unindex(source)
        for m in source.members:
            self.assigned[m] = target.id
        target.members.extend(source.members)
        for term, w in source.centroid.items():
            target.centroid[term] = target.centroid.get(term, 0.0) + w
        self._truncate(target)
        target.norm = norm(target.centroid)
        for p, n in source.county.items():
            target.county[p] = target.county.get(p, 0) + n
        for p, n in source.city.items():
            target.city[p] = target.city.get(p, 0) + n
        for tag, n in source.tags.items():
            target.tags[tag] = target.tags.get(tag, 0) + n
        target.started = min(target.started, source.started)
        target.last = max(target.last, source.last)
        target.window = max(target.window, source.window)
        target.merged_from.append(source.id)
        source.status = "merged"
        source.merged_into = target.id
        if target.status != "open":
            target.status = "open"
        self._reindex(target)
        heapq.heappush(self._heap, (_expiry(target), target.id))
        merge = Merge(
            source=source.id,
            target=target.id,
            at=post.published_at,
            post_id=post.id,
            similarity=round(sim, 6),
            members=tuple(source.members),
        )
        self.merges.append(merge)
        self.dirty.update((source.id, target.id))
        self.touched.update((source.id, target.id))
        return merge

    # ---- state ------------------------------------------------------------------------------------------
    def to_state(self, *, events: bool = True) -> dict[str, Any]:
        """The state as JSON-able data (without the events when ``events`` is false)."""
        out: dict[str, Any] = {
            "version": 1,
            "clock": self.clock,
            "vocab": self.vocab.to_dict(),
            "merges": [m.to_dict() for m in self.merges],
        }
        if events:
            out["events"] = {eid: ev.to_dict() for eid, ev in self.events.items()}
        return out

    @classmethod
    def from_state(cls, cfg: ClusteringConfig, max_post_terms: int, state: Mapping[str, Any],
                   max_vocabulary: int | None = None) -> Clusterer:
        if state.get("version") != 1:
            raise ValueError(f"unsupported clustering state version {state.get('version')!r}")
        c = cls(cfg, max_post_terms, max_vocabulary)
        c.clock = state.get("clock")
        c.vocab = Vocabulary.from_dict(state["vocab"])
        if max_vocabulary is not None and len(c.vocab.df) > max_vocabulary:  # saved unbounded, or the bound lowered
            c._prune_vocabulary()
        for eid, d in state["events"].items():
            ev = ClusterEvent.from_dict(d)
            if ev.id != eid:
                raise ValueError(f"clustering state: event key {eid} holds event {ev.id}")
            ev.norm = norm(ev.centroid)
            c.events[eid] = ev
            for m in ev.members:
                c.assigned[m] = eid
        for ev in c.events.values():
            if ev.status == "open":
                c._reindex(ev)
                heapq.heappush(c._heap, (_expiry(ev), ev.id))
        c.merges = [Merge.from_dict(m) for m in state.get("merges", [])]
        return c
