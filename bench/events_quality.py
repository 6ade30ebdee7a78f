"""Event clustering quality on hand-labelled message pairs, against a char-bigram TF-IDF single-pass baseline
in the same run; and clustering throughput on 100,000 posts.

Quality: the messages of ``gov_messages/messages_with_replies_2816.xlsx`` (held-out ids excluded) are
clustered in time order, once by the project's method (``config/events.yaml``) and once by the baseline:
the same single-pass algorithm on character-bigram TF-IDF vectors, without place names, whose threshold is
the best on the dev pairs (grid in this run). Pairwise precision / recall / F1 are reported on the *test*
pairs of ``tests/fixtures/event_pairs.csv`` (a pair is predicted "same" when both messages end up in one
event). The dev pairs were used to choose the method and its thresholds (``--tune`` prints that grid).

Throughput: 100,000 posts synthesised from all non-held-out board messages of the three xlsx files (each
post a variant of a real message: a random 70–100 % of its terms, published at a random time over 60 days,
kinds mixed) go through the full engine (clustering, aggregates, heat, forecast, risk), with the inverted
index, timed; the same run without candidate retrieval (every open event scored) on the first posts is the
baseline. jieba segmentation is timed separately on the real messages (it parallelises across processes).

    python -m bench.events_quality [--tune] [--posts 100000]
"""

from __future__ import annotations

import argparse
import csv
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from bench.gov_events import LABELLED, LIKES, REPLIES, Message, load_messages
from events.cluster import Clusterer
from events.config import ClusteringConfig, EventsConfig, Features, load_events_config
from events.engine import EventEngine
from events.text import PostTerms, post_terms
from events.types import EventPost
from nlp.segment import segment
from yuqing.logs import setup_logging
from yuqing.settings import PROJECT_ROOT, Settings, load_settings

PAIRS = PROJECT_ROOT / "tests" / "fixtures" / "event_pairs.csv"
GOAL_F1 = 0.8
GOAL_MARGIN = 0.05
GRID = [round(0.1 + 0.025 * i, 3) for i in range(25)]


@dataclass(frozen=True)
class Pair:
    a: str
    b: str
    same: bool
    split: str
    stratum: str


def load_pairs(path: Path = PAIRS) -> list[Pair]:
    with path.open(encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh))
    for i, r in enumerate(rows, start=2):
        if r["label"] not in ("same", "different") or r["split"] not in ("dev", "test"):
            raise ValueError(f"{path}:{i}: bad label or split: {r}")
    return [Pair(r["id_a"], r["id_b"], r["label"] == "same", r["split"], r["stratum"]) for r in rows]


@dataclass(frozen=True)
class Scores:
    precision: float
    recall: float
    f1: float
    tp: int
    fp: int
    fn: int

    def line(self) -> str:
        return f"P={self.precision:.3f} R={self.recall:.3f} F1={self.f1:.3f} (tp={self.tp} fp={self.fp} fn={self.fn})"


def pair_scores(event_of: dict[str, str], pairs: Sequence[Pair]) -> Scores:
    tp = fp = fn = 0
    for p in pairs:
        predicted = event_of[p.a] == event_of[p.b]
        if predicted and p.same:
            tp += 1
        elif predicted:
            fp += 1
        elif p.same:
            fn += 1
    prec = tp / (tp + fp) if tp + fp else 0.0
    rec = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * prec * rec / (prec + rec) if prec + rec else 0.0
    return Scores(prec, rec, f1, tp, fp, fn)


def terms_for(messages: Sequence[Message], cfg: EventsConfig, features: Features) -> list[PostTerms]:
    return [post_terms(m.title, m.text, cfg.text, segment=segment, features=features) for m in messages]


def cluster(
    messages: Sequence[Message], terms: Sequence[PostTerms], clustering: ClusteringConfig, max_post_terms: int
) -> dict[str, str]:
    c = Clusterer(clustering, max_post_terms)
    out: dict[str, str] = {}
    for m, t in zip(messages, terms, strict=True):
        a, _ = c.assign(m.event_post(), t)
        out[a.post_id] = a.event_id
    return {pid: c.resolve(eid) for pid, eid in out.items()}


