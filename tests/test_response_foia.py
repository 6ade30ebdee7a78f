"""依申请公开 clocks on the official calendar (pure): 国庆 and 春节 with 调休, 补正, third parties, extension,
replies and reminders."""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

import pytest

from response.calendar import WorkCalendar
from response.config import FoiaSettings, ResponseConfig
from response.foia import (
    REPLY_TYPES,
    FoiaError,
    extend,
    finish_consultation,
    foia_clock,
    mark_abandoned,
    missing_remedy,
    receive_correction,
    register,
    reminders,
    reply,
    reply_template,
    request_correction,
    start_consultation,
)

TZ = ZoneInfo("Asia/Shanghai")
CAL = WorkCalendar.official()
CFG: FoiaSettings = ResponseConfig().foia
NOW = datetime(2027, 6, 1, 9, 0, tzinfo=TZ)  # all the actions below lie before it


def received(day: date):
    return register(applicant="张某", content="2026年市图书馆新馆建设资金使用情况", channel="网上申请",
                    received_on=day, by="李明", now=NOW)


def test_calendar_covers_2026_as_in_the_state_council_notice() -> None:
    # 国务院办公厅关于2026年部分节假日安排的通知 (国办发明电〔2025〕7号)
    assert CAL.covers(date(2026, 12, 31)) and not CAL.covers(date(2027, 1, 4))
    assert CAL.last_year == 2026
    spring = [date(2026, 2, d) for d in range(15, 24)]  # 春节 2月15日至23日
    autumn = [date(2026, 9, d) for d in (25, 26, 27)] + [date(2026, 10, d) for d in range(1, 8)]  # 中秋, 国庆
    assert not any(CAL.is_workday(d) for d in spring + autumn)
    for worked in (date(2026, 2, 14), date(2026, 2, 28), date(2026, 9, 20), date(2026, 10, 10)):
        assert CAL.is_workday(worked) and CAL.is_adjusted_workday(worked), worked
    assert [d.weekday() for d in (date(2026, 2, 14), date(2026, 2, 28), date(2026, 10, 10))] == [5, 5, 5]
    assert not CAL.is_workday(date(2026, 10, 11))  # an ordinary Sunday


def test_deadline_across_national_day_counts_the_adjusted_saturday() -> None:
    # Received Mon 2026-09-28; day 1 is 9-29. Working days: 9-29, 9-30, (10-1..7 off), 10-8, 10-9, 10-10 (Sat,
    # 调休), 10-12 … the 20th is Fri 10-30. Without the 调休 Saturday it would be Mon 11-02.
    req = received(date(2026, 9, 28))
    clock = foia_clock(req, date(2026, 9, 28), CAL, CFG)
    assert clock.due == date(2026, 10, 30) and not clock.uncovered
    assert clock.correction_notice_due == date(2026, 10, 13)  # 7th working day: 9-29, 9-30, 10-8, 9, 10, 12, 13
    assert clock.remaining == 20
    assert foia_clock(req, date(2026, 10, 9), CAL, CFG).remaining == 16  # 9-29, 9-30, 10-8, 10-9 used


def test_deadline_across_spring_festival() -> None:
    # Received Tue 2026-02-10: 2-11, 2-12, 2-13, 2-14 (Sat, 调休), (2-15..23 off), 2-24 … 2-28 (Sat, 调休) …
    assert foia_clock(received(date(2026, 2, 10)), date(2026, 2, 10), CAL, CFG).due == date(2026, 3, 16)


def test_extension_once_before_the_deadline_with_approval() -> None:
    req = received(date(2026, 9, 28))
    ext = extend(req, approved_by="王主任", approved_on=date(2026, 10, 28), reason="涉及多个科室，需汇总核实",
                 by="李明", now=NOW, cal=CAL, cfg=CFG)
    clock = foia_clock(ext, date(2026, 10, 28), CAL, CFG)
    assert clock.base_due == date(2026, 10, 30) and clock.due == date(2026, 11, 27)  # 20 more working days
    assert ext.audit[-1].action == "延期" and "王主任" in (ext.audit[-1].note or "")
    with pytest.raises(FoiaError, match="不能再次延期"):
        extend(ext, approved_by="王主任", approved_on=date(2026, 11, 2), reason="再延", by="李明", now=NOW, cal=CAL,
               cfg=CFG)
    with pytest.raises(FoiaError, match="届满前"):
        extend(req, approved_by="王主任", approved_on=date(2026, 11, 2), reason="晚了", by="李明", now=NOW, cal=CAL,
               cfg=CFG)
    with pytest.raises(FoiaError, match="不得超过20"):
        extend(req, approved_by="王主任", approved_on=date(2026, 10, 9), reason="太长", by="李明", now=NOW, cal=CAL,
               cfg=CFG, working_days=25)
    with pytest.raises(FoiaError, match="批准人"):
        extend(req, approved_by=" ", approved_on=date(2026, 10, 9), reason="无人批准", by="李明", now=NOW, cal=CAL,
               cfg=CFG)


