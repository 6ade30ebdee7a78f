"""The events engine: clustering + aggregates + heat, forecast and risk, on a clock.

One engine is used by ``yuqing events assign`` (simulated clock: each post's time), by the benchmarks and —
as an ingest stage — by the service (state loaded from and saved to Elasticsearch via ``index.events``).
:meth:`EventEngine.process` takes posts in time order; ``now`` is the latest post time seen unless the caller
gives one. The state (:meth:`to_state` / :meth:`from_state`, or incrementally :meth:`state_delta`) is
JSON-able.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from events.aggregate import EventAggregate
from events.cluster import Assignment, Clusterer, Merge
from events.config import LEVEL_COLOURS, EventsConfig
from events.forecast import forecast_heat
from events.heat import heat_inputs, heat_score
from events.risk import Risk, assess, event_metrics
from events.summary import EventSummary, build_summary
from events.text import PostTerms, post_terms
from events.types import EventPost

log = logging.getLogger(__name__)

STATE_VERSION = 1


@dataclass(frozen=True)
class Score:
    """An event's heat, forecast and risk at one time."""

    event_id: str
    at: float
    heat: float
    heat_6h: float
    heat_24h: float
    growth: float
    risk: Risk
    metrics: Mapping[str, float]


@dataclass(frozen=True)
class PostResult:
    post_id: str
    event_id: str
    assignment: Assignment
    score: Score


@dataclass(frozen=True)
class Batch:
    """What one batch changed: per-post results, the events whose records must be rewritten (assigned to,
    merged, closed), and the posts whose stored ``event_id`` must change (new posts, and the members of
    events merged into others)."""

    results: tuple[PostResult, ...]
    changed_events: tuple[str, ...]
    event_of: dict[str, str]


@dataclass(frozen=True)
class StateDelta:
    """What changed since the last save: the global part (always), changed events, forgotten events."""

    global_state: dict[str, Any]
    events: dict[str, dict[str, Any]]
    removed: tuple[str, ...]


