"""舆情专报 (alerts.brief, alerts.brief_render): what it says from the event, its posts and its 处置单 (pure), then
read from the real Elasticsearch on events the events job made, written by the CLI and taken from 事件详情."""

from __future__ import annotations

import io
import os
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from docx import Document
from elasticsearch import Elasticsearch

from alerts.brief import (
    BriefContext,
    BriefError,
    BriefPost,
    EventBrief,
    SinceLast,
    brief_posts_query,
    build_brief,
    judgement_lines,
    load_brief,
    response_lines,
    situation_sentences,
    suggestions,
)
from alerts.brief_render import render_html, render_text
from alerts.brief_send import brief_subject, submit_brief
from alerts.service import deliver_once
from index.events import EventRecord, FirstPostRecord, NameCountRecord, SentimentRecord
from index.layout import setup
from index.outbox import OUTBOX
from ingest.privacy import Redactor
from response.config import ResponseConfig
from response.service import TicketService, ensure_indices
from response.tickets import (
    Subject,
    Ticket,
    add_feedback,
    add_instruction,
    add_response,
    change_status,
    compute_deadlines,
    open_ticket,
    record_brief,
    ticket_id_for,
)
from tests.smtp_server import SMTPServer
from tests.test_dashboard_app import _run, app_env, signed_in
from tests.test_dashboard_events import bureau_notice, clustered
from tests.test_events_job import LIBRARY
from yuqing.cli import main
from yuqing.settings import Settings, SMTPSettings

__all__ = ["app_env", "clustered"]  # fixtures
pytest_plugins = ("tests.smtp_fixtures",)

TZ = ZoneInfo("Asia/Shanghai")
CFG = ResponseConfig()
PRIVACY = Path(__file__).resolve().parents[1] / "config" / "privacy.yaml"
NOW = datetime(2026, 9, 28, 15, 0, tzinfo=TZ)


def _record(started: datetime, **changes: object) -> EventRecord:
    record = EventRecord(
        event_id="ev-lib", status="open", title="市图书馆闭馆 读者电话13912345678打不通", keywords=["图书馆", "闭馆"],
        first_post=FirstPostRecord(id="p1", title="图书馆今天怎么关门了", source="微博", kind="social",
                                   published_at=started),
        started_at=started, last_post_at=NOW - timedelta(minutes=20), updated_at=NOW, count=12,
        sources=[NameCountRecord(name="微博", count=9), NameCountRecord(name="青川晚报", count=3)],
        sentiment=SentimentRecord(negative=9, neutral=3), negative_share=0.75, topic="公共文化设施建设和使用",
        unit="公共服务科", heat=61.0, heat_6h=66.0, heat_24h=72.0, growth=1.5, risk_level="II", risk_colour="橙",
        risk_reasons=["负面占比 75%（≥60%）"], sensitive_words=["投诉"])
    return record.model_copy(update=changes)


def _post(title: str, sentiment: str = "negative") -> BriefPost:
    return BriefPost(post_id=title, title=title, url=f"https://weibo.example.cn/{len(title)}", source="微博",
                     kind="social", published_at=NOW - timedelta(hours=1), sentiment=sentiment, spread=30,
                     excerpt=title)


def _brief(record: EventRecord, ticket: Ticket | None, *, own: tuple[BriefPost, ...] = ()) -> EventBrief:
    mask = Redactor.from_file(PRIVACY).redact
    expected = () if ticket is not None else compute_deadlines(CFG, record.risk_level, record.started_at)
    return EventBrief(event=record, generated_at=NOW, tz=TZ, dashboard_url="http://127.0.0.1:8501",
                      spread=(_post("闭馆没通知"),), negative=(_post("闭馆没通知"),), own=own, ticket=ticket,
                      expected_deadlines=expected, title=mask(record.title))


def _ticket(record: EventRecord) -> Ticket:
    subject = Subject(kind="event", id=record.event_id, title=record.title, topic=record.topic,
                      started_at=record.started_at, keywords=("图书馆",))
    return open_ticket(subject, unit="公共服务科", by="张三", now=record.started_at + timedelta(hours=1), config=CFG,
                       risk_level=record.risk_level)


