"""End to end: `streamlit run` serves the dashboard; headless Chromium is refused a wrong password, signs in, sees
总览, searches 检索 for 图书馆, downloads the CSV export and parses it, signs out; and opens hostile post text that
must stay inert."""

from __future__ import annotations

import csv
import io
import os
import re
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from elasticsearch import Elasticsearch
from playwright.sync_api import Browser, Page, expect, sync_playwright

from dashboard.cli import streamlit_command
from tests.conftest import seed_posts
from tests.dashboard_users import PASSWORDS, config_with_users
from tests.test_dashboard_app import A_HOURS, B_SEATS, C_BOOK_SALE, D_THEATRE, sample_posts
from yuqing.models import Post
from yuqing.settings import PROJECT_ROOT, Settings

START_DEADLINE_S = 45.0
REFRESH_S = 5
UI_TIMEOUT_MS = 20_000
expect.set_options(timeout=UI_TIMEOUT_MS)


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
    seed_posts(es_client, settings, [*sample_posts(), hostile_post()])
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    env = {k: v for k, v in os.environ.items() if k != "YUQING_CONFIG"}
    env["YUQING_ELASTICSEARCH__INDEX_PREFIX"] = settings.elasticsearch.index_prefix
    env["YUQING_PATHS__CONFIG_DIR"] = str(config_with_users(tmp_path))
    env["YUQING_PATHS__DATA_DIR"] = str(settings.paths.data_dir)
    env["YUQING_DASHBOARD__REFRESH_S"] = str(REFRESH_S)  # 总览's panels refresh themselves this often
    env["YUQING_DASHBOARD__CACHE_TTL_S"] = "1"
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


@pytest.fixture()
def browser() -> Iterator[Browser]:
    chromium = shutil.which("chromium")
    assert chromium, "chromium is not installed"
    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=chromium,
                               args=["--headless", "--no-sandbox", "--disable-background-networking"])
        try:
            yield b
        finally:
            b.close()


def sign_in(page: Page, username: str, password: str) -> None:
    page.get_by_label("用户名").fill(username)
    page.get_by_label("密码").fill(password)
    page.get_by_role("button", name="登录").click()


# Post text that would run script, load an image or carry a javascript: link if it were rendered as HTML/Markdown.
HOSTILE_TITLE = '<img src=x onerror="window.__xss=1">预约<script>window.__xss=2</script>'
HOSTILE_CONTENT = ('周末博物馆预约 <script>window.__xss=3</script> ![图](http://127.0.0.1:9/md.png) '
                   '[点我](javascript:window.__xss=4) <img src="http://127.0.0.1:9/y.png" onerror="window.__xss=5"> '
                   '<a href="javascript:window.__xss=6">链接</a>')


def hostile_post() -> Post:
    now = datetime.now(UTC)
    return Post(url="javascript:window.__xss=7", title=HOSTILE_TITLE, content=HOSTILE_CONTENT, source="liuyan",
                author='<b onmouseover="window.__xss=8">网友</b>', published_at=now, fetched_at=now)


def open_page(page: Page, title: str) -> None:
    """Follow the sidebar navigation to the page called ``title`` (a reload would sign the user out)."""
    page.locator('[data-testid="stSidebarNavLink"]', has_text=title).click()
    expect(page.get_by_role("heading", name=title)).to_be_visible()


