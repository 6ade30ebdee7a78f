"""The shipped classifier's training recipe: a small BERT student (transformers + torch) trained on the CPU.

Stages (each writes into ``work_dir`` and is skipped or resumed when its output is there, so an interrupted
run continues where it stopped; run the same command again):

1. ``pretrain`` — a character vocabulary and a short masked-language-model pretraining
   (:func:`nlp.pretrain.pretrain`, checkpointed) on every non-held-out text of the shared data **minus every
   text an evaluation below holds out** (the human test split, the relevance dev folds, the sentiment
   evaluation fold);
2. ``teacher`` — the n-gram model (:mod:`nlp.train_ngram`, char TF-IDF + logistic regression; used at
   training time only, not shipped) fitted twice: on the dev run's training rows, and on all training rows;
   each gives soft labels (sentiment, relevance, topic probabilities) for every training text;
3. ``dev`` — multi-task fine-tuning with distillation (:func:`finetune`) on everything except the held-out
   dev data; the relevance threshold (and whether to blend the keyword rules) is chosen on the relevance dev
   folds; sentiment is scored on the held-out sentiment fold against the char TF-IDF + LR baseline and the
   teacher, trained on the same rows;
4. ``final`` — the same recipe on every training row (every labelled sentiment row, the whole human train
   split), saved as the model directory with the dev-chosen threshold, scored on the human test split
   against the keyword rules.

Data never used for training, vocabulary, pretraining or selection: the held-out board messages
(``gov_messages/holdout_ids.csv``, dropped by :func:`nlp.corpus.load_records`) and the human test split
(:func:`nlp.human_labels.split_of`). The teacher of each fine-tuning run is fitted on that run's training rows
only, so its soft labels carry no label of the data that run is scored on.

Fine-tuning loss per task: ``(1 - alpha) * CE(hard labels) + alpha * T^2 * KL(teacher || student)``
(:func:`nlp.train.multitask_loss`). Hard labels: sentiment on every labelled sentiment row; relevance and
topic on the human labels (repeated ``human_repeat`` times per epoch: they are few); weak keyword-rule topic
labels as extra data with weight ``weak_topic_weight``. Soft labels: every training text.

Usage: ``yuqing nlp train nlp/configs/student.json`` (= ``python -m nlp.student nlp/configs/student.json``);
stages already done are skipped. ``python -m nlp.student CONFIG --only dev`` (or ``final``, ``teacher``,
``pretrain``) runs one stage and what it needs, e.g. the two fine-tuning runs side by side in two processes;
the full command then evaluates and saves.
"""

from __future__ import annotations

import json
import logging
import math
import random
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np

from nlp.corpus import Record
from nlp.data import IGNORE, RELEVANCE, SENTIMENTS

log = logging.getLogger(__name__)

MODEL_TYPE = "bert_student"


RELEVANCE_TEACHERS: tuple[str, ...] = ("e5", "ngram")


TUPLE_OPTIONS = ("extra_labels", "relevance_dev_folds", "tail_token_candidates", "e5_C",
                 "relevance_ngram_head_shares")


@dataclass
class StudentConfig:
    model_type: str = MODEL_TYPE
    output_dir: str = "models/yuqing-zh-small"
    work_dir: str = ".student"  # checkpoints, teacher soft labels, the dev run (not shipped)
    taxonomy: str = "config/taxonomy.yaml"
    labels: str | None = None  # default: nlp/labels/relevance.csv
    # `yuqing judgements export` files: officers' 人工研判 as extra human labels of the train split
    extra_labels: tuple[str, ...] = ()
    # encoder (BERT over a character vocabulary)
    hidden_size: int = 256
    num_layers: int = 3
    num_heads: int = 4
    intermediate_size: int = 1024
    vocab_min_freq: int = 2
    vocab_max_size: int = 8000
    max_length: int = 128  # tokens per training text (head); inference reads nlp.max_length
    # masked-language-model pretraining
    mlm_steps: int = 2500  # length of the learning-rate schedule
    mlm_stop_step: int = 0  # > 0: stop pretraining at this step (before the schedule's end) and fine-tune from there
    mlm_batch_size: int = 64
    mlm_learning_rate: float = 5e-4
    mlm_max_minutes: float = 90.0  # per invocation; the stage resumes on the next run
    # fine-tuning
    epochs: float = 3.0
    max_steps: int = -1  # > 0: stop after this many steps (smoke tests)
    finetune_stop_step: int = 0  # > 0: stop fine-tuning at this step, the learning-rate schedule kept as planned
    finetune_max_minutes: float = 0.0  # > 0: per invocation; fine-tuning saves and stops (resumes next time)
    batch_size: int = 64
    learning_rate: float = 3e-4
    warmup_ratio: float = 0.06
    weight_decay: float = 0.01
    distill_alpha: float = 0.5
    distill_temperature: float = 2.0
    task_weights: dict[str, float] = field(default_factory=lambda: {"sentiment": 1.0, "relevance": 1.0, "topic": 0.5})
    human_repeat: int = 4  # human relevance/topic rows per epoch (each counts once per repeat)
    weak_topic_weight: float = 0.2  # keyword-rule topic on texts the rules mark relevant (no human label)
    emotion_weight: float = 0.5  # auxiliary head over the fine classes (6 emotions, 2 review polarities)
    teacher_topic_min_relevance: float = 0.5  # teacher topic targets only where it (or a person) says relevant
    save_every: int = 200  # fine-tuning checkpoint every N steps
    eval_batch_size: int = 128
    # selection / evaluation
    folds: int = 5  # the n-gram recipe's folds; the dev data are folds of these
    relevance_dev_folds: tuple[int, ...] = (0, 1)  # of the human train split (stratified, n-gram folds)
    tail_token_candidates: tuple[int, ...] = (32,)  # long texts: head only or head + this many tail tokens
    # False: no refit on all rows; the shipped model is the dev run's model itself (the threshold chosen on the
    # dev folds it never saw; test figures are then exactly those of the shipped weights). For when the CPU time
    # of a second fine-tuning run is not there.
    final_run: bool = True
    sentiment_eval_fold: int = 0  # of the sentiment rows (grouped by text, n-gram CV folds)
    teacher: dict[str, Any] = field(default_factory=dict)  # NgramTrainConfig overrides for the teacher
    teacher_jobs: int = 1  # the two teachers fitted in parallel processes when 2
    # "e5": relevance soft labels from multilingual-e5-small embeddings + keyword-rule features
    # (nlp/e5_teacher.py) for board messages, posts and headlines; "ngram": the n-gram teacher's for every text
    relevance_teacher: str = "e5"
    e5_C: tuple[float, ...] = (1.0, 4.0, 16.0)  # regularisation candidates (cross-validated on the run's rows)
    # > 0: the sentiment soft label of every text with an e5 embedding is this share of an e5 sentiment
    # regression (fitted on the run's labelled posts) plus the rest of the n-gram teacher's
    e5_sentiment_weight: float = 0.0
    # > 0: after fine-tuning, a hashed char n-gram TF-IDF + logistic-regression sentiment head
    # (nlp/ngram_head.py) fitted on the run's sentiment rows gets this share of the sentiment probabilities
    ngram_head_share: float = 0.0
    ngram_head_buckets: int = 1 << 18
    ngram_head_C: float = 2.0  # the benchmark baseline's
    ngram_head_min_df: int = 2
    # sample weight of the Weibo posts among the sentiment head's rows (the rest: product reviews); the product
    # reads posts and board messages, not reviews. 1: every row alike
    ngram_head_post_weight: float = 1.0
    # True: the sentiment head's share and post weight were chosen on the recipe's own sentiment fold
    # (``sentiment_eval_fold``); the cross-validation then also reports the mean of the other folds alone
    sentiment_selected_on_eval_fold: bool = False
    # candidate shares of a relevance n-gram head (fitted on the run's human relevance rows), chosen on the
    # relevance dev folds; () or (0.0,): none
    relevance_ngram_head_shares: tuple[float, ...] = ()
    threads: int = 2
    # where pretraining and fine-tuning run: "cpu", "cuda" or "auto" (cuda when torch sees one); the teachers,
    # the n-gram heads and the evaluations always run on the CPU
    device: str = "cpu"
    seed: int = 42

    def __post_init__(self) -> None:
        if self.relevance_teacher not in RELEVANCE_TEACHERS:
            raise ValueError(f"relevance_teacher {self.relevance_teacher!r}: one of {RELEVANCE_TEACHERS}")
        if any(not 0.0 <= v <= 1.0 for v in self.relevance_ngram_head_shares):
            raise ValueError(f"relevance_ngram_head_shares {self.relevance_ngram_head_shares}: shares between 0 and 1")
        if not 0.0 <= self.ngram_head_share <= 1.0:
            raise ValueError(f"ngram_head_share {self.ngram_head_share}: a share between 0 and 1")
        if not self.ngram_head_post_weight > 0:
            raise ValueError(f"ngram_head_post_weight {self.ngram_head_post_weight}: a weight above 0")
        if not 0.0 <= self.e5_sentiment_weight <= 1.0:
            raise ValueError(f"e5_sentiment_weight {self.e5_sentiment_weight}: a share between 0 and 1")

    @classmethod
    def from_json(cls, path: Path) -> StudentConfig:
        data = json.loads(path.read_text(encoding="utf-8"))
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"{path}: unknown option(s) {unknown}; known: {sorted(known)}")
        for key in TUPLE_OPTIONS:
            if key in data:
                data[key] = tuple(data[key])
        return cls(**data)


