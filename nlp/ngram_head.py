"""A hashed character n-gram TF-IDF + logistic-regression head inside the multi-task model.

The BERT student reads characters through three small layers; a linear model over character 1–3-grams
sees surface evidence (emoticons, 点赞, 垃圾) the student smooths away, and the two err differently. So a
task (sentiment) may carry a second, linear head over the same token ids the encoder reads: the n-grams of
the token ids are hashed into ``buckets`` columns, weighted by sublinear TF-IDF, L2-normalised and fed to a
logistic regression fitted by scikit-learn at training time (after fine-tuning; ``nlp/student.py``). Its
weights live in the model's safetensors like any other parameter, so the shipped directory stays one
transformers checkpoint; at inference the task's probabilities are ``(1 - w) * encoder + w * n-gram``.

The same hashing runs in numpy (fitting) and torch (inference) and must agree bit for bit: a test checks it.
The tokenizer is character-level, so token n-grams are character n-grams (rare characters share [UNK]).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

PRIME = 1_000_003
# added per order so a bigram never shares its hash input with a unigram or trigram; all values stay < 2**63
# for token ids < 2**20
ORDER_OFFSET = (0, 1 << 40, 1 << 41)
MAX_ORDER = len(ORDER_OFFSET)


def ngram_keys(seq: Sequence[int] | np.ndarray, orders: int = MAX_ORDER) -> np.ndarray:
    """The hash inputs of a token-id sequence's 1..``orders``-grams (int64, before the modulo)."""
    a = np.asarray(seq, dtype=np.int64)
    parts = []
    for k in range(1, orders + 1):
        if len(a) < k:
            break
        x = a[: len(a) - k + 1].copy()
        for j in range(1, k):
            x = x * PRIME + a[j : len(a) - k + 1 + j]
        parts.append(x + ORDER_OFFSET[k - 1])
    return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)


def ngram_keys_torch(ids: Any, mask: Any, orders: int = MAX_ORDER) -> tuple[Any, Any]:
    """(row, key) of every n-gram of a padded batch whose tokens are all unmasked: the torch twin of
    :func:`ngram_keys`."""
    import torch

    n, width = ids.shape
    rows_all = torch.arange(n, device=ids.device).unsqueeze(1)
    rows, keys = [], []
    valid = mask.bool()
    for k in range(1, orders + 1):
        if width < k:
            break
        span = width - k + 1
        x = ids[:, :span].long()
        ok = valid[:, :span].clone()
        for j in range(1, k):
            x = x * PRIME + ids[:, j : span + j].long()
            ok &= valid[:, j : span + j]
        x = x + ORDER_OFFSET[k - 1]
        keys.append(x[ok])
        rows.append(rows_all.expand(n, span)[ok])
    return torch.cat(rows), torch.cat(keys)


def count_matrix(seqs: Sequence[Sequence[int]], buckets: int, orders: int = MAX_ORDER) -> Any:
    """Sparse (texts x buckets) n-gram counts."""
    from scipy.sparse import csr_matrix

    rows, cols = [], []
    for i, s in enumerate(seqs):
        c = ngram_keys(s, orders) % buckets
        rows.append(np.full(len(c), i, dtype=np.int64))
        cols.append(c)
    r = np.concatenate(rows) if rows else np.zeros(0, dtype=np.int64)
    c = np.concatenate(cols) if cols else np.zeros(0, dtype=np.int64)
    m = csr_matrix((np.ones(len(r), dtype=np.float64), (r, c)), shape=(len(seqs), buckets))
    m.sum_duplicates()
    return m


def tfidf(counts: Any, idf: np.ndarray) -> Any:
    """Sublinear TF (1 + ln count) x IDF, rows L2-normalised (an all-zero row stays zero)."""
    from sklearn.preprocessing import normalize

    x = counts.astype(np.float64, copy=True)
    x.data = 1.0 + np.log(x.data)
    x = x.multiply(idf.reshape(1, -1)).tocsr()
    return normalize(x, norm="l2")


def fit_idf(counts: Any, min_df: int) -> np.ndarray:
    """Smoothed IDF, ``ln((1 + n) / (1 + df)) + 1``; zero for buckets seen in fewer than ``min_df`` texts
    (they then count neither in the norm nor in the score)."""
    n = counts.shape[0]
    df = np.bincount(counts.indices, minlength=counts.shape[1])
    idf = np.log((1.0 + n) / (1.0 + df)) + 1.0
    idf[df < min_df] = 0.0
    return idf


@dataclass
class NgramHeadFit:
    """What the model stores: IDF per bucket, the regression's weights (buckets x classes) and biases."""

    idf: np.ndarray
    weight: np.ndarray
    bias: np.ndarray
    stats: dict[str, Any]


def fit_ngram_head(seqs: Sequence[Sequence[int]], y: np.ndarray, n_classes: int, *, buckets: int, C: float,
                   min_df: int, seed: int, orders: int = MAX_ORDER,
                   sample_weight: np.ndarray | None = None) -> NgramHeadFit:
    """Balanced logistic regression on hashed n-gram TF-IDF (the benchmark baseline's recipe, over tokens);
    ``sample_weight`` (one per row) multiplies the balanced class weights, the IDF counts every row once."""
    from sklearn.linear_model import LogisticRegression

    if len(seqs) != len(y):
        raise ValueError(f"{len(seqs)} sequences but {len(y)} labels")
    if sample_weight is not None and (len(sample_weight) != len(y) or not np.all(np.asarray(sample_weight) > 0)):
        raise ValueError(f"sample_weight: {len(sample_weight)} positive weights expected, one per row ({len(y)})")
    present = sorted(set(np.asarray(y).tolist()))
    if present != list(range(n_classes)):
        raise ValueError(f"n-gram head: labels {present}, expected every class of 0..{n_classes - 1}")
    counts = count_matrix(seqs, buckets, orders)
    idf = fit_idf(counts, min_df)
    lr = LogisticRegression(C=C, max_iter=1000, class_weight="balanced", random_state=seed)
    lr.fit(tfidf(counts, idf), y, sample_weight=sample_weight)
    weight = np.asarray(lr.coef_, dtype=np.float64).T  # (buckets, classes)
    bias = np.asarray(lr.intercept_, dtype=np.float64)
    if n_classes == 2:  # binary: sklearn keeps one column (the positive class)
        weight = np.hstack([np.zeros_like(weight), weight])
        bias = np.array([0.0, bias[0]])
    stats = {"rows": len(seqs), "buckets": buckets, "buckets_used": int((idf > 0).sum()), "C": C,
             "min_df": min_df, "orders": orders,
             "weighted": sample_weight is not None}
    return NgramHeadFit(idf.astype(np.float32), weight.astype(np.float32), bias.astype(np.float32), stats)


def decision_numpy(fit: NgramHeadFit, seqs: Sequence[Sequence[int]], orders: int = MAX_ORDER) -> np.ndarray:
    """The head's logits computed with scipy (the reference the torch forward is tested against)."""
    x = tfidf(count_matrix(seqs, len(fit.idf), orders), fit.idf.astype(np.float64))
    return np.asarray(x @ fit.weight.astype(np.float64) + fit.bias, dtype=np.float64)
