"""总览 and 检索 with events, 处置单 and alerts in the real Elasticsearch, and every page of ``PAGES`` for every role
(the walk reads ``PAGES`` from dashboard/app.py, so pages added later are covered without editing this test)."""

from __future__ import annotations

import ast
import csv
import io
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qsl, urlsplit
from zoneinfo import ZoneInfo

import pytest
from elasticsearch import Elasticsearch
from openpyxl import load_workbook
from streamlit.testing.v1 import AppTest

from alerts.reports import Period, search_link
from alerts.signals import SurgeSignal
from dashboard.auth import can_open
from dashboard.downloads import Download
from index.events import EVENTS, EventRecord, set_post_events, upsert_events
from index.layout import ALL_SPECS, POSTS, setup
from index.outbox import OUTBOX, OutboxEntry
from index.outbox import create as create_outbox
from index.tickets import TicketRecord, ticket_store
from tests.conftest import seed_posts
from tests.dashboard_users import ROLES
from tests.test_dashboard_app import (
    A_HOURS,
    APP,
    B_SEATS,
    C_BOOK_SALE,
    D_THEATRE,
    E_NOISE,
    _run,
    app_env,
    frame_with,
    on_search,
    sample_posts,
    shown_titles,
    signed_in,
)
from yuqing.models import Post, doc_id_for
from yuqing.settings import Settings

__all__ = ["app_env"]  # fixture

EVENT_TITLE = "市图书馆周末开放时间调整引关注"
GUARD_MESSAGE = "页面出现意外错误"
LATE_TICKET = "图书馆座位投诉答复（来电13912345678）"


def pages_of_app() -> list[tuple[str, str, str, str]]:
    """The ``PAGES`` literal of dashboard/app.py (read, not imported: importing runs the app)."""
    tree = ast.parse(APP.read_text(encoding="utf-8"))
    for node in tree.body:
        if isinstance(node, ast.AnnAssign | ast.Assign) and node.value is not None:
            targets = [node.target] if isinstance(node, ast.AnnAssign) else node.targets
            if any(isinstance(t, ast.Name) and t.id == "PAGES" for t in targets):
                return [tuple(p) for p in ast.literal_eval(node.value)]
    raise AssertionError("PAGES not found in dashboard/app.py")


def _event(now: datetime) -> EventRecord:
    return EventRecord.model_validate({
        "event_id": "ev-library", "status": "open", "title": EVENT_TITLE,
        "first_post": {"id": "p1", "title": A_HOURS, "source": "wenlv-site", "kind": "article",
                       "published_at": (now - timedelta(hours=3)).isoformat()},
        "started_at": (now - timedelta(hours=3)).isoformat(), "last_post_at": (now - timedelta(hours=1)).isoformat(),
        "updated_at": now.isoformat(), "count": 2, "negative_share": 0.5, "heat": 72.5, "heat_6h": 60,
        "heat_24h": 40, "growth": 1.5, "risk_level": "II", "risk_colour": "橙",
    })


def _ticket(tid: str, title: str, now: datetime, due_in: timedelta, status: str = "处置中",
            next_due_in: timedelta | None = None) -> TicketRecord:
    """A stored ticket whose first deadline is ``due_in`` from now and whose next unmet one ``next_due_in`` (default:
    the first: not met yet)."""
    unmet = due_in if next_due_in is None else next_due_in
    return TicketRecord.model_validate({
        "id": tid, "subject": {"kind": "event", "id": "ev-library"}, "title": title, "unit": "公共服务科",
        "status": status, "opened_at": (now - timedelta(days=1)).isoformat(), "opened_by": "system",
        "first_due_at": (now + due_in).isoformat(), "next_due_at": (now + unmet).isoformat(),
        "overdue": unmet < timedelta(0),
    })


def _alert(aid: str, status: str, now: datetime, error: str | None = None) -> OutboxEntry:
    return OutboxEntry.model_validate({
        "id": aid, "rule": "负面舆情", "subject_key": aid, "occurrence": "1", "cooldown_key": aid,
        "title": f"预警 {aid}", "status": status, "decided_at": now.isoformat(), "deliver_at": now.isoformat(),
        "updated_at": now.isoformat(), "last_error": error,
    })


