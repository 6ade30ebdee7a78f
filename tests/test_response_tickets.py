"""处置单 rules (pure): deadlines from the risk level, the status machine, the audit trail, the 失声 check."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from response.audit import AuditError
from response.config import ResponseConfig, RiskLevel, load_response_config
from response.secrecy import Finding
from response.silence import BoardMessage, ChannelPost, apply_silence, check_silence, own_channel_map
from response.tickets import (
    SecrecyBlocked,
    Subject,
    Ticket,
    TicketError,
    add_feedback,
    add_instruction,
    add_response,
    assign,
    auto_open_rule,
    change_level,
    change_status,
    check_append_only,
    instruction_lines,
    is_overdue,
    open_ticket,
    publish_response,
    ticket_id_for,
    unit_for_topic,
)
from yuqing.errors import ConfigError
from yuqing.settings import PROJECT_ROOT
from yuqing.sources import Source

TZ = ZoneInfo("Asia/Shanghai")
T0 = datetime(2026, 9, 28, 8, 0, tzinfo=TZ)  # the 舆情 surfaced
CFG = load_response_config(PROJECT_ROOT / "config" / "response.yaml")


def ticket(level: str | None = "II", keywords: tuple[str, ...] = ("图书馆", "闭馆")) -> Ticket:
    subject = Subject(kind="event", id="evt-1", title="市图书馆新馆突然闭馆引发读者不满",
                      topic="公共文化设施建设和使用", started_at=T0, keywords=keywords)
    return open_ticket(subject, unit="公共服务科", by="张三", now=T0 + timedelta(hours=1), config=CFG,
                       risk_level=level)  # type: ignore[arg-type]


def test_shipped_deadlines_are_the_defaults_and_bad_values_name_the_file(tmp_path) -> None:
    assert CFG.deadlines == ResponseConfig().deadlines  # the file spells out the State Council defaults
    bad = tmp_path / "response.yaml"
    bad.write_text(
        "deadlines:\n  by_level:\n    - {label: x, levels: [II], items: [{kind: a, within_hours: -1, basis: b}]}\n",
        encoding="utf-8",
    )
    with pytest.raises(ConfigError) as err:
        load_response_config(bad)
    assert str(bad) in str(err.value) and "deadlines.by_level[0].items[0].within_hours" in str(err.value)


def test_deadlines_follow_the_risk_level() -> None:
    major = ticket("II")
    assert [(d.kind, d.due_at - T0, d.basis) for d in major.deadlines] == [
        ("权威信息发布", timedelta(hours=5), "国办发〔2016〕80号"),
        ("新闻发布会", timedelta(hours=24), "国办发〔2016〕61号"),
    ]
    assert [(d.kind, d.due_at - T0) for d in ticket("III").deadlines] == [("回应", timedelta(hours=48))]
    assert [d.due_at - T0 for d in ticket(None).deadlines] == [timedelta(hours=48)]
    raised = change_level(ticket("III"), "I", config=CFG, by="张三", now=T0 + timedelta(hours=2), reason="转载量激增")
    assert raised.first_due_at == T0 + timedelta(hours=5) and raised.audit[-1].to_value == "I"
    levels: list[RiskLevel | None] = ["I", "II", "III", "IV", None]
    assert [auto_open_rule(CFG, lvl) for lvl in levels] == [
        "等级≥II", "等级≥II", None, None, None]
    assert auto_open_rule(CFG.model_copy(update={"auto_open_min_level": None}), "I") is None
    assert unit_for_topic("文化遗产保护", {"文化遗产保护": "文物保护与非遗科"}, "办公室") == "文物保护与非遗科"
    assert unit_for_topic(None, {}, "办公室") == "办公室"
    assert ticket().id == ticket_id_for("event", "evt-1")


def test_status_machine_refuses_illegal_moves_and_keeps_the_audit() -> None:
    t = ticket()
    with pytest.raises(TicketError, match="不能从“待研判”变为“已办结”"):
        change_status(t, "已办结", by="张三", now=T0)
    with pytest.raises(TicketError, match="理由"):
        change_status(t, "不予处置", by="张三", now=T0)
    with pytest.raises(TicketError, match="操作人"):
        change_status(t, "处置中", by=" ", now=T0)
    t = change_status(t, "处置中", by="张三", now=T0 + timedelta(hours=1))
    with pytest.raises(TicketError, match="尚无已发布的回应"):
        change_status(t, "已回应", by="张三", now=T0)
    t = assign(t, "文化市场综合执法支队", reason="涉及场馆安全执法检查", by="李四", now=T0 + timedelta(hours=2),
               handler="赵六")
    assert (t.unit, t.handler) == ("文化市场综合执法支队", "赵六")
    with pytest.raises(TicketError, match="改派理由"):
        assign(t, "办公室", reason="", by="李四", now=T0)
    t = add_response(t, channel="官网", text="关于新馆闭馆的情况说明……", at=T0 + timedelta(hours=4), by="张三",
                     now=T0 + timedelta(hours=4), link="http://wgl.example.gov.cn/tz/1.html")
    assert t.status == "已回应"
    t = change_status(t, "已办结", by="张三", now=T0 + timedelta(days=2), note="读者反馈平息")
    with pytest.raises(TicketError, match="终态"):
        change_status(t, "处置中", by="张三", now=T0)
    assert [(e.action, e.from_value, e.to_value) for e in t.audit] == [
        ("创建", None, "待研判"),
        ("状态变更", "待研判", "处置中"),
        ("改派", "公共服务科", "文化市场综合执法支队"),
        ("记录回应", None, "官网"),
        ("发布回应", None, "官网"),
        ("状态变更", "处置中", "已回应"),
        ("状态变更", "已回应", "已办结"),
    ]
    assert all(e.by for e in t.audit) and t.audit[2].note == "涉及场馆安全执法检查（承办人：赵六）"
    declined = change_status(ticket(), "不予处置", by="张三", now=T0, note="与本局职责无关")
    assert declined.audit[-1].note == "与本局职责无关"


def test_a_leaders_instruction_must_be_reported_back_on_before_the_ticket_closes() -> None:
    """专报 → 领导批示 → 落实 → 反馈: the instruction and each report back are recorded with who and when; an
    instruction without a report back keeps the ticket from 已办结; a missed 反馈时限 shows."""
    t = ticket()
    t = change_status(t, "处置中", by="张三", now=T0 + timedelta(hours=1, minutes=10))
    t = add_response(t, channel="官网", text="情况说明：新馆因消防整改闭馆，已开放临时阅览室。", by="张三",
                     at=T0 + timedelta(hours=2), now=T0 + timedelta(hours=2))
    at = T0 + timedelta(hours=3)
    t = add_instruction(t, leader="王局长", text="请公共服务科尽快恢复开放，妥善做好读者解释工作，结果报我。",
                        at=at, by="李秘书", now=at + timedelta(minutes=20), due_at=at + timedelta(hours=24))
    (ins,) = t.instructions
    assert (ins.no, ins.leader, ins.recorded_by) == (1, "王局长", "李秘书")
    assert ins.state(at + timedelta(hours=1)) == "待反馈"
    assert ins.state(at + timedelta(hours=25)) == "逾期未反馈" and t.pending_instructions() == [ins]
    assert (t.audit[-1].action, t.audit[-1].to_value) == ("记录批示", "王局长")
    assert "反馈时限" in (t.audit[-1].note or "")
    with pytest.raises(TicketError, match=r"领导批示尚未反馈落实情况（#1 王局长）"):
        change_status(t, "已办结", by="张三", now=at + timedelta(hours=2))
    late = at + timedelta(hours=26)
    t = add_feedback(t, 1, text="已于今日恢复开放，押金退还完毕。", by="赵科长", now=late)
    assert t.instructions[0].state(late) == "已反馈" and t.pending_instructions() == []
    assert "超过反馈时限 2小时0分" in (t.audit[-1].note or "") and t.audit[-1].by == "赵科长"
    t = add_feedback(t, 1, text="读者满意度回访已完成。", by="赵科长", now=late + timedelta(hours=1))
    assert len(t.instructions[0].feedback) == 2
    closed = change_status(t, "已办结", by="张三", now=late + timedelta(hours=2))
    assert closed.status == "已办结"
    lines = instruction_lines(closed, late, TZ)
    assert lines[0].startswith("#1 王局长 2026-09-28 11:00 批示（已反馈，反馈时限 09-29 11:00）：请公共服务科")
    assert lines[1].strip().startswith("2026-09-29 13:00 赵科长 反馈：已于今日恢复开放")
    # what is refused, and why
    with pytest.raises(TicketError, match="已办结，不能再记录批示"):
        add_instruction(closed, leader="王局长", text="再核实", at=late, by="李秘书", now=late)
    with pytest.raises(TicketError, match="须填写批示领导"):
        add_instruction(t, leader=" ", text="x", at=at, by="李秘书", now=at)
    with pytest.raises(TicketError, match="须填写批示内容"):
        add_instruction(t, leader="王局长", text="", at=at, by="李秘书", now=at)
    with pytest.raises(TicketError, match="晚于当前时间"):
        add_instruction(t, leader="王局长", text="x", at=at + timedelta(hours=1), by="李秘书", now=at)
    with pytest.raises(TicketError, match="反馈时限须晚于批示时间"):
        add_instruction(t, leader="王局长", text="x", at=at, by="李秘书", now=at, due_at=at)
    with pytest.raises(TicketError, match="没有批示#2"):
        add_feedback(t, 2, text="x", by="赵科长", now=late)
    with pytest.raises(TicketError, match="须填写落实情况"):
        add_feedback(t, 1, text=" ", by="赵科长", now=late)


def test_the_ledger_row_says_how_each_ticket_stood_against_its_deadlines() -> None:
    import csv
    import io

    from response.ledger import LEDGER_HEADERS, deadline_state, ledger_row, write_ledger

    fresh = ticket("II")  # 权威信息发布 within 5 h, 新闻发布会 within 24 h of T0
    assert deadline_state(fresh, T0 + timedelta(hours=2)) == "未到期"
    assert deadline_state(fresh, T0 + timedelta(hours=6)) == "超期未回应"
    on_time = add_response(fresh, channel="新闻发布会", text="召开新闻发布会通报情况", by="张三",
                           at=T0 + timedelta(hours=4), now=T0 + timedelta(hours=4))
    assert deadline_state(on_time, T0 + timedelta(days=3)) == "按时回应"
    late = add_response(fresh, channel="官网", text="情况说明", by="张三", at=T0 + timedelta(hours=7),
                        now=T0 + timedelta(hours=7))
    assert deadline_state(late, T0 + timedelta(hours=8)) == "超期回应"
    closed = change_status(late, "已办结", by="张三", now=T0 + timedelta(days=2))
    instructed = add_instruction(closed.model_copy(update={"status": "处置中"}), leader="王局长",
                                 text="请联系读者，电话13912345678", at=T0 + timedelta(hours=9), by="李秘书",
                                 now=T0 + timedelta(hours=9))
    row = dict(zip(LEDGER_HEADERS, ledger_row(closed, T0 + timedelta(days=3), TZ), strict=True))
    assert (row["状态"], row["风险等级"], row["时限情况"], row["失声"]) == ("已办结", "II级(重大·橙)", "超期回应", "否")
    assert row["办结时间"] == (T0 + timedelta(days=2)).replace(tzinfo=None)
    assert row["回应"] == "#1 官网 2026-09-28 15:00（已发布）"
    assert row["时限"] == "权威信息发布 2026-09-28 13:00前；新闻发布会 2026-09-29 08:00前"
    masked = dict(zip(LEDGER_HEADERS, ledger_row(instructed, T0 + timedelta(days=3), TZ,
                                                 mask=lambda t: t.replace("13912345678", "139****5678")),
                      strict=True))
    assert masked["领导批示"] == "#1 王局长 2026-09-28 17:00：请联系读者，电话139****5678（待反馈）"
    assert masked["办结时间"] is None and masked["落实反馈"] == ""
    out = io.BytesIO()
    assert write_ledger([closed, instructed], out, "csv", now=T0 + timedelta(days=3), tz="Asia/Shanghai") == 2
    table = list(csv.reader(io.StringIO(out.getvalue().decode("utf-8-sig"))))
    assert table[0] == list(LEDGER_HEADERS) and len(table) == 3
    assert "13912345678" in table[2][LEDGER_HEADERS.index("领导批示")]  # the CLI's ledger: the office's own


def test_audit_entries_cannot_be_edited_or_dropped() -> None:
    t = ticket()
    moved = change_status(t, "处置中", by="张三", now=T0 + timedelta(hours=1))
    check_append_only(t, moved)
    forged = moved.model_copy(update={"audit": (moved.audit[0].model_copy(update={"by": "别人"}), *moved.audit[1:])})
    with pytest.raises(AuditError, match="不可修改"):
        check_append_only(t, forged)
    with pytest.raises(AuditError, match="不可修改"):
        check_append_only(moved, moved.model_copy(update={"audit": moved.audit[:1]}))
    with pytest.raises(AuditError, match="未写入审计"):
        check_append_only(t, t.model_copy(update={"unit": "办公室"}))


def test_publishing_a_draft_with_findings_needs_an_override_recorded_in_the_audit() -> None:
    t = change_status(ticket(), "处置中", by="张三", now=T0)
    t = add_response(t, channel="微信公众号", text="根据市文广旅办〔2018〕225号通报……", at=T0, by="张三", now=T0,
                     draft=True)
    assert t.status == "处置中" and t.responses[0].state == "草稿"
    findings = [Finding(2, 17, "内部文件文号", "市文广旅办〔2018〕225号", "内部通报，不予公开")]
    with pytest.raises(SecrecyBlocked) as blocked:
        publish_response(t, 1, findings=findings, by="张三", now=T0 + timedelta(hours=3))
    assert "市文广旅办〔2018〕225号" in str(blocked.value)
    done = publish_response(t, 1, findings=findings, by="局长王五", now=T0 + timedelta(hours=3),
                            override_reason="该通报已于2020年解密公开")
    assert done.status == "已回应" and done.responses[0].review is not None
    assert done.responses[0].review.override_reason == "该通报已于2020年解密公开"
    override = [e for e in done.audit if e.action == "保密审查放行"]
    assert len(override) == 1 and override[0].by == "局长王五" and "解密公开" in (override[0].note or "")


def test_overdue_is_a_deadline_passed_without_a_matching_response() -> None:
    t = ticket("II")
    assert not is_overdue(t, T0 + timedelta(hours=5))
    assert is_overdue(t, T0 + timedelta(hours=5, minutes=1))
    t = add_response(t, channel="官网", text="权威信息", at=T0 + timedelta(hours=3), by="张三",
                     now=T0 + timedelta(hours=3))
    assert not is_overdue(t, T0 + timedelta(hours=20))
    assert is_overdue(t, T0 + timedelta(hours=25))  # the press conference is still missing
    # what the store indexes for the lists and 总览: the first deadline, and the next one still to meet
    assert (t.first_due_at, t.next_due_at) == (T0 + timedelta(hours=5), T0 + timedelta(hours=24))
    from response.service import ticket_to_record
    assert ticket_to_record(t).next_due_at == T0 + timedelta(hours=24)


def _post(id_: str, hours: float, title: str, source: str = "bureau-site") -> ChannelPost:
    return ChannelPost(id=id_, source=source, channel="官网", published_at=T0 + timedelta(hours=hours), title=title)


def test_silence_check_proposes_an_own_post_in_time() -> None:
    sources = [
        Source.model_validate({"name": "bureau-site", "kind": "feed", "start_urls": ["http://127.0.0.1/f.xml"],
                               "own": True}),
        Source.model_validate({"name": "news", "kind": "feed", "start_urls": ["http://127.0.0.1/n.xml"]}),
    ]
    channels = own_channel_map([(s.name, s.kind, s.own) for s in sources], CFG.own_channels)
    assert channels == {"bureau-site": "官网"}
    t = ticket("III")  # 48 h to respond
    posts = [
        _post("p-old", -30, "市图书馆闭馆通知"),  # before the 舆情: not a response
        _post("p-other", 2, "国庆假期文化活动安排"),  # no keyword
        _post("p-routine", 3, "市图书馆国庆假期开放时间"),  # one of the two keywords: a routine notice
        _post("p-reply", 6, "关于市图书馆新馆临时闭馆的情况说明"),
    ]
    result = check_silence(t, own_posts=posts, now=T0 + timedelta(hours=50), config=CFG)
    assert [o.outcome for o in result.outcomes] == ["按时回应"]
    assert [p.post_id for p in result.proposals] == ["p-reply"]
    assert not result.silent and not result.overdue
    checked = apply_silence(t, result, now=T0 + timedelta(hours=50), tz=TZ)
    assert checked.proposals[0].post_id == "p-reply" and checked.audit[-1].action == "失声检查"
    # The next run finds the same post: nothing new, no audit noise.
    again = check_silence(checked, own_posts=posts, now=T0 + timedelta(hours=51), config=CFG)
    assert apply_silence(checked, again, now=T0 + timedelta(hours=51), tz=TZ) == checked


def test_silence_check_flags_a_source_that_responds_too_late() -> None:
    t = ticket("II")  # 5 h for authoritative information, 24 h for a press conference
    pending = check_silence(t, own_posts=[], now=T0 + timedelta(hours=4), config=CFG)
    assert [o.outcome for o in pending.outcomes] == ["未到期", "未到期"] and not pending.silent
    late = [_post("p-late", 9, "市图书馆新馆闭馆情况通报")]
    result = check_silence(t, own_posts=late, now=T0 + timedelta(hours=30), config=CFG)
    assert [o.outcome for o in result.outcomes] == ["超期回应", "失声"]  # no press conference either
    assert result.silent and result.overdue
    flagged = apply_silence(t, result, now=T0 + timedelta(hours=30), tz=TZ)
    assert flagged.silent and flagged.overdue and flagged.audit[-1].to_value == "失声、超期"
    assert "超期 4小时0分" in (flagged.audit[-1].note or "")
    nothing = check_silence(t, own_posts=[], now=T0 + timedelta(hours=6), config=CFG)
    assert nothing.outcomes[0].outcome == "失声" and nothing.silent


def test_times_are_shown_in_the_offices_zone_whatever_zone_the_records_hold() -> None:
    from datetime import UTC

    from response.tickets import deadline_lines

    # the events job and the service jobs write UTC (the 舆情 surfaced 00:00 UTC = 08:00 in Beijing)
    subject = Subject(kind="event", id="evt-1", title="市图书馆新馆突然闭馆", started_at=T0.astimezone(UTC),
                      keywords=("图书馆", "闭馆"))
    t = open_ticket(subject, unit="公共服务科", by="系统", now=(T0 + timedelta(hours=1)).astimezone(UTC), config=CFG,
                    risk_level="II")
    now = (T0 + timedelta(hours=2)).astimezone(UTC)
    assert deadline_lines(t, now, TZ) == ["权威信息发布：2026-09-28 13:00 前（国办发〔2016〕80号）— 剩余 3小时0分",
                                          "新闻发布会：2026-09-29 08:00 前（国办发〔2016〕61号）— 剩余 22小时0分"]
    late = [_post("p-late", 9, "市图书馆新馆闭馆情况通报")]
    later = (T0 + timedelta(hours=30)).astimezone(UTC)
    flagged = apply_silence(t, check_silence(t, own_posts=late, now=later, config=CFG), now=later, tz=TZ)
    note = flagged.audit[-1].note or ""
    assert "权威信息发布（2026-09-28 13:00 前" in note and "09-28 17:00" in note  # the late post at 17:00 local
    assert flagged.audit[-1].line(TZ).startswith("2026-09-29 14:00 系统 失声检查")


def test_board_replies_count_as_answered_against_the_deadline() -> None:
    t = ticket("III")
    in_time = BoardMessage("m1", "新馆为何闭馆", replied_at=T0 + timedelta(hours=30), reply_text="您好，新馆因……")
    late = BoardMessage("m2", "新馆为何闭馆", replied_at=T0 + timedelta(hours=60), reply_text="您好……")
    unanswered = BoardMessage("m3", "新馆何时开放", replied_at=None)
    ok = check_silence(t, own_posts=[], board_messages=[in_time, unanswered], now=T0 + timedelta(hours=72), config=CFG)
    assert ok.outcomes[0].outcome == "按时回应" and ok.outcomes[0].evidence is not None
    assert ok.outcomes[0].evidence.channel == "留言答复" and not ok.silent
    bad = check_silence(t, own_posts=[], board_messages=[late, unanswered], now=T0 + timedelta(hours=72), config=CFG)
    assert bad.outcomes[0].outcome == "超期回应" and bad.silent and bad.overdue
