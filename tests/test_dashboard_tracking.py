"""The 处置跟踪 and 依申请公开 pages with AppTest against the real Elasticsearch: lists with countdowns and red
overdue lines, the unit filter, opening a ticket from an event, 保密审查 before publishing, role rules (leaders
read only), a concurrent edit reported, the 依申请公开 clock, the reply refused without the remedy text."""

from __future__ import annotations

import csv
import io
import time
from datetime import UTC, date, datetime, timedelta
from datetime import time as clock_time
from zoneinfo import ZoneInfo

import pytest
from elasticsearch import Elasticsearch
from streamlit.testing.v1 import AppTest

from index.events import EVENTS, EventRecord, FirstPostRecord, upsert_events
from index.layout import setup
from response.calendar import WorkCalendar
from response.config import ResponseConfig, RiskLevel
from response.foia import register, reply, reply_template
from response.service import FoiaService, TicketService, ensure_indices
from response.silence import ChannelPost, apply_silence, check_silence
from response.tickets import Subject, Ticket, add_response, assign, open_ticket
from tests.test_dashboard_app import _run, app_env, signed_in
from yuqing.settings import Settings

__all__ = ["app_env"]  # fixture

TZ = ZoneInfo("Asia/Shanghai")
CFG = ResponseConfig()
TICKETS_PAGE = "views/tickets.py"
FOIA_PAGE = "views/foia.py"


@pytest.fixture()
def stores(app_env: Settings, es_client: Elasticsearch) -> tuple[TicketService, FoiaService]:
    ensure_indices(es_client, app_env.elasticsearch)
    prefix = app_env.elasticsearch.index_prefix
    return TicketService(es_client, prefix), FoiaService(es_client, prefix)


def _page(username: str, page: str, **params: str) -> AppTest:
    at = _run(signed_in(username=username))
    at.switch_page(page)
    for k, v in params.items():
        at.query_params[k] = v
    return _run(at)


def _md(at: AppTest) -> list[str]:
    return [m.value for m in at.markdown]


def _today_clear_of_midnight(margin: timedelta = timedelta(minutes=1)) -> date:
    """Today in Asia/Shanghai, after waiting out the last ``margin`` before local midnight.

    The 依申请公开 page takes "today" from its own clock on every run: a test that straddled midnight would
    compare a date (or count working days) of one day with the page's of the next. Each such test takes a few
    seconds, far less than ``margin``."""
    now = datetime.now(TZ)
    midnight = datetime.combine(now.date() + timedelta(days=1), clock_time(0), tzinfo=TZ)
    if midnight - now < margin:
        time.sleep((midnight - now).total_seconds() + 0.1)
    return datetime.now(TZ).date()


def _ticket(subject_id: str, hours_ago: float, unit: str, level: RiskLevel | None) -> Ticket:
    now = datetime.now(TZ).replace(microsecond=0)
    subject = Subject(kind="event", id=subject_id, title=f"{subject_id}：市图书馆闭馆", topic="公共文化设施建设和使用",
                      started_at=now - timedelta(hours=hours_ago), keywords=("图书馆",))
    return open_ticket(subject, unit=unit, by="张三", now=now - timedelta(hours=hours_ago), config=CFG,
                       risk_level=level)


def test_list_by_status_overdue_in_red_unit_filter_leader_reads_only(
        stores: tuple[TicketService, FoiaService]) -> None:
    tickets, _ = stores
    late = _ticket("迟", 6, "公共服务科", "II")  # 权威信息发布 (5 h) passed an hour ago
    calm = _ticket("稳", 1.5, "艺术处", None)  # 回应 within 48 h: 46.5 h left, whatever second the page renders in
    for t in (late, calm):
        tickets.create(t)

    at = _page("leader", TICKETS_PAGE)
    assert at.title[0].value == "处置跟踪"
    assert "可查看处置情况" in at.info[0].value and "记录领导批示" in at.info[0].value
    assert [b.label for b in at.button] == ["生成处置台账", "记录批示", "退出登录"]  # reads; records their 批示
    assert [m.label for m in at.metric][:2] == ["待研判", "处置中"] and at.metric[0].value == "2"
    assert at.metric[-2].label == "超期" and at.metric[-2].value == "1"
    assert at.metric[-1].label == "批示待反馈" and at.metric[-1].value == "0"
    lines = [m for m in _md(at) if "`CZ-" in m]
    assert len(lines) == 2
    red = next(m for m in lines if "迟" in m)
    assert ":red[**权威信息发布已超期 1小时" in red
    assert ":red[" not in next(m for m in lines if "稳" in m) and "回应剩余 1天22小时" in lines[1 - lines.index(red)]

    at.sidebar.selectbox(key="tickets_unit").select("艺术处")
    _run(at)
    assert [m for m in _md(at) if "`CZ-" in m] == [lines[1 - lines.index(red)]]


