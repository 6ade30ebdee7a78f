"""Training and evaluation of the CPU n-gram classifier (:mod:`nlp.ngram`) from the shared data + human labels.

Data (all from :func:`nlp.corpus.load_records`, so the held-out board messages are never read):

* sentiment: every labelled sentiment row of the shared data (SMP2020 ``virus_train``, ``usual_eval``,
  ``virus_eval``; hotel and food-delivery reviews), learned over fine classes (six emotions, two review
  polarities) and summed into negative / neutral / positive; reviews weighted ``review_weight``;
* relevance: the human labels' train split (``uncertain`` rows left out) + a seeded sample of unlabelled
  texts with weak keyword-rule labels (:func:`nlp.taxonomy.rule_relevant`, TNEWS ``news_culture``),
  weighted ``weak_weight``;
* topic: the relevant rows of the human train split + weak rule topics of the weak sample, weighted
  ``weak_topic_weight``.

The human test split (:func:`nlp.human_labels.split_of`) is never used for fitting, for the vocabulary or
for choosing anything; the decision threshold is chosen on out-of-fold predictions over the train split
(each fold is a dev split for a model fitted on the others). Sentiment is reported by k-fold
cross-validation against the char TF-IDF + LR baseline trained on the same rows (same folds).

Usage: ``yuqing nlp train nlp/configs/ngram.json`` (or ``python -m nlp.train_ngram CONFIG [KEY=VALUE ...]``).
"""

from __future__ import annotations

import json
import random
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any

import numpy as np

from nlp.corpus import Record
from nlp.data import IGNORE, RELEVANCE, SENTIMENTS
from nlp.human_labels import LABELS_FILE, LabelRow
from nlp.ngram import Head, NgramClassifier, head_tail

# fine sentiment classes -> index in SENTIMENTS (surprise -> neutral: see nlp.data.EMOTION_TO_SENTIMENT)
FINE_SENTIMENT: dict[str, int] = {
    "angry": 0,
    "sad": 0,
    "fear": 0,
    "review_negative": 0,
    "neutral": 1,
    "surprise": 1,
    "happy": 2,
    "review_positive": 2,
}


@dataclass
class NgramTrainConfig:
    model_type: str = "char_ngram"
    output_dir: str = "models/yuqing-zh-ngram"
    taxonomy: str = "config/taxonomy.yaml"
    labels: str = str(LABELS_FILE)
    # `yuqing judgements export` files: officers' 人工研判 as extra train-split labels (nlp.judged_labels)
    extra_labels: tuple[str, ...] = ()
    # features
    ngram_max: int = 3
    min_df: int = 2
    max_features: int = 200_000
    max_chars: int = 1024  # characters read per text (head + tail)
    tail_chars: int = 256
    # long texts: head only (0) or head + tail; the tail length with the best out-of-fold relevance F1 is
    # kept (only board messages and articles are longer than max_chars)
    tail_candidates: tuple[int, ...] = (0, 256)
    # sentiment head
    sentiment_C: float = 2.0
    fine_sentiment: bool = True
    review_weight: float = 1.0
    # relevance head
    relevance_C: float = 4.0
    weak_sample: int = 15_000
    weak_weight: float = 0.0
    # topic head
    topic_C: float = 4.0
    weak_topic_weight: float = 0.2
    # selection / evaluation
    folds: int = 5
    sentiment_cv: bool = True  # k-fold CV of sentiment against the baseline (minutes on 2 cores)
    n_jobs: int = 5  # folds fitted in parallel processes (the shared machine is CPU-bound)
    seed: int = 42

    @classmethod
    def from_json(cls, path: Path) -> NgramTrainConfig:
        data = json.loads(path.read_text(encoding="utf-8"))
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"{path}: unknown option(s) {unknown}; known: {sorted(known)}")
        if "tail_candidates" in data:
            data["tail_candidates"] = tuple(data["tail_candidates"])
        return cls(**data)


@dataclass
class Dataset:
    """Everything training and evaluation read, keyed by uid."""

    records: dict[str, Record]
    fine_emotion: dict[str, str]  # SMP uid -> original emotion label
    labels: list[LabelRow]  # human labels (all splits)
    topics: list[str]
    weak: list[Record]  # unlabelled texts with weak rule labels (never a labelled uid)
    # The labels file's first reading (``labels`` is the gold: the adjudicated second reading): evaluation folds
    # are drawn from it, so that a later reading never moves a text between training and evaluation. None: as
    # ``labels``.
    first_labels: list[LabelRow] | None = None