@pytest.mark.browser
def test_sign_in_overview_search_export_sign_out(dashboard_url: str, browser: Browser, settings: Settings,
                                                es_client: Elasticsearch, tmp_path: Path) -> None:
    page = browser.new_page(accept_downloads=True)
    page.set_default_timeout(UI_TIMEOUT_MS)
    page.goto(f"{dashboard_url}/overview")  # a page's own address, before anyone signed in: the login form
    expect(page.get_by_label("用户名")).to_be_visible()
    expect(page.get_by_text("舆情总数")).to_have_count(0)
    # The overview's chart and table are started on the login page (components.browser_warmup), out of sight.
    for test_id in ("stVegaLiteChart", "stDataFrame"):
        expect(page.get_by_test_id(test_id)).to_have_count(1)
        expect(page.get_by_test_id(test_id)).to_be_hidden()

    page.goto(dashboard_url)
    sign_in(page, "press", "wrong-password")
    expect(page.get_by_text("用户名或密码错误。")).to_be_visible()
    expect(page.get_by_text("舆情总数")).to_have_count(0)

    sign_in(page, "press", PASSWORDS["press"])
    expect(page.get_by_role("heading", name="舆情总览")).to_be_visible()
    total = page.get_by_test_id("stMetric").filter(has_text="舆情总数")
    expect(total).to_contain_text("5")  # four sample posts of the last 24 hours and the hostile one

    # A post arrives while the page is open: the panel shows it on its own, nobody clicks (st.fragment run_every).
    now = datetime.now(UTC)
    seed_posts(es_client, settings, [Post(url="https://news.example.com/city/late.html", title="晚到的一条新闻",
                                          content="刚刚发布的新闻。", source="news-portal", published_at=now,
                                          fetched_at=now)])
    expect(total).to_contain_text("6", timeout=(REFRESH_S * 4) * 1000)

    open_page(page, "检索")
    box = page.get_by_role("textbox", name="检索式")
    box.fill("图书馆")
    box.press("Enter")
    expect(page.get_by_text("共 2 条", exact=True)).to_be_visible()
    for title in (B_SEATS, A_HOURS):  # once stale elements of the previous run are gone, exactly once each
        expect(page.get_by_role("link", name=title)).to_have_count(1)
        expect(page.get_by_role("link", name=title)).to_be_visible()
    expect(page.get_by_role("link", name=A_HOURS)).to_have_attribute(
        "href", "https://wlj.example.gov.cn/news/2026/1127/1.html"
    )
    expect(page.get_by_text(C_BOOK_SALE)).to_have_count(0)
    expect(page.get_by_text(D_THEATRE)).to_have_count(0)

    page.get_by_text("导出检索结果（CSV / Excel）").click()
    page.get_by_text("CSV", exact=True).click()
    page.get_by_role("button", name="生成导出文件").click()
    expect(page.get_by_text("已导出 2 条。")).to_be_visible()
    with page.expect_download() as info:
        page.get_by_role("button", name=re.compile(r"^下载 yuqing-.*\.csv$")).click()
    download = info.value
    assert download.suggested_filename.endswith(".csv")
    rows = list(csv.reader(io.StringIO(Path(download.path()).read_text(encoding="utf-8-sig"))))
    assert rows[0][:2] == ["发布时间", "标题"] and [r[1] for r in rows[1:]] == [B_SEATS, A_HOURS]

    page.get_by_role("button", name="退出登录").click()
    expect(page.get_by_text("已退出登录。")).to_be_visible()
    expect(page.get_by_role("link", name=A_HOURS)).to_have_count(0)

    # The server warmed itself as it started (dashboard.serve): every step done, none failed.
    warmed = _log_line(tmp_path / "streamlit.log", "dashboard warm-up done")
    assert "failed" not in warmed and "page modules" in warmed, warmed


def _log_line(path: Path, text: str, deadline_s: float = START_DEADLINE_S) -> str:
    """The first line of the server log at ``path`` that contains ``text`` (polled until ``deadline_s``)."""
    deadline = time.monotonic() + deadline_s
    while True:
        line = next((x for x in path.read_text(errors="replace").splitlines() if text in x), None)
        if line is not None:
            return line
        assert time.monotonic() < deadline, f"no {text!r} in the server log:\n{path.read_text(errors='replace')}"
        time.sleep(0.2)


@pytest.mark.browser
def test_hostile_post_text_is_inert(dashboard_url: str, browser: Browser) -> None:
    page = browser.new_page()
    page.set_default_timeout(UI_TIMEOUT_MS)
    requests: list[str] = []
    page.on("request", lambda r: requests.append(r.url))
    page.goto(dashboard_url)
    sign_in(page, "press", PASSWORDS["press"])
    open_page(page, "检索")

    # The hostile post is the newest, listed first; its card is complete once the last post's card is shown.
    expect(page.get_by_text("<script>window.__xss=2</script>", exact=False)).to_be_visible()
    expect(page.get_by_role("link", name=D_THEATRE)).to_be_visible()
    page.get_by_text("<script>window.__xss=2</script>", exact=False).hover()

    assert page.evaluate("typeof window.__xss") == "undefined"
    assert page.locator("img[src='x'], img[src*='127.0.0.1:9'], img[onerror]").count() == 0
    assert page.locator("a[href^='javascript:' i], [onmouseover]").count() == 0
    assert not [u for u in requests if "127.0.0.1:9/" in u]
    # ... and it is all there as text.
    expect(page.get_by_text("[点我](javascript:window.__xss=4)", exact=False)).to_be_visible()
    expect(page.get_by_text('<b onmouseover="window.__xss=8">网友</b>', exact=False)).to_be_visible()
