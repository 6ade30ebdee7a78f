"""Warm a new dashboard server process before the first user arrives.

A page's first run in a fresh process pays for everything it uses the first time: importing pandas, pyarrow and
altair (the chart's Vega-Lite spec), the modules of the pages, the settings and the Elasticsearch client. On the
first 总览 after a restart that was about two seconds of CPU between pressing 登录 and a complete page.
:func:`start` (called by ``python -m dashboard.serve`` as the server starts) does that work once in a background
thread, then moves the objects it made out of the garbage collector's sight (``gc.freeze``): Streamlit collects
garbage after every script run (``runner.postScriptGC``), one of them between the login and the overview, and
without the freeze each collection walks every module object again.

jieba's dictionary (the first 检索 with text) is not loaded here: it takes about a second in one call that holds
the interpreter lock, and a user signing in meanwhile would wait for it.

Nothing here changes what a page shows: a step that fails is logged and left to the page, which does the same
work on first use (and shows its own message if it fails there too).
"""

from __future__ import annotations

import ast
import gc
import importlib
import importlib.util
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

log = logging.getLogger(__name__)

VIEWS_DIR = Path(__file__).resolve().parent / "views"
THREAD_NAME = "dashboard-warmup"
RUNTIME_WAIT_S = 60.0

_lock = threading.Lock()
_thread: threading.Thread | None = None


@dataclass(frozen=True)
class WarmupReport:
    """What one warm-up did: the modules imported, seconds per step, the steps that failed (name: error)."""

    modules: tuple[str, ...]
    steps: dict[str, float] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0


def _is_module(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


def page_modules(views_dir: Path = VIEWS_DIR) -> list[str]:
    """The modules the page scripts in ``views_dir`` import at their top level, in first-seen order.

    Read with :mod:`ast`, not imported: importing a page runs it. ``from pkg import name`` counts ``pkg`` and, when
    ``pkg.name`` is a module itself (``from dashboard import data``), that module too; ``__future__`` is skipped.
    """
    seen: dict[str, None] = {}
    for path in sorted(views_dir.glob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node in tree.body:
            if isinstance(node, ast.Import):
                seen.update((alias.name, None) for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                if node.module == "__future__":
                    continue
                seen[node.module] = None
                for alias in node.names:
                    sub = f"{node.module}.{alias.name}"
                    if sub not in seen and _is_module(sub):
                        seen[sub] = None
    return list(seen)


def _chart() -> None:
    """Build one sentiment chart spec the way 总览 does (altair, its schema validation, pyarrow)."""
    import pyarrow as pa

    from dashboard import charts, summaries

    frame = summaries.volume_frame([], "Asia/Shanghai", "day")
    pa.Table.from_pandas(frame)
    charts.sentiment_bars(frame, height=260).to_dict()


def _backend() -> None:
    """The settings and the Elasticsearch client every page run uses (``st.cache_resource``; logging set up)."""
    from dashboard import data

    data.get_backend()


def _runtime_started(deadline_s: float) -> bool:
    """Wait up to ``deadline_s`` for the Streamlit runtime of this process (``st.cache_data`` functions defined
    before it exists fall back to a private in-memory store, with a warning)."""
    from streamlit import runtime

    deadline = time.monotonic() + deadline_s
    while not runtime.exists():
        if time.monotonic() > deadline:
            return False
        threading.Event().wait(0.05)
    return True


def _freeze() -> None:
    gc.collect()
    gc.freeze()  # what warm-up made lives as long as the process: later collections need not walk it


def warm(modules: list[str] | None = None, runtime_wait_s: float = RUNTIME_WAIT_S) -> WarmupReport:
    """Do a page's first-use work now: the chart machinery (pandas, pyarrow, altair), then, once Streamlit's
    runtime is up, the settings and client (they set up logging) and the pages' imports; ``gc.freeze`` what was
    made after each part. Never raises: a failed step is named in the report and logged with its error (the page
    does the same work on first use)."""
    t0 = time.perf_counter()
    failed: dict[str, str] = {}
    steps: dict[str, float] = {}

    def step(name: str, work: Callable[[], object], group: str | None = None) -> None:
        s0 = time.perf_counter()
        try:
            work()
        except Exception as exc:  # logged with its traceback; the page meets the same problem and reports it
            failed[name] = f"{type(exc).__name__}: {exc}"
            log.warning("dashboard warm-up: %s failed (the page does it on first use)", name, exc_info=exc)
        steps[group or name] = steps.get(group or name, 0.0) + time.perf_counter() - s0

    step("chart", _chart)  # pandas, pyarrow, altair: most of 总览's (the default page's) first-run cost
    _freeze()
    if not _runtime_started(runtime_wait_s):
        log.warning("dashboard warm-up: no Streamlit runtime after %.0f s; warming without it", runtime_wait_s)
    step("backend", _backend)
    _freeze()
    names = page_modules() if modules is None else modules
    for name in names:
        step(f"import {name}", lambda name=name: importlib.import_module(name), "pages")  # type: ignore[misc]
    _freeze()
    report = WarmupReport(modules=tuple(names), steps=steps, failed=failed, seconds=time.perf_counter() - t0)
    log.info("dashboard warm-up done in %.1f s (%s; %d page modules)%s", report.seconds,
             ", ".join(f"{k} {v:.1f} s" for k, v in steps.items()), len(names),
             f"; {len(failed)} step(s) failed: {', '.join(failed)}" if failed else "")
    return report


def start() -> threading.Thread:
    """Run :func:`warm` in a daemon thread, once per process (later calls return the same thread)."""
    global _thread
    with _lock:
        if _thread is None:
            _thread = threading.Thread(target=warm, name=THREAD_NAME, daemon=True)
            _thread.start()
        return _thread