@pytest.fixture()
def office(app_env: Settings, es_client: Elasticsearch) -> list[Post]:
    """Every index of the application, the sample posts, an event (A and C, risk II), A in the 场馆开放 group,
    two open 处置单 (one overdue) and a closed one answered late, a failed and a sent alert."""
    setup(es_client, app_env.elasticsearch, ALL_SPECS)
    prefix = app_env.elasticsearch.index_prefix
    posts = sample_posts()
    seed_posts(es_client, app_env, posts)
    now = datetime.now(UTC)
    by_title = {p.title: doc_id_for(p.url) for p in posts}
    set_post_events(es_client, POSTS.alias(prefix), {by_title[A_HOURS]: "ev-library", by_title[C_BOOK_SALE]:
                    "ev-library"}, {by_title[A_HOURS]: ["场馆开放"]}, refresh=True)
    upsert_events(es_client, EVENTS.alias(prefix), [_event(now)], refresh=True)
    store = ticket_store(es_client, prefix)
    store.create("t-late", _ticket("t-late", LATE_TICKET, now, -timedelta(hours=2)))
    store.create("t-soon", _ticket("t-soon", "开放时间咨询答复", now, timedelta(hours=3), status="待研判"))
    # its first deadline (2 hours ago) was met; the next is due in 20 hours: neither overdue nor met by all
    store.create("t-met", _ticket("t-met", "已发布情况说明", now, -timedelta(hours=2), next_due_in=timedelta(hours=20)))
    # answered, and a 领导批示 on it still waits for its report back (the closed one's was reported back on)
    store.create("t-answered", _ticket("t-answered", "已回应待反馈", now, -timedelta(days=1), status="已回应",
                                       next_due_in=timedelta(days=1)).model_copy(
        update={"instructions_pending": 1, "awaiting_instruction": True}))  # and a later 专报 waits for a 批示
    # answered late and closed: it keeps its overdue flag, but is neither open nor counted as overdue now
    store.create("t-closed", _ticket("t-closed", "已答复的旧处置单", now, -timedelta(days=2), status="已办结"))
    create_outbox(es_client, OUTBOX.alias(prefix), _alert("a-failed", "failed", now, "550 mailbox unavailable"))
    create_outbox(es_client, OUTBOX.alias(prefix), _alert("a-sent", "sent", now))
    create_outbox(es_client, OUTBOX.alias(prefix), _alert("a-held", "held", now))  # waits for its digest
    # sent a month ago: outside any of the page's ranges up to 近7天, so not counted under 已发送
    create_outbox(es_client, OUTBOX.alias(prefix), _alert("a-old", "sent", now - timedelta(days=30)), refresh=True)
    es_client.indices.refresh(index=f"{prefix}-*")
    return posts


def test_overview_shows_events_tickets_alerts_and_health(office: list[Post]) -> None:
    at = _run(signed_in())
    events = frame_with(at, "事件")
    assert list(events["事件"]) == [EVENT_TITLE] and list(events["风险等级"]) == ["II级（橙）"]
    assert list(events["热度"]) == [72.5] and list(events["详情"]) == ["event?id=ev-library"]
    assert at.selectbox(key="overview_event").value == "ev-library"  # opened in this tab (a new one signs in again)
    metrics = {m.label: m.value for m in at.metric}
    assert (metrics["待办"], metrics["24小时内到期"], metrics["已超期"]) == ("3", "2", "1")
    assert metrics["批示待反馈"] == "1"  # whatever the ticket's status
    assert metrics["专报待批示"] == "1"
    tickets = frame_with(at, "处置单")
    assert list(tickets["处置单"]) == [LATE_TICKET, "开放时间咨询答复", "已发布情况说明"]  # soonest unmet first
    assert list(tickets["期限状态"]) == ["已超期", "未到期", "未到期"]
    assert (metrics["发送失败"], metrics["已发送"]) == ("1", "1")
    alerts = frame_with(at, "预警")
    assert set(zip(alerts["预警"], alerts["状态"], strict=True)) == {("预警 a-failed", "发送失败"),
                                                                    ("预警 a-sent", "已发送"),
                                                                    ("预警 a-held", "等待汇总")}
    assert (metrics["待发送"], metrics["待汇总"]) == ("0", "1")  # a digest's item is not a mail stuck in the queue
    assert any("1 条预警邮件发送失败" in e.value for e in at.error)
    assert any(md.value.startswith("未运行 ") for md in at.markdown)  # source health: no crawl ran yet
    assert at.get("vega_lite_chart"), "the volume chart is drawn"

    leader = _run(signed_in(username="leader"))  # personal data in titles masked for leaders and analysts
    assert frame_with(leader, "处置单")["处置单"].iloc[0] == "图书馆座位投诉答复（来电139****5678）"


