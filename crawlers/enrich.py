"""Enrichment before indexing: classifier output (nlp/) and jieba segmentation."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Protocol

from index.documents import Post
from nlp.types import Analysis
from yuqing.settings import Settings

log = logging.getLogger(__name__)


class TextAnalyzer(Protocol):
    def analyze(self, texts: list[str]) -> list[Analysis]: ...


def analysis_text(post: Post) -> str:
    """What the classifier reads: the title, then the body."""
    return f"{post.title}\n{post.content}".strip()


@dataclass
class Enricher:
    analyzer: TextAnalyzer | None

    @classmethod
    def from_settings(cls, settings: Settings) -> Enricher:
        if not settings.nlp.enabled:
            return cls(analyzer=None)
        from nlp.analyzer import get_analyzer

        return cls(analyzer=get_analyzer(settings.nlp, settings.config_file("taxonomy.yaml")))

    def enrich(self, posts: list[Post]) -> list[Post]:
        """Posts with ``analysis`` and the ``*_seg`` fields filled."""
        if self.analyzer is not None and posts:
            analyses = self.analyzer.analyze([analysis_text(p) for p in posts])
            posts = [p.model_copy(update={"analysis": a}) for p, a in zip(posts, analyses, strict=True)]
        return [p.segmented() for p in posts]
