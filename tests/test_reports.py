"""舆情日报 / 周报 from posts in the real Elasticsearch: counts with their posts, negative posts, source health, the
events and tickets sections through their interfaces; the weekly mail through a real SMTP server with the
.docx opened by python-docx; ``yuqing report``."""

from __future__ import annotations

import argparse
import io
import uuid
from collections.abc import Iterator, Sequence
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from elasticsearch import Elasticsearch

from alerts import report_cli
from alerts.mailer import Mailer
from alerts.report_jobs import ReportJob, due_reports
from alerts.report_render import SECTIONS, compose_report, render_docx, render_text
from alerts.reports import (
    Report,
    ReportBrief,
    ReportError,
    ReportEvent,
    ReportInstruction,
    ReportSources,
    ReportTicket,
    TicketSummary,
    build_report,
    period_for,
)
from alerts.service import deliver_once
from index.client import es_client as client_for
from index.layout import POSTS, SOURCE_HEALTH, setup
from index.outbox import OUTBOX
from tests.alert_fixtures import DASHBOARD, LEADER, SENDER
from tests.conftest import seed_posts
from tests.smtp_server import SMTPServer
from yuqing.models import Analysis, Post
from yuqing.settings import Settings, SMTPSettings

pytest_plugins = ("tests.smtp_fixtures",)

TZ = ZoneInfo("Asia/Shanghai")
DAY = date(2026, 5, 5)
NOW = datetime(2026, 5, 6, 8, 0, tzinfo=TZ)


def at(day: date, hour: int) -> datetime:
    return datetime(day.year, day.month, day.day, hour, tzinfo=TZ)


def post(n: int, title: str, sentiment: str | None, published: datetime | None, *, source: str = "微博",
         kind: str = "social", relevance: float = 0.5, fetched: datetime | None = None, **kw: Any) -> Post:
    analysis = None if sentiment is None else Analysis(
        sentiment=sentiment, relevant=relevance >= 0.5, relevance_prob=relevance,
        topic="公益性文化服务活动" if relevance >= 0.5 else None, model_version="test")
    return Post(url=f"https://example.com/p/{n}", title=title, content=title, source=source, kind=kind,
                published_at=published, fetched_at=fetched or (published or NOW), analysis=analysis, **kw)


PREV = DAY - timedelta(days=1)
POSTS_OF_DAY = [
    post(1, "市图书馆突然闭馆读者白跑", "negative", at(DAY, 9), relevance=0.95),
    post(2, "图书馆闭馆没有提前通知", "negative", at(DAY, 10), source="市民留言板", kind="message", relevance=0.8),
    post(3, "外卖送餐太慢", "negative", at(DAY, 11), relevance=0.05),
    post(4, "博物馆新展开幕", "positive", at(DAY, 12), source="都市报", kind="article", relevance=0.9),
    post(5, "文化馆活动安排", "neutral", at(DAY, 13), source="都市报", kind="article"),
    post(6, "无发布时间的留言", "neutral", None, source="市民留言板", kind="message", fetched=at(DAY, 15)),
    post(7, "图书馆闭馆（转载）", "negative", at(DAY, 16), duplicate_of="x"),  # a near-duplicate: not counted
    post(8, "未分析的帖子", None, at(DAY, 17)),
]
OTHER_POSTS = [
    post(20, "前一天的负面", "negative", at(PREV, 10), relevance=0.7),
    post(21, "前一天的中性", "neutral", at(PREV, 11)),
    post(22, "第二天的帖子", "negative", at(DAY + timedelta(days=1), 1)),
    post(23, "上周的帖子", "neutral", at(DAY - timedelta(days=8), 9)),
]


class StaticEvents:
    def __init__(self, events: Sequence[ReportEvent]) -> None:
        self.events = events
        self.asked: list[tuple[datetime, datetime, int]] = []

    def top_events(self, start: datetime, end: datetime, limit: int) -> Sequence[ReportEvent]:
        self.asked.append((start, end, limit))
        return self.events[:limit]