def _event(event_id: str) -> EventRecord:
    now = datetime.now(UTC).replace(microsecond=0)
    started = now - timedelta(hours=2)
    return EventRecord(
        event_id=event_id, status="open", title="青川市图书馆突然闭馆 读者扑空", keywords=["图书馆", "闭馆", "读者"],
        first_post=FirstPostRecord(id="p1", title="图书馆今天怎么关门了", source="demo-weibo", kind="social",
                                   published_at=started),
        started_at=started, last_post_at=now, updated_at=now, count=12, topic="公共文化设施建设和使用",
        unit="公共服务科", heat=71.0, heat_6h=75.0, heat_24h=80.0, growth=1.5, risk_level="II", risk_colour="橙",
    )


def test_press_opens_from_event_records_response_after_secrecy_review(
        app_env: Settings, es_client: Elasticsearch, stores: tuple[TicketService, FoiaService]) -> None:
    tickets, _ = stores
    setup(es_client, app_env.elasticsearch, [EVENTS])
    upsert_events(es_client, EVENTS.alias(app_env.elasticsearch.index_prefix), [_event("ev-lib")], refresh=True)

    at = _page("press", TICKETS_PAGE, event="ev-lib")
    assert at.selectbox(key="open_event").value == "ev-lib"
    assert at.text_input(key="open_unit_ev-lib").value == "公共服务科"
    at.text_input(key="open_unit_ev-lib").input("办公室")
    next(b for b in at.button if b.label == "创建处置单").click()
    _run(at)
    assert at.error[0].value == "责任单位与默认不同，须填写改派理由"
    at.text_input(key="open_reason_ev-lib").input("涉及对外统一发布")
    next(b for b in at.button if b.label == "创建处置单").click()
    _run(at)
    assert at.success[0].value.startswith("已创建处置单 CZ-")
    total, listed = tickets.list()
    ticket = listed[0]
    assert total == 1 and ticket.subject.id == "ev-lib" and ticket.unit == "办公室" and ticket.risk_level == "II"
    assert ticket.subject.keywords == ("图书馆", "闭馆", "读者")
    assert ticket.audit[0].by == "宣传小王（press）" and "涉及对外统一发布" in (ticket.audit[0].note or "")
    assert at.header[0].value == ticket.title  # the new ticket is shown

    leaky = "图书馆因设备检修临时闭馆，详见市文广旅办〔2018〕225号，咨询13912345678。"
    at.text_area(key="respond_text").input(leaky)
    next(b for b in at.button if b.label == "保密审查").click()
    _run(at)
    assert at.warning[0].value == "保密审查发现 2 处问题："
    assert any(":red-background[市文广旅办〔2018〕225号]" in m for m in _md(at))
    next(b for b in at.button if b.label == "记录回应").click()
    _run(at)
    assert "不能发布" in at.error[0].value and tickets.load(ticket.id).ticket.responses == ()
    at.text_input(key="respond_override").input("文号已公开发布，电话为服务热线")
    next(b for b in at.button if b.label == "记录回应").click()
    _run(at)
    assert at.success[0].value == "已记录回应。"
    stored = tickets.load(ticket.id).ticket
    assert stored.status == "已回应" and stored.responses[0].review is not None
    assert stored.responses[0].review.override_reason == "文号已公开发布，电话为服务热线"
    assert [e.action for e in stored.audit] == ["创建", "记录回应", "保密审查放行", "发布回应", "状态变更", "状态变更"]
    assert {e.by for e in stored.audit} == {"宣传小王（press）"}
    assert list(at.dataframe[-1].value["操作"]) == [e.action for e in stored.audit]


