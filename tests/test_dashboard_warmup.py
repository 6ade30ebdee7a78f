"""The dashboard server's warm-up (dashboard.warmup, started by `python -m dashboard.serve`) and the overview's
concurrent queries (dashboard.data.prefetch). The served app after a warm-up (login, 总览, 检索) is walked in
tests/test_dashboard_browser.py, whose server starts through the same command."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from functools import partial
from pathlib import Path

import pytest
import streamlit as st

from dashboard import data
from dashboard.warmup import page_modules
from index.overview import PostSummary
from index.search import PostQuery
from tests.test_dashboard_app import app_env, posts
from yuqing.models import Post
from yuqing.settings import PROJECT_ROOT, Settings

__all__ = ["app_env", "posts"]  # fixtures

WARM_SCRIPT = """
import gc, json, sys
from dashboard.warmup import warm
report = warm(modules=["dashboard.summaries", "dashboard.no_such_module"], runtime_wait_s=0)
print(json.dumps({"failed": sorted(report.failed), "steps": sorted(report.steps), "frozen": gc.get_freeze_count(),
                  "loaded": [m for m in ("altair", "pandas", "pyarrow", "dashboard.data", "dashboard.summaries")
                             if m in sys.modules]}))
"""


def test_page_modules_are_the_pages_top_level_imports(tmp_path: Path) -> None:
    (tmp_path / "a.py").write_text("from __future__ import annotations\nimport json\nimport pandas as pd\n"
                                   "from dashboard import data, format as fmt\nfrom index.search import PostQuery\n"
                                   "def later():\n    import csv\n", encoding="utf-8")
    (tmp_path / "b.py").write_text("import json\nfrom dashboard import components\n", encoding="utf-8")
    assert page_modules(tmp_path) == ["json", "pandas", "dashboard", "dashboard.data", "dashboard.format",
                                      "index.search", "dashboard.components"]  # not csv: imported when called
    shipped = page_modules()
    assert {"pandas", "dashboard.data", "dashboard.summaries", "index.source_health"} <= set(shipped)
    assert not any(m.startswith("dashboard.views") for m in shipped)  # a page itself is never imported (it would run)


def test_warm_up_loads_the_chart_machinery_and_the_client_and_reports_a_failed_step(app_env: Settings) -> None:
    # A fresh process: gc.freeze must not touch the test process, and imports must start from nothing.
    out = subprocess.run([sys.executable, "-c", WARM_SCRIPT], cwd=PROJECT_ROOT, env=dict(os.environ),
                         capture_output=True, text=True, timeout=120, check=True)
    report = json.loads(out.stdout.strip().splitlines()[-1])
    assert report["failed"] == ["import dashboard.no_such_module"]  # named, and the other steps still ran
    assert report["steps"] == ["backend", "chart", "pages"]
    assert set(report["loaded"]) == {"altair", "pandas", "pyarrow", "dashboard.data", "dashboard.summaries"}
    assert report["frozen"] > 10_000  # the warmed objects are out of the garbage collector's way
    assert "dashboard warm-up done" in out.stderr and "no_such_module" in out.stderr


def test_prefetch_runs_calls_together_and_keeps_their_order_and_errors() -> None:
    parties = 4
    barrier = threading.Barrier(parties, timeout=30)  # met only when all calls run at the same time

    def meet(i: int) -> int:
        barrier.wait()
        return i * 10

    def fail() -> int:
        raise ValueError("no answer")

    futures = data.prefetch(*(partial(meet, i) for i in range(parties)))
    assert [f.result(timeout=60) for f in futures] == [0, 10, 20, 30]
    failed, fine = data.prefetch(fail, partial(int, "7"))
    with pytest.raises(ValueError, match="no answer"):
        failed.result(timeout=60)
    assert fine.result(timeout=60) == 7
    assert data.prefetch() == []


def test_prefetched_overview_queries_equal_sequential_ones(app_env: Settings, posts: list[Post]) -> None:
    backend = data.get_backend()
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    base = PostQuery()
    calls: list[Callable[[], object]] = [
        partial(data.post_summary, backend, base, "day"),
        partial(data.top_events, backend, None),
        partial(data.alerts, backend, None),
        partial(data.tickets, backend, now),
        partial(data.source_health, backend),
        partial(data.hot_words, backend, base, 20),
        partial(data.search, backend, PostQuery(sentiments=("negative",), size=10)),
    ]
    st.cache_data.clear()
    sequential = [call() for call in calls]
    st.cache_data.clear()
    together = [f.result(timeout=60) for f in data.prefetch(*calls)]
    assert together == sequential
    assert [call() for call in calls] == sequential  # the panels' own calls: answered by the cache
    summary, negative = together[0], together[6]
    assert isinstance(summary, PostSummary) and summary.total == len(posts)
    assert isinstance(negative, data.PageResult) and negative.total == 2