def _follow(link: str) -> AppTest:
    """The 检索 page opened from ``link`` (an alert mail's or a report's) by a signed-in press officer."""
    at = _run(signed_in())
    at.switch_page("views/search.py")
    for key, value in parse_qsl(urlsplit(link).query):
        at.query_params[key] = value
    return _run(at)


def test_links_from_mails_and_reports_set_the_search_filters_once(office: list[Post]) -> None:
    facility = "公共文化设施建设和使用"
    now = datetime.now(UTC)
    surge = SurgeSignal(topic=facility, window_end=now, window_minutes=24 * 60, negative=5, total=6, prev_negative=0,
                        prev_total=1)  # a day's window: the link's dates hold every sample post, whatever the hour
    at = _follow(surge.payload(now, ZoneInfo("Asia/Shanghai")).page_path)  # 负面激增: this topic's negative posts
    assert shown_titles(at) == [B_SEATS]
    assert at.sidebar.multiselect(key="filter_topics").value == [facility]
    assert at.sidebar.multiselect(key="filter_sentiments").value == ["negative"]
    assert at.sidebar.selectbox(key="search_window").value == "自定义日期"  # the surge window's days
    assert any(i.value.startswith("已按链接设置筛选条件") for i in at.info)
    at.sidebar.multiselect(key="filter_sentiments").set_value([])  # from now on the filters are the officer's
    assert shown_titles(_run(at)) == [B_SEATS, A_HOURS]  # the link, still in the address, does not undo it
    at.sidebar.multiselect(key="filter_risks").set_value(["I"])
    assert shown_titles(_run(at)) == []
    at.query_params["topic"] = "公益性文化服务活动"  # another link followed in the same session
    at.query_params["sentiment"] = "neutral"
    _run(at)
    assert at.sidebar.multiselect(key="filter_risks").value == []  # what the link does not name is not filtered
    assert shown_titles(at) == [C_BOOK_SALE]

    today = now.astimezone(ZoneInfo("Asia/Shanghai")).replace(hour=0, minute=0, second=0, microsecond=0)
    period = Period(kind="daily", start=today - timedelta(days=1), end=today + timedelta(days=1))
    at = _follow(search_link("http://dashboard.test", period, source="wenlv-site"))  # a report's source row
    assert at.sidebar.selectbox(key="search_window").value == "自定义日期"
    assert at.sidebar.date_input(key="search_dates").value == ((today - timedelta(days=1)).date(), today.date())
    assert at.sidebar.checkbox(key="filter_no_reposts").value  # the report counts without reposts: so does the page
    assert shown_titles(at) == [A_HOURS, C_BOOK_SALE]

    at = _follow("/search?topic=%E4%B8%8D%E5%AD%98%E5%9C%A8&sentiment=bogus&since=2026-13-01")  # a mangled link
    assert len(shown_titles(at)) == 5 and at.sidebar.multiselect(key="filter_topics").value == []
    assert any("“不存在”暂无舆情" in i.value for i in at.info)