class StaticTickets:
    def ticket_summary(self, start: datetime, end: datetime, now: datetime) -> TicketSummary:
        return TicketSummary(
            due=(ReportTicket("CZ-due", "图书馆闭馆回应", "市图书馆", "处置中", NOW + timedelta(hours=3), "II"),),
            overdue=(ReportTicket("CZ-late", "演出票务投诉", "执法支队", "待研判", NOW - timedelta(hours=5)),),
            closed=(ReportTicket("CZ-done", "博物馆预约难", "市博物馆", "已办结", None),),
            instructions=(
                ReportInstruction("CZ-late", "演出票务投诉", "执法支队", 1, "王局长", "请查处倒票并报我",
                                  NOW - timedelta(days=2), "逾期未反馈", due_at=NOW - timedelta(days=1)),
                ReportInstruction("CZ-done", "博物馆预约难", "市博物馆", 1, "李副局长", "请增加预约名额",
                                  NOW - timedelta(days=3), "已反馈", feedback="已每日增加二百个名额",
                                  feedback_at=NOW - timedelta(hours=20)),
            ),
            briefs=(ReportBrief("CZ-due", "图书馆闭馆回应", "市图书馆", NOW - timedelta(days=1), "宣传小王（press）",
                                "王局长（局领导）"),),
        )


EVENTS = [ReportEvent("E1", "市图书馆突然闭馆引发读者不满", "II", 78, 23, 0.62, "up", (1, 2, 5, 9), own_posts=2),
          ReportEvent("E2", "博物馆新展受好评", "IV", 31, 8, 0.0, "flat", (2, 2, 2))]


@pytest.fixture(scope="module")
def report_settings(base_settings: Settings, es_client: Elasticsearch) -> Iterator[Settings]:
    """Posts and source-health indices of this module (the tests only read them)."""
    prefix = f"{base_settings.elasticsearch.index_prefix}-{uuid.uuid4().hex[:6]}"
    es = base_settings.elasticsearch.model_copy(update={"index_prefix": prefix})
    setup(es_client, es, [POSTS, SOURCE_HEALTH])
    yield base_settings.model_copy(update={
        "elasticsearch": es, "alerts": base_settings.alerts.model_copy(update={"dashboard_url": DASHBOARD})})
    es_client.indices.delete(index=f"{prefix}-*", ignore_unavailable=True)
    es_client.options(ignore_status=404).indices.delete_index_template(name=f"{prefix}-*")


@pytest.fixture(scope="module")
def indexed(report_settings: Settings, es_client: Elasticsearch) -> ReportSources:
    prefix = report_settings.elasticsearch.index_prefix
    seed_posts(es_client, report_settings, POSTS_OF_DAY + OTHER_POSTS)
    health = SOURCE_HEALTH.alias(prefix)
    runs = [
        {"source": "微博", "kind": "social", "found": 5, "new": 3, "ok": True},
        {"source": "微博", "kind": "social", "found": 2, "new": 0, "ok": True},
        {"source": "市民留言板", "kind": "message", "found": 0, "new": 0, "ok": False, "error": "HTTP 503"},
        {"source": "都市报", "kind": "article", "found": 0, "new": 0, "ok": True},
    ]
    for i, run in enumerate(runs):
        t = at(DAY, 8 + i)
        es_client.index(index=health, document={**run, "started_at": t.isoformat(), "finished_at": t.isoformat()})
    es_client.indices.refresh(index=health)
    return ReportSources(POSTS.alias(prefix), health, events=StaticEvents(EVENTS), tickets=StaticTickets())


def daily(client: Elasticsearch, sources: ReportSources) -> Report:
    return build_report(client, sources, "daily", DAY, tz=TZ, dashboard_url=DASHBOARD, now=NOW)


def test_period_bounds() -> None:
    d = period_for("daily", DAY, TZ)
    assert (d.start, d.end, d.label) == (at(DAY, 0), at(DAY + timedelta(days=1), 0), "2026年05月05日")
    w = period_for("weekly", DAY, TZ)
    assert (w.start, w.days, w.label) == (at(DAY - timedelta(days=6), 0), 7, "2026年04月29日至2026年05月05日")
    assert w.previous().end == w.start