def load_dataset(shared: Path, cfg: NgramTrainConfig) -> Dataset:
    from nlp.corpus import SMP_FILES, load_records
    from nlp.human_labels import first_reading, load_labels
    from nlp.taxonomy import load_taxonomy

    tax = load_taxonomy(Path(cfg.taxonomy))
    records = {r.uid: r for r in load_records(shared)}
    fine: dict[str, str] = {}
    for src, rel in SMP_FILES.items():
        for r in json.loads((shared / rel).read_text(encoding="utf-8")):
            fine[f"{src}:{r['id']}"] = str(r["label"])
    labels = load_labels(tax.names, Path(cfg.labels))
    missing = [r.uid for r in labels if r.uid not in records]
    if missing:
        raise ValueError(f"{cfg.labels}: {len(missing)} labelled uid(s) not in the shared data, e.g. {missing[:3]}")
    if cfg.extra_labels:
        judged = _judged(shared, cfg.extra_labels, tax.names, records, labels)
        records.update({r.uid: r for r in judged.records})
        labels = labels + judged.labels
    labelled = {r.uid for r in labels}
    pool = sorted(u for u in records if u not in labelled)
    random.Random(cfg.seed).shuffle(pool)
    weak = [records[u] for u in pool[: cfg.weak_sample]]
    return Dataset(records, fine, labels, tax.names, weak, first_reading(tax.names, Path(cfg.labels)))


def _judged(shared: Path, paths: Sequence[str], topics: list[str], records: dict[str, Record],
            labels: list[LabelRow]) -> Any:
    """Officers' judged texts (:mod:`nlp.judged_labels`), none that is a test-split or held-out text."""
    from nlp.corpus import gov_records, load_holdout_ids
    from nlp.human_labels import split_of
    from nlp.judged_labels import load_judged

    holdout = load_holdout_ids(shared)
    banned = {r.text for r in gov_records(shared, set()) if r.uid.split(":", 1)[1] in holdout}
    banned |= {records[r.uid].text for r in labels if split_of(r.uid) == "test"}
    return load_judged(paths, topics, banned=banned, labelled={records[r.uid].text for r in labels})


def fine_sentiment_label(rec: Record, fine_emotion: dict[str, str]) -> str:
    if rec.is_post:
        return fine_emotion[rec.uid]
    return "review_positive" if rec.sentiment == SENTIMENTS.index("positive") else "review_negative"


def make_vectorizer(cfg: NgramTrainConfig) -> Any:
    from sklearn.feature_extraction.text import TfidfVectorizer

    return TfidfVectorizer(
        analyzer="char",
        ngram_range=(1, cfg.ngram_max),
        min_df=cfg.min_df,
        sublinear_tf=True,
        max_features=cfg.max_features,
        dtype=np.float32,
    )


def _lr(C: float, seed: int) -> Any:
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression(C=C, max_iter=2000, class_weight="balanced", random_state=seed)


def fit_head(X: Any, y: list[str], w: np.ndarray, C: float, seed: int, label_of: dict[str, int]) -> Head:
    """A logistic-regression head over the string classes ``y`` (summed into labels by ``label_of``)."""
    m = _lr(C, seed)
    m.fit(X, np.asarray(y), sample_weight=w)
    classes = [str(c) for c in m.classes_]
    return Head(classes, [label_of[c] for c in classes], m.coef_.astype(np.float32), m.intercept_.astype(np.float32))


def _uniform_head(labels: list[str], n_features: int) -> Head:
    return Head(labels, list(range(len(labels))), np.zeros((len(labels), n_features), np.float32),
                np.zeros(len(labels), np.float32))


@dataclass
class TrainingRows:
    texts: list[str]
    sentiment: list[str | None]  # fine class or None
    sentiment_w: list[float]
    relevance: list[int]  # 0/1 or IGNORE
    relevance_w: list[float]
    topic: list[str | None]
    topic_w: list[float]