def baseline_config(cfg: EventsConfig, threshold: float) -> ClusteringConfig:
    return cfg.clustering.model_copy(update={"threshold": threshold, "place_veto": False})


def best_threshold(
    run: Callable[[float], dict[str, str]], pairs: Sequence[Pair]
) -> tuple[float, Scores, list[tuple[float, Scores]]]:
    grid = [(th, pair_scores(run(th), pairs)) for th in GRID]
    th, sc = max(grid, key=lambda ts: (ts[1].f1, -ts[0]))
    return th, sc, grid


# ---- throughput ---------------------------------------------------------------------------------------------
def synthesise(
    base: Sequence[Message], base_terms: Sequence[PostTerms], n: int, seed: int = 7
) -> list[tuple[EventPost, PostTerms]]:
    """``n`` posts, each a variant of a real message (70–100 % of its terms), over 60 days, in time order."""
    rng = random.Random(seed)
    start = base[0].at.replace(year=2021, month=1, day=1, hour=0, minute=0, second=0)
    kinds = ["message", "message", "article", "social", "search"]
    out: list[tuple[float, int, EventPost, PostTerms]] = []
    for i in range(n):
        j = rng.randrange(len(base))
        m, t = base[j], base_terms[j]
        keep = rng.uniform(0.7, 1.0)
        counts = {k: v for k, v in t.counts.items() if rng.random() < keep}
        offset = rng.uniform(0, 60 * 86400)
        post = EventPost(
            id=f"s{i}", title=m.title, text=m.text, published_at=start + timedelta(seconds=offset),
            source=f"src{rng.randrange(40)}", kind=kinds[i % len(kinds)], likes=rng.randrange(5),
            sentiment=rng.choice(["negative", "neutral", "positive"]),
        )
        out.append((offset, i, post, PostTerms(counts=counts, county=t.county, city=t.city)))
    out.sort(key=lambda x: (x[0], x[1]))
    return [(p, t) for _, _, p, t in out]


