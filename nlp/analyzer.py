"""Per-post analysis for the indexing pipeline: sentiment, relevance, topic (with probabilities), keywords,
place and organisation names, and the model version.

The shipped classifier is a BERT student (``nlp/student.py``): it reads at most ``NLPSettings.max_length``
tokens and never more than the length it was trained on (its ``classifier_info.max_length``), the head of
the text or head + tail (``classifier_info.tail_tokens``). An n-gram model directory (``nlp/ngram.py``)
reads its own ``max_chars``. Keywords and names are taken from the first ``keyword_max_chars`` characters.
Empty or whitespace-only texts are not sent to the model: they are neutral and not relevant. A post is
relevant when its relevance probability reaches ``nlp.relevance_threshold``. The keyword rules of the
taxonomy are blended in only where the model says so (its ``info``: ``blend_rules`` for relevance —
noisy-OR with ``relevance.rule_confidence`` —, and ``blend_topic_rules`` for the topic, with
``rule_weight``); models without that information (BERT models trained on weak labels) blend both.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import numpy as np

from nlp.inference import BertClassifier, NgramAdapter, load_text_classifier, model_version, set_offline
from nlp.keywords import extract
from nlp.taxonomy import Taxonomy, combine_relevance, load_taxonomy, rule_distribution, rule_relevant
from yuqing.models import Analysis
from yuqing.settings import NLPSettings


def blend_topic(model_probs: dict[str, float], rule_probs: dict[str, float], rule_weight: float) -> dict[str, float]:
    """``(1 - w) * model + w * rules`` when a keyword rule fired, else the model's distribution."""
    if not rule_probs or rule_weight <= 0:
        return dict(model_probs)
    return {k: (1 - rule_weight) * v + rule_weight * rule_probs.get(k, 0.0) for k, v in model_probs.items()}


def _round(d: dict[str, float]) -> dict[str, float]:
    return {k: round(float(v), 4) for k, v in d.items()}


class Analyzer:
    """Loads the model once; :meth:`analyze` classifies posts in batches."""

    def __init__(
        self, classifier: BertClassifier | NgramAdapter, taxonomy: Taxonomy, nlp: NLPSettings, version: str
    ) -> None:
        self._classifier = classifier
        self.taxonomy = taxonomy
        self.settings = nlp
        self._version = version
        labels = classifier.task_labels
        info: dict[str, Any] = classifier.info
        self.blend_relevance_rules = bool(info.get("blend_rules", True))
        self.blend_topic_rules = bool(info.get("blend_topic_rules", True))
        self._sentiments: list[str] = list(labels["sentiment"])
        self._topics: list[str] = list(labels["topic"])
        self._stopwords = frozenset(w.lower() for w in taxonomy.keywords.stopwords)
        self._lock = threading.Lock()

    @classmethod
    def from_settings(cls, nlp: NLPSettings, taxonomy_path: Path) -> Analyzer:
        set_offline()
        taxonomy = load_taxonomy(taxonomy_path)
        model_dir = Path(nlp.model_dir)
        classifier = load_text_classifier(model_dir, threads=nlp.threads)
        return cls(classifier, taxonomy, nlp, model_version(model_dir))

    @property
    def version(self) -> str:
        return self._version

    def classify(self, texts: list[str]) -> dict[str, np.ndarray]:
        """Raw model probabilities per task (no keywords): the fast path the benchmark times."""
        with self._lock:  # torch inference is not re-entrant across threads sharing one model
            return self._classifier.predict(
                texts, batch_size=self.settings.batch_size, max_length=self.settings.max_length
            )

    def analyze(self, texts: list[str]) -> list[Analysis]:
        clean = [t if isinstance(t, str) else "" for t in texts]
        live = [i for i, t in enumerate(clean) if t.strip()]
        probs = self.classify([clean[i] for i in live])
        row_of = {i: r for r, i in enumerate(live)}
        out: list[Analysis] = []
        for i, text in enumerate(clean):
            r = row_of.get(i)
            if r is None:
                out.append(
                    Analysis(
                        sentiment="neutral",
                        sentiment_probs={"neutral": 1.0},
                        relevant=False,
                        relevance_prob=0.0,
                        model_version=self._version,
                    )
                )
                continue
            sent = dict(zip(self._sentiments, probs["sentiment"][r].tolist(), strict=True))
            rel_prob = float(probs["relevance"][r][1])
            if self.blend_relevance_rules:
                rel_prob = combine_relevance(
                    rel_prob, rule_relevant(text, self.taxonomy), self.taxonomy.relevance.rule_confidence
                )
            topic_probs = dict(zip(self._topics, probs["topic"][r].tolist(), strict=True))
            if self.blend_topic_rules:
                topic_probs = blend_topic(
                    topic_probs, rule_distribution(text, self.taxonomy), self.taxonomy.rule_weight
                )
            relevant = rel_prob >= self.settings.relevance_threshold
            keywords, places, orgs = extract(
                text,
                topk=self.taxonomy.keywords.topk,
                stopwords=self._stopwords,
                org_suffixes=self.taxonomy.entities.org_suffixes,
                org_max_tokens=self.taxonomy.entities.org_max_tokens,
                max_chars=self.settings.keyword_max_chars,
            )
            out.append(
                Analysis(
                    sentiment=max(sent, key=lambda k: sent[k]),
                    sentiment_probs=_round(sent),
                    relevant=relevant,
                    relevance_prob=min(1.0, max(0.0, round(rel_prob, 4))),
                    topic=max(topic_probs, key=lambda k: topic_probs[k]) if relevant else None,
                    topic_probs=_round(topic_probs),
                    keywords=keywords,
                    places=places,
                    orgs=orgs,
                    model_version=self._version,
                )
            )
        return out


_cache: dict[tuple[str, ...], Analyzer] = {}
_cache_lock = threading.Lock()


def get_analyzer(nlp_settings: NLPSettings, taxonomy_path: Path) -> Analyzer:
    """The process-wide analyzer for these settings (model loaded on first use only)."""
    key = (
        str(Path(nlp_settings.model_dir).resolve()),
        str(Path(taxonomy_path).resolve()),
        str(nlp_settings.threads),
        str(nlp_settings.batch_size),
        str(nlp_settings.max_length),
        str(nlp_settings.relevance_threshold),
        str(nlp_settings.keyword_max_chars),
    )
    with _cache_lock:
        if key not in _cache:
            _cache[key] = Analyzer.from_settings(nlp_settings, taxonomy_path)
        return _cache[key]
