"""Event clustering of the demo corpus, whose posts carry the story they belong to: with the 话题 link
(``clustering.hashtag_bonus`` as configured) against the same engine without it, in the same run.

The demo corpus (``yuqing/demo/data``, 310 posts written for the demo, 15 stories) goes through the events engine
in time order with ``config/events.yaml``. Two posts of one story should share an event, two of different stories
should not; the two grab-bag stories (``noise-misc``: unrelated complaints, ``bureau-routine``) count only as
"different". Reported: pairwise precision / recall / F1, the events per story and the largest event's share of the
library story (the demo's rising story, 113 posts, most of them Weibo posts tagged #青川市图书馆突然闭馆# or
#青川市图书馆闭馆#).

A second pair of runs starts from a vocabulary that already counted the corpus once, as the engine's state did
after every earlier ``up`` until the demo reset took the replay's posts out of the document frequencies
(``yuqing.demo.reset.forget_vocabulary``): it shows what the reset saves.

The corpus was written for the demo by the project (the story tags are its authors' own grouping), and it is the
corpus the 话题 bonus was looked at on: read the figures as a check of the mechanism, not as a held-out score. The
board-message pairs of ``bench/events_quality.py`` (no 话题 in them) are the independent check that nothing else
changed.

    python -m bench.events_demo

Ends with ``RESULT events_demo pair_f1=<with the 话题 link> goal=><without it> PASS|FAIL``.
"""

from __future__ import annotations

import itertools
import time
from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from events.config import EventsConfig, load_events_config
from events.engine import EventEngine
from events.text import post_terms
from events.types import EventPost
from yuqing.demo.corpus import DemoPost, load_corpus
from yuqing.settings import PROJECT_ROOT

KINDS = {"news": "article", "notice": "article", "wechat": "article", "message": "message", "social": "social",
         "search": "search"}  # as the demo's sources index them
GRAB_BAGS = frozenset({"noise-misc", "bureau-routine"})
STORY = "library"
T0 = datetime(2026, 11, 1, tzinfo=UTC)


@dataclass(frozen=True)
class Score:
    precision: float
    recall: float
    f1: float
    events: int
    story_events: int
    story_largest: int


def cluster(cfg: EventsConfig, posts: list[DemoPost], *, replayed_before: int = 0) -> dict[str, str]:
    """Each post's event; ``replayed_before``: times the corpus was counted in the vocabulary beforehand."""
    engine = EventEngine(cfg)
    for _ in range(replayed_before):
        for p in posts:
            engine.clusterer.vocab.add(post_terms(p.title, p.text, cfg.text).counts)
    events = {}
    for p in posts:
        r = engine.process(EventPost(id=p.id, title=p.title, text=p.text, kind=KINDS[p.kind],
                                     published_at=T0 + timedelta(minutes=p.at)))
        events[p.id] = r.event_id
    return {pid: engine.clusterer.resolve(eid) for pid, eid in events.items()}


def score(posts: list[DemoPost], event_of: dict[str, str]) -> Score:
    story = {p.id: p.story for p in posts}
    tp = fp = fn = 0
    for a, b in itertools.combinations(sorted(story), 2):
        same_story = story[a] == story[b] and story[a] not in GRAB_BAGS
        same_event = event_of[a] == event_of[b]
        tp += same_story and same_event
        fp += same_event and not same_story
        fn += same_story and not same_event
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    in_story = Counter(event_of[p.id] for p in posts if p.story == STORY)
    return Score(precision, recall, f1, len(set(event_of.values())), len(in_story), in_story.most_common(1)[0][1])


def per_story(posts: list[DemoPost], event_of: dict[str, str]) -> dict[str, tuple[int, int, int]]:
    """story -> (posts, events, largest event)."""
    by: dict[str, Counter[str]] = defaultdict(Counter)
    for p in posts:
        by[p.story][event_of[p.id]] += 1
    return {s: (sum(c.values()), len(c), c.most_common(1)[0][1]) for s, c in by.items()}


def main() -> None:
    cfg = load_events_config(PROJECT_ROOT / "config" / "events.yaml")
    off = cfg.model_copy(update={"clustering": cfg.clustering.model_copy(update={"hashtag_bonus": 0.0})})
    posts = sorted(load_corpus(), key=lambda p: (p.at, p.id))
    n_story = sum(p.story == STORY for p in posts)
    print(f"demo corpus: {len(posts)} posts, {len({p.story for p in posts})} stories; {STORY}: {n_story} posts; "
          f"hashtag_bonus {cfg.clustering.hashtag_bonus}, threshold {cfg.clustering.threshold}")
    runs: dict[str, Score] = {}
    tables = {}
    for name, c, replays in (("without 话题 link", off, 0), ("with 话题 link", cfg, 0),
                             ("without, replay counted", off, 1), ("with, replay counted", cfg, 1)):
        started = time.perf_counter()
        event_of = cluster(c, posts, replayed_before=replays)
        s = runs[name] = score(posts, event_of)
        tables[name] = per_story(posts, event_of)
        print(f"{name:<26} P {s.precision:.3f}  R {s.recall:.3f}  F1 {s.f1:.3f}  events {s.events:>3}  "
              f"{STORY}: {s.story_events} events, largest {s.story_largest} ({s.story_largest / n_story:.0%})  "
              f"{time.perf_counter() - started:.1f} s")
    print("\nper story (posts: events / largest), without -> with the 话题 link:")
    for story, (n, ev0, big0) in sorted(tables["without 话题 link"].items(), key=lambda kv: -kv[1][0]):
        _, ev1, big1 = tables["with 话题 link"][story]
        print(f"  {story:<18} {n:>4}: {ev0:>3} / {big0:<3} -> {ev1:>3} / {big1}")
    base, new = runs["without 话题 link"], runs["with 话题 link"]
    ok = new.f1 > base.f1 and new.precision >= base.precision - 0.01
    print(f"RESULT events_demo pair_f1={new.f1:.4f} goal=>{base.f1:.4f}(without the 话题 link; precision "
          f"{new.precision:.3f} vs {base.precision:.3f}) {'PASS' if ok else 'FAIL'}")


if __name__ == "__main__":
    main()