def test_daily_report_counts_each_linked_to_its_posts(es_client: Elasticsearch, indexed: ReportSources) -> None:
    report = daily(es_client, indexed)
    o = report.overview
    assert (o.total, o.negative, o.relevant) == (7, 3, 5)  # 1-6 and 8; the duplicate left out
    assert (o.previous_total, o.previous_negative) == (2, 1)
    sentiment = {r.key: r for r in o.by_sentiment}
    assert sentiment["negative"].count == 3 and sentiment["negative"].label == "负面"
    assert {p.url for p in sentiment["negative"].examples} == {f"https://example.com/p/{n}" for n in (1, 2, 3)}
    assert "sentiment=negative" in sentiment["negative"].link and "since=2026-05-05" in sentiment["negative"].link
    assert {r.key: r.count for r in o.by_source} == {"微博": 3, "市民留言板": 2, "都市报": 2}
    # #6 has no publication time: it counts on the day it was fetched, so the days add up to the total
    assert [(d.day, d.total, d.negative) for d in o.by_day] == [(DAY, 7, 3)]
    # The negative posts most likely about the bureau first.
    assert [p.post_id for p in report.negative_posts] == [POSTS_OF_DAY[i].doc_id for i in (0, 1, 2)]
    # Source health: the failing source first.
    assert [(s.source, s.status, s.runs, s.posts) for s in report.sources] == [
        ("市民留言板", "失败", 1, 2), ("都市报", "无产出", 1, 2), ("微博", "正常", 2, 3)]
    assert report.sources[0].last_error == "HTTP 503"
    assert report.events is not None and [e.event_id for e in report.events] == ["E1", "E2"]
    text = render_text(report)
    assert text.startswith("舆情日报（2026年05月05日）")
    assert "共监测到信息 7 条，环比增加 250%；其中负面 3 条（占 43%，环比增加 200%），与本局业务相关 5 条" in text
    assert "https://example.com/p/1" in text and f"{DASHBOARD}/event?id=E1" in text


def test_a_report_lists_the_instructions_waiting_and_those_reported_back_on_in_its_period() -> None:
    from alerts.report_jobs import report_instructions
    from response.config import ResponseConfig
    from response.tickets import Subject, add_feedback, add_instruction, open_ticket

    def ticket(sid: str) -> Any:
        subject = Subject(kind="event", id=sid, title=f"事项{sid}", started_at=NOW - timedelta(days=5))
        return open_ticket(subject, unit="公共服务科", by="张三", now=NOW - timedelta(days=5), config=ResponseConfig())

    start, end = NOW - timedelta(days=1), NOW
    old = add_instruction(ticket("a"), leader="王局长", text="早已办好", at=NOW - timedelta(days=4), by="李秘书",
                          now=NOW - timedelta(days=4))
    old = add_feedback(old, 1, text="办好了", by="赵科长", now=NOW - timedelta(days=3))  # reported before the period
    fresh = add_instruction(ticket("b"), leader="王局长", text="请报进展", at=NOW - timedelta(days=2), by="李秘书",
                            now=NOW - timedelta(days=2), due_at=NOW - timedelta(hours=30))
    fresh = add_feedback(fresh, 1, text="进展顺利", by="赵科长", now=NOW - timedelta(hours=2))
    waiting = add_instruction(ticket("c"), leader="李副局长", text="请核实", at=NOW - timedelta(days=3), by="李秘书",
                              now=NOW - timedelta(days=3))
    late = add_instruction(ticket("d"), leader="王局长", text="尽快处理", at=NOW - timedelta(days=1), by="李秘书",
                           now=NOW - timedelta(days=1), due_at=NOW - timedelta(hours=1))
    rows = report_instructions([old, fresh, waiting, late], start, end, NOW)
    assert [(r.ticket_id, r.state) for r in rows] == [
        (late.id, "逾期未反馈"), (waiting.id, "待反馈"), (fresh.id, "已反馈")]
    assert rows[2].feedback == "进展顺利" and rows[2].feedback_at == NOW - timedelta(hours=2)