def test_without_a_ticket_the_advice_counts_the_level_s_deadlines_from_when_it_surfaced() -> None:
    b = _brief(_record(NOW - timedelta(hours=7)), None)  # II: 权威信息发布 within 5 h (passed), 发布会 within 24 h
    advice = suggestions(b)
    assert advice[0].startswith("建议由公共服务科牵头建立处置单")
    assert advice[1] == ("权威信息发布时限（2026-09-28 13:00，国办发〔2016〕80号）已过 2小时0分，"
                         "应尽快发布权威信息、说明情况，避免失声。")
    assert advice[2] == "应于 2026-09-29 08:00 前完成新闻发布会（国办发〔2016〕61号），剩余 17小时0分。"
    assert any("尚未就此发声" in a for a in advice)
    assert any("热度预计上升（24 小时预测 72.0，现为 61.0）" in a for a in advice)
    assert any(a.startswith("针对负面信息") for a in advice) and any(a.startswith("涉及敏感词（投诉）") for a in advice)
    # a calmer event: forecast falling, the bureau has spoken, no negative post cited, nothing sensitive
    calm = _brief(_record(NOW - timedelta(hours=1), heat_24h=40.0, own_posts=1, sensitive_words=[], risk_level="IV"),
                  None, own=(_post("本局说明", "neutral"),))
    calm = EventBrief(**{**calm.__dict__, "negative": ()})
    advice = suggestions(calm)
    assert not any("尚未就此发声" in a or "热度预计上升" in a or "针对负面信息" in a or "敏感" in a for a in advice)
    assert any(a.startswith("本局已发布信息") for a in advice)
    assert any(a.startswith("应于 2026-09-30 14:00 前完成回应") for a in advice)  # IV: respond within 48 h


def test_with_a_ticket_met_deadlines_and_answered_instructions_drop_out_of_the_advice() -> None:
    record = _record(NOW - timedelta(hours=7))
    ticket = _ticket(record)
    ticket = add_response(ticket, channel="官网", text="市图书馆因线路检修闭馆三天，已于今日恢复开放。", by="李四",
                          at=record.started_at + timedelta(hours=4), now=record.started_at + timedelta(hours=4))
    ticket = add_instruction(ticket, leader="李局长", text="请公共服务科核实并说明闭馆原因", by="李局长",
                             at=NOW - timedelta(hours=2), now=NOW - timedelta(hours=2), due_at=NOW + timedelta(hours=3))
    ticket = add_instruction(ticket, leader="周副局长", text="做好读者解释", by="周副局长",
                             at=NOW - timedelta(hours=2), now=NOW - timedelta(hours=2))
    ticket = add_feedback(ticket, 2, text="已在门口张贴说明", by="张三", now=NOW - timedelta(hours=1))
    advice = suggestions(_brief(record, ticket))
    assert not any(a.startswith("建议由") for a in advice)  # the ticket exists
    assert not any("权威信息发布" in a for a in advice)  # met at 4 h by the 官网 response
    assert any(a.startswith("应于 2026-09-29 08:00 前完成新闻发布会") for a in advice)
    assert [a for a in advice if "批示" in a] == [
        "李局长批示（2026-09-28 13:00）尚待反馈：请公共服务科于 2026-09-28 18:00 前反馈落实情况。"]
    text = render_text(_brief(record, ticket))
    assert f"处置单 {ticket.id}：" in text
    assert "已发布回应 #1（官网，2026-09-28 12:00）：市图书馆因线路检修闭馆三天" in text
    assert "#2 周副局长" in text and "已在门口张贴说明" in text
    answered = add_feedback(ticket, 1, text="已核实说明", by="张三", now=NOW)
    closed = change_status(answered, "已办结", by="张三", now=NOW)
    advice = suggestions(_brief(record, closed))  # closed: no deadline, no instruction left to chase
    assert not any("时限" in a or a.startswith("应于") or "批示" in a for a in advice) and advice