def test_search_syntax_filters_sort_facets_and_export(office: list[Post]) -> None:
    at = on_search()

    def search(text: str) -> list[str]:
        at.text_input(key="search_text").input(text)
        return shown_titles(_run(at))

    assert search("+市民 !图书馆") == [D_THEATRE]
    assert search('"周末 阅读"') == [A_HOURS]  # a quoted phrase: its words next to each other
    assert search("噪音 剧院") == [E_NOISE, D_THEATRE]  # plain words: any of them
    search("+周末 !招聘 +")
    assert at.error[0].value.startswith("检索式无法识别")

    assert search("图书馆") == [B_SEATS, A_HOURS]
    at.sidebar.radio(key="search_sort").set_value("relevance")
    assert shown_titles(_run(at)) == [A_HOURS, B_SEATS]  # 图书馆 in A's title ranks it first
    at.sidebar.radio(key="search_sort").set_value("newest")

    assert search("") == [B_SEATS, A_HOURS, C_BOOK_SALE, E_NOISE, D_THEATRE]
    at.sidebar.selectbox(key="search_window").select("自定义日期")
    _run(at)  # the dates become editable
    today = datetime.now(ZoneInfo("Asia/Shanghai")).date()
    at.sidebar.date_input(key="search_dates").set_value((today - timedelta(days=2), today))
    assert len(shown_titles(_run(at))) == 5
    at.sidebar.date_input(key="search_dates").set_value((today - timedelta(days=40), today - timedelta(days=30)))
    assert shown_titles(_run(at)) == [] and at.info[0].value.startswith("未找到相关舆情")
    at.sidebar.selectbox(key="search_window").select("近24小时")
    at.sidebar.multiselect(key="filter_kinds").set_value(["article"])
    assert shown_titles(_run(at)) == [A_HOURS, C_BOOK_SALE, E_NOISE]
    at.sidebar.multiselect(key="filter_risks").set_value(["II"])
    assert shown_titles(_run(at)) == [A_HOURS, C_BOOK_SALE]  # the posts of the risk-II event
    at.sidebar.multiselect(key="filter_groups").set_value(["场馆开放"])
    assert shown_titles(_run(at)) == [A_HOURS]
    at.sidebar.multiselect(key="filter_groups").set_value([])
    at.sidebar.multiselect(key="filter_risks").set_value(["I"])
    assert shown_titles(_run(at)) == [] and at.info[0].value.startswith("未找到相关舆情")

    at.sidebar.multiselect(key="filter_risks").set_value([])
    at.sidebar.multiselect(key="filter_kinds").set_value([])
    search("图书馆 噪音")
    by_source = frame_with(at, "来源")
    assert dict(zip(by_source["来源"], by_source["条数"], strict=True)) == {"liuyan": 1, "wenlv-site": 1,
                                                                          "news-portal": 1}
    assert sum(frame_with(at, "日期")["条数"]) == 3

    at.radio(key="export_format").set_value("csv")
    at.button(key="export_make").click()
    _run(at)
    made = at.session_state["export_file"][1]
    assert isinstance(made, Download) and made.file_name.endswith(".csv")
    rows = list(csv.reader(io.StringIO(made.data.decode("utf-8-sig"))))
    assert sorted(r[1] for r in rows[1:]) == sorted([B_SEATS, A_HOURS, E_NOISE])
    assert [s.value for s in at.success] == ["已导出 3 条。"]
    assert at.get("download_button"), "the file is offered for download"

    at.radio(key="export_format").set_value("xlsx")
    at.button(key="export_make").click()
    _run(at)
    sheet = load_workbook(io.BytesIO(at.session_state["export_file"][1].data), read_only=True).active
    assert sheet is not None and len(list(sheet.iter_rows())) == 4  # header and three posts


@pytest.mark.parametrize("user", sorted(ROLES))
def test_every_page_opens_for_every_role_it_is_meant_for(office: list[Post], user: str) -> None:
    pages = pages_of_app()
    at = _run(signed_in(username=user))
    opened = []
    for key, file, title, _icon in pages:
        if not can_open(ROLES[user], key):
            with pytest.raises(ValueError, match="Known pages"):  # not in this role's navigation
                at.switch_page(file)
            continue
        at.switch_page(file)
        _run(at)  # no exception reached the page
        guarded = [e.value for e in at.error if e.value.startswith(GUARD_MESSAGE)]
        assert not guarded, f"{title} ({file}) as {user}: {guarded}"
        assert at.title, f"{title} ({file}) as {user} shows no title"
        opened.append(key)
    assert opened and ("settings" in opened) is (user == "admin")
