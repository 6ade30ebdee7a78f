"""End to end in headless Chromium: a press officer follows a link to 处置跟踪 for an event, signs in, lands on the
page with the event picked, opens a ticket for it and records a response; a leader signs in and records a 领导批示
on it, and the press officer reports back on it; all of it lands in Elasticsearch with the audit."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from elasticsearch import Elasticsearch
from playwright.sync_api import Browser, expect

from index.events import EVENTS, EventRecord, FirstPostRecord, upsert_events
from index.layout import setup
from response.service import TicketService, ensure_indices
from response.tickets import ticket_id_for
from tests.dashboard_users import PASSWORDS
from tests.test_dashboard_browser import UI_TIMEOUT_MS, browser, dashboard_url, sign_in
from yuqing.settings import Settings

__all__ = ["browser", "dashboard_url"]  # fixtures

EVENT_TITLE = "青川市图书馆突然闭馆 读者扑空"


def _event() -> EventRecord:
    now = datetime.now(UTC).replace(microsecond=0)
    started = now - timedelta(hours=2)
    return EventRecord(
        event_id="ev-browser", status="open", title=EVENT_TITLE, keywords=["图书馆", "闭馆"],
        first_post=FirstPostRecord(id="p1", title="图书馆今天怎么关门了", source="demo-weibo", kind="social",
                                   published_at=started),
        started_at=started, last_post_at=now, updated_at=now, count=9, topic="公共文化设施建设和使用",
        unit="公共服务科", heat=66.0, heat_6h=70.0, heat_24h=72.0, growth=1.2, risk_level="II", risk_colour="橙",
    )


@pytest.mark.browser
def test_open_ticket_from_event_and_record_response(dashboard_url: str, browser: Browser, settings: Settings,
                                                    es_client: Elasticsearch) -> None:
    ensure_indices(es_client, settings.elasticsearch)
    setup(es_client, settings.elasticsearch, [EVENTS])
    upsert_events(es_client, EVENTS.alias(settings.elasticsearch.index_prefix), [_event()], refresh=True)

    page = browser.new_page()
    page.set_default_timeout(UI_TIMEOUT_MS)
    # The link of the 事件详情 page (or an alert mail), followed before signing in: after the login it opens
    # 处置跟踪 with the event picked.
    page.goto(f"{dashboard_url}/tickets?event=ev-browser")
    sign_in(page, "press", PASSWORDS["press"])
    expect(page.get_by_role("heading", name="处置跟踪")).to_be_visible()
    expect(page.get_by_role("combobox", name="事件")).to_have_value(re.compile(f"^{EVENT_TITLE}（II级"))
    page.get_by_role("button", name="创建处置单").click()
    expect(page.get_by_text("已创建处置单 CZ-")).to_be_visible()

    page.get_by_label("回应正文").fill("市图书馆因消防设施检修临时闭馆三天，检修完成后恢复开放，给读者带来不便深表歉意。")
    page.get_by_role("button", name="记录回应").click()
    expect(page.get_by_text("已记录回应。")).to_be_visible()

    ticket = TicketService(es_client, settings.elasticsearch.index_prefix).load(
        ticket_id_for("event", "ev-browser")).ticket
    assert ticket.status == "已回应" and ticket.unit == "公共服务科" and ticket.risk_level == "II"
    assert [(r.channel, r.state) for r in ticket.responses] == [("官网", "已发布")]
    assert [e.action for e in ticket.audit] == ["创建", "记录回应", "发布回应", "状态变更", "状态变更"]
    assert {e.by for e in ticket.audit} == {"宣传小王（press）"}

    # The leader reads the ticket and instructs; the press officer reports back on the instruction.
    leader = browser.new_page()
    leader.set_default_timeout(UI_TIMEOUT_MS)
    leader.goto(f"{dashboard_url}/tickets?id={ticket.id}")
    sign_in(leader, "leader", PASSWORDS["leader"])
    expect(leader.get_by_role("combobox", name="批示领导")).to_have_value("李局长")
    leader.get_by_label("批示内容").fill("请尽快恢复开放，做好读者解释工作，结果报我。")
    leader.get_by_role("button", name="记录批示").click()
    expect(leader.get_by_text("已记录领导批示。")).to_be_visible()
    expect(leader.get_by_text("待反馈").first).to_be_visible()
    leader.close()
    # the press officer's page shows it at its next run (the same sign-in: a reload would sign out)
    page.get_by_text("仅看批示待反馈").click()
    page.get_by_label("落实情况").fill("已于今日恢复开放，读者押金全部退还。")
    page.get_by_role("button", name="提交反馈").click()
    expect(page.get_by_text("已反馈批示#1 的落实情况。")).to_be_visible()
    (instruction,) = TicketService(es_client, settings.elasticsearch.index_prefix).load(ticket.id).ticket.instructions
    assert (instruction.leader, instruction.recorded_by) == ("李局长", "李局长（leader）")
    assert [(f.by, f.text) for f in instruction.feedback] == [
        ("宣传小王（press）", "已于今日恢复开放，读者押金全部退还。")]
    # a 批示 given at a meeting by a leader without an account: the officer types the name in
    page.get_by_role("combobox", name="批示领导").fill("王副局长")
    page.keyboard.press("Enter")
    expect(page.get_by_role("combobox", name="批示领导")).to_have_value("王副局长")
    page.get_by_label("批示内容").fill("同意，请于周五前报送整改情况。")
    page.get_by_role("button", name="记录批示").click()
    expect(page.get_by_text("已记录领导批示。")).to_be_visible()
    second = TicketService(es_client, settings.elasticsearch.index_prefix).load(ticket.id).ticket.instructions[1]
    assert (second.leader, second.recorded_by) == ("王副局长", "宣传小王（press）")
    page.close()
