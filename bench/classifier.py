"""Classifier benchmark (issues 4, 12): quality of the shipped model beside its baselines, and CPU speed.

Quality, all in this run:
  * relevance on the human-labelled test split (``nlp/labels/relevance.csv``, rows whose uid hashes into
    the test split; never used for training or selection): precision / recall / F1 of the model at the
    configured ``nlp.relevance_threshold`` against the keyword rules of ``config/taxonomy.yaml`` on the
    same rows, with 95% bootstrap intervals;
  * topic accuracy on the relevant test rows (model, model + keyword rules, keyword rules);
  * sentiment macro-F1 by k-fold cross-validation over every labelled sentiment row of the shared data
    (folds grouped by identical text), the model's recipe against the char 1–3-gram TF-IDF + logistic
    regression baseline (``nlp/baseline.py``) trained on the same rows of the same folds. The goal is
    measured on the Weibo posts (the platform's kind of text; reviews have no neutral class); all rows are
    reported too. ``--no-cv`` prints the figures stored in the model's metrics.json instead.
Speed: docs/s of batched CPU inference (threads and batch size from settings.nlp) on the 4,000 SMP2020
eval posts, on 1,000-character news-like articles (official replies from the government board), and of the
full analyzer (model + keywords + names), beside the baseline.

Usage: python bench/classifier.py [--no-cv] [--threads N]
Ends with RESULT lines; the last is the speed goal.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

SPEED_GOAL = 200.0
RELEVANCE_F1_GOAL = 0.8
RELEVANCE_MARGIN = 0.15
SENTIMENT_MARGIN = 0.03


def timed(fn, n_docs: int, repeats: int = 3) -> float:
    """Best docs/s of ``repeats`` runs of ``fn`` (best, not mean: the 2-core machine is shared, and the
    best run is the one least disturbed by other processes; the load average is printed beside it)."""
    best = 0.0
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        best = max(best, n_docs / (time.perf_counter() - t0))
    return best


def news_articles(shared: Path, n: int, length: int = 1000) -> list[str]:
    import pandas as pd

    from nlp.data import clean_text

    df = pd.read_excel(shared / "gov_messages" / "messages_with_replies_2816.xlsx")
    replies = [clean_text(x) for x in df["答复意见"].tolist()]
    pool = "".join(r for r in replies if r)
    return [pool[i * length : (i + 1) * length] for i in range(min(n, len(pool) // length))]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--no-cv", action="store_true", help="sentiment CV figures from metrics.json (no refits)")
    ap.add_argument("--threads", type=int, default=None)
    args = ap.parse_args()

    import torch

    from nlp import train_ngram
    from nlp.analyzer import Analyzer
    from nlp.baseline import fit_baseline
    from nlp.corpus import SMP_FILES
    from nlp.human_labels import split_of
    from nlp.inference import NgramAdapter
    from nlp.ngram import NgramClassifier
    from nlp.taxonomy import load_taxonomy
    from yuqing.settings import load_settings

    settings = load_settings()
    nlp = settings.nlp
    threads = args.threads or nlp.threads
    torch.set_num_threads(threads)
    shared = settings.paths.shared_data
    model_dir = Path(nlp.model_dir)
    cfg = train_ngram.NgramTrainConfig.from_json(model_dir / "train_config.json")
    cfg.taxonomy = str(settings.config_file("taxonomy.yaml"))
    tax = load_taxonomy(Path(cfg.taxonomy))
    model = NgramClassifier.load(model_dir)
    card = json.loads((model_dir / "metrics.json").read_text(encoding="utf-8"))
    thr = nlp.relevance_threshold
    print(f"model {model_dir} | threshold {thr} (rules blended: {model.info.get('blend_rules')}) | threads {threads}")

    # --- relevance and topic on the human test split
    ds = train_ngram.load_dataset(shared, cfg)
    test_rows = [r for r in ds.labels if r.relevant is not None and split_of(r.uid) == "test"]
    # the configured threshold applies to the deployed variant; the other is scored at its own dev threshold
    sel = card["selection"]
    if model.info.get("blend_rules"):
        t = train_ngram.evaluate_test(model, ds, tax, test_rows, sel["relevance_threshold"], thr)
    else:
        t = train_ngram.evaluate_test(model, ds, tax, test_rows, thr, sel["rule_blended_threshold"])
    deployed = "relevance_model_plus_rules" if model.info.get("blend_rules") else "relevance_model"
    print(f"\nrelevance, human test split: {t['n']} texts, {t['relevant']} relevant (never used in training)")
    print(f"{'':<26} {'precision':>9} {'recall':>7} {'F1':>7}   F1 95% CI")
    for key in ("relevance_model", "relevance_model_plus_rules", "relevance_keyword_rules"):
        m = t[key]
        mark = " (deployed)" if key == deployed else ""
        print(f"{key[10:] + mark:<26} {m['precision']:>9.4f} {m['recall']:>7.4f} {m['f1']:>7.4f}   {m['f1_95ci']}")
    ta = t["topic_accuracy"]
    print(f"topic accuracy on {ta['n']} relevant test texts: model {ta['model']} | model + rules "
          f"{ta['model_plus_rules']} | keyword rules {ta['keyword_rules']}")

    # --- sentiment by cross-validation
    if args.no_cv:
        cv = card["sentiment_cv"]
        src = "from metrics.json (training run)"
    else:
        t0 = time.perf_counter()
        cv = train_ngram.sentiment_cv(ds, cfg)
        src = f"recomputed in {time.perf_counter() - t0:.0f}s"
    print(f"\nsentiment, {cv['folds']}-fold cross-validation over every labelled sentiment row ({src}):")
    print(f"{'rows':<18} {'n':>6} | {'model F1':>8} {'acc':>7} | {'baseline F1':>11} {'acc':>7}")
    for part in ("posts", "usual_eval_posts", "all"):
        m, b = cv["model"][part], cv["baseline"][part]
        print(f"{part:<18} {m['n']:>6} | {m['macro_f1']:>8.4f} {m['accuracy']:>7.4f} | "
              f"{b['macro_f1']:>11.4f} {b['accuracy']:>7.4f}")

    # --- speed
    posts = [r.text for r in ds.records.values() if r.source in ("smp_usual_eval", "smp_virus_eval")]
    assert set(SMP_FILES) >= {"smp_usual_eval", "smp_virus_eval"}
    sent = [r for r in ds.records.values() if r.is_post][:20000]
    base = fit_baseline([r.text for r in sent], [r.sentiment for r in sent], seed=cfg.seed)
    base_speed = timed(lambda: base.predict_proba(posts), len(posts))
    model.predict_proba(posts[:64])
    model_speed = timed(lambda: model.predict_proba(posts), len(posts))
    news = news_articles(shared, 200)
    news_speed = timed(lambda: model.predict_proba(news), len(news), repeats=1)
    base_news_speed = timed(lambda: base.predict_proba(news), len(news), repeats=1)
    analyzer = Analyzer(NgramAdapter(model), tax, nlp, "bench")
    sample = posts[:1000]
    analyzer.analyze(sample[:32])
    full_speed = timed(lambda: analyzer.analyze(sample), len(sample), repeats=1)
    load = os.getloadavg()
    print(
        f"\nspeed ({threads} threads; best of 3 runs; load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} "
        f"on {os.cpu_count()} CPUs):"
    )
    print(f"  baseline        SMP2020 eval posts {base_speed:8.1f} docs/s  ({len(posts)} posts)")
    print(f"  model           SMP2020 eval posts {model_speed:8.1f} docs/s")
    print(f"  baseline        1000-char news     {base_news_speed:8.1f} docs/s")
    print(f"  model           1000-char news     {news_speed:8.1f} docs/s  ({len(news)} articles)")
    print(f"  full analyzer   posts              {full_speed:8.1f} docs/s  (model + keywords + place/org names)")
    size_mb = sum(p.stat().st_size for p in model_dir.iterdir() if p.is_file()) / 1e6
    print(f"  model directory size {size_mb:.1f} MB")

    f1 = t[deployed]["f1"]
    rules_f1 = t["relevance_keyword_rules"]["f1"]
    goal = max(RELEVANCE_F1_GOAL, rules_f1 + RELEVANCE_MARGIN)
    print()
    print(f"RESULT classifier relevance_f1={f1:.4f} goal=>{goal:.4f}(max({RELEVANCE_F1_GOAL}, rules {rules_f1:.4f}"
          f"+{RELEVANCE_MARGIN})) {'PASS' if f1 >= goal else 'FAIL'}")
    topic_acc = ta["model_plus_rules" if model.info.get("blend_topic_rules") else "model"]
    print(f"RESULT classifier topic_accuracy={topic_acc:.4f} "
          f"goal=report(n={ta['n']}) PASS")
    m_f1 = cv["model"]["posts"]["macro_f1"]
    b_f1 = cv["baseline"]["posts"]["macro_f1"]
    print(f"RESULT classifier sentiment_macro_f1_cv={m_f1:.4f} goal=>{b_f1 + SENTIMENT_MARGIN:.4f}(baseline "
          f"{b_f1:.4f}+{SENTIMENT_MARGIN}) {'PASS' if m_f1 >= b_f1 + SENTIMENT_MARGIN else 'FAIL'}")
    print(f"RESULT classifier model_size_mb={size_mb:.1f} goal=<=30 {'PASS' if size_mb <= 30 else 'FAIL'}")
    print(f"RESULT classifier docs_per_s={model_speed:.1f} goal={SPEED_GOAL:.0f} "
          f"{'PASS' if model_speed >= SPEED_GOAL else 'FAIL'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
