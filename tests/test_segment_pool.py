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