def test_a_leader_instructs_the_office_reports_back_and_only_then_closes(
        stores: tuple[TicketService, FoiaService]) -> None:
    """专报 → 领导批示 → 落实 → 反馈 on the page: the leader records their 批示 (their name filled in), the list
    flags it, the office cannot close the ticket before reporting back, reports back, closes; analysts read."""
    tickets, _ = stores
    t = _ticket("批示", 2, "公共服务科", "III")
    tickets.create(t)
    tickets.update(t.id, lambda x: add_response(x, channel="官网", text="情况说明：已开放临时阅览室。", by="张三",
                                                at=datetime.now(TZ) - timedelta(hours=1), now=datetime.now(TZ)))

    leader = _page("leader", TICKETS_PAGE, id=t.id)
    assert leader.selectbox(key="instruct_leader").value == "李局长"
    assert not any(f.key == "feedback_form" for f in leader.get("form"))  # reporting back is the office's
    next(b for b in leader.button if b.label == "记录批示").click()
    _run(leader)
    assert leader.error[0].value == "须填写批示内容" and tickets.load(t.id).ticket.instructions == ()
    leader.text_area(key="instruct_text").input("请公共服务科尽快恢复开放，做好读者解释，结果报我。")
    leader.selectbox(key="instruct_due").select("24 小时内反馈")
    next(b for b in leader.button if b.label == "记录批示").click()
    _run(leader)
    assert leader.success[0].value == "已记录领导批示。"
    (ins,) = tickets.load(t.id).ticket.instructions
    assert (ins.leader, ins.recorded_by, ins.due_at is not None) == ("李局长", "李局长（leader）", True)
    assert ins.due_at is not None and ins.due_at - ins.at == timedelta(hours=24)
    assert any("**#1 李局长**" in m and ":orange-badge[待反馈]" in m for m in _md(leader))
    assert leader.metric[-1].value == "1"
    assert any(":orange-badge[批示待反馈]" in m for m in _md(leader) if "`CZ-" in m)
    other = _ticket("其他", 1, "艺术处", "III")
    tickets.create(other)
    _run(leader)
    leader.sidebar.checkbox(key="tickets_mine").check()  # what became of the leader's own instructions
    _run(leader)
    listed = [m for m in _md(leader) if "`CZ-" in m]
    assert len(listed) == 1 and listed[0].startswith("**批示：市图书馆闭馆**")

    # an officer records a 批示 given on paper: the leader accounts and the names already used are offered (so
    # a leader keeps one name: 只看我批示的 matches by it; the browser test types in another), none picked
    paper = _page("press", TICKETS_PAGE, id=other.id)
    pick = paper.selectbox(key="instruct_leader")
    assert pick.options == ["李局长"] and pick.value is None
    paper.text_area(key="instruct_text").input("请艺术处核实后报我。")
    next(b for b in paper.button if b.label == "记录批示").click()
    _run(paper)
    assert paper.error[0].value == "须填写批示领导" and tickets.load(other.id).ticket.instructions == ()
    paper.selectbox(key="instruct_leader").select("李局长")
    next(b for b in paper.button if b.label == "记录批示").click()
    _run(paper)
    assert paper.success[0].value == "已记录领导批示。"
    (given,) = tickets.load(other.id).ticket.instructions
    assert (given.leader, given.recorded_by) == ("李局长", "宣传小王（press）")

    press = _page("press", TICKETS_PAGE, id=t.id)
    press.sidebar.checkbox(key="tickets_instructed").check()
    _run(press)
    assert [m for m in _md(press) if "`CZ-" in m and "批示" in m]  # the filter keeps it
    press.selectbox(key="status_to").select("已办结")
    next(b for b in press.button if b.label == "变更状态").click()
    _run(press)
    assert "尚未反馈落实情况（#1 李局长）" in press.error[0].value
    press.text_area(key="feedback_text").input("已于今日恢复开放，押金全部退还，联系人电话13912345678。")
    next(b for b in press.button if b.label == "提交反馈").click()
    _run(press)
    assert press.success[0].value == "已反馈批示#1 的落实情况。"
    assert any(":green-badge[已反馈]" in m for m in _md(press))
    assert any("宣传小王（press） 反馈：已于今日恢复开放" in m for m in _md(press))
    press.selectbox(key="status_to").select("已办结")
    next(b for b in press.button if b.label == "变更状态").click()
    _run(press)
    stored = tickets.load(t.id).ticket
    assert stored.status == "已办结" and stored.instructions[0].feedback[0].by == "宣传小王（press）"
    assert [e.action for e in stored.audit][-3:] == ["记录批示", "反馈落实情况", "状态变更"]
    # the 处置台账 of the list as shown, with the 批示 and its 反馈
    press.sidebar.checkbox(key="tickets_instructed").uncheck()  # nothing waits for a report back any more
    _run(press)
    press.radio(key="ledger_format").set_value("csv")
    next(b for b in press.button if b.label == "生成处置台账").click()
    _run(press)
    (button,) = press.get("download_button")
    assert button.proto.label.startswith("下载 处置台账-") and button.proto.label.endswith(".csv（2 件）")
    ledger = press.session_state["ledger_file"][1]
    rows = [r for r in csv.DictReader(io.StringIO(ledger.data.decode("utf-8-sig"))) if r["处置单"] == t.id]
    assert [(r["处置单"], r["状态"], r["时限情况"]) for r in rows] == [(t.id, "已办结", "按时回应")]
    assert rows[0]["领导批示"].startswith("#1 李局长") and rows[0]["领导批示"].endswith("（已反馈）")
    assert "宣传小王（press）：已于今日恢复开放" in rows[0]["落实反馈"]

    analyst = _page("analyst", TICKETS_PAGE, id=t.id)
    assert [b.label for b in analyst.button] == ["生成处置台账", "退出登录"]  # reads (and takes the ledger out)
    assert any("李局长" in m and "已反馈" in m for m in _md(analyst))
    assert any("139\\*\\*\\*\\*5678" in m for m in _md(analyst))  # personal data masked for analysts
    assert not any("13912345678" in m for m in _md(analyst)) and any("13912345678" in m for m in _md(press))