def test_a_submitted_brief_waits_for_a_leader_s_instruction_until_one_is_recorded() -> None:
    from dashboard.tracking import filter_tickets, ticket_line

    record = _record(NOW - timedelta(hours=7))
    ticket = _ticket(record)
    assert not ticket.awaiting_instruction and ticket.briefs() == []
    briefed = record_brief(ticket, to=("王局长（局领导）",), by="张三", now=NOW - timedelta(hours=1))
    assert briefed.awaiting_instruction and "专报待批示" in ticket_line(briefed, NOW)
    assert filter_tickets([ticket, briefed], now=NOW, awaiting_instruction=True) == [briefed]
    assert brief_subject(_brief(record, ticket)) == "【舆情专报·II级】市图书馆闭馆 读者电话139****5678打不通"
    assert brief_subject(_brief(record, briefed)).startswith("【舆情专报·续报·II级】")  # the next one follows up
    lines = response_lines(_brief(record, briefed))
    assert "呈报　2026-09-28 14:00 张三 呈报舆情专报（发送给 王局长（局领导））" in lines
    instructed = add_instruction(briefed, leader="王局长", text="请核实", by="王局长", at=NOW, now=NOW)
    assert not instructed.awaiting_instruction and "专报待批示" not in ticket_line(instructed, NOW)
    again = record_brief(instructed, to=("王局长（局领导）",), by="张三", now=NOW + timedelta(hours=2))  # a 续报
    assert again.awaiting_instruction and len(again.briefs()) == 2
    dropped = change_status(again, "不予处置", by="张三", now=NOW + timedelta(hours=3), note="已核实，不属实")
    assert not dropped.awaiting_instruction  # no longer followed


def test_personal_data_is_masked_and_the_situation_is_told_from_the_record() -> None:
    b = _brief(_record(NOW - timedelta(hours=7)), None)
    assert b.heading == "关于“市图书馆闭馆 读者电话139****5678打不通”的舆情专报"
    lines = situation_sentences(b)
    assert lines[0].startswith("2026-09-28 08:00，微博首发“图书馆今天怎么关门了”。截至2026-09-28 15:00，"
                               "共监测到相关信息 12 条")
    assert "负面 9 条、中性 3 条、正面 0 条，负面占 75%" in lines[1]
    assert "2 个来源，主要为微博（9 条）、青川晚报（3 条）" in lines[2]
    for rendered in (render_text(b), render_html(b)):
        assert "13912345678" not in rendered and "139****5678" in rendered
    html = render_html(b.__class__(**{**b.__dict__, "title": "<script>x</script>"}))
    assert "<script>x" not in html and "&lt;script&gt;x" in html


def test_the_queries_keep_the_bureau_s_own_posts_apart_and_leave_near_duplicates_out() -> None:
    public = brief_posts_query("ev-1", own_sources=["本局官网"], own=False, sentiment="negative")
    must_not = public["query"]["bool"]["must_not"]
    assert {"terms": {"source": ["本局官网"]}} in must_not and {"exists": {"field": "duplicate_of"}} in must_not
    assert {"term": {"analysis.sentiment": "negative"}} in public["query"]["bool"]["filter"]
    assert list(public["sort"][0]) == ["engagement.reposts"]
    own = brief_posts_query("ev-1", own_sources=["本局官网"], own=True)
    assert {"terms": {"source": ["本局官网"]}} in own["query"]["bool"]["filter"]
    assert own["sort"] == [{"published_at": {"order": "asc", "missing": "_last"}}]


# ---- against Elasticsearch ---------------------------------------------------------------------------------
def _ctx(settings: Settings) -> BriefContext:
    return BriefContext.load(settings)


