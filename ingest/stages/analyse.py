"""The classifier (``nlp``): sentiment, relevance, topic, keywords and names for each post not yet analysed."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from ingest.batch import Batch
from yuqing.models import Analysis, Post

NO_ANALYSIS = "no-analysis"  # the analysis version when the classifier is off


class TextAnalyzer(Protocol):
    @property
    def version(self) -> str: ...

    def analyze(self, texts: list[str]) -> list[Analysis]: ...


def analysis_text(post: Post) -> str:
    """What the classifier reads: the title, then the body."""
    return f"{post.title}\n{post.content}".strip()


@dataclass
class Analyse:
    """Fills ``analysis``; a post that has one (replayed from the spool, say) is not analysed again."""

    analyzer: TextAnalyzer
    name: str = "analyse"

    def run(self, batch: Batch) -> Batch:
        posts = list(batch.posts)
        todo = [i for i, p in enumerate(posts) if p.analysis is None]
        if todo:
            analyses = self.analyzer.analyze([analysis_text(posts[i]) for i in todo])
            for i, a in zip(todo, analyses, strict=True):
                posts[i] = posts[i].model_copy(update={"analysis": a})
        return batch.with_posts(posts)