def test_correction_restarts_the_clock_from_the_corrected_application() -> None:
    req = received(date(2026, 9, 28))
    with pytest.raises(FoiaError, match="7个工作日内"):
        request_correction(req, notified_on=date(2026, 10, 14), items="请明确年份", by="李明", now=NOW, cal=CAL,
                           cfg=CFG)
    asked = request_correction(req, notified_on=date(2026, 10, 13), items="请明确所需资金项目和年份", by="李明",
                               now=NOW, cal=CAL, cfg=CFG)
    waiting = foia_clock(asked, date(2026, 10, 20), CAL, CFG)
    assert waiting.state == "待补正" and waiting.due is None
    with pytest.raises(FoiaError, match="一次性告知"):
        request_correction(asked, notified_on=date(2026, 10, 13), items="再补", by="李明", now=NOW, cal=CAL, cfg=CFG)
    fixed = receive_correction(asked, corrected_on=date(2026, 10, 21), by="李明", now=NOW)
    clock = foia_clock(fixed, date(2026, 10, 21), CAL, CFG)
    # 20 working days after Wed 10-21: 10-22 … 11-18.
    assert clock.state == "办理中" and clock.clock_start == date(2026, 10, 21) and clock.due == date(2026, 11, 18)
    assert [e.action for e in fixed.audit] == ["登记", "告知补正", "收到补正"]


def test_no_correction_by_the_period_counts_as_withdrawn() -> None:
    asked = request_correction(received(date(2026, 9, 28)), notified_on=date(2026, 9, 30), items="请明确内容",
                               by="李明", now=NOW, cal=CAL, cfg=CFG)
    due = asked.correction.correction_due if asked.correction else None
    assert due == date(2026, 10, 27)  # 15 working days after 9-30 (10-10 is a 调休 Saturday)
    assert reminders(asked, date(2026, 10, 27), CAL, CFG) == []
    assert [r.kind for r in reminders(asked, date(2026, 10, 28), CAL, CFG)] == ["补正期限已过"]
    with pytest.raises(FoiaError, match="未过"):
        mark_abandoned(asked, on=date(2026, 10, 27), by="李明", now=NOW)
    gone = mark_abandoned(asked, on=date(2026, 10, 28), by="李明", now=NOW)
    assert foia_clock(gone, date(2026, 10, 28), CAL, CFG).state == "视为放弃"
    assert reminders(gone, date(2026, 12, 1), CAL, CFG) == []


def test_third_party_consultation_time_is_not_counted() -> None:
    req = received(date(2026, 9, 28))
    asked = start_consultation(req, third_party="承建单位市建工集团", sent_on=date(2026, 10, 12), by="李明", now=NOW)
    paused = foia_clock(asked, date(2026, 10, 16), CAL, CFG)
    assert paused.state == "征求意见中"
    assert paused.remaining == foia_clock(asked, date(2026, 10, 14), CAL, CFG).remaining
    done = finish_consultation(asked, third_party="承建单位市建工集团", answered_on=date(2026, 10, 23), by="李明",
                               now=NOW)
    clock = foia_clock(done, date(2026, 10, 26), CAL, CFG)
    # 10-13 … 10-23 (9 working days) do not count: 10-30 moves to 11-12.
    assert clock.excluded_days == 9 and clock.due == date(2026, 11, 12)


