"""The events update job at scale: 100,000 posts indexed, then clustered by the job from the index (read in time
order, event records, state per batch, posts' event_id), against the engine alone on the same posts in the same
process (the baseline: what the job adds is Elasticsearch reading and writing).

Posts: variants of the real board messages of the three xlsx files (held-out ones excluded): each message is
segmented once with jieba; a variant keeps a random 70–100 % of its tokens (stored as ``title_seg``/``content_seg``,
what the ingest segmentation stage stores), is published at a random time over 60 days with a kind, a source and
a sentiment. They are bulk-indexed into a private index prefix (removed afterwards); then one ``run_once``
drains them, a second run finds nothing, and a fresh updater (a restart) loads the state from Elasticsearch.

Usage: ``nice -n 10 python -m bench.events_job_scale [--posts 100000] [--batch-size 500]``; ends with
``RESULT events_job posts_per_s=<rate> goal=100 PASS|FAIL`` (100 posts/s: 100,000 posts within 17 minutes; the
crawl indexes far fewer).
"""

from __future__ import annotations

import argparse
import random
import time
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from bench.gov_events import LABELLED, LIKES, REPLIES, Message, load_messages
from events.engine import EventEngine
from events.types import EventPost
from index.client import es_client
from index.events import EVENT_SPECS, count_unassigned
from index.layout import POSTS, setup
from index.writer import index_posts
from ingest.events_job import EventsConfigFiles, EventsUpdater, StoredTokens, event_post
from nlp.segment import segment_for_index
from yuqing.logs import setup_logging
from yuqing.models import Analysis, Post
from yuqing.settings import Settings, load_settings

GOAL = 100.0
KINDS = ["message", "message", "article", "social", "search"]
SENTIMENTS = ["negative", "neutral", "positive"]


def synthesise(base: Sequence[Message], n: int, seed: int = 7) -> list[Post]:
    rng = random.Random(seed)
    segs = [(segment_for_index(m.title).split(), segment_for_index(m.text[:600]).split()) for m in base]
    start = datetime(2021, 1, 1, tzinfo=UTC)
    out = []
    for i in range(n):
        j = rng.randrange(len(base))
        m, (title_tokens, body_tokens) = base[j], segs[j]
        keep = rng.uniform(0.7, 1.0)
        at = start + timedelta(seconds=rng.uniform(0, 60 * 86400))
        sentiment = rng.choice(SENTIMENTS)
        out.append(Post(
            url=f"https://bench.example.cn/{i}", title=m.title, content=m.text[:600], source=f"src{rng.randrange(40)}",
            kind=KINDS[i % len(KINDS)], published_at=at, fetched_at=at,
            title_seg=" ".join(title_tokens), content_seg=" ".join(t for t in body_tokens if rng.random() < keep),
            keyword_groups=[],
            analysis=Analysis(sentiment=sentiment, relevant=True, relevance_prob=0.8, model_version="bench"),
        ))
    return out


def baseline(settings: Settings, posts: Sequence[Post], now: datetime) -> float:
    """Posts per second of the engine alone on the same posts, built the way the job builds them."""
    config = EventsConfigFiles.load(settings)
    tokens = StoredTokens(config.events.text.max_chars)
    engine = EventEngine(config.events, unit_of=config.taxonomy.unit_of, segment=tokens)
    ordered = sorted(posts, key=lambda p: (p.published_at or p.fetched_at, p.canonical_url))  # the job's order
    t0 = time.perf_counter()
    batch: list[EventPost] = []
    for p in ordered:
        src = p.model_dump(mode="json")
        tokens.remember(p.title, p.title_seg, p.content, p.content_seg)
        batch.append(event_post(p.doc_id, src, config.groups))
        if len(batch) == 500:
            engine.assign_batch(batch, now.timestamp())
            for eid in engine.clusterer.touched:
                engine.summary(eid, now.timestamp())
            batch = []
            tokens.clear()
    engine.assign_batch(batch, now.timestamp())
    return len(posts) / (time.perf_counter() - t0)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--posts", type=int, default=100_000)
    ap.add_argument("--batch-size", type=int, default=500)
    args = ap.parse_args()
    prefix = f"bench-evjob-{uuid.uuid4().hex[:6]}"
    settings = load_settings(overrides={"elasticsearch": {"index_prefix": prefix}, "logging": {"to_file": False}})
    setup_logging(settings, "bench")
    base: list[Message] = []
    for name in (REPLIES, LIKES, LABELLED):
        base.extend(load_messages(settings.paths.shared_data, name))
    t0 = time.perf_counter()
    posts = synthesise(base, args.posts)
    print(f"{len(posts)} posts synthesised from {len(base)} real messages in {time.perf_counter() - t0:.0f} s")
    now = max(p.published_at for p in posts if p.published_at) + timedelta(hours=1)
    with es_client(settings.elasticsearch) as client:
        try:
            setup(client, settings.elasticsearch, [POSTS, *EVENT_SPECS])
            t0 = time.perf_counter()
            report = index_posts(client, POSTS.alias(prefix), posts, chunk_size=1000, refresh=True)
            print(f"indexed {report.ok} posts in {time.perf_counter() - t0:.0f} s")
            n_base = min(len(posts), 10_000)
            base_rate = baseline(settings, posts[:n_base], now)
            print(f"baseline, the engine alone (the first {n_base} posts, same tokens, summaries built per batch): "
                  f"{base_rate:.0f} posts/s")
            updater = EventsUpdater(settings, client, batch_size=args.batch_size, clock=lambda: now)
            job = updater.run_once()
            rate = job.posts / job.seconds
            print(f"job: {job.summary()} -> {rate:.0f} posts/s ({rate / base_rate:.0%} of the engine alone)")
            client.indices.refresh(index=POSTS.alias(prefix))
            left = count_unassigned(client, POSTS.alias(prefix))
            again = updater.run_once()
            print(f"second run: {again.summary()}; posts left without an event: {left}")
            t0 = time.perf_counter()
            restarted = EventsUpdater(settings, client, batch_size=args.batch_size, clock=lambda: now)
            quiet = restarted.run_once()
            print(f"restart: state loaded and a run with nothing to do in {time.perf_counter() - t0:.1f} s "
                  f"({quiet.summary()})")
            assert left == 0 and job.new == len(posts), (left, job)
        finally:
            client.indices.delete(index=f"{prefix}-*", ignore_unavailable=True)
            client.options(ignore_status=404).indices.delete_index_template(name=f"{prefix}-*")
    print(f"RESULT events_job posts_per_s={rate:.0f} goal={GOAL:.0f} {'PASS' if rate >= GOAL else 'FAIL'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
