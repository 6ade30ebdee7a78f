"""The demo's point, through the real path: the demo site (its clock compressed), `yuqing run` crawling the shipped
demo sources in its crawl children, and its events update job after each crawl. The library story's event appears,
grows and is flagged (risk level III or higher) while the story is told."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from elasticsearch import Elasticsearch, helpers

from index.events import EVENTS, get_events
from index.layout import POSTS
from tests.conftest import _read_port, crawl_env
from tests.test_demo import demo_sources
from yuqing.demo.corpus import RISING_STORY, load_corpus
from yuqing.settings import PROJECT_ROOT, Settings

MINUTE_S = 0.1  # the story's 300 minutes in 30 s
FLAG_DEADLINE_S = 300  # the demo's promise (five minutes), on this compressed clock and a shared machine
CRAWL_INTERVAL_S = 10


@pytest.fixture()
def slow_demo_site(tmp_path: Path) -> Iterator[int]:
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "YUQING_DEMO__PORT": "0",
           "YUQING_DEMO__MINUTE_S": str(MINUTE_S), "YUQING_PATHS__SHARED_DATA": str(tmp_path / "no-shared-data")}
    proc = subprocess.Popen([sys.executable, "-m", "yuqing.demo"], cwd=PROJECT_ROOT, env=env, stdout=subprocess.PIPE,
                            text=True)
    try:
        yield _read_port(proc)
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def library_event(client: Elasticsearch, settings: Settings, library_ids: set[str]) -> tuple[str, int] | None:
    """The event most of the crawled library posts belong to, and how many of them it has."""
    alias = POSTS.alias(settings.elasticsearch.index_prefix)
    client.indices.refresh(index=alias)
    events: Counter[str] = Counter()
    for hit in helpers.scan(client, index=alias, query={"query": {"exists": {"field": "event_id"}},
                                                        "_source": ["url", "event_id"]}):
        ident = hit["_source"]["url"].rstrip("/").rsplit("/", 1)[-1].removesuffix(".html")
        if ident in library_ids:
            events[hit["_source"]["event_id"]] += 1
    return events.most_common(1)[0] if events else None


def test_the_library_event_rises_and_is_flagged_through_crawls_and_the_events_job(
        settings: Settings, es_client: Elasticsearch, config_dir: Path, slow_demo_site: int) -> None:
    library_ids = {p.id for p in load_corpus() if p.story == RISING_STORY}
    sources = yaml.safe_load(demo_sources(slow_demo_site))
    for s in sources["sources"]:
        s["interval_s"] = CRAWL_INTERVAL_S
    (config_dir / "sources.yaml").write_text(yaml.safe_dump(sources, allow_unicode=True), encoding="utf-8")
    env = crawl_env(settings, config_dir, YUQING_NLP__ENABLED="false", YUQING_SCHEDULE__ALERT_INTERVAL_S="5")
    started = time.monotonic()
    proc = subprocess.Popen([sys.executable, "-m", "yuqing.cli", "run", "--no-alerts"], cwd=PROJECT_ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    seen: list[tuple[float, int, str]] = []  # (seconds, library posts in the event, its level)
    events_alias = EVENTS.alias(settings.elasticsearch.index_prefix)
    try:
        while True:
            assert proc.poll() is None, f"yuqing run exited with {proc.returncode}"
            elapsed = time.monotonic() - started
            assert elapsed < FLAG_DEADLINE_S, f"not flagged within {FLAG_DEADLINE_S} s: {seen}"
            found = library_event(es_client, settings, library_ids) if es_client.indices.exists_alias(
                name=events_alias) else None
            if found is not None:
                record = get_events(es_client, events_alias, [found[0]]).get(found[0])
                if record is not None:
                    if not seen or seen[-1][1:] != (found[1], record.risk_level):
                        seen.append((round(elapsed), found[1], record.risk_level))
                    if record.risk_level in ("I", "II", "III") and seen[0][1] < found[1]:
                        break  # flagged, and it grew while observed
            time.sleep(2)  # polling the index while the service works; the deadline above bounds it
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=60)
    print(f"library event over time (s, library posts, level): {seen}")
    assert record.level_history and record.level_history[-1].level == record.risk_level
    assert any(r for r in record.risk_reasons), "the level comes with its reasons"
