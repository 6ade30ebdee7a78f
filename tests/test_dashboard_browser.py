"""End to end: `streamlit run` serves the dashboard, headless Chromium searches for 图书馆."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from elasticsearch import Elasticsearch
from playwright.sync_api import expect, sync_playwright

from dashboard.cli import streamlit_command
from tests.conftest import seed_posts
from tests.test_dashboard_app import A_HOURS, B_SEATS, C_BOOK_SALE, D_THEATRE, sample_posts
from yuqing.settings import PROJECT_ROOT, Settings

START_DEADLINE_S = 45.0
UI_TIMEOUT_MS = 20_000


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as resp:
            return resp.status == 200
    except (urllib.error.URLError, OSError):
        return False


@pytest.fixture()
def dashboard_url(settings: Settings, es_client: Elasticsearch, tmp_path: Path) -> Iterator[str]:
    """The dashboard served by `streamlit run` (the command `yuqing dashboard` uses) on a free port."""
    seed_posts(es_client, settings, sample_posts())
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    env = {k: v for k, v in os.environ.items() if k != "YUQING_CONFIG"}
    env["YUQING_ELASTICSEARCH__INDEX_PREFIX"] = settings.elasticsearch.index_prefix
    log_path = tmp_path / "streamlit.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            streamlit_command("127.0.0.1", port),
            cwd=PROJECT_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + START_DEADLINE_S
        while not _healthy(url):
            try:  # waits a moment between polls and notices a server that exited
                code = proc.wait(timeout=0.25)
            except subprocess.TimeoutExpired:
                code = None
            if code is not None:
                pytest.fail(f"streamlit exited with {code}:\n{log_path.read_text(errors='replace')}")
            if time.monotonic() > deadline:
                pytest.fail(f"streamlit did not answer within {START_DEADLINE_S}s:\n{log_path.read_text()}")
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.mark.browser
def test_search_library_in_chromium(dashboard_url: str) -> None:
    chromium = shutil.which("chromium")
    assert chromium, "chromium is not installed"
    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=chromium,
            args=["--headless", "--no-sandbox", "--disable-background-networking"],
        )
        try:
            page = browser.new_page()
            page.set_default_timeout(UI_TIMEOUT_MS)
            page.goto(dashboard_url)
            expect(page.get_by_role("link", name=C_BOOK_SALE)).to_be_visible()  # the newest posts are listed

            box = page.get_by_label("搜索关键词")
            box.fill("图书馆")
            box.press("Enter")

            expect(page.get_by_text("共 2 条", exact=True)).to_be_visible()
            for title in (B_SEATS, A_HOURS):
                expect(page.get_by_role("link", name=title)).to_be_visible()
            expect(page.get_by_role("link", name=A_HOURS)).to_have_attribute(
                "href", "https://wlj.example.gov.cn/news/2026/1127/1.html"
            )
            expect(page.get_by_text(C_BOOK_SALE)).to_have_count(0)
            expect(page.get_by_text(D_THEATRE)).to_have_count(0)
        finally:
            browser.close()
