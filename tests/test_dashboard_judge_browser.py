"""End to end in headless Chromium: a press officer searches, follows a card's 人工研判 link (same tab, still signed
in), marks the post 不相关 with a note, and the judgement is in Elasticsearch and on the 已研判 list."""

from __future__ import annotations

import pytest
from elasticsearch import Elasticsearch
from playwright.sync_api import Browser, expect

from index.layout import POSTS
from tests.dashboard_users import PASSWORDS
from tests.test_dashboard_app import B_SEATS
from tests.test_dashboard_browser import UI_TIMEOUT_MS, browser, dashboard_url, open_page, sign_in
from yuqing.models import canonicalize_url, doc_id_for
from yuqing.settings import Settings

__all__ = ["browser", "dashboard_url"]  # fixtures

B_SEATS_URL = "https://liuyan.example.cn/thread/10086"


@pytest.mark.browser
def test_judge_a_post_from_search(dashboard_url: str, browser: Browser, settings: Settings,
                                  es_client: Elasticsearch) -> None:
    page = browser.new_page()
    page.set_default_timeout(UI_TIMEOUT_MS)
    page.goto(dashboard_url)
    sign_in(page, "press", PASSWORDS["press"])
    expect(page.get_by_role("heading", name="舆情总览")).to_be_visible()

    open_page(page, "检索")
    box = page.get_by_role("textbox", name="检索式")
    box.fill("自习座位")
    box.press("Enter")
    expect(page.get_by_role("link", name=B_SEATS)).to_have_count(1)
    expect(page.get_by_text("共 1 条", exact=True)).to_be_visible()
    post_id = doc_id_for(canonicalize_url(B_SEATS_URL))
    link = page.get_by_role("main").get_by_role("link", name="人工研判")  # the card's, not the sidebar's
    expect(link).to_have_count(1)
    expect(link).to_have_attribute("href", f"judge?post={post_id}")
    link.click()

    expect(page.get_by_role("heading", name="人工研判", exact=True)).to_be_visible()
    expect(page.get_by_role("heading", name="指定舆情")).to_be_visible()
    expect(page.get_by_role("link", name=B_SEATS)).to_be_visible()
    form = page.get_by_test_id("stForm").first
    form.get_by_text("不相关", exact=True).click()
    form.get_by_label("备注（可选）").fill("座位预约属学校自习室，非公共图书馆")
    form.get_by_role("button", name="保存研判").click()
    expect(page.get_by_text(f"已保存：「{B_SEATS}」研判为不相关。")).to_be_visible()

    doc = es_client.get(index=POSTS.alias(settings.elasticsearch.index_prefix), id=post_id)["_source"]
    assert doc["analysis"]["relevant"] is False and doc["analysis"]["topic"] is None
    assert doc["judgement"]["by"] == "宣传小王（press）" and doc["judgement"]["model_relevant"] is True

    page.get_by_role("tab", name="已研判").click()
    expect(page.get_by_text("共 1 条研判")).to_be_visible()
    line = "人工研判：不相关 · 模型：相关·公共文化设施建设和使用 · 宣传小王（press）"
    expect(page.get_by_test_id("stTabs").get_by_text(line)).to_be_visible()

    page.close()
