"""The layers of docs/architecture (README): a module imports only its own layer or lower ones, and settings
are built only at entry points."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from yuqing.settings import PROJECT_ROOT

FOUNDATION = {"yuqing.models", "yuqing.settings", "yuqing.config_files", "yuqing.config_write", "yuqing.errors",
              "yuqing.logs", "yuqing.progress", "yuqing.text", "yuqing.sources", "yuqing.jsonpath",
              "yuqing.processes"}
HIGHER_THAN_FOUNDATION = ("index", "nlp", "events", "response", "ingest", "crawlers", "alerts", "dashboard")
# package -> the top-level packages it must not import (besides the yuqing entry points, forbidden to all).
FORBIDDEN: dict[str, tuple[str, ...]] = {
    "index": ("nlp", "events", "response", "ingest", "crawlers", "alerts", "dashboard"),
    "nlp": ("index", "events", "response", "ingest", "crawlers", "alerts", "dashboard"),
    "events": ("ingest", "crawlers", "alerts", "dashboard"),
    "response": ("ingest", "crawlers", "alerts", "dashboard"),
    "ingest": ("crawlers", "alerts", "dashboard", "scrapy", "twisted"),
    "crawlers": ("alerts", "dashboard"),
    "alerts": ("crawlers", "dashboard"),
    "dashboard": ("crawlers",),
}
# Where the settings may be built (entry points); everything else receives them.
BUILDS_SETTINGS = {"yuqing/cli.py", "yuqing/mailsink.py", "yuqing/demo/__main__.py", "dashboard/data.py", "nlp/cli.py",
                   # training recipes run as `python -m nlp.<name>` (their own main)
                   "nlp/pretrain.py", "nlp/student.py", "nlp/train_ngram.py"}


def modules(package: str) -> list[Path]:
    root = PROJECT_ROOT / package
    return sorted(root.rglob("*.py")) if root.is_dir() else []


def imported(path: Path) -> set[str]:
    """Every module ``path`` imports, at the top or inside functions."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def _under(name: str, package: str) -> bool:
    return name == package or name.startswith(package + ".")


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_no_package_imports_a_higher_layer(package: str) -> None:
    wrong = []
    for path in modules(package):
        for name in imported(path):
            is_entry_point = _under(name, "yuqing") and name not in FOUNDATION and name != "yuqing"
            if is_entry_point or any(_under(name, p) for p in FORBIDDEN[package]):
                wrong.append(f"{path.relative_to(PROJECT_ROOT)} imports {name}")
    assert not wrong, wrong


def test_the_foundation_imports_only_the_foundation() -> None:
    wrong = []
    for module in sorted(FOUNDATION):
        path = PROJECT_ROOT / (module.replace(".", "/") + ".py")
        for name in imported(path):
            higher = any(_under(name, p) for p in HIGHER_THAN_FOUNDATION)
            if higher or (_under(name, "yuqing") and name not in FOUNDATION):
                wrong.append(f"{module} imports {name}")
    assert not wrong, wrong


def test_settings_are_built_only_at_entry_points() -> None:
    calls = []
    for package in ("yuqing", *FORBIDDEN):
        for path in modules(package):
            rel = str(path.relative_to(PROJECT_ROOT))
            tree = ast.parse(path.read_text(encoding="utf-8"))
            for node in ast.walk(tree):
                if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "load_settings"
                        and rel not in BUILDS_SETTINGS):
                    calls.append(f"{rel}:{node.lineno}")
    assert not calls, calls