def test_the_brief_cites_the_most_spread_posts_and_the_bureau_s_own(
        app_env: Settings, es_client: Elasticsearch, clustered: dict[str, str]) -> None:
    prefix = app_env.elasticsearch.index_prefix
    ctx = _ctx(app_env)
    assert "demo-bureau-site" in ctx.own_sources
    now = datetime.now(UTC)
    library = load_brief(es_client, prefix, clustered[LIBRARY[0][0]], ctx, now)
    assert library.ticket is None and [d.kind for d in library.expected_deadlines]
    spreads = [p.spread for p in library.spread]
    assert len(library.spread) == 5 and spreads == sorted(spreads, reverse=True) and spreads[0] == 7 * 80
    assert all(p.sentiment == "negative" for p in library.negative) and library.own == ()
    notice_id = clustered[bureau_notice(now).title]
    notice = load_brief(es_client, prefix, notice_id, ctx, now)
    assert [p.source for p in notice.own] == ["demo-bureau-site"] and notice.spread == ()
    assert "本局渠道已发布 1 条信息。" in judgement_lines(notice)
    with pytest.raises(BriefError, match="没有事件 nope"):
        load_brief(es_client, prefix, "nope", ctx, now)

    # with a 处置单 on the event, the brief tells how it stands
    ensure_indices(es_client, app_env.elasticsearch)
    record = library.event
    subject = Subject(kind="event", id=record.event_id, title=record.title, started_at=record.started_at)
    ticket = open_ticket(subject, unit="公共服务科", by="张三", now=now, config=ctx.response,
                         risk_level=record.risk_level)
    TicketService(es_client, prefix).create(ticket)
    es_client.indices.refresh(index=f"{prefix}-*")
    again = load_brief(es_client, prefix, record.event_id, ctx, now)
    assert again.ticket is not None and again.ticket.id == ticket_id_for("event", record.event_id)
    assert again.expected_deadlines == () and again.since_last is None and not again.heading.endswith("（续报）")
    # submitted 155 minutes ago: the next one is a 续报 and counts what came since (5 of the 8 posts, 10 min apart)
    TicketService(es_client, prefix).update(ticket.id, lambda t: record_brief(
        t, to=("王局长（局领导）",), by="张三", now=now - timedelta(minutes=155)))
    follow_up = load_brief(es_client, prefix, record.event_id, ctx, now)
    assert follow_up.heading.endswith("（续报）") and follow_up.since_last == SinceLast(posts=5, negative=5)
    assert any(s.startswith("自上次呈报（") and s.endswith("以来，新增信息 5 条，其中负面 5 条。")
               for s in situation_sentences(follow_up))
    assert build_brief(es_client, f"{prefix}-posts", record, None, ctx, now).ticket is None