def training_rows(
    ds: Dataset, cfg: NgramTrainConfig, *, sentiment_uids: set[str], relevance_rows: list[LabelRow]
) -> TrainingRows:
    """The rows of one fit: sentiment rows by uid, human relevance/topic rows, the weak sample."""
    from nlp.taxonomy import load_taxonomy, rule_relevant, rule_topic

    tax = load_taxonomy(Path(cfg.taxonomy))
    rows = TrainingRows([], [], [], [], [], [], [])

    def add(text: str, sent: str | None, sw: float, rel: int, rw: float, topic: str | None, tw: float) -> None:
        rows.texts.append(text)
        rows.sentiment.append(sent)
        rows.sentiment_w.append(sw)
        rows.relevance.append(rel)
        rows.relevance_w.append(rw)
        rows.topic.append(topic)
        rows.topic_w.append(tw)

    human = {r.uid: r for r in relevance_rows if r.relevant is not None}
    for uid in sorted(sentiment_uids | set(human)):
        rec = ds.records[uid]
        sent = fine_sentiment_label(rec, ds.fine_emotion) if uid in sentiment_uids else None
        sw = 1.0 if rec.is_post else cfg.review_weight
        h = human.get(uid)
        rel = IGNORE if h is None else int(bool(h.relevant))
        topic = h.topic if h is not None and h.relevant else None
        add(rec.text, sent, sw, rel, 1.0, topic, 1.0)
    if cfg.weak_weight > 0 or cfg.weak_topic_weight > 0:
        for rec in ds.weak:
            if rec.uid in sentiment_uids:
                continue  # already a row (its relevance stays unlabelled)
            rel = int(rule_relevant(rec.text, tax) or rec.category in tax.relevance.tnews_relevant)
            topic = rule_topic(rec.text, tax) if rel else None
            rel_label = rel if cfg.weak_weight > 0 else IGNORE
            add(rec.text, None, 0.0, rel_label, cfg.weak_weight, topic, cfg.weak_topic_weight)
    return rows


