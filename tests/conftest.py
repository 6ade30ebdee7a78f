"""Shared fixtures: the real local Elasticsearch (started when not running), settings isolated per session."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from elasticsearch import Elasticsearch

from index.client import es_client as client_for
from index.es_server import LocalElasticsearch
from index.layout import CRAWL_STATE, POSTS, SOURCE_HEALTH, setup
from index.writer import BulkReport, index_posts
from ingest.batch import Batch
from ingest.stages import Segment
from yuqing.logs import reset_logging
from yuqing.models import Post
from yuqing.settings import PROJECT_ROOT, Settings, load_settings


@pytest.fixture(autouse=True)
def _no_logging_left_behind() -> Iterator[None]:
    """A test that runs a command (`yuqing.cli.main`) sets logging up; the next test starts without it."""
    yield
    reset_logging()


@pytest.fixture(autouse=True)
def _main_module_restored() -> Iterator[None]:
    """Streamlit's script runner (AppTest) installs the page script as ``sys.modules["__main__"]`` and leaves
    it there; a process the next test spawns (the segmentation pool) would then run that script on start-up."""
    main = sys.modules["__main__"]
    yield
    sys.modules["__main__"] = main


@pytest.fixture(scope="session")
def base_settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """Settings for the test session: the project's defaults, a private index prefix and data dir."""
    prefix = f"yuqing-test-{uuid.uuid4().hex[:8]}"
    data_dir = tmp_path_factory.mktemp("data")
    return load_settings(
        PROJECT_ROOT / "config" / "yuqing.yaml",
        overrides={"elasticsearch": {"index_prefix": prefix}, "paths": {"data_dir": str(data_dir)}},
    )


@pytest.fixture(scope="session")
def shared_data(base_settings: Settings) -> Path:
    path = base_settings.paths.shared_data
    assert (path / "html" / "gne").is_dir(), (
        f"shared data not found at {path}; set YUQING_PATHS__SHARED_DATA to the shared/data folder"
    )
    return path


@pytest.fixture(scope="session")
def es_server(base_settings: Settings) -> LocalElasticsearch:
    """The real local server; started (fetched with mvn on first use) when nothing answers on its port."""
    server = LocalElasticsearch(base_settings.local_es)
    if os.environ.get("YUQING_TEST_ES_EXTERNAL") != "1":
        server.start()
    return server


@pytest.fixture(scope="session")
def es_client(base_settings: Settings, es_server: LocalElasticsearch) -> Iterator[Elasticsearch]:
    with client_for(base_settings.elasticsearch) as client:
        yield client
        prefix = base_settings.elasticsearch.index_prefix
        client.indices.delete(index=f"{prefix}-*", ignore_unavailable=True)
        client.options(ignore_status=404).indices.delete_index_template(name=f"{prefix}-*")


def seed_posts(client: Elasticsearch, settings: Settings, posts: list[Post]) -> BulkReport:
    """Index ``posts`` as they are (no classifier, no dedupe), segmented by the ingest stage, refreshed."""
    segmented = Segment().run(Batch(posts)).posts
    return index_posts(client, POSTS.alias(settings.elasticsearch.index_prefix), segmented, refresh=True)


# The indices the `settings` fixture creates: the crawl-time ones most tests use. Creating an index costs about half
# a second of the shared server's time, so a test that needs another one (tickets, events, outbox …) sets it up
# itself (e.g. ``setup(es_client, settings.elasticsearch, [TICKETS])``); a `yuqing setup`/`run` child creates all.
CRAWL_TIME_SPECS = (POSTS, CRAWL_STATE, SOURCE_HEALTH)


@pytest.fixture()
def settings(base_settings: Settings, es_client: Elasticsearch, tmp_path: Path) -> Iterator[Settings]:
    """Per-test settings with a fresh index prefix (the crawl-time indices set up, all removed afterwards) and data
    directory."""
    prefix = f"{base_settings.elasticsearch.index_prefix}-{uuid.uuid4().hex[:6]}"
    s = base_settings.model_copy(
        update={
            "elasticsearch": base_settings.elasticsearch.model_copy(update={"index_prefix": prefix}),
            "paths": base_settings.paths.model_copy(update={"data_dir": tmp_path / "data"}),
        }
    )
    setup(es_client, s.elasticsearch, CRAWL_TIME_SPECS)
    yield s
    es_client.indices.delete(index=f"{prefix}-*", ignore_unavailable=True)
    es_client.options(ignore_status=404).indices.delete_index_template(name=f"{prefix}-*")


@dataclass
class MockServer:
    url: str
    site: Path

    def write(self, rel: str, data: bytes | str) -> str:
        path = self.site / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data.encode("utf-8") if isinstance(data, str) else data)
        return f"{self.url}/{rel}"


def _read_port(proc: subprocess.Popen[str], deadline_s: float = 30.0) -> int:
    assert proc.stdout is not None
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if line.startswith("PORT "):
            return int(line.split()[1])
        if not line and proc.poll() is not None:
            break
    raise RuntimeError("mock server did not report its port")


@pytest.fixture()
def mockserver(shared_data: Path, tmp_path: Path) -> Iterator[MockServer]:
    """tests/mockserver.py in a subprocess on 127.0.0.1 (OS-chosen port), serving the saved real pages."""
    site = tmp_path / "site"
    site.mkdir()
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.mockserver", "--pages", str(shared_data / "html" / "gne"), "--site", str(site)],
        cwd=PROJECT_ROOT, stdout=subprocess.PIPE, text=True,
    )
    try:
        port = _read_port(proc)
        yield MockServer(url=f"http://127.0.0.1:{port}", site=site)
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def crawl_env(settings: Settings, config_dir: Path, **extra: str) -> dict[str, str]:
    """Environment for a child `yuqing crawl` that uses this test's indices, config and data directories."""
    env = dict(os.environ)
    env.update(
        {
            "YUQING_ELASTICSEARCH__INDEX_PREFIX": settings.elasticsearch.index_prefix,
            "YUQING_PATHS__CONFIG_DIR": str(config_dir),
            "YUQING_PATHS__DATA_DIR": str(settings.paths.data_dir),
            "YUQING_CRAWL__AUTOTHROTTLE": "false",
            **extra,
        }
    )
    return env


@pytest.fixture()
def config_dir(tmp_path: Path) -> Path:
    """A private copy of config/ a test may edit (e.g. its own sources.yaml)."""
    target = tmp_path / "config"
    shutil.copytree(PROJECT_ROOT / "config", target)
    return target
