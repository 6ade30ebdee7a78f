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
        """Posts with ``analysis`` and the ``*_seg`` fields filled; what a post already has (a post replayed
        from the spool, say) is not computed again."""
        posts = list(posts)
        todo = [i for i, p in enumerate(posts) if p.analysis is None]
        if self.analyzer is not None and todo:
            analyses = self.analyzer.analyze([analysis_text(posts[i]) for i in todo])
            for i, a in zip(todo, analyses, strict=True):
                posts[i] = posts[i].model_copy(update={"analysis": a})
        todo = [i for i, p in enumerate(posts) if p.title_seg is None or p.content_seg is None]
        texts = [text for i in todo for text in (posts[i].title, posts[i].content)]
        segs = self.segmenter(texts) if texts else []
        for k, i in enumerate(todo):
            posts[i] = posts[i].model_copy(update={"title_seg": segs[2 * k], "content_seg": segs[2 * k + 1]})
        return posts