def test_a_report_lists_the_briefs_submitted_in_its_period_and_whether_a_leader_instructed() -> None:
    from alerts.report_jobs import report_briefs
    from response.config import ResponseConfig
    from response.tickets import Subject, add_instruction, open_ticket, record_brief

    def ticket(sid: str) -> Any:
        subject = Subject(kind="event", id=sid, title=f"事项{sid}", started_at=NOW - timedelta(days=5))
        return open_ticket(subject, unit="公共服务科", by="张三", now=NOW - timedelta(days=5), config=ResponseConfig())

    start, end = NOW - timedelta(days=1), NOW
    before = record_brief(ticket("a"), to=("王局长",), by="张三", now=NOW - timedelta(days=2))  # not this period
    answered = record_brief(ticket("b"), to=("王局长", "李主任"), by="张三", now=NOW - timedelta(hours=20))
    answered = add_instruction(answered, leader="王局长", text="请核实", at=NOW - timedelta(hours=18), by="王局长",
                               now=NOW - timedelta(hours=18))
    waiting = record_brief(ticket("c"), to=("王局长",), by="李四", now=NOW - timedelta(hours=3))
    rows = report_briefs([before, answered, waiting], start, end)
    assert [(r.ticket_id, r.to, r.instructed_by) for r in rows] == [
        (answered.id, "王局长、李主任", "王局长"), (waiting.id, "王局长", None)]
    assert rows[0].instructed_at == NOW - timedelta(hours=18)


def test_sections_without_a_data_source_say_so(es_client: Elasticsearch, indexed: ReportSources) -> None:
    bare = ReportSources(indexed.posts_alias, indexed.health_alias)
    text = render_text(daily(es_client, bare))
    assert "（事件数据尚未接入）" in text and "（处置跟踪数据尚未接入）" in text


def test_weekly_mail_with_docx_through_smtp(es_client: Elasticsearch, indexed: ReportSources,
                                            smtp: SMTPServer) -> None:
    report = build_report(es_client, indexed, "weekly", DAY, tz=TZ, dashboard_url=DASHBOARD, now=NOW)
    assert report.overview.total == 9 and len(report.overview.by_day) == 7  # with the day before; not 8 days back
    msg = compose_report(report, sender=SENDER, recipients=[LEADER], message_id="<weekly-20260505@example>")
    with Mailer(SMTPSettings(host="127.0.0.1", port=smtp.port)) as mailer:
        mailer.send(msg)
    (got,) = smtp.collector.wait_for(1)
    m = got.message
    assert m["Subject"] == "【舆情周报（2026年04月29日至2026年05月05日）】"
    assert m.get_content_type() == "multipart/mixed"
    body, attachment = m.iter_parts()
    assert body.get_content_type() == "multipart/alternative"
    html_part = m.get_body(preferencelist=("html",))
    assert html_part is not None
    image = next(p for p in m.walk() if p.get_content_type() == "image/png")
    assert f'src="cid:{image["Content-ID"].strip("<>")}"' in html_part.get_content()
    assert attachment.get_filename() == "舆情周报_20260505.docx"

    from docx import Document

    doc = Document(io.BytesIO(attachment.get_content()))
    headings = [p.text for p in doc.paragraphs if p.style is not None and p.style.name.startswith(("Heading", "Title"))]
    assert headings[0] == report.title and all(s in headings for s in SECTIONS)
    assert "已超期（1 件）" in headings
    cells = [[c.text for c in row.cells] for t in doc.tables for row in t.rows]
    assert ["市图书馆突然闭馆引发读者不满", "Ⅱ级橙色", "78", "23", "62%", "↑ 上升 ▁▂▄█", "—", "2 条"] in cells
    assert ["博物馆新展受好评", "Ⅳ级蓝色", "31", "8", "0%", "→ 平稳 ███", "—", "尚未发布"] in cells
    assert ["市民留言板", "message", "1", "1", "2", "—", "失败"] in cells
    assert any(row[0] == "CZ-late" and row[3] == "待研判" for row in cells)
    assert "领导批示 2 件（待反馈 1 件）" in headings  # what became of the leaders' instructions
    assert ["CZ-late", "演出票务投诉", "王局长", "05-04 08:00", "请查处倒票并报我",
            "逾期未反馈（时限 05-05 08:00）"] in cells
    assert ["CZ-done", "博物馆预约难", "李副局长", "05-03 08:00", "请增加预约名额",
            "已反馈（05-05 12:00）：已每日增加二百个名额"] in cells
    html_text = html_part.get_content()
    assert "领导批示 2 件（待反馈 1 件）" in html_text and "逾期未反馈（时限 05-05 08:00）" in html_text
    assert html_text.count(f'href="{DASHBOARD}/tickets?id=CZ-late"') == 2  # its deadline row and its 批示 row
    assert "呈报舆情专报 1 件（待批示 1 件）" in headings and "呈报舆情专报 1 件（待批示 1 件）" in html_text
    assert ["CZ-due", "图书馆闭馆回应", "05-05 08:00", "宣传小王（press）", "王局长（局领导）", "待批示"] in cells
    assert "呈报舆情专报 1 件（待批示 1 件）\n  CZ-due | 图书馆闭馆回应 | 05-05 08:00 |" in render_text(report)
    assert any(row[0] == "前一天的负面" for row in cells)  # the week's negative posts
    links = {r.target_ref for r in doc.part.rels.values() if r.is_external}
    assert "https://example.com/p/1" in links and f"{DASHBOARD}/event?id=E1" in links
    assert f"{DASHBOARD}/tickets?id=CZ-due" in links


