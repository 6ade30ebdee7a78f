"""End to end in headless Chromium: the demo corpus (its times shifted to now) indexed and clustered by the events
job; a press officer signs in, opens 热点事件, finds the library closure on top, opens its 事件详情 and sees the
reasons for its level and the link that opens a 处置单 for it, and downloads its 舆情专报."""

from __future__ import annotations

import os
import re
import subprocess
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from docx import Document
from elasticsearch import Elasticsearch
from playwright.sync_api import Browser, expect

from dashboard.cli import streamlit_command
from index.events import EVENT_SPECS
from index.layout import setup
from ingest.events_job import EventsUpdater
from tests.conftest import seed_posts
from tests.dashboard_users import PASSWORDS, config_with_users
from tests.test_dashboard_browser import UI_TIMEOUT_MS, _free_port, _healthy, browser, open_page, sign_in
from yuqing.demo.corpus import RISING_STORY, DemoPost, load_corpus
from yuqing.models import Engagement, Post
from yuqing.settings import PROJECT_ROOT, Settings

__all__ = ["browser"]  # fixture

POST_KIND = {"news": "article", "notice": "article", "wechat": "article", "message": "message", "social": "social",
             "search": "search"}


def demo_post(p: DemoPost, start: datetime) -> Post:
    """A demo corpus post as the crawl indexes it, published ``p.at`` minutes after ``start`` (the whole story
    told, on the story's own clock)."""
    at = start + timedelta(minutes=p.at)
    return Post(url=f"http://127.0.0.1:8601/{p.kind}/{p.id}.html", title=p.title or p.text[:40], content=p.text,
                source=f"demo-{p.kind}", kind=POST_KIND[p.kind], published_at=at, fetched_at=at,
                engagement=Engagement(reposts=p.reposts, comments=p.comments, likes=p.likes))


@pytest.fixture()
def demo_dashboard(settings: Settings, es_client: Elasticsearch, tmp_path: Path) -> Iterator[tuple[str, str]]:
    """The demo corpus clustered by the events job, the dashboard served by `streamlit run`; returns the URL and
    the title of the library story's event."""
    setup(es_client, settings.elasticsearch, EVENT_SPECS)
    now = datetime.now(UTC)
    corpus = load_corpus()
    seed_posts(es_client, settings, [demo_post(p, now - timedelta(minutes=310)) for p in corpus])
    EventsUpdater(settings, es_client, clock=lambda: now).run_once()
    es_client.indices.refresh(index=f"{settings.elasticsearch.index_prefix}-*")
    library = {f"http://127.0.0.1:8601/{p.kind}/{p.id}.html" for p in corpus if p.story == RISING_STORY}
    hits = es_client.search(index=f"{settings.elasticsearch.index_prefix}-posts", size=0,
                            query={"terms": {"canonical_url": sorted(library)}},
                            aggs={"e": {"terms": {"field": "event_id", "size": 1}}})
    event_id = hits["aggregations"]["e"]["buckets"][0]["key"]  # the event with most of the story's posts
    title = es_client.get(index=f"{settings.elasticsearch.index_prefix}-events", id=event_id)["_source"]["title"]

    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    env = {k: v for k, v in os.environ.items() if k != "YUQING_CONFIG"}
    env.update({"YUQING_ELASTICSEARCH__INDEX_PREFIX": settings.elasticsearch.index_prefix,
                "YUQING_PATHS__CONFIG_DIR": str(config_with_users(tmp_path)),
                "YUQING_PATHS__DATA_DIR": str(settings.paths.data_dir)})
    log_path = tmp_path / "streamlit.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(streamlit_command("127.0.0.1", port), cwd=PROJECT_ROOT, env=env, stdout=log,
                                stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 45
        while not _healthy(url):
            try:  # waits a moment between polls and notices a server that exited
                code = proc.wait(timeout=0.25)
            except subprocess.TimeoutExpired:
                code = None
            assert code is None, f"streamlit exited with {code}:\n{log_path.read_text(errors='replace')}"
            assert time.monotonic() < deadline, f"streamlit did not answer:\n{log_path.read_text()}"
        yield url, title
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.mark.browser
def test_a_press_officer_opens_the_library_event(demo_dashboard: tuple[str, str], browser: Browser,
                                                 tmp_path: Path) -> None:
    url, title = demo_dashboard
    page = browser.new_page(accept_downloads=True)
    page.set_default_timeout(UI_TIMEOUT_MS)
    page.goto(url)
    sign_in(page, "press", PASSWORDS["press"])
    expect(page.get_by_role("heading", name="舆情总览")).to_be_visible()

    open_page(page, "热点事件")
    pick = page.get_by_role("combobox", name="查看事件详情")
    expect(pick).to_have_value(re.compile(re.escape(title)))  # the hottest event comes first: the library closure
    page.get_by_role("link", name="打开事件详情").click()

    expect(page.get_by_role("heading", name="事件详情")).to_be_visible()
    expect(page.get_by_role("heading", name=title)).to_be_visible()
    expect(page.get_by_text("预警等级依据")).to_be_visible()
    expect(page.get_by_test_id("stMetric").filter(has_text="6小时预测")).to_be_visible()
    ticket = page.get_by_role("link", name="发起处置单（处置跟踪）")
    expect(ticket).to_have_attribute("href", re.compile(r"tickets\?event=ev-[0-9a-f]+"))

    # the 舆情专报 for the leaders, as a Word file
    page.get_by_text("舆情专报（呈报局领导）").click()
    page.get_by_role("button", name="生成舆情专报").click()
    download_button = page.get_by_role("button", name=re.compile("^下载 舆情专报_ev-"))
    with page.expect_download() as download:
        download_button.click()
    saved = tmp_path / download.value.suggested_filename
    download.value.save_as(saved)
    doc = Document(str(saved))
    assert doc.paragraphs[0].text == f"关于“{title}”的舆情专报"
    assert "六、处置建议" in [p.text for p in doc.paragraphs]