def run_engine(cfg: EventsConfig, posts: Sequence[tuple[EventPost, PostTerms]]) -> tuple[float, int]:
    engine = EventEngine(cfg)
    t0 = time.perf_counter()
    for post, terms in posts:
        engine.process(post, terms)
    elapsed = time.perf_counter() - t0
    return len(posts) / elapsed, len(engine.clusterer.events)


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tune", action="store_true", help="print the dev grid of the method's variants")
    ap.add_argument("--posts", type=int, default=100_000, help="posts for the throughput run")
    ap.add_argument("--brute-posts", type=int, default=10_000, help="posts for the no-index baseline run")
    args = ap.parse_args(argv)
    settings: Settings = load_settings()
    setup_logging(settings, "bench:events-quality")
    shared = settings.paths.shared_data
    cfg = load_events_config(settings.config_file("events.yaml"))
    messages = load_messages(shared, REPLIES)
    pairs = load_pairs()
    ids = {m.id for m in messages}
    missing = [p for p in pairs if int(p.a) not in ids or int(p.b) not in ids]
    if missing:
        raise SystemExit(f"{len(missing)} labelled pairs name messages not in {REPLIES}: {missing[:3]}")
    dev = [p for p in pairs if p.split == "dev"]
    test = [p for p in pairs if p.split == "test"]
    print(f"messages: {len(messages)} (held-out excluded); pairs: dev {len(dev)} ({sum(p.same for p in dev)} same), "
          f"test {len(test)} ({sum(p.same for p in test)} same)")

    ours_terms = terms_for(messages, cfg, cfg.text.features)
    bigram_terms = terms_for(messages, cfg, "bigrams")

    if args.tune:
        variants: dict[str, tuple[list[PostTerms], bool]] = {
            f"{cfg.text.features} + place veto": (ours_terms, True),
            f"{cfg.text.features}": (ours_terms, False),
            "bigrams + place veto": (bigram_terms, True),
        }
        if cfg.text.features != "words+bigrams":
            variants["words+bigrams + place veto"] = (terms_for(messages, cfg, "words+bigrams"), True)
        for name, (terms, veto) in variants.items():
            def run(th: float, terms: list[PostTerms] = terms, veto: bool = veto) -> dict[str, str]:
                cc = cfg.clustering.model_copy(update={"threshold": th, "place_veto": veto})
                return cluster(messages, terms, cc, cfg.text.max_post_terms)

            th, sc, grid = best_threshold(run, dev)
            print(f"[dev] {name}: best threshold {th} {sc.line()}")
            print("      " + " ".join(f"{t}:{s.f1:.3f}" for t, s in grid))

    # the method, as configured
    ours = cluster(messages, ours_terms, cfg.clustering, cfg.text.max_post_terms)
    ours_dev, ours_test = pair_scores(ours, dev), pair_scores(ours, test)
    # the baseline, its threshold chosen on dev in this run
    def run_base(th: float) -> dict[str, str]:
        return cluster(messages, bigram_terms, baseline_config(cfg, th), cfg.text.max_post_terms)

    base_th, base_dev, _ = best_threshold(run_base, dev)
    base_test = pair_scores(run_base(base_th), test)
    print(f"method ({cfg.text.features}, threshold {cfg.clustering.threshold}, place veto "
          f"{cfg.clustering.place_veto}): dev {ours_dev.line()}")
    print(f"                         test {ours_test.line()}")
    print(f"baseline (char bigrams, threshold {base_th} chosen on dev): dev {base_dev.line()}")
    print(f"                         test {base_test.line()}")
    base_test_run = run_base(base_th)
    for stratum in ("high", "medium", "low"):
        sub = [p for p in test if p.stratum == stratum]
        if any(p.same for p in sub):
            print(f"  test {stratum:6s} ({len(sub)} pairs): method {pair_scores(ours, sub).line()} | "
                  f"baseline {pair_scores(base_test_run, sub).line()}")
        else:
            print(f"  test {stratum:6s} ({len(sub)} pairs, none same): wrongly joined by the method "
                  f"{pair_scores(ours, sub).fp}, by the baseline {pair_scores(base_test_run, sub).fp}")

    ok = ours_test.f1 >= GOAL_F1 and ours_test.f1 >= base_test.f1 + GOAL_MARGIN
    if args.posts > 0:
        throughput(cfg, shared, args.posts, args.brute_posts)
    print(f"RESULT events_quality f1={ours_test.f1:.3f} baseline_f1={base_test.f1:.3f} "
          f"goal=>={GOAL_F1}&>=baseline+{GOAL_MARGIN} {'PASS' if ok else 'FAIL'}")
    return 0 if ok else 1


def throughput(cfg: EventsConfig, shared: Path, n_posts: int, n_brute: int) -> None:
    base_msgs: list[Message] = []
    for name in (REPLIES, LIKES, LABELLED):
        base_msgs.extend(load_messages(shared, name))
    t0 = time.perf_counter()
    base_terms = terms_for(base_msgs, cfg, cfg.text.features)
    seg_rate = len(base_msgs) / (time.perf_counter() - t0)
    posts = synthesise(base_msgs, base_terms, n_posts)
    rate, n_events = run_engine(cfg, posts)
    brute_cfg = cfg.model_copy(
        update={"clustering": cfg.clustering.model_copy(update={"query_terms": 10_000, "max_candidates": 1_000_000,
                                                                "index_terms": cfg.clustering.centroid_terms})}
    )
    brute_rate, _ = run_engine(brute_cfg, posts[:n_brute])
    index_rate_small, _ = run_engine(cfg, posts[:n_brute])
    print(f"segmentation (jieba, one process): {seg_rate:.0f} posts/s over {len(base_msgs)} real messages")
    print(f"throughput: {len(posts)} posts -> {n_events} events at {rate:.0f} posts/s "
          f"({len(posts) / rate:.0f} s; clustering + aggregates + heat + forecast + risk per post)")
    print(f"first {n_brute} posts: inverted index {index_rate_small:.0f} posts/s vs scoring every candidate "
          f"term's events {brute_rate:.0f} posts/s")


if __name__ == "__main__":
    raise SystemExit(main())
