"""The events engine's bounded vocabulary (``events.yaml`` → ``text.max_vocabulary``): what it saves and what it
costs, against the unbounded vocabulary in the same run.

Why: the document frequencies live in the clustering state's global document, which the events job rewrites
after every batch. Real posts bring new words for ever (names, numbers, slang), so without a bound that document
grows with the years of posts behind it, and with it every batch's save (and every restart's load).

Stream: first a background of every other text of the shared data (Weibo posts, reviews, news headlines, the
board messages of the other two files; held-out messages excluded; about 42,000), shuffled with a fixed seed,
published one every 30 s as social posts and ending four days before the first labelled message, so that they
share no event with the messages but fill the vocabulary as years of posts would; then the board messages of
``messages_with_replies_2816.xlsx`` in their own time order, the messages of the hand-labelled pairs of
``tests/fixtures/event_pairs.csv`` (what ``bench/events_quality.py`` scores). Each text is segmented once and the
same terms go to both clusterings; the baseline keeps every term, the other at most ``--max-vocabulary``
(default 20,000, a fraction of what the stream brings, so that it prunes many times; the shipped bound is
200,000).

Reported per clustering: the vocabulary and the global state document (JSON bytes) at the end; the time to save
that document to Elasticsearch (median of 5, a private index prefix, removed afterwards), which every batch pays;
the clustering time; and the pairwise F1 on the labelled pairs (dev and test). The goal: the bounded vocabulary
loses at most 0.02 of test F1. The unbounded state is also saved as it was before the frequencies became one
string (a JSON key per term), for the encoding's share of the save time.

    python -m bench.events_vocabulary [--max-vocabulary 20000]

Ends with ``RESULT events_vocabulary f1=<bounded test F1> baseline_f1=<unbounded> goal=>=baseline-0.02 PASS|FAIL``.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import time
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from bench.events_quality import load_pairs, pair_scores
from bench.gov_events import REPLIES, Message, load_messages
from events.cluster import Clusterer
from events.config import EventsConfig, load_events_config
from events.text import PostTerms, post_terms
from events.types import EventPost
from index.client import es_client
from index.events import EVENT_STATE, save_state
from index.layout import setup
from nlp.corpus import load_records
from nlp.segment import segment
from yuqing.logs import setup_logging
from yuqing.settings import Settings, load_settings

GOAL_LOSS = 0.02
UNBOUNDED = None


def background(settings: Settings, messages: Sequence[Message]) -> list[EventPost]:
    ids = {f"gov:{m.id}" for m in messages}
    records = [r for r in load_records(settings.paths.shared_data) if r.uid not in ids]
    random.Random(11).shuffle(records)
    end = min(m.at for m in messages) - timedelta(days=4)
    return [EventPost(id=r.uid, title="", text=r.text, kind="social",
                      published_at=end - timedelta(seconds=30 * (len(records) - i)))
            for i, r in enumerate(records)]


def cluster(cfg: EventsConfig, stream: Sequence[tuple[EventPost, PostTerms]],
            bound: int | None) -> tuple[Clusterer, dict[str, str], float]:
    c = Clusterer(cfg.clustering, cfg.text.max_post_terms, bound)
    out: dict[str, str] = {}
    t0 = time.perf_counter()
    for post, terms in stream:
        a, _ = c.assign(post, terms)
        out[a.post_id] = a.event_id
    seconds = time.perf_counter() - t0
    return c, {pid: c.resolve(eid) for pid, eid in out.items()}, seconds


def save_seconds(settings: Settings, global_state: dict[str, object]) -> float:
    prefix = f"bench-vocab-{uuid.uuid4().hex[:6]}"
    es = settings.elasticsearch.model_copy(update={"index_prefix": prefix})
    with es_client(es) as client:
        try:
            setup(client, es, [EVENT_STATE])
            alias = EVENT_STATE.alias(prefix)
            times = []
            for _ in range(5):
                t0 = time.perf_counter()
                save_state(client, alias, global_state, {}, [], now=datetime.now(UTC), refresh=False)
                times.append(time.perf_counter() - t0)
            return statistics.median(times)
        finally:
            client.indices.delete(index=f"{prefix}-*", ignore_unavailable=True)
            client.options(ignore_status=404).indices.delete_index_template(name=f"{prefix}-*")


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--max-vocabulary", type=int, default=20_000)
    args = ap.parse_args()
    settings = load_settings(overrides={"logging": {"to_file": False}})
    setup_logging(settings, "bench")
    cfg = load_events_config(settings.config_file("events.yaml"))
    messages = sorted(load_messages(settings.paths.shared_data, REPLIES), key=lambda m: (m.at, m.id))
    pairs = load_pairs()
    posts = [*background(settings, messages), *(m.event_post() for m in messages)]
    t0 = time.perf_counter()
    stream = [(p, post_terms(p.title, p.text, cfg.text, segment=segment)) for p in posts]
    print(f"{len(posts) - len(messages)} background posts, then {len(messages)} board messages; segmented in "
          f"{time.perf_counter() - t0:.0f} s")

    f1: dict[str, float] = {}
    sizes: dict[str, tuple[int, float]] = {}
    for name, bound in (("unbounded", UNBOUNDED), ("bounded", args.max_vocabulary)):
        clusterer, event_of, seconds = cluster(cfg, stream, bound)
        state = clusterer.to_state(events=False)
        size = len(json.dumps(state, ensure_ascii=False).encode("utf-8"))
        save = save_seconds(settings, state)
        sizes[name] = (size, save)
        if bound is None:
            keyed = {**state, "vocab": {"n_docs": clusterer.vocab.n_docs, "df": dict(clusterer.vocab.df)}}
            print(f"unbounded, the frequencies saved as a JSON key per term (before): "
                  f"{len(json.dumps(keyed, ensure_ascii=False).encode('utf-8')) / 1e6:.2f} MB, saved in "
                  f"{save_seconds(settings, keyed) * 1000:.0f} ms (median of 5)")
        scores = {split: pair_scores(event_of, [p for p in pairs if p.split == split]) for split in ("dev", "test")}
        f1[name] = scores["test"].f1
        label = "unbounded (baseline)" if bound is None else f"bounded at {bound}"
        print(f"{label}: {len(clusterer.vocab.df)} terms, global state {size / 1e6:.2f} MB, saved in "
              f"{save * 1000:.0f} ms (median of 5); clustered in {seconds:.0f} s; "
              f"pairs dev F1 {scores['dev'].f1:.3f}, test {scores['test'].line()}")
    (size0, save0), (size1, save1) = sizes["unbounded"], sizes["bounded"]
    print(f"bounded: state {size0 / size1:.1f}x smaller, its save {save0 / save1:.1f}x faster")
    ok = f1["bounded"] >= f1["unbounded"] - GOAL_LOSS
    print(f"RESULT events_vocabulary f1={f1['bounded']:.3f} baseline_f1={f1['unbounded']:.3f} "
          f"goal=>=baseline-{GOAL_LOSS} {'PASS' if ok else 'FAIL'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
