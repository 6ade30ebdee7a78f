"""The segmentation pool: results equal in-process segmentation; a dead worker process does not stop ingest; a
worker ignores Ctrl-C and never outlives the process that started it."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from ingest.stages import PooledSegmenter
from nlp.segment import segment_many
from yuqing.settings import PROJECT_ROOT

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


def _alive(pid: int) -> bool:
    """The process runs (a zombie waiting for its reaper does not)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def _ignores_sigint(pid: int) -> bool:
    status = Path(f"/proc/{pid}/status").read_text()
    ignored = int(next(line.split()[1] for line in status.splitlines() if line.startswith("SigIgn:")), 16)
    return bool(ignored & (1 << (signal.SIGINT - 1)))


def _wait(condition: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


# A process holding a segmentation pool: it prints the pool's worker pids, then waits to be killed.
HOLDER = """
import sys
from ingest.stages import PooledSegmenter
segmenter = PooledSegmenter(2, chunk=1)
assert segmenter.pool is not None and not segmenter.pool._processes  # none started before there is work
segmenter(["市图书馆闭馆"] * 8)
print(" ".join(str(pid) for pid in segmenter.pool._processes), flush=True)
sys.stdin.read()
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux's")
def test_the_workers_ignore_ctrl_c_and_die_with_a_killed_process() -> None:
    # stderr: the killed process's resource tracker outlives it and says what it left
    proc = subprocess.Popen([sys.executable, "-c", HOLDER], cwd=PROJECT_ROOT, stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        assert proc.stdout is not None
        workers = [int(pid) for pid in proc.stdout.readline().split()]
        assert 1 <= len(workers) <= 2 and all(_alive(pid) for pid in workers)
        # Ctrl-C is the crawl process's to handle (its shutdown ends the pool): once started, a worker ignores it.
        assert _wait(lambda: all(_ignores_sigint(pid) for pid in workers), 20), "a worker does not ignore SIGINT"
    finally:
        proc.kill()
        proc.wait()
    gone = _wait(lambda: not any(_alive(pid) for pid in workers), 10)
    left = [pid for pid in workers if _alive(pid)]
    for pid in left:  # not left behind when the test fails
        os.kill(pid, signal.SIGKILL)
    assert gone, f"segmentation workers {left} outlived their killed parent"
