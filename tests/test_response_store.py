"""Tickets and 依申请公开 records in the real Elasticsearch: workflow with audit, concurrent edits, the CLI."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from elasticsearch import Elasticsearch

from response.audit import AuditError
from response.calendar import WorkCalendar
from response.config import ResponseConfig
from response.foia import extend, register
from response.service import (
    FoiaConflict,
    FoiaService,
    TicketConflict,
    TicketService,
    ensure_indices,
    foia_from_record,
    foia_to_record,
    ticket_from_record,
    ticket_to_record,
)
from response.tickets import Subject, TicketError, add_response, assign, change_status, open_ticket
from yuqing.cli import main
from yuqing.settings import Settings

TZ = ZoneInfo("Asia/Shanghai")
CFG = ResponseConfig()


@pytest.fixture(scope="module")
def response_settings(base_settings: Settings, es_client: Elasticsearch) -> Iterator[Settings]:
    """Settings with this module's own prefix and only the tickets and 依申请公开 indices (created once: index
    creation is the slow part). Tests use distinct subject ids."""
    prefix = f"{base_settings.elasticsearch.index_prefix}-{uuid.uuid4().hex[:6]}"
    s = base_settings.model_copy(
        update={"elasticsearch": base_settings.elasticsearch.model_copy(update={"index_prefix": prefix})})
    ensure_indices(es_client, s.elasticsearch)
    yield s
    es_client.indices.delete(index=f"{prefix}-*", ignore_unavailable=True)
    es_client.options(ignore_status=404).indices.delete_index_template(name=f"{prefix}-*")


@pytest.fixture()
def services(response_settings: Settings, es_client: Elasticsearch) -> tuple[TicketService, FoiaService]:
    prefix = response_settings.elasticsearch.index_prefix
    return TicketService(es_client, prefix), FoiaService(es_client, prefix)


def _ticket(now: datetime, event_id: str):
    subject = Subject(kind="event", id=event_id, title="市博物馆临展排长队无人疏导", topic="公共文化设施建设和使用",
                      started_at=now - timedelta(hours=1), keywords=("博物馆", "排队"))
    return open_ticket(subject, unit="公共服务科", by="张三", now=now, config=CFG, risk_level="II")


def test_ticket_workflow_round_trips_with_its_audit(services: tuple[TicketService, FoiaService]) -> None:
    tickets, _ = services
    now = datetime.now(TZ).replace(microsecond=0)
    t = _ticket(now, "evt-workflow")
    assert ticket_from_record(ticket_to_record(t)) == t
    tickets.create(t)
    with pytest.raises(TicketError, match=f"该事件已有处置单 {t.id}"):
        tickets.create(_ticket(now, "evt-workflow"))
    tickets.update(t.id, lambda x: change_status(x, "处置中", by="张三", now=now + timedelta(minutes=5)))
    tickets.update(t.id, lambda x: add_response(x, channel="微博", text="我馆已增派志愿者疏导", by="张三",
                                                at=now + timedelta(minutes=30), now=now + timedelta(minutes=30)))
    stored = tickets.load(t.id).ticket
    assert stored.status == "已回应" and stored.responses[0].channel == "微博"
    assert [e.action for e in stored.audit] == ["创建", "状态变更", "记录回应", "发布回应", "状态变更"]
    total, listed = tickets.list(statuses=["已回应"], unit="公共服务科", text="博物馆")
    assert total == 1 and listed[0] == stored
    # Answered: not overdue (the flag is unset and it is no longer open).
    assert t.id not in [x.id for x in tickets.list(overdue_at=now + timedelta(hours=30))[1]]


def test_two_users_editing_one_ticket_second_gets_a_conflict(services: tuple[TicketService, FoiaService]) -> None:
    tickets, _ = services
    now = datetime.now(TZ).replace(microsecond=0)
    t = _ticket(now, "evt-conflict")
    tickets.create(t)
    alice = tickets.load(t.id)
    bob = tickets.load(t.id)
    tickets.save(alice, assign(alice.ticket, "文化市场综合执法支队", reason="涉及安全执法", by="李四",
                               now=now + timedelta(minutes=1)))
    with pytest.raises(TicketConflict) as err:
        tickets.save(bob, change_status(bob.ticket, "不予处置", by="王五", now=now + timedelta(minutes=2),
                                        note="已自行缓解"))
    assert "已被他人修改" in str(err.value) and "李四" in str(err.value) and "改派" in str(err.value)
    stored = tickets.load(t.id).ticket
    assert (stored.unit, stored.status) == ("文化市场综合执法支队", "待研判")  # Alice's change, not lost
    assert [e.by for e in stored.audit] == ["张三", "李四"]
    # A version with an edited audit entry is refused before anything is written.
    current = tickets.load(t.id)
    forged = current.ticket.model_copy(update={"audit": (current.ticket.audit[0].model_copy(update={"by": "X"}),
                                                         *current.ticket.audit[1:])})
    with pytest.raises(AuditError):
        tickets.save(current, forged)
    # Bob reloads and his change goes through on top of Alice's.
    again = tickets.load(t.id)
    tickets.save(again, change_status(again.ticket, "处置中", by="王五", now=now + timedelta(minutes=3)))
    assert [e.by for e in tickets.load(t.id).ticket.audit] == ["张三", "李四", "王五"]


def test_foia_request_concurrent_edit_and_round_trip(services: tuple[TicketService, FoiaService]) -> None:
    _, foia = services
    now = datetime(2026, 10, 9, 10, 0, tzinfo=TZ)
    req = register(applicant="张某", content="新馆建设资金使用情况", channel="邮寄", received_on=date(2026, 9, 28),
                   by="李明", now=now)
    assert foia_from_record(foia_to_record(req)) == req
    foia.create(req)
    a, b = foia.load(req.id), foia.load(req.id)
    cal = WorkCalendar.official()
    foia.save(a, extend(a.request, approved_by="王主任", approved_on=date(2026, 10, 9), reason="需汇总", by="李明",
                        now=now, cal=cal, cfg=CFG.foia))
    with pytest.raises(FoiaConflict, match="已被他人修改"):
        foia.save(b, extend(b.request, approved_by="赵主任", approved_on=date(2026, 10, 9), reason="另一人",
                            by="周强", now=now, cal=cal, cfg=CFG.foia))
    stored = foia.load(req.id).request
    assert stored.extension is not None and stored.extension.approved_by == "王主任"
    assert req.id in [r.id for r in foia.list(open_only=True)[1]]


def test_cli_tickets_and_foia(response_settings: Settings, capsys: pytest.CaptureFixture[str],
                              monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("YUQING_ELASTICSEARCH__INDEX_PREFIX", response_settings.elasticsearch.index_prefix)
    opened = ["tickets", "open", "--post", "p-1", "--title", "读者投诉图书馆空调故障", "--topic",
              "公共文化设施建设和使用", "--keyword", "空调", "--by", "张三"]
    assert main([*opened, "--json"]) == 0
    t = json.loads(capsys.readouterr().out)
    assert (t["unit"], t["status"], t["deadlines"][0]["kind"]) == ("公共服务科", "待研判", "回应")
    assert main(opened) == 2 and "已有处置单" in capsys.readouterr().err
    assert main(["tickets", "status", t["id"], "已办结", "--by", "张三"]) == 2
    assert "不能从“待研判”变为“已办结”" in capsys.readouterr().err
    leaky = ["tickets", "respond", t["id"], "--channel", "官网", "--text", "空调已修复，详见市文广旅办〔2018〕225号。",
             "--by", "张三"]
    assert main(leaky) == 2
    assert "保密审查发现 1 处问题" in capsys.readouterr().err
    assert main([*leaky, "--override", "该文号已公开"]) == 0
    out = capsys.readouterr().out
    assert "状态：已回应" in out and "保密审查放行" in out and "强制放行：该文号已公开" in out
    assert main(["tickets", "list", "--status", "已回应", "--text", "空调"]) == 0
    assert "读者投诉图书馆空调故障" in capsys.readouterr().out
    # 领导批示 and its 落实反馈; the ticket closes only after the report back
    assert main(["tickets", "instruct", t["id"], "--leader", "王局长", "--text", "请核实空调维修进度并报我",
                 "--due", "2099-01-01T12:00", "--by", "李秘书"]) == 0
    out = capsys.readouterr().out
    assert "领导批示：" in out and "#1 王局长" in out and "待反馈" in out
    assert main(["tickets", "list", "--instructions-pending"]) == 0
    pending = capsys.readouterr().out
    assert t["id"] in pending and "[批示待反馈]" in pending
    assert main(["tickets", "status", t["id"], "已办结", "--by", "张三"]) == 2
    assert "尚未反馈落实情况（#1 王局长）" in capsys.readouterr().err
    assert main(["tickets", "feedback", t["id"], "1", "--text", "空调已于周三修复", "--by", "赵科长", "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["instruction_states"] == {"1": "已反馈"} and shown["instructions"][0]["feedback"][0]["by"] == "赵科长"
    assert main(["tickets", "list", "--instructions-pending"]) == 0
    assert t["id"] not in capsys.readouterr().out
    assert main(["tickets", "status", t["id"], "已办结", "--by", "张三"]) == 0
    capsys.readouterr()
    # 处置台账 as Excel: the ticket with its response, 批示 and 反馈; a format it cannot write is refused
    ledger = tmp_path / "台账.xlsx"
    assert main(["tickets", "export", str(ledger), "--status", "已办结"]) == 0
    assert capsys.readouterr().out.strip() == f"处置台账：1 件处置单 → {ledger}"
    from openpyxl import load_workbook

    sheet = load_workbook(ledger, read_only=True)["处置台账"]
    header, *cells = [list(r) for r in sheet.iter_rows(values_only=True)]
    row = dict(zip(header, cells[0], strict=True))
    assert len(cells) == 1 and (row["处置单"], row["状态"], row["责任单位"]) == (t["id"], "已办结", "公共服务科")
    assert "王局长" in row["领导批示"] and "赵科长：空调已于周三修复" in row["落实反馈"]
    assert not list(tmp_path.glob("*.part"))
    assert main(["tickets", "export", str(tmp_path / "台账.pdf")]) == 2
    assert "请用 .csv 或 .xlsx" in capsys.readouterr().err
    assert main(["tickets", "export", str(tmp_path / "none.csv"), "--since", "2099-01-01"]) == 0
    assert "处置台账：0 件" in capsys.readouterr().out

    assert main(["foia", "register", "--applicant", "张某", "--content", "图书馆空调维修合同", "--channel", "网上申请",
                 "--received", "2026-09-28", "--by", "李明", "--json"]) == 0
    req = json.loads(capsys.readouterr().out)
    assert req["clock"]["due"] == "2026-10-30"
    assert main(["foia", "reply", req["id"], "--type", "予以公开", "--text", "现提供合同扫描件。", "--by", "李明"]) == 2
    assert "救济途径" in capsys.readouterr().err
    assert main(["foia", "show", req["id"], "--on", "2026-10-27"]) == 0
    assert "剩 3 个工作日" in capsys.readouterr().out
    assert main(["foia", "reminders", "--on", "2026-10-27", "--json"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["kind"] for r in rows if r["request_id"] == req["id"]] == ["答复期限临近"]
    assert main(["foia", "register", "--applicant", "王某", "--content", "博物馆门票收入", "--channel", "邮寄",
                 "--received", "2026-09-29", "--by", "李明"]) == 0
    capsys.readouterr()
    assert main(["foia", "list", "--limit", "1", "--on", "2026-10-27"]) == 0
    listed = capsys.readouterr().out.splitlines()
    assert len(listed) == 2 and listed[-1].endswith("，显示前 1 件（--limit）")  # a cut list says so


def test_migrate_fills_the_next_unmet_deadline_of_tickets_written_before_it(
    settings: Settings, es_client: Elasticsearch, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    import copy

    from index.layout import current_index, setup_spec
    from index.spec import IndexSpec
    from index.tickets import TICKETS, TICKETS_MAPPING
    from response.service import ticket_to_record

    v1_mapping = copy.deepcopy(TICKETS_MAPPING)
    del v1_mapping["properties"]["next_due_at"]
    prefix = settings.elasticsearch.index_prefix
    alias = TICKETS.alias(prefix)
    old = setup_spec(es_client, IndexSpec("tickets", v1_mapping, version=1), settings.elasticsearch)
    assert old == f"{alias}-v1"
    t0 = datetime.now(TZ).replace(microsecond=0) - timedelta(hours=10)
    ticket = open_ticket(Subject(kind="event", id="ev-1", title="图书馆闭馆", started_at=t0), unit="公共服务科",
                         by="张三", now=t0, config=CFG, risk_level="II")
    ticket = add_response(ticket, channel="官网", text="情况说明", at=t0 + timedelta(hours=3), by="张三",
                          now=t0 + timedelta(hours=3))  # the 5-hour deadline met; the 24-hour one still open
    source = ticket_to_record(ticket).as_source()
    source.pop("next_due_at")  # as the version before it wrote it
    es_client.index(index=alias, id=ticket.id, document=source, refresh=True)

    monkeypatch.setenv("YUQING_ELASTICSEARCH__INDEX_PREFIX", prefix)
    assert main(["migrate"]) == 0
    assert f"{alias}: {old} -> {alias}-v2 (1 documents" in capsys.readouterr().out
    assert current_index(es_client, alias) == f"{alias}-v2"
    migrated = es_client.get(index=alias, id=ticket.id)["_source"]
    assert datetime.fromisoformat(migrated["next_due_at"]) == t0 + timedelta(hours=24)