def test_the_ticket_names_its_event_as_it_is_now(
        app_env: Settings, es_client: Elasticsearch, stores: tuple[TicketService, FoiaService]) -> None:
    tickets, _ = stores
    ticket = _ticket("ev-lib", 3, "公共服务科", "III")  # opened when the event was called "ev-lib：市图书馆闭馆"
    tickets.create(ticket)
    setup(es_client, app_env.elasticsearch, [EVENTS])
    renamed = _event("ev-lib").model_copy(update={"title": "#青川市图书馆突然闭馆#"})  # a 话题 took over since
    upsert_events(es_client, EVENTS.alias(app_env.elasticsearch.index_prefix), [renamed], refresh=True)
    at = _page("press", TICKETS_PAGE, id=ticket.id)
    assert at.header[0].value == "ev\\-lib：市图书馆闭馆"  # the ticket keeps its own title (Markdown-escaped)
    line = next(m for m in _md(at) if "**对象**" in m)
    assert "**对象**：事件 \\#青川市图书馆突然闭馆\\#（II级" in line and line.endswith("热度 71，12 条）")


def test_concurrent_edit_is_reported_not_overwritten(stores: tuple[TicketService, FoiaService]) -> None:
    tickets, _ = stores
    t = _ticket("并发", 1, "公共服务科", "III")
    tickets.create(t)
    at = _page("press", TICKETS_PAGE, id=t.id)
    assert at.header[0].value == t.title
    # Someone else reassigns the ticket while the press officer has it open.
    tickets.update(t.id, lambda x: assign(x, "艺术处", reason="演出相关", by="李四",
                                          now=datetime.now(TZ)))
    at.selectbox(key="status_to").select("处置中")
    next(b for b in at.button if b.label == "变更状态").click()
    _run(at)
    assert "已被他人修改" in at.error[0].value and "李四" in at.error[0].value
    stored = tickets.load(t.id).ticket
    assert (stored.unit, stored.status) == ("艺术处", "待研判")
    # The page now shows the new version; the same change goes through on top of it.
    at.selectbox(key="status_to").select("处置中")
    next(b for b in at.button if b.label == "变更状态").click()
    _run(at)
    assert at.success[0].value == "状态已变更为 处置中。"
    assert tickets.load(t.id).ticket.status == "处置中"
    # Reassigning needs a reason; the handler is kept with it in the audit.
    at.text_input(key="assign_unit").input("公共服务科")
    at.text_input(key="assign_handler").input("王敏")
    next(b for b in at.button if b.label == "改派").click()
    _run(at)
    assert at.error[0].value == "须填写改派理由"
    at.text_input(key="assign_reason").input("场馆运营由公共服务科负责")
    next(b for b in at.button if b.label == "改派").click()
    _run(at)
    last = tickets.load(t.id).ticket.audit[-1]
    assert (last.action, last.from_value, last.to_value) == ("改派", "艺术处", "公共服务科")
    assert last.by == "宣传小王（press）"
    assert last.note == "场馆运营由公共服务科负责（承办人：王敏）"


