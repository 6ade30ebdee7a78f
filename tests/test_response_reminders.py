"""Reminder producers: unmet 处置单 deadlines due soon or passed, 依申请公开 clocks near their end — pure, from the
real store, and accepted field for field by the alert signals."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from elasticsearch import Elasticsearch

from alerts.signals import FoiaDueSignal, TicketDueSignal
from response.calendar import WorkCalendar
from response.config import ResponseConfig, RiskLevel
from response.foia import register, reply, reply_template, request_correction
from response.reminders import due_foia_reminders, due_ticket_reminders, foia_due, tickets_due
from response.service import FoiaService, TicketService, ensure_indices
from response.tickets import (
    Subject,
    Ticket,
    add_feedback,
    add_instruction,
    add_response,
    change_status,
    open_ticket,
)
from yuqing.settings import Settings

TZ = ZoneInfo("Asia/Shanghai")
CFG = ResponseConfig()
CAL = WorkCalendar.official()
NOW = datetime(2026, 10, 20, 12, 0, tzinfo=TZ)


def _ticket(subject_id: str, started_hours_ago: float, level: RiskLevel | None = "II") -> Ticket:
    subject = Subject(kind="event", id=subject_id, title=f"事件{subject_id}", topic="公共文化设施建设和使用",
                      started_at=NOW - timedelta(hours=started_hours_ago), keywords=("图书馆",))
    return open_ticket(subject, unit="公共服务科", by="张三", now=NOW - timedelta(hours=started_hours_ago),
                       config=CFG, risk_level=level)


def test_ticket_deadlines_due_soon_or_passed_and_unmet() -> None:
    soon = _ticket("soon", 4)  # II: 权威信息发布 due in 1 h, 新闻发布会 in 20 h
    late = _ticket("late", 6)  # 权威信息发布 passed 1 h ago
    calm = _ticket("calm", 1, level=None)  # 回应 within 48 h: due in 47 h
    answered = add_response(_ticket("answered", 6), channel="官网", text="已发布通告", by="张三",
                            at=NOW - timedelta(hours=3), now=NOW - timedelta(hours=3))
    closed = change_status(_ticket("closed", 6), "不予处置", by="张三", now=NOW, note="非本单位职责")
    due = tickets_due([soon, late, calm, answered, closed], NOW, timedelta(hours=2))
    assert [(d.ticket_id, d.deadline_kind, d.overdue(NOW)) for d in due] == [
        (late.id, "权威信息发布", True), (soon.id, "权威信息发布", False)]
    first = due[1]
    assert (first.unit, first.level, first.topic, first.status, first.deadline_basis) == (
        "公共服务科", "II", "公共文化设施建设和使用", "待研判", "国办发〔2016〕80号")
    # A day later the press-conference deadlines (only a 新闻发布会 meets them) are overdue too, also on the
    # ticket answered on 官网 (已回应 is not closed); the closed one is never reminded.
    later = tickets_due([soon, late, answered, closed], NOW + timedelta(hours=24), timedelta(hours=2))
    assert sorted((d.ticket_id, d.deadline_kind) for d in later) == sorted([
        (soon.id, "权威信息发布"), (soon.id, "新闻发布会"), (late.id, "权威信息发布"), (late.id, "新闻发布会"),
        (answered.id, "新闻发布会")])


def test_a_leaders_instruction_is_reminded_by_its_feedback_time_until_reported_back_on() -> None:
    base = add_response(_ticket("ins", 6), channel="新闻发布会", text="已召开发布会", by="张三",
                        at=NOW - timedelta(hours=3), now=NOW - timedelta(hours=3))  # every deadline met
    t = add_instruction(base, leader="王局长", text="请核实并报我", at=NOW - timedelta(hours=2), by="李秘书",
                        now=NOW - timedelta(hours=2), due_at=NOW + timedelta(hours=1))
    assert tickets_due([base], NOW, timedelta(hours=2)) == []
    (due,) = tickets_due([t], NOW, timedelta(hours=2))
    assert (due.deadline_kind, due.deadline_basis, due.due_at, due.overdue(NOW)) == (
        "批示#1反馈", "王局长批示", NOW + timedelta(hours=1), False)
    alert = TicketDueSignal(**dataclasses.asdict(due)).payload(NOW + timedelta(hours=2), TZ)
    assert alert.headline == f"批示#1反馈已超期：{t.title}" and ("时限", "批示#1反馈（王局长批示）") in alert.rows
    assert tickets_due([t], NOW - timedelta(hours=2), timedelta(hours=2)) == []  # not due soon yet
    reported = add_feedback(t, 1, text="已核实", by="赵科长", now=NOW)
    assert tickets_due([reported], NOW + timedelta(hours=2), timedelta(hours=2)) == []
    no_time = add_instruction(base, leader="王局长", text="阅", at=NOW, by="李秘书", now=NOW)
    assert tickets_due([no_time], NOW + timedelta(days=30), timedelta(hours=2)) == []


def test_reminders_build_the_alert_signals_field_for_field() -> None:
    ticket_due = tickets_due([_ticket("sig", 6)], NOW, timedelta(hours=2))[0]
    signal = TicketDueSignal(**dataclasses.asdict(ticket_due))
    assert signal.subject_key == f"ticket:{ticket_due.ticket_id}" and signal.remaining_hours(NOW) == -1
    req = register(applicant="张某", content="新馆建设资金使用情况", channel="邮寄", received_on=date(2026, 9, 28),
                   by="李明", now=NOW)
    f = foia_due([req], date(2026, 10, 27), CAL, CFG.foia)[0]
    fsignal = FoiaDueSignal(**dataclasses.asdict(f))
    assert fsignal.subject_key == f"foia:{req.id}" and "剩余 3 个工作日" in fsignal.payload(NOW, TZ).headline


def test_foia_reminded_within_three_working_days_and_when_overdue() -> None:
    # Received Mon 2026-09-28: due Fri 10-30 (国庆 with the 调休 Saturday 10-10 counted).
    req = register(applicant="张某", content="2026年市图书馆新馆建设资金使用情况", channel="邮寄",
                   received_on=date(2026, 9, 28), by="李明", now=NOW)
    assert foia_due([req], date(2026, 10, 26), CAL, CFG.foia) == []  # 4 working days left
    soon = foia_due([req], date(2026, 10, 27), CAL, CFG.foia)
    assert [(d.due, d.remaining_working_days, d.overdue) for d in soon] == [(date(2026, 10, 30), 3, False)]
    assert soon[0].summary == "2026年市图书馆新馆建设资金使用情况"  # not the applicant: personal data
    assert soon[0].received_on == date(2026, 9, 28)
    assert [d.remaining_working_days for d in foia_due([req], date(2026, 11, 3), CAL, CFG.foia)] == [-2]
    # Waiting for a 补正: no running clock; replied: nothing to remind.
    waiting = request_correction(req, notified_on=date(2026, 9, 30), items="请明确所需信息的年份", by="李明",
                                 now=NOW, cal=CAL, cfg=CFG.foia)
    text = reply_template(req, "予以公开", CFG.foia, details="见附件。")
    done = reply(req, reply_type="予以公开", text=text, replied_on=date(2026, 10, 20), by="李明", now=NOW,
                 cal=CAL, cfg=CFG.foia)
    assert foia_due([waiting, done], date(2026, 10, 29), CAL, CFG.foia) == []


@pytest.fixture()
def stores(base_settings: Settings, es_client: Elasticsearch) -> Iterator[tuple[str, TicketService, FoiaService]]:
    prefix = f"{base_settings.elasticsearch.index_prefix}-{uuid.uuid4().hex[:6]}"
    es = base_settings.elasticsearch.model_copy(update={"index_prefix": prefix})
    ensure_indices(es_client, es)
    yield prefix, TicketService(es_client, prefix), FoiaService(es_client, prefix)
    es_client.indices.delete(index=f"{prefix}-*", ignore_unavailable=True)
    es_client.options(ignore_status=404).indices.delete_index_template(name=f"{prefix}-*")


def test_reminders_from_the_store(es_client: Elasticsearch,
                                  stores: tuple[str, TicketService, FoiaService]) -> None:
    prefix, tickets, foia = stores
    late, calm = _ticket("store-late", 6), _ticket("store-calm", 1, level=None)
    closed = change_status(_ticket("store-closed", 7), "不予处置", by="张三", now=NOW, note="非本单位职责")
    for t in (late, calm, closed):
        tickets.create(t)
    due = due_ticket_reminders(es_client, prefix, CFG, NOW)
    assert [(d.ticket_id, d.deadline_kind) for d in due] == [(late.id, "权威信息发布")]
    # The 处置跟踪 page's counts and its list of the last closed ones.
    assert tickets.count_by_status() == {"待研判": 2, "不予处置": 1}
    assert [t.id for t in tickets.list(newest_first=True)[1]] == [calm.id, late.id, closed.id]

    near = register(applicant="张某", content="新馆建设资金", channel="邮寄", received_on=date(2026, 9, 28),
                    by="李明", now=NOW)
    fresh = register(applicant="王某", content="演出许可", channel="网上申请", received_on=date(2026, 10, 26),
                     by="李明", now=NOW + timedelta(days=7))
    for r in (near, fresh):
        foia.create(r)
    assert [d.request_id for d in due_foia_reminders(es_client, prefix, CFG, date(2026, 10, 28))] == [near.id]