def fit_model(ds: Dataset, cfg: NgramTrainConfig, rows: TrainingRows) -> NgramClassifier:
    vec = make_vectorizer(cfg)
    tail = min(cfg.tail_chars, cfg.max_chars // 4)
    X = vec.fit_transform([head_tail(t, cfg.max_chars, tail) for t in rows.texts])
    heads: dict[str, Head] = {}
    si = [i for i, s in enumerate(rows.sentiment) if s is not None]
    if si:
        if cfg.fine_sentiment:
            ys = [str(rows.sentiment[i]) for i in si]
            label_of = FINE_SENTIMENT
        else:
            ys = [SENTIMENTS[FINE_SENTIMENT[str(rows.sentiment[i])]] for i in si]
            label_of = {s: k for k, s in enumerate(SENTIMENTS)}
        heads["sentiment"] = fit_head(
            X[si], ys, np.asarray([rows.sentiment_w[i] for i in si]), cfg.sentiment_C, cfg.seed, label_of
        )
    ri = [i for i, r in enumerate(rows.relevance) if r != IGNORE and rows.relevance_w[i] > 0]
    if len({rows.relevance[i] for i in ri}) == 2:
        heads["relevance"] = fit_head(
            X[ri],
            [RELEVANCE[rows.relevance[i]] for i in ri],
            np.asarray([rows.relevance_w[i] for i in ri]),
            cfg.relevance_C,
            cfg.seed,
            {s: k for k, s in enumerate(RELEVANCE)},
        )
    else:  # no relevance labels in this fit (sentiment cross-validation folds, smoke tests)
        heads["relevance"] = _uniform_head(list(RELEVANCE), X.shape[1])
    ti = [i for i, t in enumerate(rows.topic) if t is not None and rows.topic_w[i] > 0]
    if len({str(rows.topic[i]) for i in ti}) >= 2:
        heads["topic"] = fit_head(
            X[ti],
            [str(rows.topic[i]) for i in ti],
            np.asarray([rows.topic_w[i] for i in ti]),
            cfg.topic_C,
            cfg.seed,
            {s: k for k, s in enumerate(ds.topics)},
        )
    else:
        heads["topic"] = _uniform_head(list(ds.topics), X.shape[1])
    task_labels = {"sentiment": list(SENTIMENTS), "relevance": list(RELEVANCE), "topic": list(ds.topics)}
    return NgramClassifier(task_labels, vec, heads, cfg.max_chars, cfg.tail_chars)


# --- metrics ---------------------------------------------------------------------------------------------


def prf(y_true: list[int] | np.ndarray, y_pred: list[int] | np.ndarray) -> dict[str, float]:
    """Precision / recall / F1 of the positive class (1), with counts."""
    t = np.asarray(y_true, dtype=bool)
    p = np.asarray(y_pred, dtype=bool)
    tp, fp, fn = int((t & p).sum()), int((~t & p).sum()), int((t & ~p).sum())
    prec = tp / (tp + fp) if tp + fp else 0.0
    rec = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * prec * rec / (prec + rec) if prec + rec else 0.0
    return {"precision": round(prec, 4), "recall": round(rec, 4), "f1": round(f1, 4), "tp": tp, "fp": fp, "fn": fn}


def bootstrap_f1_ci(y_true: np.ndarray, y_pred: np.ndarray, n: int = 2000, seed: int = 0) -> list[float]:
    """95% percentile bootstrap interval of the positive-class F1 (rows resampled)."""
    rng = np.random.default_rng(seed)
    t = np.asarray(y_true, dtype=bool)
    p = np.asarray(y_pred, dtype=bool)
    f1s = []
    for _ in range(n):
        i = rng.integers(0, len(t), len(t))
        f1s.append(prf(t[i], p[i])["f1"])
    return [round(float(np.percentile(f1s, 2.5)), 3), round(float(np.percentile(f1s, 97.5)), 3)]


def best_threshold(y_true: np.ndarray, scores: np.ndarray) -> tuple[float, float]:
    """(threshold, F1) maximising the positive-class F1 of ``scores >= threshold``. Every threshold in
    (previous score, best score] predicts the same, so the midpoint is returned (a margin both ways); among
    equally good scores the middle one is taken."""
    cand = np.unique(np.round(scores, 4))
    f1 = np.array([prf(y_true, scores >= c)["f1"] for c in cand])
    best = np.flatnonzero(f1 == f1.max())
    i = int(best[len(best) // 2])
    thr = (cand[i - 1] + cand[i]) / 2 if i > 0 else cand[i]
    return round(float(thr), 4), float(f1[i])


def blend_topic_argmax(probs: np.ndarray, text: str, tax: Any, topics: list[str]) -> str:
    """The topic after blending the model's distribution with the keyword rules' (as the analyzer does)."""
    from nlp.taxonomy import rule_distribution

    rd = rule_distribution(text, tax)
    p = probs if not rd else (1 - tax.rule_weight) * probs + tax.rule_weight * np.array([rd[t] for t in topics])
    return topics[int(np.argmax(p))]


def rule_blend(model_prob: np.ndarray, rule_fired: np.ndarray, confidence: float) -> np.ndarray:
    return 1.0 - (1.0 - model_prob) * (1.0 - confidence * rule_fired.astype(np.float32))


# --- the training run ------------------------------------------------------------------------------------


def run(cfg: NgramTrainConfig, shared: Path) -> dict[str, Any]:
    """Select (OOF over the train split), evaluate on the test split, CV sentiment, refit and save."""
    from sklearn.model_selection import StratifiedKFold

    from nlp.human_labels import split_of
    from nlp.taxonomy import load_taxonomy, rule_relevant

    t0 = time.time()
    tax = load_taxonomy(Path(cfg.taxonomy))
    ds = load_dataset(shared, cfg)
    sentiment_uids = {u for u, r in ds.records.items() if r.sentiment != IGNORE}
    human = [r for r in ds.labels if r.relevant is not None]
    train_rows = [r for r in human if split_of(r.uid) == "train"]
    test_rows = [r for r in human if split_of(r.uid) == "test"]
    metrics: dict[str, Any] = {
        "config": asdict(cfg),
        "data": {
            "sentiment_rows": len(sentiment_uids),
            "labels": len(ds.labels),
            "labels_uncertain": sum(r.relevant is None for r in ds.labels),
            "relevance_train": [len(train_rows), sum(bool(r.relevant) for r in train_rows)],
            "relevance_test": [len(test_rows), sum(bool(r.relevant) for r in test_rows)],
            "weak_sample": len(ds.weak),
        },
    }
    print(f"data {json.dumps(metrics['data'])}", flush=True)

    # 1. relevance threshold on out-of-fold predictions over the train split (sentiment rows left out: the
    #    relevance and topic heads do not depend on them)
    y_tr = np.array([int(bool(r.relevant)) for r in train_rows])
    texts_tr = [ds.records[r.uid].text for r in train_rows]
    skf = StratifiedKFold(cfg.folds, shuffle=True, random_state=cfg.seed)
    by_tail: dict[int, tuple[float, np.ndarray, np.ndarray]] = {}
    tails = sorted(set(cfg.tail_candidates) | {cfg.tail_chars})
    splits = list(skf.split(np.zeros(len(y_tr)), y_tr))
    jobs = [(tail, k) for tail in tails for k in range(len(splits))]
    calls = [
        (_relevance_fold, (ds, replace(cfg, tail_chars=tail), train_rows, splits[k][0], splits[k][1]))
        for tail, k in jobs
    ]
    outs = _parallel(cfg.n_jobs, calls)
    for tail in tails:
        oof = np.zeros(len(train_rows), dtype=np.float32)
        oof_topic = np.zeros((len(train_rows), len(ds.topics)), dtype=np.float32)
        for (t, k), (p_rel, p_topic) in zip(jobs, outs, strict=True):
            if t == tail:
                oof[splits[k][1]] = p_rel
                oof_topic[splits[k][1]] = p_topic
        by_tail[tail] = (best_threshold(y_tr, oof)[1], oof, oof_topic)
        print(f"tail_chars {tail}: out-of-fold relevance F1 {by_tail[tail][0]:.4f}", flush=True)
    best_tail = max(by_tail, key=lambda k: (by_tail[k][0], k == cfg.tail_chars))
    cfg = replace(cfg, tail_chars=best_tail)
    _, oof, oof_topic = by_tail[best_tail]
    rule_tr = np.array([rule_relevant(t, tax) for t in texts_tr])
    thr, f1_oof = best_threshold(y_tr, oof)
    thr_b, f1_oof_b = best_threshold(y_tr, rule_blend(oof, rule_tr, tax.relevance.rule_confidence))
    blend_rules = f1_oof_b > f1_oof
    topic_idx = [i for i, r in enumerate(train_rows) if r.relevant and r.topic]
    gold = [train_rows[i].topic for i in topic_idx]
    pairs = list(zip(topic_idx, gold, strict=True))
    acc_model = float(np.mean([ds.topics[int(oof_topic[i].argmax())] == g for i, g in pairs]))
    acc_blend = float(np.mean([blend_topic_argmax(oof_topic[i], texts_tr[i], tax, ds.topics) == g for i, g in pairs]))
    blend_topic = acc_blend > acc_model
    metrics["selection"] = {
        "tail_chars_oof_f1": {str(k): round(v[0], 4) for k, v in by_tail.items()},
        "tail_chars": best_tail,
        "relevance_threshold": thr,
        "oof_f1": round(f1_oof, 4),
        "rule_blended_threshold": thr_b,
        "rule_blended_oof_f1": round(f1_oof_b, 4),
        "blend_rules": bool(blend_rules),
        "deployed_threshold": thr_b if blend_rules else thr,
        "topic_oof_accuracy": {"model": round(acc_model, 4), "model_plus_rules": round(acc_blend, 4), "n": len(gold)},
        "blend_topic_rules": bool(blend_topic),
    }
    print(f"selection {metrics['selection']}", flush=True)

    # 2. the model used on the test split: trained on the whole train split (+ every sentiment row), fitted
    #    in parallel with the sentiment cross-validation folds
    cv = SentimentCV.build(ds, cfg) if cfg.sentiment_cv else None
    final_call = (_final_fit, (ds, cfg, sentiment_uids, train_rows))
    outs = _parallel(cfg.n_jobs + 1, [final_call] + (cv.calls(ds, cfg) if cv else []))
    final = outs[0]
    final.info = {
        "relevance_threshold": metrics["selection"]["deployed_threshold"],
        "blend_rules": bool(blend_rules),
        "blend_topic_rules": bool(blend_topic),
    }
    metrics["test"] = evaluate_test(final, ds, tax, test_rows, thr, thr_b)
    print(f"test {json.dumps(metrics['test'], ensure_ascii=False)}", flush=True)
    if cv is not None:
        metrics["sentiment_cv"] = cv.report(outs[1:])
        print(f"sentiment_cv {json.dumps(metrics['sentiment_cv'])}", flush=True)
    metrics["seconds"] = round(time.time() - t0, 1)
    out = Path(cfg.output_dir)
    final.save(out)
    (out / "metrics.json").write_text(json.dumps(metrics, ensure_ascii=False, indent=1), encoding="utf-8")
    (out / "train_config.json").write_text(json.dumps(asdict(cfg), indent=1), encoding="utf-8")
    return metrics


def _parallel(n_jobs: int, calls: list[tuple[Any, tuple[Any, ...]]]) -> list[Any]:
    """Results of ``fn(*args)`` for each call, in order, in up to ``n_jobs`` worker processes."""
    if n_jobs <= 1:
        return [fn(*args) for fn, args in calls]
    from joblib import Parallel, delayed

    return list(Parallel(n_jobs=n_jobs)(delayed(fn)(*args) for fn, args in calls))


def _final_fit(ds: Dataset, cfg: NgramTrainConfig, sentiment_uids: set[str], rows: list[LabelRow]) -> NgramClassifier:
    return fit_model(ds, cfg, training_rows(ds, cfg, sentiment_uids=sentiment_uids, relevance_rows=rows))


def _relevance_fold(
    ds: Dataset, cfg: NgramTrainConfig, rows: list[LabelRow], fit_idx: np.ndarray, pred_idx: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    m = fit_model(ds, cfg, training_rows(ds, cfg, sentiment_uids=set(), relevance_rows=[rows[i] for i in fit_idx]))
    p = m.predict_proba([ds.records[rows[i].uid].text for i in pred_idx])
    return p["relevance"][:, 1], p["topic"]


def _sentiment_fold(
    ds: Dataset, cfg: NgramTrainConfig, texts: list[str], y: np.ndarray, uids: list[str], a: np.ndarray, b: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    from nlp.baseline import make_baseline

    fit_uids = {uids[i] for i in a}
    m = fit_model(ds, _no_weak(cfg), training_rows(ds, _no_weak(cfg), sentiment_uids=fit_uids, relevance_rows=[]))
    pred_m = m.predict_proba([texts[i] for i in b])["sentiment"].argmax(1)
    base = make_baseline(cfg.seed)
    base.fit([texts[i] for i in a], y[a])
    return pred_m, base.predict([texts[i] for i in b])


def evaluate_test(
    model: Any, ds: Dataset, tax: Any, test_rows: list[LabelRow], thr: float, thr_blend: float
) -> dict[str, Any]:
    """Relevance P/R/F1 (model, model + rules, keyword rules alone) and topic accuracy on the test split;
    ``model`` has ``predict_proba(texts)`` and ``task_labels`` (an n-gram model or
    :class:`nlp.student.StudentPredictor`)."""
    from nlp.taxonomy import rule_relevant, rule_topic

    texts = [ds.records[r.uid].text for r in test_rows]
    y = np.array([int(bool(r.relevant)) for r in test_rows])
    probs = model.predict_proba(texts)
    p_rel = probs["relevance"][:, 1]
    rules = np.array([rule_relevant(t, tax) for t in texts])
    blended = rule_blend(p_rel, rules, tax.relevance.rule_confidence)
    res: dict[str, Any] = {"n": len(test_rows), "relevant": int(y.sum())}
    for name, pred in (("model", p_rel >= thr), ("model_plus_rules", blended >= thr_blend), ("keyword_rules", rules)):
        res[f"relevance_{name}"] = {**prf(y, pred), "f1_95ci": bootstrap_f1_ci(y, pred)}
    rel_idx = [i for i, r in enumerate(test_rows) if r.relevant and r.topic]
    topics = model.task_labels["topic"]
    gold = [test_rows[i].topic for i in rel_idx]
    pred_model = [topics[int(probs["topic"][i].argmax())] for i in rel_idx]
    pred_rules = [rule_topic(texts[i], tax) for i in rel_idx]
    pred_blend = [blend_topic_argmax(probs["topic"][i], texts[i], tax, topics) for i in rel_idx]
    n = max(1, len(gold))
    res["topic_accuracy"] = {
        "n": len(gold),
        "model": round(sum(a == b for a, b in zip(gold, pred_model, strict=True)) / n, 4),
        "model_plus_rules": round(sum(a == b for a, b in zip(gold, pred_blend, strict=True)) / n, 4),
        "keyword_rules": round(sum(a == b for a, b in zip(gold, pred_rules, strict=True)) / n, 4),
    }
    return res


@dataclass
class SentimentCV:
    """The folds of the sentiment cross-validation (grouped by identical text, stratified by source x class)."""

    texts: list[str]
    y: np.ndarray
    uids: list[str]
    post: np.ndarray
    usual: np.ndarray
    folds: list[tuple[np.ndarray, np.ndarray]]

    @classmethod
    def build(cls, ds: Dataset, cfg: NgramTrainConfig) -> SentimentCV:
        from sklearn.model_selection import StratifiedGroupKFold

        recs = sorted((r for r in ds.records.values() if r.sentiment != IGNORE), key=lambda r: r.uid)
        texts = [r.text for r in recs]
        group_of: dict[str, int] = {}
        groups = np.array([group_of.setdefault(t, len(group_of)) for t in texts])
        strata = np.array([f"{r.source}:{r.sentiment}" for r in recs])
        skf = StratifiedGroupKFold(cfg.folds, shuffle=True, random_state=cfg.seed)
        return cls(
            texts,
            np.array([r.sentiment for r in recs]),
            [r.uid for r in recs],
            np.array([r.is_post for r in recs]),
            np.array([r.source == "smp_usual_eval" for r in recs]),
            list(skf.split(texts, strata, groups)),
        )

    def calls(self, ds: Dataset, cfg: NgramTrainConfig) -> list[tuple[Any, tuple[Any, ...]]]:
        return [(_sentiment_fold, (ds, cfg, self.texts, self.y, self.uids, a, b)) for a, b in self.folds]

    def report(self, outs: list[tuple[np.ndarray, np.ndarray]]) -> dict[str, Any]:
        from sklearn.metrics import f1_score

        pred_m = np.zeros(len(self.y), dtype=int)
        pred_b = np.zeros(len(self.y), dtype=int)
        for (_, b), (pm, pb) in zip(self.folds, outs, strict=True):
            pred_m[b] = pm
            pred_b[b] = pb

        def score(mask: np.ndarray, pred: np.ndarray) -> dict[str, float]:
            y = self.y
            if not mask.any():
                return {"macro_f1": float("nan"), "accuracy": float("nan"), "n": 0}
            return {
                "macro_f1": round(float(f1_score(y[mask], pred[mask], labels=[0, 1, 2], average="macro")), 4),
                "accuracy": round(float((y[mask] == pred[mask]).mean()), 4),
                "n": int(mask.sum()),
            }

        parts = (("posts", self.post), ("usual_eval_posts", self.usual), ("all", np.ones(len(self.y), dtype=bool)))
        return {
            "folds": len(self.folds),
            "model": {p: score(m, pred_m) for p, m in parts},
            "baseline": {p: score(m, pred_b) for p, m in parts},
        }


def sentiment_cv(ds: Dataset, cfg: NgramTrainConfig) -> dict[str, Any]:
    """k-fold CV of the sentiment head against the baseline (``nlp.baseline``: char 1–3-gram TF-IDF + LR on
    the same rows of the same folds, 3 classes); macro-F1 on the Weibo posts, the usual_eval posts, all rows."""
    cv = SentimentCV.build(ds, cfg)
    return cv.report(_parallel(cfg.n_jobs, cv.calls(ds, cfg)))


def _no_weak(cfg: NgramTrainConfig) -> NgramTrainConfig:
    return replace(cfg, weak_weight=0.0, weak_topic_weight=0.0)


def apply_overrides(cfg: NgramTrainConfig, pairs: list[str]) -> NgramTrainConfig:
    known = {f.name for f in fields(cfg)}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or key not in known:
            raise ValueError(f"bad override {pair!r}: expected KEY=VALUE with KEY one of {sorted(known)}")
        try:
            value = json.loads(raw)
        except json.JSONDecodeError:
            value = raw
        setattr(cfg, key, value)
    return cfg


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if not args:
        print("usage: python -m nlp.train_ngram CONFIG.json [KEY=VALUE ...]", file=sys.stderr)
        return 2
    from yuqing.settings import load_settings

    cfg = apply_overrides(NgramTrainConfig.from_json(Path(args[0])), args[1:])
    run(cfg, load_settings().paths.shared_data)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