def apply_overrides(cfg: StudentConfig, pairs: list[str]) -> StudentConfig:
    """A copy of ``cfg`` with ``KEY=VALUE`` overrides (JSON values), validated like a config file."""
    from dataclasses import replace

    known = {f.name for f in fields(cfg)}
    changes: dict[str, Any] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or key not in known:
            raise ValueError(f"bad override {pair!r}: expected KEY=VALUE with KEY one of {sorted(known)}")
        try:
            value = json.loads(raw)
        except json.JSONDecodeError:
            value = raw
        if key in TUPLE_OPTIONS:
            value = tuple(value)
        changes[key] = value
    return replace(cfg, **changes)


def teacher_config(cfg: StudentConfig) -> Any:
    """The n-gram teacher's training options (its defaults + ``cfg.teacher``), no selection or CV."""
    from nlp.train_ngram import NgramTrainConfig

    tcfg = NgramTrainConfig(taxonomy=cfg.taxonomy, folds=cfg.folds, seed=cfg.seed, sentiment_cv=False, n_jobs=1)
    if cfg.labels:
        tcfg.labels = cfg.labels
    tcfg.extra_labels = tuple(cfg.extra_labels)
    for k, v in cfg.teacher.items():
        if not hasattr(tcfg, k):
            raise ValueError(f"teacher option {k!r} is not an NgramTrainConfig field")
        setattr(tcfg, k, tuple(v) if k == "tail_candidates" else v)
    return tcfg


def is_student_model(model_dir: Path) -> bool:
    """Whether ``model_dir`` holds a model this module trained (``config.json`` → ``classifier_info``)."""
    p = model_dir / "config.json"
    if not p.exists():
        return False
    info = json.loads(p.read_text(encoding="utf-8")).get("classifier_info") or {}
    return bool(info.get("model_type") == MODEL_TYPE)


# --- the data and its splits ------------------------------------------------------------------------------


@dataclass
class Splits:
    """Which rows each run may use (uids)."""

    sentiment: list[str]  # every labelled sentiment row, sorted
    sentiment_eval: set[str]  # the held-out sentiment fold (dev run)
    relevance_train: list[Any]  # human LabelRows of the train split (uncertain left out)
    relevance_dev: set[str]  # uids of the relevance dev folds (dev run)
    test: set[str]  # every human-labelled uid of the test split (uncertain included)

    def held_out_texts(self, records: dict[str, Record]) -> set[str]:
        """Texts no pretraining may read: the test split, the relevance dev folds, the sentiment fold."""
        uids = self.test | self.relevance_dev | self.sentiment_eval
        return {records[u].text for u in uids if u in records}


def make_splits(ds: Any, cfg: StudentConfig) -> Splits:
    """The evaluation splits, from the n-gram recipe's folds (same seed), so figures are comparable."""
    from nlp.human_labels import split_of
    from nlp.train_ngram import SentimentCV

    tcfg = teacher_config(cfg)
    cv = SentimentCV.build(ds, tcfg)
    sentiment_eval = {cv.uids[i] for i in cv.folds[cfg.sentiment_eval_fold][1]}
    human = [r for r in ds.labels if r.relevant is not None]
    train_rows = [r for r in human if split_of(r.uid) == "train"]
    dev = relevance_dev_uids(ds.first_labels if ds.first_labels is not None else ds.labels, cfg)
    dev &= {r.uid for r in train_rows}  # a dev text the gold leaves uncertain is scored nowhere
    test = {r.uid for r in ds.labels if split_of(r.uid) == "test"}
    return Splits(sorted(cv.uids), sentiment_eval, train_rows, dev, test)


def relevance_dev_uids(fold_labels: list[Any], cfg: StudentConfig) -> set[str]:
    """The relevance dev folds: ``relevance_dev_folds`` of a stratified split of the train split's labelled rows
    (uncertain left out) as ``fold_labels`` read them. Drawn from the first reading, the folds stay where they
    were when a second reading or an adjudication changes labels: a text the first reader left uncertain and
    the gold decides goes to training only, and earlier work folders (whose pretraining never read a dev text)
    stay valid."""
    from sklearn.model_selection import StratifiedKFold

    from nlp.human_labels import split_of

    rows = [r for r in fold_labels if r.relevant is not None and split_of(r.uid) == "train"]
    y = np.array([int(bool(r.relevant)) for r in rows])
    skf = StratifiedKFold(cfg.folds, shuffle=True, random_state=cfg.seed)
    folds = list(skf.split(np.zeros(len(y)), y))
    return {rows[i].uid for k in cfg.relevance_dev_folds for i in folds[k][1]}


def pretraining_records(ds: Any, splits: Splits) -> list[Record]:
    """Every corpus record whose text no evaluation holds out (the held-out board messages are not in the
    corpus at all)."""
    banned = splits.held_out_texts(ds.records)
    return [r for r in ds.records.values() if r.text not in banned]


# --- stage 1: masked-language-model pretraining -------------------------------------------------------------


def stage_pretrain(cfg: StudentConfig, ds: Any, splits: Splits) -> dict[str, Any]:
    from nlp.pretrain import pretrain

    out = Path(cfg.work_dir) / "mlm"
    done = out / "done.json"
    if done.exists():
        return dict(json.loads(done.read_text(encoding="utf-8")))
    stats = pretrain(out, pretraining_records(ds, splits), pretrain_config(cfg), cfg.mlm_max_minutes, cfg.save_every,
                     stop_at=mlm_target(cfg), device=resolve_device(cfg.device))
    if stats["step"] >= mlm_target(cfg):
        done.write_text(json.dumps(stats), encoding="utf-8")
    return stats