def test_foia_register_clock_reply_needs_remedy_and_roles(stores: tuple[TicketService, FoiaService]) -> None:
    _, foia = stores
    today = _today_clear_of_midnight()
    at = _page("press", FOIA_PAGE)
    at.text_input(key="foia_applicant").input("张某")
    at.text_area(key="foia_content").input("2026年市图书馆新馆建设资金使用情况")
    at.selectbox(key="foia_channel").select("邮寄")
    next(b for b in at.button if b.label == "登记").click()
    _run(at)
    assert at.success[0].value.startswith("已登记申请 YS-")
    _, listed = foia.list()
    req = listed[0]
    assert req.received_on == today and req.audit[0].by == "宣传小王（press）"
    assert any(f"`{req.id}`" in m and "剩余 20 个工作日" in m for m in _md(at))

    at.text_area(key="reply_text_已主动公开").input("您申请的信息已在本局网站公开。")  # no remedy statement
    next(b for b in at.button if b.label == "答复").click()
    _run(at)
    assert at.warning[-1].value == "请先勾选“答复书已核对无误”。"  # final: confirmed first
    assert foia.load(req.id).request.reply is None
    at.checkbox(key="reply_sure").check()
    next(b for b in at.button if b.label == "答复").click()
    _run(at)
    assert at.error[0].value.startswith("答复书缺少救济途径告知：行政复议")
    assert foia.load(req.id).request.reply is None
    at.text_area(key="reply_text_已主动公开").set_value(
        "您申请的信息已在本局网站公开。如对本答复不服，可以自收到本答复之日起60日内申请行政复议，"
        "或者自收到本答复之日起6个月内提起行政诉讼。")
    next(b for b in at.button if b.label == "答复").click()
    _run(at)
    assert at.success[0].value == "已记录答复。"
    assert foia.load(req.id).request.reply is not None

    leader = _page("leader", FOIA_PAGE, id=req.id)
    assert "可查看处置情况" in leader.info[0].value and [b.label for b in leader.button] == ["退出登录"]


def test_foia_reminder_and_extension(stores: tuple[TicketService, FoiaService]) -> None:
    _, foia = stores
    now = datetime.now(TZ)
    req = register(applicant="王某", content="演出许可审批材料", channel="网上申请",
                   received_on=now.date() - timedelta(days=40), by="李明", now=now)
    foia.create(req)
    at = _page("admin", FOIA_PAGE, id=req.id)
    assert any("答复已超期" in w.value and req.id.replace("-", "\\-") in w.value for w in at.warning)
    assert any(":red[" in m and "已超期" in m for m in _md(at) if f"`{req.id}`" in m)
    at.text_input(key="ext_by").input("王主任")
    at.text_input(key="ext_reason").input("需汇总多个部门材料")
    next(b for b in at.button if b.label == "延期").click()
    _run(at)
    assert "已过期" in at.error[0].value  # an extension must be approved before the deadline
    assert foia.load(req.id).request.extension is None


