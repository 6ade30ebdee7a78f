"""Enrichment before indexing: classifier output (nlp/) and jieba segmentation."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from index.documents import Post
from nlp.segment import segment_many
from nlp.types import Analysis
from yuqing.settings import Settings

log = logging.getLogger(__name__)


class TextAnalyzer(Protocol):
    @property
    def version(self) -> str: ...

    def analyze(self, texts: list[str]) -> list[Analysis]: ...


def analysis_text(post: Post) -> str:
    """What the classifier reads: the title, then the body."""
    return f"{post.title}\n{post.content}".strip()


Segmenter = Callable[[list[str]], list[str]]


@dataclass
class Enricher:
    analyzer: TextAnalyzer | None
    segmenter: Segmenter = segment_many  # a process pool's map in the crawl pipeline

    @classmethod
    def from_settings(cls, settings: Settings) -> Enricher:
        if not settings.nlp.enabled:
            return cls(analyzer=None)
        from nlp.analyzer import get_analyzer

        return cls(analyzer=get_analyzer(settings.nlp, settings.config_file("taxonomy.yaml")))

    @property
    def version(self) -> str:
        """Which model analysed the posts ("no-analysis" when the classifier is off)."""
        return self.analyzer.version if self.analyzer is not None else "no-analysis"

    def enrich(self, posts: list[Post]) -> list[Post]:
        """Posts with ``analysis`` and the ``*_seg`` fields filled."""
        if self.analyzer is not None and posts:
            analyses = self.analyzer.analyze([analysis_text(p) for p in posts])
            posts = [p.model_copy(update={"analysis": a}) for p, a in zip(posts, analyses, strict=True)]
        texts = [text for p in posts for text in (p.title, p.content)]
        segs = self.segmenter(texts) if texts else []
        return [p.model_copy(update={"title_seg": segs[2 * i], "content_seg": segs[2 * i + 1]})
                for i, p in enumerate(posts)]
