"""The benchmark baseline: character 1–3-gram TF-IDF + logistic regression, one per task."""

from __future__ import annotations

from typing import Any

import numpy as np


def make_baseline(seed: int = 42, max_features: int = 200_000) -> Any:
    """An unfitted scikit-learn pipeline (char 1–3-grams, sublinear TF-IDF, balanced logistic regression)."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    return make_pipeline(
        TfidfVectorizer(analyzer="char", ngram_range=(1, 3), min_df=2, sublinear_tf=True, max_features=max_features),
        LogisticRegression(C=2.0, max_iter=1000, class_weight="balanced", random_state=seed),
    )


def fit_baseline(texts: list[str], labels: list[int], seed: int = 42) -> Any:
    """Fit on the (text, label) pairs whose label is not IGNORE (-100)."""
    keep = [i for i, y in enumerate(labels) if y != -100]
    pipe = make_baseline(seed)
    pipe.fit([texts[i] for i in keep], np.asarray([labels[i] for i in keep]))
    return pipe
