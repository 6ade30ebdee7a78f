"""jieba segmentation of title and body into the ``*_seg`` fields (ranking, SimHash tokens) and the post's
``hot_terms`` (the keyword field hot words aggregate).

jieba holds the GIL; :class:`PooledSegmenter` runs it in worker processes (``crawl.segment_workers``) so the
crawl's reactor and the classifier keep a core.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import weakref
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field

from index.hotwords import HotWords, hot_terms_of
from ingest.batch import Batch
from nlp.segment import init_worker, segment_many

log = logging.getLogger(__name__)

Segmenter = Callable[[list[str]], list[str]]


def _chunks(items: list[str], size: int) -> Iterator[list[str]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


class PooledSegmenter:
    """``segment_many`` in ``workers`` spawned processes; close it when done.

    The workers start with the first texts to segment (a crawl that finds nothing new starts none: each costs
    about a second of CPU), in the thread that asks; they ignore Ctrl-C (the crawl process stops them) and, on
    Linux, are killed when that thread ends, so a crawl process killed (or ended with ``os._exit``) leaves none
    behind: close the segmenter before that thread ends (an ingest session closes it as its ingest thread's last
    task).

    A worker that dies (killed, out of memory, failed start-up) breaks the pool for good: that is logged once
    with the cause and segmentation goes on in this process, so the crawl neither stops nor spools every
    later batch."""

    def __init__(self, workers: int, chunk: int = 16) -> None:
        self.pool: ProcessPoolExecutor | None = ProcessPoolExecutor(
            workers, mp_context=multiprocessing.get_context("spawn"), initializer=init_worker,
            initargs=(os.getpid(),))
        self.chunk = chunk
        _open.add(self)

    def __call__(self, texts: list[str]) -> list[str]:
        if self.pool is not None:
            try:
                return [s for part in self.pool.map(segment_many, _chunks(texts, self.chunk)) for s in part]
            except BrokenProcessPool as exc:
                log.error("segmentation worker process died (%s); segmenting in the crawl process from now on",
                          exc)
                self.close()
        return segment_many(texts)

    def close(self) -> None:
        _open.discard(self)
        if self.pool is not None:
            self.pool.shutdown(wait=True)
            self.pool = None


_open: weakref.WeakSet[PooledSegmenter] = weakref.WeakSet()


def close_segmenters() -> None:
    """Close every segmenter of this process still open (one of an ingest session that failed to open, say):
    before a process ends with ``os._exit``, which runs no clean-up."""
    for segmenter in list(_open):
        segmenter.close()


@dataclass
class Segment:
    """Fills ``title_seg`` and ``content_seg`` where they are missing, then ``hot_terms`` where missing (the
    stopwords and the per-post count of ``hot_words``: config/hotwords.yaml)."""

    segmenter: Segmenter = field(default=segment_many)
    hot_words: HotWords = field(default_factory=HotWords)
    name: str = "segment"

    def run(self, batch: Batch) -> Batch:
        posts = list(batch.posts)
        todo = [i for i, p in enumerate(posts) if not p.segmented]
        texts = [text for i in todo for text in (posts[i].title, posts[i].content)]
        segs = self.segmenter(texts) if texts else []
        for k, i in enumerate(todo):
            posts[i] = posts[i].model_copy(update={"title_seg": segs[2 * k], "content_seg": segs[2 * k + 1]})
        stop = frozenset(self.hot_words.stopwords)
        for i, p in enumerate(posts):
            if p.hot_terms is None:
                terms = hot_terms_of(p.title_seg or "", p.content_seg or "", stopwords=stop,
                                     per_post=self.hot_words.per_post)
                posts[i] = p.model_copy(update={"hot_terms": terms})
        return batch.with_posts(posts)