class EventEngine:
    def __init__(
        self,
        cfg: EventsConfig,
        *,
        unit_of: Callable[[str], str | None] | None = None,
        segment: Callable[[str], list[str]] | None = None,
    ) -> None:
        self.cfg = cfg
        self.unit_of = unit_of
        self.segment = segment
        self.clusterer = Clusterer(cfg.clustering, cfg.text.max_post_terms, cfg.text.max_vocabulary)
        self.aggregates: dict[str, EventAggregate] = {}

    # ---- processing -------------------------------------------------------------------------------------
    def terms(self, post: EventPost) -> PostTerms:
        return post_terms(post.title, post.text, self.cfg.text, segment=self.segment)

    def assign(self, post: EventPost, terms: PostTerms | None = None) -> Assignment:
        """Cluster one post and update its event's aggregates (no scoring)."""
        c = self.clusterer
        if post.id in c.assigned:
            eid = c.resolve(c.assigned[post.id])
            agg = self.aggregates.get(eid)
            at = max(c.clock or 0.0, post.published_at.timestamp())
            spread = agg is not None and agg.update_engagement(post, self.cfg, at)  # seen again, spreading
            judged = agg is not None and agg.update_judgement(post)  # or judged by a person since (人工研判)
            if spread or judged:
                c.dirty.add(eid)
                c.touched.add(eid)
            return Assignment(post.id, eid, "known")
        if post.event_id is not None and c.resolve(post.event_id) not in c.events:
            return Assignment(post.id, c.resolve(post.event_id), "kept")
        assignment, vec = c.assign(post, terms if terms is not None else self.terms(post))
        if not assignment.changed:
            return assignment
        for m in assignment.merges:
            self._merge_aggregates(m)
        agg = self.aggregates.setdefault(assignment.event_id, EventAggregate())
        agg.add(post, self.cfg, vec)
        return assignment

    def process(self, post: EventPost, terms: PostTerms | None = None, now: float | None = None) -> PostResult:
        """Assign ``post`` and score its event at ``now`` (default: the clock, i.e. the latest post time)."""
        assignment = self.assign(post, terms)
        at = now if now is not None else (self.clusterer.clock or post.published_at.timestamp())
        if assignment.event_id in self.aggregates:
            score = self.score(assignment.event_id, at)
        else:  # kept: an event this state no longer holds
            score = Score(assignment.event_id, at, 0.0, 0.0, 0.0, 1.0, Risk("IV", (self.cfg.risk.default_reason,)), {})
        return PostResult(post.id, assignment.event_id, assignment, score)

    def process_many(self, posts: Iterable[EventPost]) -> list[PostResult]:
        return [self.process(p) for p in posts]

    def process_batch(self, posts: Iterable[EventPost], now: float | None = None) -> Batch:
        """Process posts (in time order) as one ingest batch; then close events idle at ``now`` (default: the
        clock). The ingest stage writes ``changed_events``' summaries and ``event_of`` to the index, then saves
        :meth:`state_delta`."""
        c = self.clusterer
        c.touched.clear()
        results = tuple(self.process(p) for p in posts)
        c.close_idle(now)
        event_of: dict[str, str] = {r.post_id: r.event_id for r in results if r.assignment.changed}
        for r in results:
            for m in r.assignment.merges:
                for member in m.members:
                    event_of[member] = c.resolve(m.target)
        return Batch(results, tuple(sorted(c.touched)), event_of)

    def assign_batch(self, posts: Iterable[EventPost], now: float | None = None) -> Batch:
        """:meth:`process_batch` without scoring each post (``results`` is empty): the events update job scores
        the changed events once, at the end of the batch, instead of once per post."""
        c = self.clusterer
        c.touched.clear()
        event_of: dict[str, str] = {}
        for p in posts:
            a = self.assign(p)
            if a.changed:
                event_of[p.id] = a.event_id
            for m in a.merges:
                for member in m.members:
                    event_of[member] = m.target
        c.close_idle(now)
        event_of = {pid: c.resolve(eid) for pid, eid in event_of.items()}
        return Batch((), tuple(sorted(c.touched)), event_of)

    def event_of(self, post_id: str) -> str | None:
        """The (surviving) event of an assigned post, None when this state does not know the post."""
        return self.clusterer.event_of(post_id)

    def _merge_aggregates(self, m: Merge) -> None:
        source = self.aggregates.get(m.source)
        target = self.aggregates.setdefault(m.target, EventAggregate())
        if source is not None:
            target.merge(source, self.cfg)
        log.info("event %s merged into %s (%d posts) by post %s", m.source, m.target, len(m.members), m.post_id)

    # ---- scoring ----------------------------------------------------------------------------------------
    def score(self, event_id: str, now: float) -> Score:
        eid = self.clusterer.resolve(event_id)
        agg = self.aggregates[eid]
        cfg = self.cfg
        inputs = heat_inputs(agg, now, cfg.heat)
        heat = heat_score(inputs, cfg.heat)
        heat_6h, heat_24h = forecast_heat(agg, now, cfg, (6, 24))
        metrics = event_metrics(agg, now, cfg, heat=heat, inputs=inputs, heat_6h=heat_6h, heat_24h=heat_24h)
        sensitive = sorted(agg.sensitive, key=lambda w: (-agg.sensitive[w], w))
        risk = assess(metrics, cfg, sensitive, relevance_known=agg.relevance_known > 0, own_only=agg.own_only)
        return Score(eid, now, heat, heat_6h, heat_24h, inputs.growth_ratio, risk, metrics)

    def summary(self, event_id: str, now: float | None = None) -> EventSummary:
        """The event's summary at ``now`` (default: the clock). A merged event is summarised as it was."""
        ev = self.clusterer.events[event_id]
        agg = self.aggregates[event_id]
        at = now if now is not None else (self.clusterer.clock or 0.0)
        if ev.status == "merged":
            s = Score(event_id, at, 0.0, 0.0, 0.0, 1.0, Risk("IV", ("已并入其他事件",)), {})
        else:
            s = self.score(event_id, at)
        return build_summary(
            ev, agg, now=at, heat=s.heat, heat_6h=s.heat_6h, heat_24h=s.heat_24h, growth=s.growth,
            risk_level=s.risk.level, risk_colour=LEVEL_COLOURS[s.risk.level], risk_reasons=s.risk.reasons,
            in_scope=s.risk.in_scope, unit_of=self.unit_of,
        )

    def event_ids(self, *, status: str | None = None) -> list[str]:
        return [eid for eid, ev in self.clusterer.events.items() if status is None or ev.status == status]

    # ---- housekeeping -----------------------------------------------------------------------------------
    def close_idle(self, now: float | None = None) -> list[str]:
        return self.clusterer.close_idle(now)

    def prunable(self, now: float) -> list[str]:
        """Closed and merged events whose window ended more than ``clustering.state_retention_days`` before ``now``
        (epoch seconds): nothing can join them any more, their records are written, and keeping them would grow
        the state (loaded at every start, saved at every batch) with the whole history."""
        keep_s = self.cfg.clustering.state_retention_days * 86400
        held = self.clusterer.events
        return sorted(eid for eid, ev in held.items()
                      if ev.status != "open" and ev.last + ev.window * 3600 + keep_s < now
                      and not (ev.status == "merged" and ev.merged_into in held))  # needed while its survivor is

    def prune(self, event_ids: list[str]) -> None:
        """Forget closed (and merged) events whose records were saved (see :meth:`Clusterer.prune`)."""
        self.clusterer.prune(event_ids)
        for eid in list(self.aggregates):
            if eid not in self.clusterer.events:
                del self.aggregates[eid]

    # ---- state ------------------------------------------------------------------------------------------
    def _event_state(self, eid: str) -> dict[str, Any]:
        return {"cluster": self.clusterer.events[eid].to_dict(), "aggregate": self.aggregates[eid].to_dict()}

    def _global_state(self) -> dict[str, Any]:
        c = self.clusterer.to_state(events=False)
        return {"version": STATE_VERSION, **c}

    def to_state(self) -> dict[str, Any]:
        """The whole state as JSON-able data: ``{"global": ..., "events": {id: ...}}``."""
        return {
            "global": self._global_state(),
            "events": {eid: self._event_state(eid) for eid in self.clusterer.events},
        }

    def state_delta(self) -> StateDelta:
        """The state changed since the previous call (or since loading), then marks it saved."""
        c = self.clusterer
        delta = StateDelta(
            global_state=self._global_state(),
            events={eid: self._event_state(eid) for eid in sorted(c.dirty) if eid in c.events},
            removed=tuple(sorted(c.removed)),
        )
        c.dirty.clear()
        c.removed.clear()
        return delta

    @classmethod
    def from_state(
        cls,
        cfg: EventsConfig,
        state: Mapping[str, Any],
        *,
        unit_of: Callable[[str], str | None] | None = None,
        segment: Callable[[str], list[str]] | None = None,
    ) -> EventEngine:
        g = state["global"]
        if g.get("version") != STATE_VERSION:
            raise ValueError(f"unsupported events state version {g.get('version')!r}")
        engine = cls(cfg, unit_of=unit_of, segment=segment)
        events = state["events"]
        cluster_state = {**{k: v for k, v in g.items() if k != "version"}, "version": 1}
        cluster_state["events"] = {eid: events[eid]["cluster"] for eid in sorted(events, key=_event_order(events))}
        engine.clusterer = Clusterer.from_state(cfg.clustering, cfg.text.max_post_terms, cluster_state,
                                                cfg.text.max_vocabulary)
        engine.aggregates = {eid: EventAggregate.from_dict(events[eid]["aggregate"]) for eid in engine.clusterer.events}
        return engine


def _event_order(events: Mapping[str, Any]) -> Callable[[str], tuple[float, str]]:
    """Events by founding time, then id (the stored documents come back in no particular order)."""

    def key(eid: str) -> tuple[float, str]:
        return (float(events[eid]["cluster"]["started"]), eid)

    return key