def run_cli(settings: Settings, *argv: str) -> int:
    parser = argparse.ArgumentParser()
    report_cli.add_subcommand(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["report", *argv])
    return int(args.func(args, settings))


def test_cli_writes_docx_html_and_text(report_settings: Settings, indexed: ReportSources, tmp_path: Path,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    s = report_settings
    out = tmp_path / "weekly.docx"
    assert run_cli(s, "weekly", "--date", "2026-05-05", "--out", str(out)) == 0
    assert "posts, " in capsys.readouterr().out

    from docx import Document

    doc = Document(str(out))
    assert doc.paragraphs[0].text.startswith("舆情周报（2026年04月29日至2026年05月05日）")
    assert "本期无重点事件。" in [p.text for p in doc.paragraphs]  # events connected (none in this index)
    html = tmp_path / "daily.html"
    assert run_cli(s, "daily", "--date", "2026-05-05", "--out", str(html)) == 0
    page = html.read_text(encoding="utf-8")
    assert "舆情日报（2026年05月05日）" in page and 'href="https://example.com/p/2"' in page
    assert run_cli(s, "daily", "--date", "2026-05-05") == 0
    assert "共监测到信息 7 条" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        run_cli(s, "daily", "--date", "05/05/2026")
    assert "YYYY-MM-DD" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        run_cli(s, "daily", "--out", str(tmp_path / "x.pdf"))
    nowhere = s.model_copy(update={"elasticsearch": s.elasticsearch.model_copy(update={"index_prefix": "no-such"})})
    with pytest.raises(ReportError, match=r"no-such-posts does not exist; run `yuqing setup`"):
        run_cli(nowhere, "daily")


def test_render_docx_opens_for_an_empty_period(es_client: Elasticsearch, indexed: ReportSources) -> None:
    empty = build_report(es_client, indexed, "daily", date(2020, 1, 1), tz=TZ, dashboard_url=DASHBOARD, now=NOW)
    assert empty.overview.total == 0 and empty.sources == ()
    from docx import Document

    doc = Document(io.BytesIO(render_docx(empty)))
    texts = [p.text for p in doc.paragraphs]
    assert "本期无负面信息。" in texts and "本期无抓取记录。" in texts


def test_scheduled_reports_go_into_the_outbox_once_and_out_by_mail(
    report_settings: Settings, indexed: ReportSources, es_client: Elasticsearch, smtp: SMTPServer, tmp_path: Path
) -> None:
    rules = tmp_path / "alerts.yaml"
    rules.write_text(f"""
people:
  - {{name: 局长, email: {LEADER}, unit: 局领导}}
  - {{name: 宣传科, email: press@culture.example.gov.cn, unit: 宣传科}}
reports:
  daily: {{names: [局长]}}
  weekly: {{units: [局领导, 宣传科]}}
""", encoding="utf-8")
    s = report_settings.model_copy(update={
        "smtp": SMTPSettings(host="127.0.0.1", port=smtp.port, sender=SENDER),
        "alerts": report_settings.alerts.model_copy(update={
            "rules_file": rules, "daily_report_at": "08:00", "weekly_report_day": 3, "weekly_report_at": "08:30"}),
    })
    setup(es_client, s.elasticsearch, [OUTBOX])
    job = ReportJob(s)
    wednesday = datetime.combine(DAY + timedelta(days=1), time(8, 10), tzinfo=TZ)  # the day after DAY, a Tuesday
    made = job.run(now=wednesday)  # 08:10: the daily report is due, the weekly one (08:30) not yet
    assert [e.rule for e in made] == ["report-daily"] and made[0].recipients == (LEADER,)
    made = job.run(now=wednesday + timedelta(minutes=30))
    assert [e.rule for e in made] == ["report-weekly"]
    assert job.run(now=wednesday + timedelta(hours=3)) == []  # a later run or a restart's catch-up: nothing new
    with client_for(s.elasticsearch) as client:
        assert deliver_once(s, client).sent == 2
    got = {r.message["X-Yuqing-Rule"]: r for r in smtp.collector.wait_for(2)}
    assert got["report-daily"].message["Subject"] == "【舆情日报（2026年05月05日）】"
    weekly = got["report-weekly"]
    assert weekly.rcpt_tos == [LEADER, "press@culture.example.gov.cn"]
    attachment = next(p for p in weekly.message.walk() if p.get_filename() == "舆情周报_20260505.docx")
    from docx import Document

    assert Document(io.BytesIO(attachment.get_content())).paragraphs[0].text.startswith("舆情周报")
    assert due_reports(wednesday, daily_at=None, weekly_day=1, weekly_at="08:00") == []


def test_the_report_check_logs_elasticsearch_down_once_and_its_recovery(
    settings: Settings, es_client: Elasticsearch, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    import logging

    import schedule

    from index.layout import ALL_SPECS
    from tests.faultproxy import FaultProxy

    setup(es_client, settings.elasticsearch, ALL_SPECS)
    rules = tmp_path / "alerts.yaml"
    rules.write_text(f"people:\n  - {{name: 局长, email: {LEADER}, unit: 局领导}}\n"
                     "reports:\n  daily: {names: [局长]}\n", encoding="utf-8")
    port = int(settings.elasticsearch.hosts[0].rsplit(":", 1)[1].strip("/"))
    proxy = FaultProxy(port)
    s = settings.model_copy(update={
        "elasticsearch": settings.elasticsearch.model_copy(update={"hosts": [proxy.url]}),
        "smtp": SMTPSettings(host="127.0.0.1", port=25, sender=SENDER),
        "alerts": settings.alerts.model_copy(update={"rules_file": rules, "daily_report_at": "00:00"}),
    })
    jobs = schedule.Scheduler()
    ReportJob(s).register(jobs)
    caplog.set_level(logging.DEBUG, logger="alerts.report_jobs")
    try:
        proxy.down()
        jobs.run_all()
        jobs.run_all()  # still down: the repeat is in the log file only
        proxy.up()
        jobs.run_all()
    finally:
        proxy.close()
    ours = [r for r in caplog.records if r.name == "alerts.report_jobs"]
    lines = [(r.levelno, r.getMessage()) for r in ours if r.levelno >= logging.INFO]
    assert len(lines) == 3, lines
    assert lines[0][0] == logging.ERROR and "scheduled reports failed" in lines[0][1]
    assert "no node answered" in lines[0][1]
    assert lines[1][0] == logging.INFO and "report: " in lines[1][1]  # made once it could
    assert lines[2] == (logging.INFO, "scheduled reports recovered")
    assert all(r.exc_info is None for r in ours if r.levelno >= logging.INFO)  # the tracebacks: at DEBUG
