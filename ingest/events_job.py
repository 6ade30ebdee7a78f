"""The events update (issue 8): the single writer of event records, run by the scheduler after each crawl and by
``yuqing events update``.

Work queue: the posts without an ``event_id`` — newly indexed ones, and re-indexed ones (indexing replaces the
whole document, so a changed post loses the field and comes back). They are read in time order
(``published_at``, then ``canonical_url``), ``batch_size`` at a time, and each batch:

1. becomes :class:`~events.types.EventPost` s (analysis: sentiment, relevance, topic, places; ``duplicate_of``
   as a hard link; the 专题 ``keyword_groups`` stored by the ingest stage, matched here when missing);
2. goes through the engine (:meth:`~events.engine.EventEngine.assign_batch`; a post the state already holds is
   "known": it keeps its event and counts once);
3. the changed events' records are written (with ``level_history``: one ``{level, at}`` entry per change of
   the risk level);
4. the engine's state delta is saved (``<prefix>-event-state``);
5. the posts' ``event_id`` (and missing ``keyword_groups``) are set.

A crash between any two steps loses and doubles nothing: before 4 the saved state is the previous one and the
posts still lack their ``event_id``, so the batch is redone from the same state with the same result; after 4
the posts come back as "known" and step 5 is repeated. (Members of an event merged into another keep the old
id if the crash falls between 4 and 5; the merged event's record names the survivor in ``merged_into``.)

After the queue is empty, open events not rewritten in this run are scored again at ``now`` (heat cools, a
level can fall) and their records rewritten when the level changed or the heat moved by ``RESCORE_DELTA``.

The engine stays in memory between runs of one process; it is reloaded from Elasticsearch when another process
saved the state since (``saved_at`` of the global state document differs), and after a run that failed (its
changes may be half saved: the saved state is the truth).

Segmentation: the posts' stored jieba tokens (``title_seg`` / ``content_seg``, lower-cased) are used instead of
segmenting again; ``yuqing events assign`` segments the raw text, so Latin words may differ in case.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from elasticsearch import Elasticsearch, helpers

from events.assign import Assigner
from events.config import EventsConfig, load_events_config
from events.engine import EventEngine
from events.keyword_groups import GroupMatcher, load_keyword_groups
from events.types import SENTIMENTS, EventPost
from index.events import (
    EVENT_STATE,
    EVENTS,
    EventRecord,
    LevelChangeRecord,
    get_events,
    load_state,
    save_state,
    set_post_events,
    state_saved_at,
    unassigned_posts,
    upsert_events,
)
from index.layout import POSTS
from nlp.segment import segment as jieba_segment
from nlp.taxonomy import Taxonomy, load_taxonomy
from yuqing.settings import Settings
from yuqing.sources import load_sources

log = logging.getLogger(__name__)

RESCORE_DELTA = 0.5  # heat points an open event must move before its record is rewritten by the rescoring pass
_COLD = 1.0  # an event at level IV below this heat is not rescored again (it only cools further)


@dataclass
class UpdateReport:
    """One run: ``posts`` read from the queue (``new`` of them clustered for the first time), ``events`` records
    written after batches, ``rescored`` records rewritten by the rescoring pass, ``labelled`` posts whose
    ``event_id`` was set."""

    posts: int = 0
    new: int = 0
    labelled: int = 0
    events: int = 0
    rescored: int = 0
    batches: int = 0
    seconds: float = 0.0

    def summary(self) -> str:
        return (f"{self.posts} posts ({self.new} new) in {self.batches} batches, {self.events} event records "
                f"written, {self.rescored} rescored, {self.labelled} posts labelled, {self.seconds:.1f} s")


def plain(value: Any) -> Any:
    """A summary (nested frozen dataclasses and tuples) as plain data for the record model: what
    ``dataclasses.asdict`` gives, without its deep copies (a third of the job's time on a large backlog)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, tuple | list):
        return [plain(v) for v in value]
    return value


def _time(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


class StoredTokens:
    """A segmenter for the events text features that answers from the posts' stored jieba tokens, falling back to
    jieba for a text it was not given."""

    def __init__(self, max_chars: int) -> None:
        self.max_chars = max_chars
        self._tokens: dict[str, list[str]] = {}

    def remember(self, title: str, title_seg: str | None, content: str, content_seg: str | None) -> None:
        if title and title_seg is not None:
            self._tokens[title] = title_seg.split()
        body = content[: self.max_chars]
        if body and content_seg is not None:
            target = len("".join(body.split()))
            out: list[str] = []
            seen = 0
            for tok in content_seg.split():
                if seen >= target:
                    break
                out.append(tok)
                seen += len(tok)
            self._tokens[body] = out

    def clear(self) -> None:
        self._tokens.clear()

    def __call__(self, text: str) -> list[str]:
        tokens = self._tokens.get(text)
        return tokens if tokens is not None else jieba_segment(text)


def event_post(post_id: str, src: Mapping[str, Any], groups: GroupMatcher,
               own_sources: frozenset[str] = frozenset()) -> EventPost:
    """The events engine's view of a stored post (``src``: its ``_source``); ``own_sources``: the names of the
    bureau's own channels (sources.yaml ``own: true``), whose posts are 本局发布."""
    a = src.get("analysis") or {}
    judgement = src.get("judgement")  # 人工研判: analysis holds the person's values, this the classifier's
    eng = src.get("engagement") or {}
    title = src.get("title") or ""
    content = src.get("content") or ""
    stored_groups = src.get("keyword_groups")
    sentiment = a.get("sentiment")
    return EventPost(
        id=post_id,
        title=title,
        text=content,
        published_at=_time(src.get("published_at") or src["fetched_at"]),
        source=src.get("source") or "",
        own=(src.get("source") or "") in own_sources,
        kind=src.get("kind") or "article",
        url=src.get("url"),
        likes=int(eng.get("likes") or 0),
        comments=int(eng.get("comments") or 0),
        reposts=int(eng.get("reposts") or 0),
        sentiment=sentiment if sentiment in SENTIMENTS else None,
        relevant=a.get("relevant"),
        relevance_prob=a.get("relevance_prob"),
        topic=a.get("topic"),
        places=tuple(a.get("places") or ()),
        orgs=tuple(a.get("orgs") or ()),
        duplicate_of=src.get("duplicate_of"),
        keyword_groups=tuple(stored_groups) if stored_groups is not None else groups.match(title, content),
        judged=judgement is not None,
        model_relevant=judgement.get("model_relevant") if judgement is not None else None,
        model_topic=judgement.get("model_topic") if judgement is not None else None,
    )


@dataclass
class _Shown:
    """What the events index holds for an event, as far as the rescoring pass and the level history need."""

    heat: float
    level: str
    history: list[LevelChangeRecord]


@dataclass(frozen=True)
class EventsConfigFiles:
    """The configuration the job reads (``events.yaml``, ``taxonomy.yaml``, ``keyword_groups.yaml``, and from
    ``sources.yaml`` the bureau's own channels); loading it raises a ``ConfigError`` naming the file and the
    field (or 专题 group)."""

    events: EventsConfig
    taxonomy: Taxonomy
    groups: GroupMatcher
    # sources marked ``own: true``, disabled ones too (their posts already indexed are still the bureau's)
    own_sources: frozenset[str] = frozenset()

    @classmethod
    def load(cls, settings: Settings) -> EventsConfigFiles:
        sources = load_sources(settings.config_file("sources.yaml")).sources
        return cls(load_events_config(settings.config_file("events.yaml")),
                   load_taxonomy(settings.config_file("taxonomy.yaml")),
                   GroupMatcher(load_keyword_groups(settings.config_file("keyword_groups.yaml")).groups),
                   frozenset(s.name for s in sources if s.own))


class EventsUpdater:
    """See the module docstring. ``clock``: the time events are scored at (default: now)."""

    def __init__(self, settings: Settings, client: Elasticsearch, *, batch_size: int = 500,
                 clock: Callable[[], datetime] | None = None, config: EventsConfigFiles | None = None) -> None:
        prefix = settings.elasticsearch.index_prefix
        self.client = client
        self.posts_alias = POSTS.alias(prefix)
        self.events_alias = EVENTS.alias(prefix)
        self.state_alias = EVENT_STATE.alias(prefix)
        self.batch_size = batch_size
        self.clock = clock or (lambda: datetime.now(UTC))
        # configuration is read now, so that a mistake shows at start-up (naming the file and the field)
        config = config or EventsConfigFiles.load(settings)
        self.cfg, self.taxonomy, self.groups = config.events, config.taxonomy, config.groups
        self.own_sources = config.own_sources
        self.tokens = StoredTokens(self.cfg.text.max_chars)
        self.engine: EventEngine | None = None
        self._saved_at: str | None = None
        self._shown: dict[str, _Shown] = {}
        self._unreadable: set[str] = set()  # posts skipped (they stay in the queue; logged once per process)

    # ---- state ------------------------------------------------------------------------------------------
    def _new_engine(self, state: Mapping[str, Any] | None) -> EventEngine:
        kw: dict[str, Any] = {"unit_of": self.taxonomy.unit_of, "segment": self.tokens}
        if state is None:
            return EventEngine(self.cfg, **kw)
        return EventEngine.from_state(self.cfg, state, **kw)

    def _load(self) -> EventEngine:
        saved_at = state_saved_at(self.client, self.state_alias)
        if self.engine is not None and saved_at == self._saved_at:
            return self.engine
        if self.engine is not None:
            log.info("events state was saved by another process since this one loaded it; reloading")
        state = load_state(self.client, self.state_alias)
        self.engine = self._new_engine(state)
        self._saved_at = saved_at
        self._shown = self._load_shown()
        log.info("events state loaded: %d events held, %d posts known", len(self.engine.clusterer.events),
                 len(self.engine.clusterer.assigned))
        return self.engine

    def _load_shown(self) -> dict[str, _Shown]:
        """Heat, level and history of the open events' records (what the rescoring pass compares with)."""
        out: dict[str, _Shown] = {}
        hits = helpers.scan(self.client, index=self.events_alias, size=1000,
                            query={"query": {"term": {"status": "open"}},
                                   "_source": ["event_id", "heat", "risk_level", "level_history"]})
        for h in hits:
            s = h["_source"]
            history = [LevelChangeRecord.model_validate(x) for x in s.get("level_history") or []]
            out[h["_id"]] = _Shown(float(s.get("heat") or 0.0), str(s.get("risk_level") or "IV"), history)
        return out

    # ---- one run ----------------------------------------------------------------------------------------
    def run_once(self, *, max_batches: int | None = None) -> UpdateReport:
        """Work the queue (at most ``max_batches`` batches), then rescore the open events (only when the queue
        was emptied).

        A run that fails part-way (Elasticsearch timing out while records, state or labels are written) leaves
        the in-memory engine ahead of what was saved — posts assigned, dirty flags cleared, records "shown" that
        were never written — so it is dropped: the next run reloads the saved state and redoes the batch."""
        try:
            return self._run(max_batches)
        except BaseException:
            self.engine, self._saved_at, self._shown = None, None, {}
            raise

    def _run(self, max_batches: int | None) -> UpdateReport:
        t0 = time.monotonic()
        report = UpdateReport()
        engine = self._load()
        now = self.clock()
        written: set[str] = set()
        after: list[Any] | None = None
        drained = False
        while max_batches is None or report.batches < max_batches:
            page = unassigned_posts(self.client, self.posts_alias, self.batch_size, after)
            if not page:
                drained = True
                break
            after = page[-1][2]
            written.update(self._batch(engine, page, now, report))
            report.batches += 1
        if drained:
            report.rescored = self._rescore(engine, now, written)
        report.seconds = time.monotonic() - t0
        level = logging.INFO if report.new or report.events or report.rescored else logging.DEBUG
        log.log(level, "events update: %s", report.summary())
        return report

    def _batch(self, engine: EventEngine, page: Sequence[tuple[str, dict[str, Any], list[Any]]], now: datetime,
               report: UpdateReport) -> list[str]:
        assigner = Assigner(engine, taxonomy=self.taxonomy)
        posts: list[EventPost] = []
        groups_of: dict[str, list[str]] = {}
        self.tokens.clear()
        for pid, src, _sort in page:
            try:
                post = assigner.enrich(event_post(pid, src, self.groups, self.own_sources))
            except (KeyError, ValueError) as exc:  # a document the engine cannot read: say which (once), go on
                (log.debug if pid in self._unreadable else log.error)(
                    "events update: post %s (%s) skipped: %s", pid, src.get("url"), exc)
                self._unreadable.add(pid)
                continue
            if src.get("keyword_groups") is None:
                groups_of[pid] = list(post.keyword_groups)
            self.tokens.remember(post.title, src.get("title_seg"), post.text, src.get("content_seg"))
            posts.append(post)
        known = sum(1 for p in posts if engine.event_of(p.id) is not None)
        batch = engine.assign_batch(posts, now.timestamp())
        event_of: dict[str, str] = {}
        for p in posts:
            eid = engine.event_of(p.id)
            if eid is not None:
                event_of[p.id] = eid
        event_of.update(batch.event_of)
        records = self._records(engine, batch.changed_events, now)
        if records:
            upsert_events(self.client, self.events_alias, records)
        self._save(engine)
        if event_of or groups_of:
            set_post_events(self.client, self.posts_alias, event_of, groups_of)
        report.posts += len(page)
        report.new += len(posts) - known
        report.labelled += len(event_of)
        report.events += len(records)
        return [r.event_id for r in records]

    def _save(self, engine: EventEngine) -> None:
        delta = engine.state_delta()
        saved = datetime.now(UTC)
        save_state(self.client, self.state_alias, delta.global_state, delta.events, delta.removed, now=saved,
                   refresh=False)
        self._saved_at = state_saved_at(self.client, self.state_alias)

    def _records(self, engine: EventEngine, event_ids: Sequence[str], now: datetime) -> list[EventRecord]:
        missing = [eid for eid in event_ids if eid not in self._shown]
        for eid, rec in get_events(self.client, self.events_alias, missing).items():
            self._shown[eid] = _Shown(rec.heat, rec.risk_level, list(rec.level_history))
        out: list[EventRecord] = []
        for eid in event_ids:
            out.append(self._record(engine, eid, now))
        return out

    def _record(self, engine: EventEngine, eid: str, now: datetime) -> EventRecord:
        summary = engine.summary(eid, now.timestamp())
        record = EventRecord.model_validate(plain(summary))
        shown = self._shown.get(eid)
        history = list(shown.history) if shown is not None else []
        if record.status != "merged":
            if history and history[-1].at == now:  # written by an earlier batch of this run: the run's last counts
                history.pop()
            if not history or history[-1].level != record.risk_level:
                history.append(LevelChangeRecord(level=record.risk_level, at=now))
        record.level_history = history
        if record.status == "open":
            self._shown[eid] = _Shown(record.heat, record.risk_level, history)
        else:
            self._shown.pop(eid, None)
        return record

    def _rescore(self, engine: EventEngine, now: datetime, written: set[str]) -> int:
        """Rewrite the records of open events whose level or heat changed since written (see the module
        docstring); returns how many."""
        changed: list[EventRecord] = []
        at = now.timestamp()
        engine.clusterer.touched.clear()
        engine.close_idle(at)
        closed = [eid for eid in engine.clusterer.touched if eid not in written]
        for eid in sorted(closed):
            changed.append(self._record(engine, eid, now))
        for eid in engine.event_ids(status="open"):
            shown = self._shown.get(eid)
            if eid in written or (shown is not None and shown.level == "IV" and shown.heat < _COLD):
                continue
            score = engine.score(eid, at)
            if shown is not None and shown.level == score.risk.level and abs(shown.heat - score.heat) < RESCORE_DELTA:
                continue
            changed.append(self._record(engine, eid, now))
        if changed:
            upsert_events(self.client, self.events_alias, changed)
        old = engine.prunable(at)  # their records are written: the state forgets them
        if old:
            engine.prune(old)
            log.info("events update: %d events closed more than %g days ago left the engine's state", len(old),
                     engine.cfg.clustering.state_retention_days)
        if closed or old:
            self._save(engine)
        return len(changed)
