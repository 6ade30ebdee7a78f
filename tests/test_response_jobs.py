"""The response post-crawl jobs through the service's job list: the 失声 check after a real crawl of two local
own channels (one publishes the response in time, the other only after the deadline), board replies timed
against the deadline, and tickets opened / raised by rule from the event records."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from html import escape
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from elasticsearch import Elasticsearch

from crawlers.feeds import FeedEntry, rss_document
from crawlers.runner import crawl_in_subprocess
from index.events import EVENT_STATE, EVENTS, EventRecord, FirstPostRecord, set_post_events, upsert_events
from index.layout import POSTS, setup
from response.config import ResponseConfig, RiskLevel
from response.service import TicketService, ensure_indices
from response.tickets import Subject, Ticket, open_ticket, ticket_id_for
from tests.conftest import MockServer, crawl_env, seed_posts
from yuqing.cli import main
from yuqing.models import Post, Reply, doc_id_for
from yuqing.service import post_crawl_jobs
from yuqing.settings import Settings

TZ = ZoneInfo("Asia/Shanghai")
CFG = ResponseConfig()


def _article(server: MockServer, rel: str, title: str, text: str, at: datetime) -> FeedEntry:
    body = (f"<div class=\"detail\"><h1>{escape(title)}</h1><div class=\"property\">发布日期：{at:%Y-%m-%d %H:%M}"
            f"</div><div class=\"TRS_Editor\">" + "".join(f"<p>{escape(p)}</p>" for p in text.split("\n")) +
            "</div></div>")
    html = (f"<!DOCTYPE html><html lang=\"zh-CN\"><head><meta charset=\"utf-8\"><title>{escape(title)}</title>"
            f"</head><body>{body}</body></html>")
    return FeedEntry(link=server.write(rel, html), title=title, published=format_datetime(at))


def _feed(server: MockServer, name: str, entries: list[FeedEntry], now: datetime) -> str:
    return server.write(f"{name}/feed.xml", rss_document(name, server.url, entries, built=now))


def _ticket(event_id: str, hours_ago: float, level: RiskLevel, keywords: tuple[str, ...], now: datetime) -> Ticket:
    subject = Subject(kind="event", id=event_id, title=f"事件 {event_id}", started_at=now - timedelta(hours=hours_ago),
                      keywords=keywords)
    return open_ticket(subject, unit="公共服务科", by="张三", now=now - timedelta(hours=hours_ago - 0.5), config=CFG,
                       risk_level=level)


@pytest.fixture()
def job_settings(settings: Settings, es_client: Elasticsearch, config_dir: Path) -> Settings:
    ensure_indices(es_client, settings.elasticsearch)
    setup(es_client, settings.elasticsearch, [EVENTS])
    return settings.model_copy(update={"paths": settings.paths.model_copy(update={"config_dir": config_dir})})


def test_silence_check_after_a_real_crawl_of_own_channels(
        job_settings: Settings, es_client: Elasticsearch, mockserver: MockServer, config_dir: Path) -> None:
    now = datetime.now(TZ).replace(microsecond=0)
    prefix = job_settings.elasticsearch.index_prefix
    tickets = TicketService(es_client, prefix)
    library = _ticket("ev-lib", 3, "III", ("图书馆", "闭馆"), now)  # 回应 within 48 h
    museum = _ticket("ev-mus", 10, "II", ("博物馆", "排队"), now)  # 权威信息发布 within 5 h: passed 5 h ago
    board = _ticket("ev-board", 60, "III", ("噪音",), now)  # 48 h passed 12 h ago; the board reply came in time
    quiet = _ticket("ev-quiet", 7, "II", ("剧院", "退票"), now)  # nothing anywhere
    for t in (library, museum, board, quiet):
        tickets.create(t)

    # The bureau's website publishes the library statement an hour ago (in time); its 微信公众号 answers the
    # museum queue only 2 hours ago (5 hours after the deadline) and posts something unrelated.
    site = _feed(mockserver, "site", [_article(
        mockserver, "site/1.html", "关于市图书馆临时闭馆的情况说明",
        "因消防设施检修，市图书馆于本周临时闭馆三天，给读者带来不便，深表歉意。\n检修完成后将恢复开放。",
        now - timedelta(hours=1))], now)
    wechat = _feed(mockserver, "wechat", [
        _article(mockserver, "wechat/1.html", "关于市博物馆临展排队问题的回应",
                 "针对近日市博物馆临展排队时间过长的问题，我局已增开入口并延长开放时间。",
                 now - timedelta(hours=2)),
        _article(mockserver, "wechat/2.html", "非遗展演周末在文化广场开幕",
                 "本周末，全市非物质文化遗产展演将在文化广场举行，欢迎市民参加。", now - timedelta(minutes=30)),
    ], now)
    (config_dir / "sources.yaml").write_text(
        "sources:\n"
        f"  - {{name: bureau-site, kind: feed, own: true, start_urls: ['{site}']}}\n"
        f"  - {{name: bureau-wechat, kind: feed, own: true, start_urls: ['{wechat}']}}\n"
        f"  - {{name: demo-bureau-wechat, kind: feed, own: true, enabled: false, start_urls: ['{wechat}']}}\n",
        encoding="utf-8")
    (config_dir / "response.yaml").write_text(
        (config_dir / "response.yaml").read_text(encoding="utf-8").replace(
            "by_source: {demo-bureau-wechat: 微信公众号}", "by_source: {bureau-wechat: 微信公众号}"),
        encoding="utf-8")
    report = crawl_in_subprocess(None, [], timeout_s=300,
                                 env=crawl_env(job_settings, config_dir, YUQING_NLP__ENABLED="false"))
    assert sorted((r.source, r.indexed) for r in report.sources) == [("bureau-site", 1), ("bureau-wechat", 2)]

    # A board message of the noise event answered 14 hours after it surfaced (the 48 h deadline is met).
    message = Post(url="https://liuyan.example.cn/thread/30001", title="夜间广场舞噪音扰民", source="liuyan",
                   kind="message", content="文化广场夜间噪音太大，影响休息。", published_at=now - timedelta(hours=59),
                   fetched_at=now, reply=Reply(text="已协调降低音量并限定时段。", unit="群众文化科",
                                               replied_at=now - timedelta(hours=46)))
    seed_posts(es_client, job_settings, [message])
    set_post_events(es_client, POSTS.alias(prefix), {doc_id_for(message.url): "ev-board"}, refresh=True)

    jobs = {j.name: j for j in post_crawl_jobs(job_settings, alerts=False)}
    assert list(jobs) == ["judgements", "events", "tickets", "silence"]  # response tracking after the events update
    jobs["silence"].run(None)

    lib = tickets.load(library.id).ticket
    assert (lib.silent, lib.overdue) == (False, False)
    assert [(p.channel, p.title) for p in lib.proposals] == [("官网", "关于市图书馆临时闭馆的情况说明")]
    assert lib.audit[-1].by == "系统" and "建议确认本机关发布为回应" in (lib.audit[-1].note or "")

    mus = tickets.load(museum.id).ticket
    assert (mus.silent, mus.overdue) == (True, True)
    assert [(p.channel, p.title) for p in mus.proposals] == [("微信公众号", "关于市博物馆临展排队问题的回应")]
    assert "权威信息发布" in (mus.audit[-1].note or "") and "超期回应" in (mus.audit[-1].note or "")
    assert mus.audit[-1].to_value == "失声、超期"

    brd = tickets.load(board.id).ticket
    assert (brd.silent, brd.overdue, len(brd.audit)) == (False, False, 1)  # answered in time: nothing to record

    q = tickets.load(quiet.id).ticket
    assert (q.silent, q.overdue, q.proposals) == (True, True, ())
    assert "失声" in (q.audit[-1].note or "")

    # The next run finds nothing new: no second entry.
    jobs["silence"].run(None)
    assert [len(tickets.load(t.id).ticket.audit) for t in (library, museum, board, quiet)] == [2, 2, 1, 2]


def _event(event_id: str, level: RiskLevel, status: str = "open", hours_ago: float = 2) -> EventRecord:
    now = datetime.now(UTC).replace(microsecond=0)
    started = now - timedelta(hours=hours_ago)
    colour = {"I": "红", "II": "橙", "III": "黄", "IV": "蓝"}[level]
    return EventRecord.model_validate({
        "event_id": event_id, "status": status, "title": f"事件{event_id}：图书馆闭馆读者扑空",
        "keywords": ["图书馆", "闭馆"], "started_at": started, "last_post_at": now, "updated_at": now, "count": 5,
        "first_post": FirstPostRecord(id="p", title="t", source="s", kind="social", published_at=started),
        "topic": "公共文化设施建设和使用", "heat": 60, "heat_6h": 60, "heat_24h": 60, "growth": 1,
        "risk_level": level, "risk_colour": colour, "merged_into": "x" if status == "merged" else None,
    })


def test_tickets_opened_and_raised_by_rule(job_settings: Settings, es_client: Elasticsearch,
                                          monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    prefix = job_settings.elasticsearch.index_prefix
    tickets = TicketService(es_client, prefix)
    now = datetime.now(TZ)
    by_hand = open_ticket(Subject(kind="event", id="ev-rising", title="手工", started_at=now - timedelta(hours=3)),
                          unit="艺术处", by="张三", now=now - timedelta(hours=1), config=CFG, risk_level="III")
    tickets.create(by_hand)
    upsert_events(es_client, EVENTS.alias(prefix), [
        _event("ev-grave", "II"), _event("ev-minor", "III"), _event("ev-rising", "I", hours_ago=3),
        _event("ev-merged", "I", status="merged"),
    ], refresh=True)

    jobs = {j.name: j for j in post_crawl_jobs(job_settings, alerts=False)}
    jobs["tickets"].run(None)

    assert tickets.list()[0] == 2
    grave = tickets.load(ticket_id_for("event", "ev-grave")).ticket
    assert (grave.rule, grave.risk_level, grave.opened_by, grave.unit) == ("等级≥II", "II", "系统", "公共服务科")
    assert grave.subject.keywords == ("图书馆", "闭馆")
    assert [d.kind for d in grave.deadlines] == ["权威信息发布", "新闻发布会"]
    assert grave.deadlines[0].due_at == grave.subject.started_at + timedelta(hours=5)  # type: ignore[operator]
    rising = tickets.load(by_hand.id).ticket
    assert (rising.risk_level, rising.unit) == ("I", "艺术处")  # raised; the person's unit kept
    assert (rising.audit[-1].by, rising.audit[-1].action, rising.audit[-1].from_value, rising.audit[-1].to_value) == (
        "系统", "调整等级", "III", "I")
    assert rising.deadlines[0].due_at == now - timedelta(hours=3) + timedelta(hours=5)

    jobs["tickets"].run(None)  # nothing new
    assert tickets.list()[0] == 2 and len(tickets.load(by_hand.id).ticket.audit) == 2

    # The same jobs by hand, for scripting.
    monkeypatch.setenv("YUQING_ELASTICSEARCH__INDEX_PREFIX", prefix)
    monkeypatch.setenv("YUQING_PATHS__CONFIG_DIR", str(job_settings.paths.config_dir))
    assert main(["tickets", "auto-open"]) == 0
    assert "按规则新建 0 件，调高等级 0 件" in capsys.readouterr().out
    assert main(["tickets", "check-silence"]) == 0
    assert "检查 2 件，更新 0 件，失声 0 件" in capsys.readouterr().out


def test_posts_to_event_to_ticket_to_silence_through_the_real_jobs(
        job_settings: Settings, es_client: Elasticsearch, config_dir: Path) -> None:
    """The chain after a crawl: the events update groups the posts, the rule opens a ticket for the event (level
    threshold lowered to IV here), the 失声 check finds the board reply of a member message in time."""
    setup(es_client, job_settings.elasticsearch, [EVENT_STATE])
    (config_dir / "response.yaml").write_text(
        (config_dir / "response.yaml").read_text(encoding="utf-8").replace(
            "auto_open_min_level: II", "auto_open_min_level: IV"), encoding="utf-8")
    now = datetime.now(TZ).replace(microsecond=0)

    def post(i: int, hours_ago: float, title: str, content: str, **kw: object) -> Post:
        return Post.model_validate({"url": f"https://weibo.example.cn/{i}", "title": title, "content": content,
                                    "source": "weibo", "kind": "social", "fetched_at": now,
                                    "published_at": now - timedelta(hours=hours_ago), **kw})

    posts = [
        post(1, 6, "青川市图书馆突然闭馆", "青川市图书馆今天突然闭馆，没有任何通知，读者白跑一趟，押金也没说怎么退。"),
        post(2, 5, "图书馆闭馆读者扑空", "青川市图书馆闭馆没有提前公告，很多读者扑空，自习室也用不了。"),
        post(3, 4, "市民留言：图书馆闭馆押金怎么退", "青川市图书馆突然闭馆，押金怎么退？自习室什么时候开放？",
             source="liuyan", kind="message", url="https://liuyan.example.cn/thread/4",
             reply={"text": "您好，图书馆因消防整改临时闭馆，押金可线上申请退还。", "unit": "公共服务科",
                    "replied_at": now - timedelta(hours=2)}),
    ]
    seed_posts(es_client, job_settings, posts)
    jobs = {j.name: j for j in post_crawl_jobs(job_settings, alerts=False)}
    jobs["events"].run(None)
    jobs["tickets"].run(None)  # right after: it must see what the events update just wrote

    tickets = TicketService(es_client, job_settings.elasticsearch.index_prefix)
    total, listed = tickets.list()
    assert total == 1, [t.title for t in listed]
    ticket = listed[0]
    assert ticket.subject.kind == "event" and ticket.opened_by == "系统" and ticket.rule == "等级≥IV"
    assert ticket.subject.started_at == now - timedelta(hours=6) and "图书馆" in ticket.subject.keywords

    jobs["silence"].run(None)
    after = tickets.load(ticket.id).ticket
    assert (after.silent, after.overdue) == (False, False)  # the board reply came within the deadline


def test_a_ticket_follows_its_event_into_the_event_it_was_merged_into(job_settings: Settings,
                                                                       es_client: Elasticsearch) -> None:
    prefix = job_settings.elasticsearch.index_prefix
    tickets = TicketService(es_client, prefix)
    jobs = {j.name: j for j in post_crawl_jobs(job_settings, alerts=False)}
    upsert_events(es_client, EVENTS.alias(prefix), [_event("ev-a", "II", hours_ago=8)], refresh=True)
    jobs["tickets"].run(None)
    mine = ticket_id_for("event", "ev-a")
    assert [t.id for t in tickets.list()[1]] == [mine]

    # The events update finds ev-a and ev-b to be one 舆情 (ev-a merged into ev-b, its posts now ev-b's), and
    # ev-b rises to I; a member board message of ev-b carries the official reply, 3 hours after ev-a began.
    merged = _event("ev-a", "II", status="merged", hours_ago=8).model_copy(update={"merged_into": "ev-b"})
    upsert_events(es_client, EVENTS.alias(prefix), [merged, _event("ev-b", "I", hours_ago=8)], refresh=True)
    now = datetime.now(TZ).replace(microsecond=0)
    message = Post.model_validate({
        "url": "https://liuyan.example.cn/thread/9", "title": "图书馆闭馆押金怎么退",
        "content": "图书馆闭馆押金怎么退？",
        "source": "liuyan", "kind": "message", "fetched_at": now, "published_at": now - timedelta(hours=7),
        "reply": {"text": "您好，押金可线上申请退还。", "unit": "公共服务科", "replied_at": now - timedelta(hours=5)}})
    seed_posts(es_client, job_settings, [message])
    set_post_events(es_client, POSTS.alias(prefix), {message.doc_id: "ev-b"}, {}, refresh=True)

    jobs["tickets"].run(None)
    assert [t.id for t in tickets.list()[1]] == [mine]  # no second ticket for the same 舆情
    assert tickets.load(mine).ticket.risk_level == "I"  # raised with the event it belongs to now
    jobs["silence"].run(None)
    after = tickets.load(mine).ticket
    assert (after.silent, after.overdue) == (False, False)  # the reply under ev-b answers it in time