def pretrain_config(cfg: StudentConfig) -> Any:
    """The masked-LM stage's options (:class:`nlp.pretrain.PretrainConfig`) of this student recipe."""
    from nlp.pretrain import PretrainConfig

    return PretrainConfig(
        hidden_size=cfg.hidden_size,
        num_layers=cfg.num_layers,
        num_heads=cfg.num_heads,
        intermediate_size=cfg.intermediate_size,
        vocab_min_freq=cfg.vocab_min_freq,
        vocab_max_size=cfg.vocab_max_size,
        max_length=cfg.max_length,
        batch_size=cfg.mlm_batch_size,
        learning_rate=cfg.mlm_learning_rate,
        warmup_steps=min(200, max(1, cfg.mlm_steps // 10)),
        steps=cfg.mlm_steps,
        seed=cfg.seed,
    )


def mlm_target(cfg: StudentConfig) -> int:
    """The pretraining step fine-tuning starts from: ``mlm_stop_step`` when set, else the schedule's end."""
    return min(cfg.mlm_steps, cfg.mlm_stop_step) if cfg.mlm_stop_step > 0 else cfg.mlm_steps


# --- the rows of each fine-tuning run ------------------------------------------------------------------------

RUNS: tuple[str, ...] = ("dev", "final")


def run_rows(splits: Splits, run: str) -> tuple[set[str], list[Any]]:
    """(sentiment uids, human relevance rows) a run trains on: ``dev`` leaves out the sentiment evaluation
    fold and the relevance dev folds; ``final`` uses every labelled sentiment row and the whole train split."""
    if run == "dev":
        sent = set(splits.sentiment) - splits.sentiment_eval
        rel = [r for r in splits.relevance_train if r.uid not in splits.relevance_dev]
    elif run == "final":
        sent, rel = set(splits.sentiment), list(splits.relevance_train)
    else:
        raise ValueError(f"unknown run {run!r}; one of {RUNS}")
    return sent, rel


def run_records(ds: Any, splits: Splits, run: str) -> list[Record]:
    """The texts a run trains on (hard or soft targets), sorted by uid. ``dev``: none of the texts it is
    scored on (sentiment fold, relevance dev folds) nor the test split's, except the test texts that are
    labelled sentiment rows (sentiment targets only, as in ``final``)."""
    sent, _ = run_rows(splits, run)
    banned = {ds.records[u].text for u in splits.relevance_dev | splits.sentiment_eval} if run == "dev" else set()
    test_texts = {ds.records[u].text for u in splits.test if u in ds.records}
    out = []
    for uid in sorted(ds.records):
        r = ds.records[uid]
        if r.text in banned or (r.text in test_texts and uid not in sent):
            continue
        out.append(r)
    return out


# --- stage 2: the n-gram teacher and its soft labels ----------------------------------------------------------


def _fit_teacher(ds: Any, cfg: StudentConfig, splits: Splits, run: str) -> dict[str, Any]:
    """Fit the n-gram teacher on ``run``'s training rows; return its probabilities for the run's texts."""
    from dataclasses import replace as dc_replace

    from nlp.train_ngram import fit_model, training_rows

    sent, rel = run_rows(splits, run)
    recs = run_records(ds, splits, run)
    allowed = {r.uid for r in recs}
    test_texts = {ds.records[u].text for u in splits.test if u in ds.records}
    weak = [r for r in ds.weak if r.uid in allowed and r.text not in test_texts]
    tcfg = teacher_config(cfg)
    t0 = time.time()
    model = fit_model(dc_replace(ds, weak=weak), tcfg, training_rows(dc_replace(ds, weak=weak), tcfg,
                                                                     sentiment_uids=sent, relevance_rows=rel))
    probs = model.predict_proba([r.text for r in recs])
    out: dict[str, Any] = {"model": model}
    if cfg.relevance_teacher == "e5":
        e5 = _fit_e5_teacher(cfg, ds, rel)
        covered = [i for i, r in enumerate(recs) if e5.covers(r.uid)]
        probs["relevance"] = probs["relevance"].copy()
        probs["relevance"][covered] = e5.predict([recs[i].uid for i in covered], [recs[i].text for i in covered])
        out["e5"] = e5
        out["e5_C"] = np.array(e5.C)
        log.info("e5 relevance targets for %d of the %s run's %d texts", len(covered), run, len(recs))
    if cfg.e5_sentiment_weight > 0:
        e5s = _fit_e5_sentiment(cfg, ds, sent)
        covered = [i for i, r in enumerate(recs) if e5s.covers(r.uid)]
        probs["sentiment"] = probs["sentiment"].copy()
        probs["sentiment"][covered] = e5s.blend(probs["sentiment"][covered], [recs[i].uid for i in covered])
        out["e5_sentiment"] = e5s
        out["e5_sentiment_C"] = np.array(e5s.C)
        log.info("e5-blended sentiment targets for %d of the %s run's %d texts", len(covered), run, len(recs))
    log.info("teacher (%s run) fitted and applied to %d texts in %.0f s", run, len(recs), time.time() - t0)
    return {"uids": np.array([r.uid for r in recs]), **{t: p.astype(np.float32) for t, p in probs.items()}, **out}


def _fit_e5_teacher(cfg: StudentConfig, ds: Any, rel_rows: list[Any]) -> Any:
    """The e5 relevance teacher fitted on a run's human relevance rows (embeddings from the cached stage)."""
    from nlp.e5_teacher import fit_teacher
    from nlp.taxonomy import load_taxonomy

    emb = stage_e5_embeddings(cfg, ds)
    rows = [r for r in rel_rows if r.uid in emb]
    y = np.array([int(bool(r.relevant)) for r in rows])
    return fit_teacher(emb, [r.uid for r in rows], [ds.records[r.uid].text for r in rows], y,
                       load_taxonomy(Path(cfg.taxonomy)), cfg.e5_C, cfg.seed)


def _fit_e5_sentiment(cfg: StudentConfig, ds: Any, sent: set[str]) -> Any:
    """The e5 sentiment regression fitted on a run's labelled sentiment rows that have an embedding (posts)."""
    from nlp.e5_teacher import fit_sentiment

    emb = stage_e5_embeddings(cfg, ds)
    uids = sorted(u for u in sent if u in emb)
    y = np.array([ds.records[u].sentiment for u in uids])
    return fit_sentiment(emb, uids, y, cfg.e5_C, cfg.seed, cfg.e5_sentiment_weight)


def stage_teacher(cfg: StudentConfig, ds: Any, splits: Splits) -> dict[str, dict[str, np.ndarray]]:
    """Soft labels of both runs (``work_dir/teacher_<run>.npz``), fitted in parallel when missing; the dev
    teacher's sentiment predictions on the evaluation fold are kept for the report."""
    from nlp.train_ngram import _parallel

    work = Path(cfg.work_dir)
    work.mkdir(parents=True, exist_ok=True)
    runs = RUNS if cfg.final_run else ("dev",)  # no final run: its teacher is not needed
    todo = [run for run in runs if not (work / f"teacher_{run}.npz").exists()]
    if todo:
        outs = _parallel(min(cfg.teacher_jobs, len(todo)), [(_teacher_job, (ds, cfg, splits, run)) for run in todo])
        for run, out in zip(todo, outs, strict=True):
            np.savez_compressed(work / f"teacher_{run}.npz", **out)
    return {run: dict(np.load(work / f"teacher_{run}.npz")) for run in runs}


def _teacher_job(ds: Any, cfg: StudentConfig, splits: Splits, run: str) -> dict[str, np.ndarray]:
    import torch

    torch.set_num_threads(1)
    out = _fit_teacher(ds, cfg, splits, run)
    model = out.pop("model")
    e5 = out.pop("e5", None)
    e5s = out.pop("e5_sentiment", None)
    # the teacher's own figures on what the dev run is scored on (relevance dev folds, sentiment fold)
    if run == "dev":
        dev_uids = sorted(splits.relevance_dev)
        ev_uids = sorted(splits.sentiment_eval)
        pd_ = model.predict_proba([ds.records[u].text for u in dev_uids])
        pe = model.predict_proba([ds.records[u].text for u in ev_uids])
        out["relevance_dev_uids"] = np.array(dev_uids)
        dev_rel = pd_["relevance"].astype(np.float32)
        if e5 is not None:
            dev_texts = [ds.records[u].text for u in dev_uids]
            covered = [i for i, u in enumerate(dev_uids) if e5.covers(u)]
            dev_rel[covered] = e5.predict([dev_uids[i] for i in covered], [dev_texts[i] for i in covered])
        out["relevance_dev_relevance"] = dev_rel
        out["relevance_dev_topic"] = pd_["topic"].astype(np.float32)
        out["sentiment_eval_uids"] = np.array(ev_uids)
        ev_sent = pe["sentiment"].astype(np.float32)
        if e5s is not None:
            covered = [i for i, u in enumerate(ev_uids) if e5s.covers(u)]
            ev_sent[covered] = e5s.blend(ev_sent[covered], [ev_uids[i] for i in covered])
        out["sentiment_eval_sentiment"] = ev_sent
    return out


def stage_e5_embeddings(cfg: StudentConfig, ds: Any) -> dict[str, np.ndarray]:
    """e5 sentence embeddings of every corpus text of a relevance source (``nlp.e5_teacher``), cached in
    ``work_dir/e5_emb`` (resumable); the encoder is built from the holdout-free corpus's vocabulary."""
    from nlp.e5_teacher import Embedder, build_encoder, embed_cached, wants_embedding

    work = Path(cfg.work_dir)
    encoder = build_encoder(work, [r.text for r in ds.records.values()])
    recs = [r for _, r in sorted(ds.records.items()) if wants_embedding(r.source)]
    return embed_cached(Embedder.load(encoder, cfg.max_length), [r.uid for r in recs], [r.text for r in recs],
                        work / "e5_emb")


# --- stage 3/4: multi-task fine-tuning with distillation -----------------------------------------------------

FINE_EMOTIONS: tuple[str, ...] = (
    "angry", "sad", "fear", "review_negative", "neutral", "surprise", "happy", "review_positive",
)


@dataclass
class RunData:
    """The training rows of one run: token ids, hard labels (IGNORE where none) with per-row weights, and the
    teacher's soft labels (all-zero rows where a task has no soft target)."""

    uids: list[str]
    seqs: list[list[int]]
    hard: dict[str, np.ndarray]
    hard_w: dict[str, np.ndarray]
    soft: dict[str, np.ndarray]
    human: list[int]  # rows with a human relevance label

    def epoch_rows(self, human_repeat: int) -> list[int]:
        return list(range(len(self.uids))) + self.human * max(0, human_repeat - 1)


def build_run_data(
    cfg: StudentConfig, ds: Any, splits: Splits, run: str, tokenizer: Any, teacher: dict[str, np.ndarray]
) -> RunData:
    from nlp.inference import encode
    from nlp.taxonomy import load_taxonomy, rule_relevant, rule_topic
    from nlp.train_ngram import fine_sentiment_label

    tax = load_taxonomy(Path(cfg.taxonomy))
    topics = list(ds.topics)
    sent, rel_rows = run_rows(splits, run)
    human = {r.uid: r for r in rel_rows}
    recs = run_records(ds, splits, run)
    uids = [r.uid for r in recs]
    if list(teacher["uids"]) != uids:
        raise ValueError(f"teacher soft labels of the {run} run do not match its rows: delete {cfg.work_dir}/teacher_*")
    test_texts = {ds.records[u].text for u in splits.test if u in ds.records}
    n = len(recs)
    hard = {t: np.full(n, IGNORE, dtype=np.int64) for t in ("sentiment", "emotion", "relevance", "topic")}
    hard_w = {t: np.zeros(n, dtype=np.float32) for t in hard}
    human_idx: list[int] = []
    scored_only_for_sentiment = np.zeros(n, dtype=bool)
    for i, r in enumerate(recs):
        if r.uid in sent:
            hard["sentiment"][i] = r.sentiment
            hard_w["sentiment"][i] = 1.0
            hard["emotion"][i] = FINE_EMOTIONS.index(fine_sentiment_label(r, ds.fine_emotion))
            hard_w["emotion"][i] = 1.0
        if r.text in test_texts:
            scored_only_for_sentiment[i] = True
            continue
        h = human.get(r.uid)
        if h is not None:
            human_idx.append(i)
            hard["relevance"][i] = int(bool(h.relevant))
            hard_w["relevance"][i] = 1.0
            if h.relevant and h.topic:
                hard["topic"][i] = topics.index(h.topic)
                hard_w["topic"][i] = 1.0
        elif cfg.weak_topic_weight > 0 and rule_relevant(r.text, tax):
            t = rule_topic(r.text, tax)
            if t is not None:
                hard["topic"][i] = topics.index(t)
                hard_w["topic"][i] = cfg.weak_topic_weight
    soft = {"sentiment": teacher["sentiment"].astype(np.float32)}
    keep = (~scored_only_for_sentiment)[:, None].astype(np.float32)
    soft["relevance"] = teacher["relevance"].astype(np.float32) * keep
    topic_ok = (teacher["relevance"][:, 1] >= cfg.teacher_topic_min_relevance) | (hard["relevance"] == 1)
    topic_ok &= hard["relevance"] != 0
    soft["topic"] = teacher["topic"].astype(np.float32) * keep * topic_ok[:, None]
    if cfg.emotion_weight <= 0:
        hard.pop("emotion")
        hard_w.pop("emotion")
    seqs = encode(tokenizer, [r.text for r in recs], cfg.max_length)
    return RunData(uids, seqs, hard, hard_w, soft, human_idx)


def student_loss(
    logits: dict[str, Any],
    hard: dict[str, Any],
    hard_w: dict[str, Any],
    soft: dict[str, Any],
    weights: dict[str, float],
    alpha: float,
    temperature: float,
) -> Any:
    """Sum over tasks of ``weights[task]`` * [(1 - alpha) * weighted CE on the rows with a hard label
    (sum of weight * CE / number of labelled rows, so down-weighted rows count less) + alpha * T^2 *
    KL(teacher || student) on the rows with a soft target]. A task without soft targets gets its hard loss
    at full weight."""
    import torch
    from torch.nn import functional as F

    loss = next(iter(logits.values())).new_zeros(())
    for task, lg in logits.items():
        w = weights.get(task, 1.0)
        has_soft = task in soft and alpha > 0
        y = hard.get(task)
        if y is not None:
            m = y != IGNORE
            if bool(m.any()):
                ce = F.cross_entropy(lg[m], y[m], reduction="none")
                hard_loss = (ce * hard_w[task][m]).sum() / m.sum()
                loss = loss + w * (1.0 - alpha if has_soft else 1.0) * hard_loss
        if has_soft:
            p = soft[task]
            rows = p.sum(-1) > 0
            if bool(rows.any()):
                logq = F.log_softmax(lg[rows] / temperature, dim=-1)
                pt = F.softmax(torch.log(p[rows].clamp_min(1e-8)) / temperature, dim=-1)
                loss = loss + w * alpha * temperature**2 * F.kl_div(logq, pt, reduction="batchmean")
    return loss


def task_labels_for(cfg: StudentConfig, topics: list[str]) -> dict[str, list[str]]:
    labels = {"sentiment": list(SENTIMENTS), "relevance": list(RELEVANCE), "topic": list(topics)}
    if cfg.emotion_weight > 0:
        labels["emotion"] = list(FINE_EMOTIONS)
    return labels


def resolve_device(name: str) -> str:
    """``cpu`` / ``cuda`` as asked; ``auto``: ``cuda`` when torch sees an accelerator, else ``cpu``."""
    import torch

    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda" and not torch.cuda.is_available():
        raise ValueError("device 'cuda' was asked for but torch sees no CUDA device (use 'cpu' or 'auto')")
    if name not in ("cpu", "cuda"):
        raise ValueError(f"device {name!r}: one of cpu, cuda, auto")
    return name


def finetune(
    cfg: StudentConfig,
    data: RunData,
    encoder_dir: Path,
    task_labels: dict[str, list[str]],
    work: Path,
    on_epoch: Any = None,
) -> tuple[Any, dict[str, Any]]:
    """Fine-tune the pretrained encoder on ``data`` (checkpointed in ``work``; resumes); returns the model
    (float32, eval mode) and training stats. ``on_epoch(model, epoch)`` may return metrics to log."""
    import torch
    from transformers import BertConfig, get_linear_schedule_with_warmup
    from transformers.utils import logging as hf_logging

    from nlp.inference import pad_batch
    from nlp.modeling import BertForMultiTaskClassification, configure_labels
    from nlp.pretrain import length_bucketed_batches

    work.mkdir(parents=True, exist_ok=True)
    hf_logging.disable_progress_bar()
    hf_logging.set_verbosity_error()  # the encoder has no task heads yet and an MLM head it drops: expected
    config = BertConfig.from_pretrained(str(encoder_dir), local_files_only=True)
    configure_labels(config, task_labels)
    torch.manual_seed(cfg.seed)
    model: Any = BertForMultiTaskClassification.from_pretrained(str(encoder_dir), config=config,
                                                                local_files_only=True)
    device = resolve_device(cfg.device)
    model.to(device)
    rows = data.epoch_rows(cfg.human_repeat)
    per_epoch = math.ceil(len(rows) / cfg.batch_size)
    total = cfg.max_steps if cfg.max_steps > 0 else max(1, int(per_epoch * cfg.epochs))
    optim = torch.optim.AdamW(model.parameters(), lr=cfg.learning_rate, weight_decay=cfg.weight_decay)
    sched = get_linear_schedule_with_warmup(optim, int(total * cfg.warmup_ratio), total)
    step, epoch, pos = 0, 0, 0
    losses: list[float] = []
    history: list[dict[str, Any]] = []
    ckpt = work / "ckpt.pt"
    if ckpt.exists():
        state = torch.load(ckpt, weights_only=False, map_location=device)
        model.load_state_dict(state["model"])
        optim.load_state_dict(state["optim"])
        sched.load_state_dict(state["sched"])
        step, epoch, pos, losses, history = (state[k] for k in ("step", "epoch", "pos", "losses", "history"))
        torch.set_rng_state(state["torch_rng"].cpu())
        log.info("fine-tuning resumed at step %d/%d (epoch %d)", step, total, epoch)

    def save() -> None:
        tmp = ckpt.with_suffix(".tmp")
        torch.save({"model": model.state_dict(), "optim": optim.state_dict(), "sched": sched.state_dict(),
                    "step": step, "epoch": epoch, "pos": pos, "losses": losses, "history": history,
                    "torch_rng": torch.get_rng_state()}, tmp)
        tmp.replace(ckpt)

    hard = {t: torch.from_numpy(v).to(device) for t, v in data.hard.items()}
    hard_w = {t: torch.from_numpy(v).to(device) for t, v in data.hard_w.items()}
    soft = {t: torch.from_numpy(v).to(device) for t, v in data.soft.items()}
    lengths = [len(data.seqs[i]) for i in rows]
    last = min(total, cfg.finetune_stop_step) if cfg.finetune_stop_step > 0 else total
    t0, done = time.time(), 0
    deadline = t0 + cfg.finetune_max_minutes * 60 if cfg.finetune_max_minutes > 0 else math.inf
    model.train()
    while step < last and time.time() < deadline:
        batches = length_bucketed_batches(lengths, cfg.batch_size, random.Random(cfg.seed * 1000 + epoch))
        for b in batches[pos:]:
            if step >= last or time.time() >= deadline:
                break
            rows_b = [rows[j] for j in b]
            idx = torch.tensor(rows_b, device=device)
            ids, mask = pad_batch([data.seqs[i] for i in rows_b], 0)
            logits = model(input_ids=ids.to(device), attention_mask=mask.to(device))["logits"]
            loss = student_loss(
                logits,
                {t: v[idx] for t, v in hard.items()},
                {t: v[idx] for t, v in hard_w.items()},
                {t: v[idx] for t, v in soft.items()},
                {**cfg.task_weights, "emotion": cfg.emotion_weight},
                cfg.distill_alpha,
                cfg.distill_temperature,
            )
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optim.step()
            sched.step()
            optim.zero_grad()
            losses.append(round(float(loss.item()), 4))
            step, pos, done = step + 1, pos + 1, done + 1
            if step % 50 == 0:
                log.info("step %d/%d loss %.4f (%.2f s/step)", step, total, float(np.mean(losses[-50:])),
                         (time.time() - t0) / done)
            if step % cfg.save_every == 0:
                save()
        else:
            epoch, pos = epoch + 1, 0
            if on_epoch is not None:
                model.eval()
                metrics = on_epoch(model, epoch)
                model.train()
                if metrics:
                    history.append({"epoch": epoch, "step": step, **metrics})
                    log.info("epoch %d: %s", epoch, json.dumps(metrics, ensure_ascii=False))
            save()
    save()
    model.eval().to("cpu")
    if step < last:
        log.info("fine-tuning stopped at step %d/%d (time limit): run the command again to go on", step, total)
    stats = {
        "device": device,
        "steps": step,
        "of": total,
        "stopped_early": step < total,
        "time_limited": step < last,
        "rows_per_epoch": len(rows),
        "loss_first": round(float(np.mean(losses[:50])), 4) if losses else None,
        "loss_last": round(float(np.mean(losses[-50:])), 4) if losses else None,
        "history": history,
    }
    return model, stats


# --- evaluation and the two runs -------------------------------------------------------------------------------


class StudentPredictor:
    """A fine-tuned student behind the n-gram model's ``predict_proba(texts)`` / ``task_labels`` interface
    (what :func:`nlp.train_ngram.evaluate_test` scores), reading ``max_length`` tokens (head + tail)."""

    def __init__(self, model: Any, tokenizer: Any, max_length: int, tail_tokens: int, batch_size: int = 128):
        self.model = model
        self.tokenizer = tokenizer
        self.max_length = max_length
        self.tail_tokens = tail_tokens
        self.batch_size = batch_size
        self.task_labels: dict[str, list[str]] = dict(model.config.task_labels)

    def predict_proba(self, texts: list[str]) -> dict[str, np.ndarray]:
        from nlp.inference import predict_proba

        return predict_proba(self.model, self.tokenizer, texts, batch_size=self.batch_size,
                             max_length=self.max_length, tail_tokens=self.tail_tokens)


def _sentiment_scores(y: np.ndarray, pred: np.ndarray, parts: dict[str, np.ndarray]) -> dict[str, Any]:
    from sklearn.metrics import f1_score

    out: dict[str, Any] = {}
    for name, m in parts.items():
        out[name] = {
            "macro_f1": round(float(f1_score(y[m], pred[m], labels=[0, 1, 2], average="macro")), 4),
            "accuracy": round(float((y[m] == pred[m]).mean()), 4),
            "n": int(m.sum()),
        }
    return out


def evaluate_dev(
    cfg: StudentConfig, ds: Any, splits: Splits, model: Any, tokenizer: Any, teacher: dict[str, np.ndarray]
) -> dict[str, Any]:
    """Selection on the relevance dev folds (reading, threshold, rule blending) and sentiment on the held-out
    fold (student, teacher and the TF-IDF + LR baseline, all trained on the same rows)."""
    from nlp.baseline import make_baseline
    from nlp.taxonomy import load_taxonomy, rule_relevant
    from nlp.train_ngram import best_threshold, blend_topic_argmax, prf, rule_blend

    tax = load_taxonomy(Path(cfg.taxonomy))
    res: dict[str, Any] = {}
    dev_rows = sorted((r for r in splits.relevance_train if r.uid in splits.relevance_dev), key=lambda r: r.uid)
    texts = [ds.records[r.uid].text for r in dev_rows]
    y = np.array([int(bool(r.relevant)) for r in dev_rows])
    reading: dict[int, tuple[float, dict[str, np.ndarray]]] = {}
    for tail in sorted({0, *cfg.tail_token_candidates}):
        p = StudentPredictor(model, tokenizer, cfg.max_length, tail, cfg.eval_batch_size).predict_proba(texts)
        reading[tail] = (best_threshold(y, p["relevance"][:, 1])[1], p)
    tail_tokens = max(reading, key=lambda k: (round(reading[k][0], 4), -k))
    probs = reading[tail_tokens][1]
    p_rel = probs["relevance"][:, 1]
    rules = np.array([rule_relevant(t, tax) for t in texts])
    thr, f1 = best_threshold(y, p_rel)
    thr_b, f1_b = best_threshold(y, rule_blend(p_rel, rules, tax.relevance.rule_confidence))
    blend_rules = f1_b > f1
    t_uids = list(teacher["relevance_dev_uids"])
    assert t_uids == [r.uid for r in dev_rows]
    t_rel = teacher["relevance_dev_relevance"][:, 1]
    topic_idx = [i for i, r in enumerate(dev_rows) if r.relevant and r.topic]
    gold = [dev_rows[i].topic for i in topic_idx]
    topics = list(ds.topics)
    acc_m = float(np.mean([topics[int(probs["topic"][i].argmax())] == g for i, g in zip(topic_idx, gold, strict=True)]))
    acc_b = float(np.mean([blend_topic_argmax(probs["topic"][i], texts[i], tax, topics) == g
                           for i, g in zip(topic_idx, gold, strict=True)]))
    acc_t = float(np.mean([topics[int(teacher["relevance_dev_topic"][i].argmax())] == g
                           for i, g in zip(topic_idx, gold, strict=True)]))
    res["selection"] = {
        "relevance_dev": {"n": len(dev_rows), "relevant": int(y.sum())},
        "reading_best_f1": {str(k): round(v[0], 4) for k, v in reading.items()},
        "tail_tokens": int(tail_tokens),
        "relevance_threshold": thr,
        "dev_f1": round(f1, 4),
        "rule_blended_threshold": thr_b,
        "rule_blended_dev_f1": round(f1_b, 4),
        "blend_rules": bool(blend_rules),
        "deployed_threshold": thr_b if blend_rules else thr,
        "keyword_rules_dev": prf(y, rules),
        "teacher_dev_best_f1": round(best_threshold(y, t_rel)[1], 4),
        "topic_dev_accuracy": {"n": len(gold), "model": round(acc_m, 4), "model_plus_rules": round(acc_b, 4),
                               "teacher": round(acc_t, 4)},
        "blend_topic_rules": bool(acc_b > acc_m),
    }
    log.info("selection on the dev folds: %s", json.dumps(res["selection"], ensure_ascii=False))
    # sentiment on the held-out fold
    ev = sorted(splits.sentiment_eval)
    assert list(teacher["sentiment_eval_uids"]) == ev
    recs = [ds.records[u] for u in ev]
    y_s = np.array([r.sentiment for r in recs])
    parts = {
        "posts": np.array([r.is_post for r in recs]),
        "usual_eval_posts": np.array([r.source == "smp_usual_eval" for r in recs]),
        "all": np.ones(len(recs), dtype=bool),
    }
    predictor = StudentPredictor(model, tokenizer, cfg.max_length, tail_tokens, cfg.eval_batch_size)
    pred = predictor.predict_proba([r.text for r in recs])["sentiment"].argmax(1)
    parts_only: dict[str, Any] = {}
    if len(model.ngram_heads):  # the encoder's head alone, for the record
        model.use_ngram_heads = False
        try:
            alone = predictor.predict_proba([r.text for r in recs])["sentiment"].argmax(1)
        finally:
            model.use_ngram_heads = True
        parts_only["model_encoder_only"] = _sentiment_scores(y_s, alone, parts)
    fit = [ds.records[u] for u in splits.sentiment if u not in splits.sentiment_eval]
    base = make_baseline(cfg.seed)
    base.fit([r.text for r in fit], np.array([r.sentiment for r in fit]))
    if cfg.ngram_head_post_weight != 1.0:  # the baseline given the model's emphasis on posts, for a fair reading
        weighted = make_baseline(cfg.seed)
        weighted.fit([r.text for r in fit], np.array([r.sentiment for r in fit]),
                     logisticregression__sample_weight=post_weights(cfg, fit))
        parts_only["baseline_post_weighted"] = _sentiment_scores(
            y_s, weighted.predict([r.text for r in recs]), parts)
    res["sentiment_fold"] = {
        "fold": cfg.sentiment_eval_fold,
        "of": cfg.folds,
        "trained_on": len(fit),
        "model": _sentiment_scores(y_s, pred, parts),
        **parts_only,
        "teacher": _sentiment_scores(y_s, teacher["sentiment_eval_sentiment"].argmax(1), parts),
        "baseline": _sentiment_scores(y_s, base.predict([r.text for r in recs]), parts),
    }
    log.info("sentiment on the held-out fold: %s", json.dumps(res["sentiment_fold"]))
    return res


def dev_epoch_metrics(cfg: StudentConfig, ds: Any, splits: Splits, tokenizer: Any) -> Any:
    """Per-epoch relevance figures on the dev folds (logged: the training curve; nothing is chosen on them)."""
    from sklearn.metrics import average_precision_score

    from nlp.train_ngram import best_threshold

    dev_rows = sorted((r for r in splits.relevance_train if r.uid in splits.relevance_dev), key=lambda r: r.uid)
    texts = [ds.records[r.uid].text for r in dev_rows]
    y = np.array([int(bool(r.relevant)) for r in dev_rows])

    def metrics(model: Any, epoch: int) -> dict[str, Any]:
        p = StudentPredictor(model, tokenizer, cfg.max_length, 0, cfg.eval_batch_size).predict_proba(texts)
        rel = p["relevance"][:, 1]
        return {"dev_relevance_best_f1": round(best_threshold(y, rel)[1], 4),
                "dev_relevance_ap": round(float(average_precision_score(y, rel)), 4)}

    return metrics


def test_rows_of(ds: Any) -> list[Any]:
    from nlp.human_labels import split_of

    return [r for r in ds.labels if r.relevant is not None and split_of(r.uid) == "test"]


def _train_or_load(
    cfg: StudentConfig, ds: Any, splits: Splits, run: str, tokenizer: Any, teacher: dict[str, np.ndarray]
) -> tuple[Any, dict[str, Any]]:
    from nlp.modeling import BertForMultiTaskClassification

    work = Path(cfg.work_dir) / f"run_{run}"
    saved = work / "model"
    stats_path = work / "train_stats.json"
    if (saved / "config.json").exists() and stats_path.exists():
        model = BertForMultiTaskClassification.from_pretrained(str(saved), local_files_only=True).float().eval()
        return model, dict(json.loads(stats_path.read_text(encoding="utf-8")))
    t0 = time.time()
    data = build_run_data(cfg, ds, splits, run, tokenizer, teacher)
    log.info("%s run: %d texts (%d with a human relevance label), %s hard labels", run, len(data.uids),
             len(data.human), {t: int((v != IGNORE).sum()) for t, v in data.hard.items()})
    on_epoch = dev_epoch_metrics(cfg, ds, splits, tokenizer) if run == "dev" else None
    encoder = Path(cfg.work_dir) / "mlm" / "encoder"
    model, stats = finetune(cfg, data, encoder, task_labels_for(cfg, ds.topics), work, on_epoch)
    if stats["time_limited"]:
        raise TimeoutError(f"fine-tuning of the {run} run stopped at step {stats['steps']} of {stats['of']} "
                           "(finetune_max_minutes): run the command again to resume from its checkpoint")
    stats["texts"] = len(data.uids)
    stats["human_rows"] = len(data.human)
    stats["hard_labels"] = {t: int((v != IGNORE).sum()) for t, v in data.hard.items()}
    stats["seconds"] = round(time.time() - t0, 1)
    model.save_pretrained(str(saved))
    stats_path.write_text(json.dumps(stats, indent=1), encoding="utf-8")
    return model, stats


def post_weights(cfg: StudentConfig, recs: Sequence[Any]) -> np.ndarray:
    """Per sentiment row: ``ngram_head_post_weight`` for a Weibo post, 1 for anything else."""
    return np.array([cfg.ngram_head_post_weight if r.is_post else 1.0 for r in recs], dtype=np.float64)


def _head_rows(cfg: StudentConfig, ds: Any, splits: Splits, run: str,
               task: str) -> tuple[list[str], np.ndarray, np.ndarray | None]:
    """(texts, labels, sample weights or None) an n-gram head of ``task`` is fitted on: the run's sentiment rows
    (posts weighted ``ngram_head_post_weight``), or its human relevance rows."""
    sent, rel = run_rows(splits, run)
    if task == "sentiment":
        uids = sorted(sent)
        recs = [ds.records[u] for u in uids]
        weights = post_weights(cfg, recs) if cfg.ngram_head_post_weight != 1.0 else None
        return [r.text for r in recs], np.array([r.sentiment for r in recs]), weights
    if task == "relevance":
        rows = sorted(rel, key=lambda r: r.uid)
        return [ds.records[r.uid].text for r in rows], np.array([int(bool(r.relevant)) for r in rows]), None
    raise ValueError(f"no n-gram head for task {task!r}")


def attach_ngram_head(cfg: StudentConfig, ds: Any, splits: Splits, run: str, model: Any, tokenizer: Any,
                      task: str = "sentiment", share: float | None = None) -> dict[str, Any] | None:
    """Fit ``task``'s n-gram head on the run's rows of that task (the tokens the model reads) and attach it
    to ``model`` with ``share`` of the probabilities (default: ``ngram_head_share``); None when the share
    is 0 (nothing attached)."""
    from nlp.data import RELEVANCE, SENTIMENTS
    from nlp.inference import encode
    from nlp.ngram_head import fit_ngram_head

    share = cfg.ngram_head_share if share is None else share
    if share <= 0:
        return None
    t0 = time.time()
    texts, y, weights = _head_rows(cfg, ds, splits, run, task)
    n_classes = len(SENTIMENTS if task == "sentiment" else RELEVANCE)
    fit = fit_ngram_head(encode(tokenizer, texts, cfg.max_length), y, n_classes, buckets=cfg.ngram_head_buckets,
                         C=cfg.ngram_head_C, min_df=cfg.ngram_head_min_df, seed=cfg.seed, sample_weight=weights)
    model.attach_ngram_head(task, fit.idf, fit.weight, fit.bias, share=share, orders=fit.stats["orders"])
    stats = {**fit.stats, "share": share, "seconds": round(time.time() - t0, 1)}
    log.info("%s run: %s n-gram head fitted on %d rows (%d of %d buckets used) in %.0f s", run, task,
             len(texts), fit.stats["buckets_used"], cfg.ngram_head_buckets, stats["seconds"])
    return stats


def select_relevance_head(cfg: StudentConfig, ds: Any, splits: Splits, model: Any,
                          tokenizer: Any) -> dict[str, Any]:
    """Choose the relevance n-gram head's share among ``relevance_ngram_head_shares`` on the relevance dev
    folds (best F1 of the model alone or blended with the keyword rules, each at its best threshold; ties
    to the smaller share) and leave the dev run's model with the chosen head attached."""
    from nlp.taxonomy import load_taxonomy, rule_relevant
    from nlp.train_ngram import best_threshold, rule_blend

    shares = sorted(set(cfg.relevance_ngram_head_shares))
    if not shares or shares == [0.0]:
        return {"share": 0.0}
    tax = load_taxonomy(Path(cfg.taxonomy))
    dev_rows = sorted((r for r in splits.relevance_train if r.uid in splits.relevance_dev), key=lambda r: r.uid)
    texts = [ds.records[r.uid].text for r in dev_rows]
    y = np.array([int(bool(r.relevant)) for r in dev_rows])
    rules = np.array([rule_relevant(t, tax) for t in texts])
    predictor = StudentPredictor(model, tokenizer, cfg.max_length, 0, cfg.eval_batch_size)
    scores: dict[str, float] = {}
    for share in shares:
        if share > 0:
            attach_ngram_head(cfg, ds, splits, "dev", model, tokenizer, "relevance", share)
        elif "relevance" in model.ngram_heads:
            model.detach_ngram_head("relevance")
        p = predictor.predict_proba(texts)["relevance"][:, 1]
        scores[str(share)] = round(max(best_threshold(y, p)[1],
                                       best_threshold(y, rule_blend(p, rules, tax.relevance.rule_confidence))[1]), 4)
    best = max(shares, key=lambda s: (scores[str(s)], -s))
    if best != shares[-1]:  # the last candidate is attached; put the chosen one back
        if best > 0:
            attach_ngram_head(cfg, ds, splits, "dev", model, tokenizer, "relevance", best)
        else:
            model.detach_ngram_head("relevance")
    log.info("relevance n-gram head on the dev folds (best F1 by share): %s: share %s", scores, best)
    return {"share": best, "dev_best_f1_by_share": scores}


def stage_runs(
    cfg: StudentConfig, ds: Any, splits: Splits, mlm: dict[str, Any], teacher: dict[str, dict[str, np.ndarray]]
) -> dict[str, Any]:
    """The dev run (selection, sentiment fold), the final run (saved to ``output_dir``), the test split."""
    from transformers import AutoTokenizer

    from nlp.taxonomy import load_taxonomy
    from nlp.train_ngram import evaluate_test

    encoder = Path(cfg.work_dir) / "mlm" / "encoder"
    tokenizer = AutoTokenizer.from_pretrained(str(encoder), local_files_only=True)
    tax = load_taxonomy(Path(cfg.taxonomy))
    test_rows = test_rows_of(ds)
    metrics: dict[str, Any] = {
        "config": asdict(cfg),
        "data": {
            "sentiment_rows": len(splits.sentiment),
            "sentiment_eval_fold": len(splits.sentiment_eval),
            "labels": len(ds.labels),
            "relevance_train": [len(splits.relevance_train), sum(bool(r.relevant) for r in splits.relevance_train)],
            "relevance_dev": len(splits.relevance_dev),
            "relevance_test": [len(test_rows), sum(bool(r.relevant) for r in test_rows)],
            "pretraining_texts": len(pretraining_records(ds, splits)),
        },
        "mlm": mlm,
    }
    dev_model, metrics["train_dev"] = _train_or_load(cfg, ds, splits, "dev", tokenizer, teacher["dev"])
    metrics["train_dev"]["ngram_head"] = attach_ngram_head(cfg, ds, splits, "dev", dev_model, tokenizer)
    rel_head = select_relevance_head(cfg, ds, splits, dev_model, tokenizer)
    metrics.update(evaluate_dev(cfg, ds, splits, dev_model, tokenizer, teacher["dev"]))
    metrics["selection"]["relevance_ngram_head"] = rel_head
    sel = metrics["selection"]
    dev_pred = StudentPredictor(dev_model, tokenizer, cfg.max_length, sel["tail_tokens"], cfg.eval_batch_size)
    metrics["test_dev_model"] = evaluate_test(dev_pred, ds, tax, test_rows, sel["relevance_threshold"],
                                              sel["rule_blended_threshold"])
    if cfg.final_run:
        del dev_model
        final, metrics["train_final"] = _train_or_load(cfg, ds, splits, "final", tokenizer, teacher["final"])
        metrics["train_final"]["ngram_head"] = attach_ngram_head(cfg, ds, splits, "final", final, tokenizer)
        metrics["train_final"]["relevance_ngram_head"] = attach_ngram_head(
            cfg, ds, splits, "final", final, tokenizer, "relevance", rel_head["share"])
        pred = StudentPredictor(final, tokenizer, cfg.max_length, sel["tail_tokens"], cfg.eval_batch_size)
        metrics["test"] = evaluate_test(pred, ds, tax, test_rows, sel["relevance_threshold"],
                                        sel["rule_blended_threshold"])
    else:  # the dev run's model is the shipped one
        final, metrics["test"] = dev_model, metrics["test_dev_model"]
        metrics["shipped_run"] = "dev"
    log.info("test split: %s", json.dumps(metrics["test"], ensure_ascii=False))
    save_model(cfg, final, tokenizer, sel, metrics)
    return metrics


def save_model(
    cfg: StudentConfig, model: Any, tokenizer: Any, sel: dict[str, Any], metrics: dict[str, Any]
) -> None:
    """The shipped directory: float16 weights, tokenizer, ``config.classifier_info`` (threshold, rule
    blending, reading), metrics.json and train_config.json."""
    out = Path(cfg.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    model.config.classifier_info = {
        "model_type": MODEL_TYPE,
        "relevance_threshold": sel["deployed_threshold"],
        "blend_rules": sel["blend_rules"],
        "blend_topic_rules": sel["blend_topic_rules"],
        "max_length": cfg.max_length,
        "tail_tokens": sel["tail_tokens"],
        "trained_on": str(metrics.get("train_final" if cfg.final_run else "train_dev", {}).get("device", "cpu")),
        "run": "final" if cfg.final_run else "dev",
    }
    model.half().save_pretrained(str(out))
    model.float()
    tokenizer.save_pretrained(str(out))
    (out / "metrics.json").write_text(json.dumps(metrics, ensure_ascii=False, indent=1), encoding="utf-8")
    (out / "train_config.json").write_text(json.dumps(asdict(cfg), indent=1), encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    only = None
    if "--only" in args:
        k = args.index("--only")
        only = args[k + 1]
        args = args[:k] + args[k + 2 :]
    if not args:
        print("usage: python -m nlp.student CONFIG.json [KEY=VALUE ...] [--only pretrain|e5|teacher|dev|final]",
              file=sys.stderr)
        return 2
    from yuqing.logs import setup_logging
    from yuqing.settings import load_settings

    settings = load_settings()
    setup_logging(settings, "nlp:train")
    cfg = apply_overrides(StudentConfig.from_json(Path(args[0])), args[1:])
    run(cfg, settings.paths.shared_data, only=only)
    return 0


def run(cfg: StudentConfig, shared: Path, only: str | None = None) -> dict[str, Any]:
    """Every stage not done yet (or ``only`` one of ``pretrain`` / ``teacher`` / ``dev`` / ``final``, with what
    it needs); returns the metrics."""
    from nlp.train_ngram import load_dataset

    return run_stages(cfg, load_dataset(shared, teacher_config(cfg)), only)


def run_stages(cfg: StudentConfig, ds: Any, only: str | None = None) -> dict[str, Any]:
    """:func:`run` on a dataset already loaded (``nlp.train_ngram.load_dataset``)."""
    import torch

    torch.set_num_threads(cfg.threads)
    splits = make_splits(ds, cfg)
    log.info(
        "splits: sentiment %d rows (eval fold %d), relevance train %d (dev %d), test %d",
        len(splits.sentiment), len(splits.sentiment_eval), len(splits.relevance_train), len(splits.relevance_dev),
        len(splits.test),
    )
    if only == "teacher":
        stage_teacher(cfg, ds, splits)
        return {}
    if only == "e5":
        stage_e5_embeddings(cfg, ds)
        return {}
    mlm = stage_pretrain(cfg, ds, splits)
    if mlm["step"] < mlm_target(cfg):
        log.info("pretraining stopped at step %d/%d (time limit): run the command again to go on",
                 mlm["step"], mlm_target(cfg))
        return {"mlm": mlm}
    if only == "pretrain":
        return {"mlm": mlm}
    teacher = stage_teacher(cfg, ds, splits)
    if only == "final" and not cfg.final_run:
        raise ValueError("final_run is false in this config: the dev run's model is the one shipped")
    if only in RUNS:  # one fine-tuning run only (the two can run side by side in two processes)
        from transformers import AutoTokenizer

        tok = AutoTokenizer.from_pretrained(str(Path(cfg.work_dir) / "mlm" / "encoder"), local_files_only=True)
        _, stats = _train_or_load(cfg, ds, splits, only, tok, teacher[only])
        return {f"train_{only}": stats}
    return stage_runs(cfg, ds, splits, mlm, teacher)


if __name__ == "__main__":
    raise SystemExit(main())
