"""The shipped CPU classifier: character n-gram TF-IDF features + one logistic-regression head per task.

Why not the BERT student (``nlp/modeling.py``)? On this project's shared 2-core CPU the student's
masked-language-model pretraining ran at about 18 s per 64-text step (measured, see the model card): the
pretraining the shipped BERT got on a GPU would take days here, and the student trained without a teacher
was already below this baseline family on sentiment. A linear model over character n-grams trains in
minutes, reads a 1,000-character article as fast as a post, and its heads can use the human labels and
fine-grained classes directly. The BERT path stays for GPU machines (``load_classifier`` picks by
``config.json``'s ``model_type``).

Heads predict *fine* classes that are summed into the task's labels (``head.to_label``): sentiment is
learned over the six SMP2020 emotions and the two review polarities (angry, sad, fear, review-negative ->
negative; ...), which lets a linear model draw several boundaries per coarse class.

Long texts are read up to ``max_chars`` characters: head + tail (:func:`head_tail`: the first
``max_chars - tail_chars`` and the last ``tail_chars`` characters) or, with ``tail_chars`` 0, the head only;
the training run chooses between them on the dev folds.

Files in the model directory: ``config.json`` (``model_type`` = ``char_ngram``, task labels, fine classes,
vectorizer options), ``vocab.json`` (the n-gram vocabulary), ``weights.safetensors`` (idf, and per head
``<task>.coef`` [float16] / ``<task>.intercept``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

MODEL_TYPE = "char_ngram"


def head_tail(text: str, max_chars: int, tail_chars: int) -> str:
    """``text`` if short enough, else its first ``max_chars - tail_chars`` and last ``tail_chars`` characters
    joined by a space (the tail of a complaint or article often names the request or the institution)."""
    if len(text) <= max_chars:
        return text
    if tail_chars <= 0:
        return text[:max_chars]
    return f"{text[: max_chars - tail_chars]} {text[-tail_chars:]}"


@dataclass
class Head:
    """A task head: classifier classes (fine) and, for each, the index of the task label it counts for."""

    classes: list[str]
    to_label: list[int]
    coef: np.ndarray  # (n_classes or 1, n_features)
    intercept: np.ndarray  # (n_classes or 1,)

    def label_proba(self, X: Any, n_labels: int) -> np.ndarray:
        """Probabilities over the task's labels for the feature rows ``X`` (sparse, n × features)."""
        z = np.asarray(X @ self.coef.T.astype(np.float32)) + self.intercept.astype(np.float32)
        if z.shape[1] == 1:  # binary logistic regression: one weight vector for classes[1]
            p1 = 1.0 / (1.0 + np.exp(-z[:, 0]))
            fine = np.stack([1.0 - p1, p1], axis=1)
        else:
            z = z - z.max(axis=1, keepdims=True)
            e = np.exp(z)
            fine = e / e.sum(axis=1, keepdims=True)
        out = np.zeros((X.shape[0], n_labels), dtype=np.float32)
        for j, lab in enumerate(self.to_label):
            out[:, lab] += fine[:, j]
        return out


@dataclass
class NgramClassifier:
    task_labels: dict[str, list[str]]
    vectorizer: Any  # a fitted sklearn TfidfVectorizer (analyzer="char")
    heads: dict[str, Head]
    max_chars: int = 1024
    tail_chars: int = 256
    info: dict[str, Any] = field(default_factory=dict)

    def features(self, texts: list[str], max_chars: int | None = None) -> Any:
        cap = max_chars or self.max_chars
        tail = min(self.tail_chars, cap // 4)
        return self.vectorizer.transform([head_tail(t or "", cap, tail) for t in texts])

    def predict_proba(self, texts: list[str], max_chars: int | None = None) -> dict[str, np.ndarray]:
        """Probabilities per task (rows in input order)."""
        if not texts:
            return {t: np.zeros((0, len(v)), dtype=np.float32) for t, v in self.task_labels.items()}
        X = self.features(texts, max_chars)
        return {t: h.label_proba(X, len(self.task_labels[t])) for t, h in self.heads.items()}

    # --- persistence -------------------------------------------------------------------------------
    def save(self, out: Path) -> None:
        from safetensors.numpy import save_file

        out.mkdir(parents=True, exist_ok=True)
        vec = self.vectorizer
        vocab = sorted(vec.vocabulary_, key=vec.vocabulary_.__getitem__)
        config = {
            "model_type": MODEL_TYPE,
            "task_labels": self.task_labels,
            "heads": {t: {"classes": h.classes, "to_label": h.to_label} for t, h in self.heads.items()},
            "vectorizer": {
                "ngram_range": list(vec.ngram_range),
                "sublinear_tf": bool(vec.sublinear_tf),
                "lowercase": bool(vec.lowercase),
                "norm": vec.norm,
            },
            "max_chars": self.max_chars,
            "tail_chars": self.tail_chars,
            "info": self.info,
        }
        (out / "config.json").write_text(json.dumps(config, ensure_ascii=False, indent=1), encoding="utf-8")
        (out / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False), encoding="utf-8")
        tensors = {"idf": np.asarray(vec.idf_, dtype=np.float32)}
        for t, h in self.heads.items():
            tensors[f"{t}.coef"] = np.ascontiguousarray(h.coef, dtype=np.float16)
            tensors[f"{t}.intercept"] = np.asarray(h.intercept, dtype=np.float32)
        save_file(tensors, str(out / "weights.safetensors"))

    @classmethod
    def load(cls, model_dir: Path) -> NgramClassifier:
        from safetensors.numpy import load_file
        from sklearn.feature_extraction.text import TfidfVectorizer

        config = json.loads((model_dir / "config.json").read_text(encoding="utf-8"))
        if config.get("model_type") != MODEL_TYPE:
            raise ValueError(f"{model_dir}/config.json: model_type {config.get('model_type')!r} is not {MODEL_TYPE}")
        vocab = json.loads((model_dir / "vocab.json").read_text(encoding="utf-8"))
        w = load_file(str(model_dir / "weights.safetensors"))
        v = config["vectorizer"]
        vec = TfidfVectorizer(
            analyzer="char",
            ngram_range=tuple(v["ngram_range"]),
            sublinear_tf=v["sublinear_tf"],
            lowercase=v["lowercase"],
            norm=v["norm"],
            vocabulary={g: i for i, g in enumerate(vocab)},
            dtype=np.float32,
        )
        vec.idf_ = w["idf"].astype(np.float64)
        heads = {
            t: Head(h["classes"], h["to_label"], w[f"{t}.coef"].astype(np.float32), w[f"{t}.intercept"])
            for t, h in config["heads"].items()
        }
        return cls(config["task_labels"], vec, heads, config["max_chars"], config["tail_chars"], config.get("info", {}))


def is_ngram_model(model_dir: Path) -> bool:
    p = model_dir / "config.json"
    return p.exists() and json.loads(p.read_text(encoding="utf-8")).get("model_type") == MODEL_TYPE
