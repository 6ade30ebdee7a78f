"""jieba segmentation of title and body into the ``*_seg`` fields (ranking, hot words, SimHash tokens).

jieba holds the GIL; :class:`PooledSegmenter` runs it in worker processes (``crawl.segment_workers``) so the
crawl's reactor and the classifier keep a core.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field

from ingest.batch import Batch
from nlp.segment import segment_many

Segmenter = Callable[[list[str]], list[str]]


def _chunks(items: list[str], size: int) -> Iterator[list[str]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


class PooledSegmenter:
    """``segment_many`` in ``workers`` spawned processes; close it when done."""

    def __init__(self, workers: int, chunk: int = 16) -> None:
        self.pool = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"))
        self.chunk = chunk

    def __call__(self, texts: list[str]) -> list[str]:
        return [s for part in self.pool.map(segment_many, _chunks(texts, self.chunk)) for s in part]

    def close(self) -> None:
        self.pool.shutdown(wait=True)


@dataclass
class Segment:
    """Fills ``title_seg`` and ``content_seg`` where they are missing."""

    segmenter: Segmenter = field(default=segment_many)
    name: str = "segment"

    def run(self, batch: Batch) -> Batch:
        posts = list(batch.posts)
        todo = [i for i, p in enumerate(posts) if not p.segmented]
        texts = [text for i in todo for text in (posts[i].title, posts[i].content)]
        segs = self.segmenter(texts) if texts else []
        for k, i in enumerate(todo):
            posts[i] = posts[i].model_copy(update={"title_seg": segs[2 * k], "content_seg": segs[2 * k + 1]})
        return batch.with_posts(posts)