def test_press_confirms_the_proposed_own_channel_post(stores: tuple[TicketService, FoiaService]) -> None:
    tickets, _ = stores
    now = datetime.now(TZ).replace(microsecond=0)
    t = _ticket("提议", 2, "公共服务科", "III")
    post = ChannelPost(id="own-1", source="demo-bureau-site", channel="官网", published_at=now - timedelta(hours=1),
                       title="关于市图书馆临时闭馆的情况说明", url="http://127.0.0.1:8601/gov/tzgg/1.html")
    t = apply_silence(t, check_silence(t, own_posts=[post], now=now, config=CFG), now=now, tz=TZ)
    assert [p.post_id for p in t.proposals] == ["own-1"]
    tickets.create(t)

    at = _page("press", TICKETS_PAGE, id=t.id)
    assert any("建议确认为回应" in i.value for i in at.info)
    at.button(key="confirm_own-1").click()
    _run(at)
    assert at.success[0].value == "已将本机关发布确认为回应（官网）。"
    stored = tickets.load(t.id).ticket
    assert [(r.channel, r.post_id, r.at, r.recorded_by) for r in stored.responses] == [
        ("官网", "own-1", post.published_at, "宣传小王（press）")]
    assert stored.status == "已回应" and not [b for b in at.button if b.key == "confirm_own-1"]


def test_foia_correction_pauses_and_restarts_the_clock(stores: tuple[TicketService, FoiaService]) -> None:
    _, foia = stores
    _today_clear_of_midnight()
    now = datetime.now(TZ)
    req = register(applicant="赵某", content="图书馆采购合同", channel="当面提交", received_on=now.date(), by="李明",
                   now=now)
    foia.create(req)
    at = _page("press", FOIA_PAGE, id=req.id)
    at.text_area(key="corr_items").input("请明确所需合同的年份和项目名称")
    next(b for b in at.button if b.label == "告知补正").click()
    _run(at)
    assert at.success[0].value == "已记录补正告知，答复期限暂停计算。"
    assert any("办理状态" in m and "待补正" in m for m in _md(at))
    # the period is still running: no 视为放弃 yet, only when it may be used
    assert "视为放弃" not in [b.label for b in at.button] and any("届满后仍未收到补正" in c.value for c in at.caption)
    next(b for b in at.button if b.label == "收到补正").click()
    _run(at)
    assert at.success[0].value == "已收到补正，答复期限重新计算。"
    stored = foia.load(req.id).request
    assert stored.correction is not None and stored.correction.corrected_on == now.date()
    assert [e.action for e in stored.audit] == ["登记", "告知补正", "收到补正"]
    assert any("办理状态" in m and "剩余 20 个工作日" in m for m in _md(at))


def test_foia_extension_granted_and_third_party_consulted(stores: tuple[TicketService, FoiaService]) -> None:
    _, foia = stores
    _today_clear_of_midnight()
    now = datetime.now(TZ)
    req = register(applicant="钱某", content="某演出场所的处罚决定书", channel="网上申请", received_on=now.date(),
                   by="李明", now=now)
    foia.create(req)
    at = _page("press", FOIA_PAGE, id=req.id)
    at.text_input(key="ext_by").input("王主任")
    at.text_input(key="ext_reason").input("需汇总多个部门材料")
    next(b for b in at.button if b.label == "延期").click()
    _run(at)
    assert at.success[0].value == "已延期。"
    extended = foia.load(req.id).request
    assert extended.extension is not None and extended.extension.approved_by == "王主任"
    assert not [b for b in at.button if b.label == "延期"]  # one extension only
    assert any("办理状态" in m and "剩余 40 个工作日" in m for m in _md(at))  # 20 working days + 20

    at.text_input(key="consult_party").input("某演出公司")
    next(b for b in at.button if b.label == "征求意见").click()
    _run(at)
    assert at.success[0].value == "已记录向 某演出公司 征求意见。"
    assert at.selectbox(key="consult_done_party").options == ["某演出公司"]
    next(b for b in at.button if b.label == "收到意见").click()
    _run(at)
    assert at.success[0].value == "已记录收到意见，恢复计算期限。"
    stored = foia.load(req.id).request
    assert [(c.third_party, c.answered_on) for c in stored.consultations] == [("某演出公司", now.date())]
    assert [e.action for e in stored.audit] == ["登记", "延期", "征求意见", "收到意见"]


