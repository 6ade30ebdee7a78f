"""The segmentation pool: results equal in-process segmentation; a dead worker process does not stop ingest."""

from __future__ import annotations

import logging
import os
import signal

import pytest

from ingest.stages import PooledSegmenter
from nlp.segment import segment_many

TEXTS = ["市图书馆周五延长开放时间", "非遗展演活动在文化馆举行", "博物馆夜场预约系统故障"]


def test_a_killed_worker_is_reported_and_segmentation_goes_on(caplog: pytest.LogCaptureFixture) -> None:
    segmenter = PooledSegmenter(1, chunk=1)
    try:
        assert segmenter(TEXTS) == segment_many(TEXTS)
        assert segmenter.pool is not None
        for pid in list(segmenter.pool._processes):  # the pool's own worker processes
            os.kill(pid, signal.SIGKILL)
        with caplog.at_level(logging.ERROR, logger="ingest.stages.segment"):
            assert segmenter(TEXTS) == segment_many(TEXTS)
        assert segmenter.pool is None
        assert [r.getMessage() for r in caplog.records if "worker process died" in r.getMessage()]
    finally:
        segmenter.close()


def test_the_dictionary_is_loaded_once_when_threads_ask_together(monkeypatch: pytest.MonkeyPatch) -> None:
    import threading

    import jieba

    from nlp import segment as seg

    loads: list[int] = []
    real_init = jieba.Tokenizer.initialize

    def counting(self: jieba.Tokenizer, dictionary: str | None = None) -> None:
        loads.append(1)
        real_init(self, dictionary)

    monkeypatch.setattr(seg, "_loaded", [])
    monkeypatch.setattr(jieba.Tokenizer, "initialize", counting)
    start = threading.Barrier(4)
    results: list[list[str]] = []

    def work() -> None:
        start.wait()
        results.append(seg.segment("市图书馆临时闭馆"))

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(loads) == 1 and len(results) == 4 and all(r == results[0] for r in results)