def test_a_consultation_nobody_closes_stops_the_clock_for_the_third_partys_15_working_days_only() -> None:
    req = received(date(2026, 9, 28))  # due 10-30
    asked = start_consultation(req, third_party="承建单位市建工集团", sent_on=date(2026, 10, 12), by="李明", now=NOW)
    # the third party's time ends 11-02 (15 working days after 10-12, 第三十二条); after it the agency decides
    assert foia_clock(asked, date(2026, 11, 2), CAL, CFG).excluded_days == 15
    later = foia_clock(asked, date(2026, 11, 20), CAL, CFG)
    assert (later.excluded_days, later.due, later.remaining) == (15, date(2026, 11, 20), 0)
    assert any("逾期（2026-11-02）未提出意见" in n for n in later.notes)
    overdue = foia_clock(asked, date(2026, 12, 1), CAL, CFG)
    assert overdue.overdue and overdue.due == date(2026, 11, 20)  # the clock ran on: no longer frozen
    assert [r.kind for r in reminders(asked, date(2026, 12, 1), CAL, CFG)] == ["答复已超期"]


def test_reply_needs_the_remedy_statement() -> None:
    req = received(date(2026, 9, 28))
    assert len(REPLY_TYPES) == 8
    assert {"已主动公开", "不予公开", "信息不存在", "非本机关负责公开", "重复申请"} <= set(REPLY_TYPES)
    bare = "经检索，本机关未制作或获取所申请的信息。"
    assert missing_remedy(bare, CFG.remedy) == [
        "行政复议", "60日内申请行政复议的期限", "行政诉讼", "6个月内提起行政诉讼的期限"]
    with pytest.raises(FoiaError, match="救济途径"):
        reply(req, reply_type="信息不存在", text=bare, replied_on=date(2026, 10, 20), by="李明", now=NOW, cal=CAL,
              cfg=CFG)
    only_review = bare + "如不服，可在六十日内申请行政复议。"
    assert missing_remedy(only_review, CFG.remedy) == ["行政诉讼", "6个月内提起行政诉讼的期限"]
    letter = reply_template(req, "信息不存在", CFG, details="经检索，本机关未制作或获取该信息。")
    assert "第三十六条第（四）项" in letter and missing_remedy(letter, CFG.remedy) == []
    done = reply(req, reply_type="信息不存在", text=letter, replied_on=date(2026, 10, 20), by="李明", now=NOW, cal=CAL,
                 cfg=CFG)
    assert done.reply is not None and not done.reply.late
    assert foia_clock(done, date(2026, 12, 1), CAL, CFG).state == "已答复"
    late = reply(req, reply_type="信息不存在", text=letter, replied_on=date(2026, 11, 2), by="李明", now=NOW, cal=CAL,
                 cfg=CFG)
    assert late.reply is not None and late.reply.late and "超过答复期限" in (late.audit[-1].note or "")


def test_reminders_three_working_days_before_and_when_overdue() -> None:
    req = received(date(2026, 9, 28))  # due 10-30
    assert reminders(req, date(2026, 10, 26), CAL, CFG) == []  # 4 working days left
    soon = reminders(req, date(2026, 10, 27), CAL, CFG)
    assert [(r.kind, r.remaining) for r in soon] == [("答复期限临近", 3)]
    assert reminders(req, date(2026, 10, 30), CAL, CFG)[0].message.endswith("今天到期")
    over = reminders(req, date(2026, 11, 3), CAL, CFG)
    assert [(r.kind, r.remaining) for r in over] == [("答复已超期", -2)]
    # the weekend right after a Friday deadline: overdue, not "due today" (no working day has passed yet)
    for day in (date(2026, 10, 31), date(2026, 11, 1), date(2026, 11, 2)):
        assert [(r.kind, r.remaining) for r in reminders(req, day, CAL, CFG)] == [("答复已超期", -1)], day
        assert foia_clock(req, day, CAL, CFG).overdue


def test_a_year_beyond_the_calendar_counts_weekdays_and_is_flagged() -> None:
    req = received(date(2026, 12, 21))  # Mon; the clock runs into 2027, not in the data
    clock = foia_clock(req, date(2026, 12, 21), CAL, CFG)
    assert clock.uncovered and clock.due == date(2027, 1, 18)  # 20 weekdays, no 元旦 known
    assert any("日历未覆盖" in n for n in clock.notes)
    assert "日历未覆盖" in [r.kind for r in reminders(req, date(2026, 12, 21), CAL, CFG)]
    assert not foia_clock(received(date(2026, 9, 28)), date(2026, 9, 28), CAL, CFG).uncovered