def test_leaders_see_tickets_and_requests_with_personal_data_masked(
        stores: tuple[TicketService, FoiaService]) -> None:
    tickets, foia = stores
    ticket = _ticket("ev-1", 1, "公共服务科", "III")
    ticket = ticket.model_copy(update={"title": "来电13912345678：市图书馆闭馆"})  # a caller's phone in the title
    tickets.create(ticket)
    now = datetime.now(TZ)
    req = register(applicant="李建国", content="关于我（电话13987654321）的处罚决定书", channel="网上申请",
                   received_on=now.date(), by="李明", now=now, contact="13987654321")
    foia.create(req)

    press, leader = _page("press", TICKETS_PAGE, id=ticket.id), _page("leader", TICKETS_PAGE, id=ticket.id)
    assert "13912345678" in press.header[0].value
    assert leader.header[0].value.startswith("来电139\\*\\*\\*\\*5678")  # masked (and Markdown-escaped)
    assert not any("13912345678" in m for m in _md(leader))

    press, leader = _page("press", FOIA_PAGE, id=req.id), _page("leader", FOIA_PAGE, id=req.id)
    assert press.header[0].value == "李建国 的申请" and any("联系方式：13987654321" in c.value for c in press.caption)
    assert leader.header[0].value == "李某 的申请"  # the surname only
    shown = " ".join([*_md(leader), *(c.value for c in leader.caption)])
    assert "李建国" not in shown and "13987654321" not in shown and "联系方式" not in shown

    # a reminder (overdue) and a reply letter, which names the applicant: by surname only for the leader
    late = register(applicant="王小明", content="2026年非遗补助名单", channel="邮寄",
                    received_on=now.date() - timedelta(days=45), by="李明", now=now)
    foia.create(late)
    answered = reply(req, reply_type="予以公开", text=reply_template(req, "予以公开", CFG.foia, details="见附件。"),
                     replied_on=now.date(), by="李明", now=now, cal=WorkCalendar.official(), cfg=CFG.foia)
    foia.save(foia.load(req.id), answered)
    press, leader = _page("press", FOIA_PAGE, id=req.id), _page("leader", FOIA_PAGE, id=req.id)
    late_id = late.id.replace("-", "\\-")  # as Markdown-escaped on the page
    assert any("王小明" in w.value and late_id in w.value for w in press.warning)
    assert any("王某" in w.value and late_id in w.value for w in leader.warning)
    assert press.text[0].value.startswith("政府信息公开申请答复书\n\n李建国：")
    assert leader.text[0].value.startswith("政府信息公开申请答复书\n\n李某：")
    shown = " ".join([*_md(leader), *(w.value for w in leader.warning), *(t.value for t in leader.text)])
    assert "李建国" not in shown and "王小明" not in shown and "13987654321" not in shown


def test_leader_names_offer_the_accounts_then_the_names_on_record_each_once() -> None:
    from dashboard.tracking import leader_names
    from response.tickets import add_instruction

    now = datetime.now(TZ)
    a, b = _ticket("甲", 2, "公共服务科", "III"), _ticket("乙", 3, "艺术处", "III")
    a = add_instruction(a, leader="王副局长", text="请核实。", at=now, by="宣传小王", now=now)
    b = add_instruction(b, leader="李局长", text="同意。", at=now, by="宣传小王", now=now)
    b = add_instruction(b, leader="赵书记", text="报我。", at=now, by="宣传小王", now=now)
    assert leader_names(["李局长", " 陈局长 ", ""], [a, b]) == ["李局长", "陈局长", "王副局长", "赵书记"]
    assert leader_names([], []) == []