def test_cli_writes_the_brief_as_word_html_and_text(
        app_env: Settings, clustered: dict[str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    event_id = clustered[LIBRARY[0][0]]
    out = tmp_path / "专报.docx"
    assert main(["report", "event", event_id, "--out", str(out)]) == 0
    doc = Document(io.BytesIO(out.read_bytes()))
    headings = [p.text for p in doc.paragraphs if p.style is not None and p.style.name in ("Title", "Heading 1")]
    assert headings[0] == "关于“#青川市图书馆闭馆#”的舆情专报"
    assert [h for h in headings if re.match("^[一二三四五六]、", h)] == [
        "一、舆情概况", "二、传播态势", "三、主要信息", "四、研判", "五、处置情况", "六、处置建议"]
    assert len(doc.inline_shapes) == 1  # the trend chart
    spread_table = doc.tables[0]
    assert [c.text for c in spread_table.rows[0].cells] == ["标题", "来源", "发布时间", "情感", "互动量"]
    assert spread_table.rows[1].cells[4].text == "560" and len(spread_table.rows) == 6
    assert any(p.text == "尚未建立处置单。" for p in doc.paragraphs)

    html_out = tmp_path / "专报.html"
    assert main(["report", "event", event_id, "--out", str(html_out)]) == 0
    page = html_out.read_text("utf-8")
    assert "data:image/png;base64," in page and f"/event?id={event_id}" in page
    capsys.readouterr()
    assert main(["report", "event", event_id]) == 0
    text = capsys.readouterr().out
    assert text.startswith("关于“#青川市图书馆闭馆#”的舆情专报\n") and "六、处置建议\n1. 建议由" in text

    assert main(["report", "event", "nope"]) == 2
    assert "没有事件 nope" in capsys.readouterr().err
    assert main(["report", "event"]) == 2 and "name the event" in capsys.readouterr().err
    assert main(["report", "event", event_id, "--out", str(tmp_path / "x.eml")]) == 2
    assert "not a mail" in capsys.readouterr().err
    assert main(["report", "daily", event_id]) == 2 and "takes no event id" in capsys.readouterr().err


@pytest.mark.parametrize("username", ["press", "leader"])
def test_event_page_gives_the_brief_to_download(app_env: Settings, clustered: dict[str, str], username: str) -> None:
    event_id = clustered[LIBRARY[0][0]]
    at = signed_in(username=username)
    at.query_params["id"] = event_id
    at.switch_page("views/event.py")
    _run(at)
    assert not at.get("download_button")
    next(b for b in at.button if b.label == "生成舆情专报").click()
    _run(at)
    (button,) = at.get("download_button")
    made = at.session_state["brief_file"][1]
    assert button.proto.label == f"下载 {made.file_name}" and made.file_name.endswith(".docx")
    assert made.file_name.startswith(f"舆情专报_{event_id}_") and made.note is None
    doc = Document(io.BytesIO(made.data))
    assert doc.paragraphs[0].text == "关于“#青川市图书馆闭馆#”的舆情专报"
    at.radio(key="brief_format").set_value("html")
    _run(at)
    assert not at.get("download_button")  # made for Word: asked again for HTML
    next(b for b in at.button if b.label == "生成舆情专报").click()
    _run(at)
    made = at.session_state["brief_file"][1]
    assert made.mime == "text/html" and "六、处置建议" in made.data.decode("utf-8")


def test_an_excerpt_is_cited_only_where_it_says_more_than_the_title() -> None:
    social = _post("图书馆闭馆了，门口只贴了一张纸")
    social = BriefPost(**{**social.__dict__, "excerpt": "图书馆闭馆了，门口只贴了一张纸，读者扑空……"})
    article = BriefPost(**{**social.__dict__, "title": "读者扑空", "excerpt": "青川市图书馆今天闭馆。"})
    assert social.more_text == "" and article.more_text == "青川市图书馆今天闭馆。"
    page = render_html(EventBrief(**{**_brief(_record(NOW), None).__dict__, "spread": (social, article)}))
    assert page.count("门口只贴了一张纸") == 1 and "青川市图书馆今天闭馆。</span>" in page


def test_a_press_officer_submits_the_brief_and_the_leaders_get_it_by_mail(
        app_env: Settings, es_client: Elasticsearch, clustered: dict[str, str], smtp: SMTPServer,
        capsys: pytest.CaptureFixture[str]) -> None:
    prefix = app_env.elasticsearch.index_prefix
    setup(es_client, app_env.elasticsearch, [OUTBOX])
    ensure_indices(es_client, app_env.elasticsearch)
    event_id = clustered[LIBRARY[0][0]]
    ctx = _ctx(app_env)
    record = load_brief(es_client, prefix, event_id, ctx, datetime.now(UTC)).event
    subject = Subject(kind="event", id=event_id, title=record.title, started_at=record.started_at)
    tickets = TicketService(es_client, prefix)
    tickets.create(open_ticket(subject, unit="公共服务科", by="张三", now=datetime.now(UTC), config=ctx.response,
                               risk_level=record.risk_level))

    leader = signed_in(username="leader")
    leader.query_params["id"] = event_id
    leader.switch_page("views/event.py")
    _run(leader)
    assert not [b for b in leader.button if b.label == "邮件呈报局领导"]  # leaders receive it, officers submit it

    at = signed_in(username="press")
    at.query_params["id"] = event_id
    at.switch_page("views/event.py")
    _run(at)
    at.button(key="brief_submit").click()
    _run(at)
    assert at.success[0].value.startswith("已提交发送给 王局长（局领导）、李主任（办公室）（附 Word 版）")
    s = app_env.model_copy(update={"smtp": SMTPSettings(host="127.0.0.1", port=smtp.port, sender="yuqing@example.cn")})
    assert deliver_once(s, es_client).sent == 1
    (got,) = smtp.collector.wait_for(1)
    msg = got.message
    assert msg["Subject"].startswith("【舆情专报·") and msg["Subject"].endswith("】#青川市图书馆闭馆#")
    assert got.rcpt_tos == ["leader@culture.example.gov.cn", "office@culture.example.gov.cn"]
    html = msg.get_body(preferencelist=("html",))
    assert html is not None and "五、处置情况" in html.get_content() and 'src="cid:trend.' in html.get_content()
    assert any(p.get_content_type() == "image/png" for p in msg.walk())
    attachment = next(p for p in msg.walk() if (p.get_filename() or "").endswith(".docx"))
    doc = Document(io.BytesIO(attachment.get_content()))
    assert doc.paragraphs[0].text == "关于“#青川市图书馆闭馆#”的舆情专报"
    assert any(p.text.startswith("处置单 CZ-") for p in doc.paragraphs)
    audit = tickets.load(ticket_id_for("event", event_id)).ticket.audit[-1]
    assert (audit.action, audit.note) == ("呈报专报", "发送给 王局长（局领导）、李主任（办公室）")
    assert audit.by.endswith("（press）")
    # 专报待批示: stored with the ticket, so the list (and the CLI) find it until a 批示 is recorded
    ticket_id = ticket_id_for("event", event_id)
    assert [t.id for t in tickets.list(awaiting_instruction=True)[1]] == [ticket_id]
    capsys.readouterr()
    assert main(["tickets", "list", "--awaiting-instruction"]) == 0
    assert ticket_id in (listed := capsys.readouterr().out) and "[专报待批示]" in listed
    tickets.update(ticket_id, lambda t: add_instruction(t, leader="王局长", text="请公共服务科说明闭馆原因",
                                                        by="王局长", at=datetime.now(UTC), now=datetime.now(UTC)))
    assert tickets.list(awaiting_instruction=True)[0] == 0

    # the same 专报 submitted again within the minute (a double click): one mail
    brief = load_brief(es_client, prefix, event_id, ctx, datetime(2026, 9, 28, 15, 0, 10, tzinfo=TZ))
    first = submit_brief(es_client, app_env, brief, by="张三", chart_png=None)
    again = submit_brief(es_client, app_env, EventBrief(**{**brief.__dict__, "generated_at": brief.generated_at
                                                           + timedelta(seconds=30)}), by="张三", chart_png=None)
    assert first.entry is not None and again.entry is None


def test_submitting_needs_recipients_and_a_name(
        app_env: Settings, es_client: Elasticsearch, clustered: dict[str, str], tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    setup(es_client, app_env.elasticsearch, [OUTBOX])
    event_id = clustered[LIBRARY[0][0]]
    assert main(["report", "event", event_id, "--send"]) == 2
    assert "--by" in capsys.readouterr().err
    assert main(["report", "event", event_id, "--send", "--by", "张三"]) == 0
    assert "queued as outbox" in capsys.readouterr().out
    rules = tmp_path / "alerts.yaml"
    rules.write_text("people:\n  - {name: 局长, email: chief@example.cn, unit: 局领导}\n", encoding="utf-8")
    s = app_env.model_copy(update={"alerts": app_env.alerts.model_copy(update={"rules_file": rules})})
    brief = load_brief(es_client, app_env.elasticsearch.index_prefix, event_id, _ctx(s), datetime.now(UTC))
    with pytest.raises(BriefError, match=r"reports\.brief 未配置收件人"):
        submit_brief(es_client, s, brief, by="张三", chart_png=None)
    # on the page: said where the button is, and the rest of 事件详情 still shows
    rules_file = Path(os.environ["YUQING_PATHS__CONFIG_DIR"]) / "alerts.yaml"
    kept = [line for line in rules_file.read_text("utf-8").splitlines() if not line.startswith("  brief:")]
    rules_file.write_text("\n".join(kept) + "\n", encoding="utf-8")
    at = signed_in(username="press")
    at.query_params["id"] = event_id
    at.switch_page("views/event.py")
    _run(at)
    at.button(key="brief_submit").click()
    _run(at)
    assert "reports.brief 未配置收件人" in at.error[0].value and at.metric[0].label == "当前热度"
