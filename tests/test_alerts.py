"""Alerts in the service against the real Elasticsearch and a real SMTP server (aiosmtpd): post rules, 专题 hits
and silent sources decided from indexed data into the outbox (alerts.service.AlertDecider), delivered by the
sender (once, or by the sender thread of `yuqing run`), digests, limits, errors and the `yuqing alert` command."""

from __future__ import annotations

import argparse
import ssl
import time
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from elasticsearch import Elasticsearch, helpers

from alerts import cli
from alerts.outbox import Sender
from alerts.producers import previous_level
from alerts.service import AlertDecider, AlertRunError, SenderThread, deliver_once, make_outbox, make_sender
from index import outbox as store
from index.client import es_client as client_for
from index.events import (
    EVENTS,
    EventRecord,
    FirstPostRecord,
    LevelChangeRecord,
    TimelinePointRecord,
    set_post_events,
    upsert_events,
)
from index.layout import POSTS, setup
from index.outbox import OUTBOX, OutboxEntry
from index.records import PostRecord, SourceRun
from index.source_health import write_runs
from ingest.batch import Batch
from ingest.stages import Segment
from response.config import ResponseConfig
from response.foia import register
from response.service import FoiaService, TicketService, ensure_indices
from response.tickets import Subject, add_instruction, open_ticket
from tests.conftest import seed_posts
from tests.smtp_server import SMTPServer, StartSMTP, authenticator, free_port
from yuqing.errors import ConfigError
from yuqing.models import Analysis, Post, Sentiment
from yuqing.settings import Settings, SMTPSettings

LEADER = "leader@culture.example.gov.cn"
PRESS = "press@culture.example.gov.cn"
pytest_plugins = ("tests.smtp_fixtures",)  # smtp, start_smtp, tls_files
RULES = f"""
recipients:
  leaders: [{LEADER}]
  press_office: [{PRESS}]
rules:
  - name: 图书馆舆情
    any: [图书馆]
    exclude: [招聘]
    recipients: [leaders, press_office]
"""


# ---- helpers ---------------------------------------------------------------------------------------------
def configure(
    settings: Settings,
    es_client: Elasticsearch,
    tmp_path: Path,
    port: int,
    rules: str = RULES,
    *,
    smtp: dict[str, Any] | None = None,
    alerts: dict[str, Any] | None = None,
) -> Settings:
    """Settings that send to the local SMTP server on ``port`` with ``rules`` as the rules file; the outbox set up."""
    path = tmp_path / "alerts.yaml"
    path.write_text(rules, encoding="utf-8")
    setup(es_client, settings.elasticsearch, [OUTBOX])
    return settings.model_copy(
        update={
            # validated, so a password becomes a SecretStr as when read from the config file
            "smtp": SMTPSettings.model_validate(
                {**settings.smtp.model_dump(), "host": "127.0.0.1", "port": port, "timeout_s": 10, **(smtp or {})}
            ),
            "alerts": settings.alerts.model_validate(
                {**settings.alerts.model_dump(), "rules_file": path, "dashboard_url": "http://dashboard.test:8501",
                 **(alerts or {})}
            ),
        }
    )


def post(n: int, title: str, content: str = "", *, age: timedelta = timedelta(hours=1), **kw: Any) -> Post:
    now = datetime.now(UTC)
    data: dict[str, Any] = {
        "url": f"https://www.example.gov.cn/liuyan/{n}.html",
        "title": title,
        "content": content or title,
        "source": "市民留言板",
        "site": "www.example.gov.cn",
        "kind": "message",
        "author": "张先生",
        "published_at": now - age - timedelta(hours=2),
        "fetched_at": now - age,
    }
    data.update(kw)
    return Post(**data)


def add_posts(client: Elasticsearch, settings: Settings, *posts: Post) -> None:
    seed_posts(client, settings, list(posts))


def text_of(msg: EmailMessage) -> tuple[str, str]:
    plain = msg.get_body(preferencelist=("plain",))
    html = msg.get_body(preferencelist=("html",))
    assert plain is not None and html is not None
    return plain.get_content(), html.get_content()


def entries(client: Elasticsearch, s: Settings) -> list[OutboxEntry]:
    alias = OUTBOX.alias(s.elasticsearch.index_prefix)
    client.indices.refresh(index=alias)
    return store.search(client, alias, {"query": {"match_all": {}}, "sort": [{"decided_at": "asc"}, {"id": "asc"}]})


def poll(what: str, check: Callable[[], object], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


# ---- post rules -------------------------------------------------------------------------------------------
def test_matching_post_decided_once_mailed_once_also_after_restart(
    settings: Settings, es_client: Elasticsearch, smtp: SMTPServer, tmp_path: Path
) -> None:
    s = configure(settings, es_client, tmp_path, smtp.port)
    analysis = Analysis(sentiment="negative", relevant=True, relevance_prob=0.9, model_version="t")
    body = "有市民反映市图书馆周末突然闭馆，无法借书。"
    match = post(1, "市图书馆周末闭馆引发市民不满", body, analysis=analysis)
    add_posts(
        es_client, s,
        match,
        post(2, "博物馆新展开幕", "市博物馆今日开放新展。"),
        post(3, "市图书馆招聘公告", "市图书馆招聘馆员两名。"),  # excluded keyword
        post(4, "新书上架", "图书上新，馆内座位充足。"),  # 图书 and 馆 apart: not the keyword
        post(5, "图书馆老帖", "三天前的图书馆帖子", age=timedelta(days=3)),  # outside the look-back window
    )
    decider = AlertDecider(s)
    report = decider.run(es_client)
    assert (report.signals, report.created) == (1, 1)
    assert deliver_once(s, es_client).sent == 1
    (got,) = smtp.collector.wait_for(1)
    assert got.rcpt_tos == [LEADER, PRESS]
    assert got.mail_from == s.smtp.sender
    assert got.message["Subject"] == "【舆情预警】图书馆舆情：市图书馆周末闭馆引发市民不满"
    assert got.message["X-Yuqing-Rule"] == "图书馆舆情"
    plain, html = text_of(got.message)
    for text in (plain, html):
        assert "市图书馆周末闭馆引发市民不满" in text
        assert match.url in text
        assert "市民留言板" in text and "张先生" in text and "负面" in text
        assert "http://dashboard.test:8501" in text
        assert "突然闭馆" in text  # the excerpt
    (entry,) = entries(es_client, s)
    assert entry.status == "sent" and entry.subject_key == f"post:{match.doc_id}" and entry.attempts == 1

    # the same process again, and "after a restart" (a new decider, client and settings): nothing new
    assert decider.run(es_client).created == 0
    with client_for(s.elasticsearch) as fresh_client:
        restarted = AlertDecider(s.model_copy(deep=True)).run(fresh_client)
        assert (restarted.created, restarted.existing) == (0, 1)
        assert deliver_once(s, fresh_client).sent == 0
    assert len(smtp.collector.received) == 1

    # a new matching post is mailed; the old one still not again
    newer = post(6, "区图书馆空调故障", "区图书馆阅览室空调坏了一周。", age=timedelta(minutes=1))
    add_posts(es_client, s, newer)
    assert decider.run(es_client).created == 1
    assert deliver_once(s, es_client).sent == 1
    received = smtp.collector.wait_for(2)
    assert newer.url in text_of(received[1].message)[0]


def test_sources_kinds_duplicates_and_two_rules(
    settings: Settings, es_client: Elasticsearch, smtp: SMTPServer, tmp_path: Path
) -> None:
    rules = f"""
recipients:
  leaders: [{LEADER}]
rules:
  - name: 图书馆投诉
    any: [图书馆, 文化馆]
    all: [投诉]
    sources: [市民留言板]
    kinds: [message]
    recipients: [leaders]
  - name: 全部文化馆
    any: [文化馆]
    recipients: [{PRESS}]
"""
    s = configure(settings, es_client, tmp_path, smtp.port, rules)
    both = post(1, "投诉文化馆活动取消", "文化馆活动临时取消，我要投诉。")
    add_posts(
        es_client, s,
        both,
        post(2, "图书馆很好", "图书馆服务很好。"),  # no 投诉
        post(3, "投诉图书馆", "投诉图书馆噪音。", source="微博"),  # other source
        post(4, "投诉图书馆噪音", "投诉图书馆噪音。", kind="article"),  # other kind
        post(5, "文化馆转载", "文化馆活动取消（转载）", duplicate_of="x"),  # a duplicate
    )
    own = post(6, "关于文化馆活动取消的情况说明", "文化馆活动因场地检修取消，改期另行通知。", source="局官网")
    add_posts(es_client, s, own)  # 本局发布: the bureau's own statement is no alert
    assert AlertDecider(s, own_sources=["局官网"]).run(es_client).created == 2
    assert deliver_once(s, es_client).sent == 2
    got = {r.message["X-Yuqing-Rule"]: r for r in smtp.collector.wait_for(2)}
    assert got["图书馆投诉"].rcpt_tos == [LEADER]
    assert own.url not in text_of(got["全部文化馆"].message)[0]
    assert got["全部文化馆"].rcpt_tos == [PRESS]
    assert all(both.url in text_of(r.message)[0] for r in got.values())


def test_classifier_conditions_negative_relevant_posts_reach_the_leaders(
    settings: Settings, es_client: Elasticsearch, smtp: SMTPServer, tmp_path: Path
) -> None:
    rules = f"""
recipients:
  leaders: [{LEADER}]
rules:
  - name: 负面舆情
    sentiments: [negative]
    relevant_only: true
    recipients: [leaders]
  - name: 执法类负面
    sentiments: [negative]
    topics: [文化市场执法]
    recipients: [{PRESS}]
"""
    s = configure(settings, es_client, tmp_path, smtp.port, rules)

    def analysis(sentiment: Sentiment, relevant: bool, topic: str | None) -> Analysis:
        return Analysis(sentiment=sentiment, sentiment_probs={sentiment: 0.9}, relevant=relevant,
                        relevance_prob=0.9 if relevant else 0.1, topic=topic, model_version="test")

    complaint = post(1, "网吧违规接纳未成年人无人管", analysis=analysis("negative", True, "文化市场执法"))
    add_posts(
        es_client, s,
        complaint,
        post(2, "博物馆新展很好看", analysis=analysis("positive", True, "公益性文化服务活动")),
        post(3, "外卖太慢了", analysis=analysis("negative", False, None)),  # negative but not about the bureau
        post(4, "未分析的帖子"),  # no classifier output: never matches a classifier condition
    )
    assert AlertDecider(s).run(es_client).created == 2
    assert deliver_once(s, es_client).sent == 2
    got = {r.message["X-Yuqing-Rule"]: r for r in smtp.collector.wait_for(2)}
    assert got["负面舆情"].rcpt_tos == [LEADER] and got["执法类负面"].rcpt_tos == [PRESS]
    assert all(complaint.url in text_of(r.message)[0] for r in got.values())


def test_digest_mode_sends_one_mail_per_window_listing_every_match(
    settings: Settings, es_client: Elasticsearch, smtp: SMTPServer, tmp_path: Path
) -> None:
    rules = RULES + "    digest_minutes: 30\n"
    s = configure(settings, es_client, tmp_path, smtp.port, rules)
    posts = [post(i, f"图书馆闭馆第{i}帖", age=timedelta(minutes=20 + i)) for i in range(5)]
    add_posts(es_client, s, *posts)
    assert AlertDecider(s).run(es_client).created == 5
    held = entries(es_client, s)
    assert {e.status for e in held} == {"held"} and len({e.digest_key for e in held}) == 1
    window_end = held[0].deliver_at
    # The window is not over one second before its end (an instant of its own, not the wall clock: a 30-minute
    # boundary passed between deciding and this check would otherwise release the digest).
    just_before = window_end - timedelta(seconds=1)
    assert make_outbox(s, es_client).release_held(just_before) == 0
    assert make_sender(s, es_client).deliver_due(just_before).sent == 0
    assert {e.status for e in entries(es_client, s)} == {"held"}
    make_outbox(s, es_client).release_held(window_end)
    sender = make_sender(s, es_client)
    assert Sender(sender.client, sender.alias, sender.smtp, sender.delivery, clock=lambda: window_end
                  ).deliver_due().sent == 1
    (got,) = smtp.collector.wait_for(1)
    assert got.message["Subject"].startswith("【预警汇总】图书馆舆情：5 条提醒")
    plain, _ = text_of(got.message)
    assert all(p.title in plain for p in posts)
    assert {e.status for e in entries(es_client, s)} == {"digested", "sent"}


def test_max_per_run_continues_with_the_rest_next_run(
    settings: Settings, es_client: Elasticsearch, smtp: SMTPServer, tmp_path: Path
) -> None:
    s = configure(settings, es_client, tmp_path, smtp.port, alerts={"max_per_run": 2})
    posts = [post(i, f"图书馆第{i}帖", age=timedelta(hours=10 - i)) for i in range(3)]
    add_posts(es_client, s, *posts)
    decider = AlertDecider(s)
    first = decider.run(es_client)
    assert (first.created, first.deferred) == (2, ["图书馆舆情"])
    second = decider.run(es_client)
    assert (second.created, second.deferred) == (1, [])
    keys = [e.subject_key for e in entries(es_client, s)]  # decided oldest first: the newest post in the second run
    assert set(keys[:2]) == {f"post:{p.doc_id}" for p in posts[:2]} and keys[2] == f"post:{posts[2].doc_id}"


def test_posts_indexed_before_indexed_at_existed_are_read_by_fetch_time_also_past_max_per_run(
    settings: Settings, es_client: Elasticsearch, smtp: SMTPServer, tmp_path: Path
) -> None:
    s = configure(settings, es_client, tmp_path, smtp.port, alerts={"max_per_run": 2})
    alias = POSTS.alias(s.elasticsearch.index_prefix)
    legacy = [post(i, f"图书馆第{i}帖", age=timedelta(hours=10 - i)) for i in range(3)]
    old = post(9, "图书馆老帖", age=timedelta(days=3))  # fetched before the look-back window
    # as the previous version wrote them: no indexed_at
    helpers.bulk(es_client, ({"_index": alias, "_id": p.doc_id, "_source": PostRecord.source_of(p)}
                             for p in Segment().run(Batch([*legacy, old])).posts), refresh=True)
    current = post(5, "图书馆新帖", age=timedelta(hours=20))
    add_posts(es_client, s, current)
    decider = AlertDecider(s)
    runs = [decider.run(es_client) for _ in range(3)]
    assert [(r.created, r.deferred) for r in runs] == [(2, ["图书馆舆情"]), (2, []), (0, [])]
    keys = [e.subject_key for e in entries(es_client, s)]  # the legacy posts first, by fetch time
    assert set(keys[:2]) == {f"post:{p.doc_id}" for p in legacy[:2]}
    assert set(keys[2:]) == {f"post:{p.doc_id}" for p in (legacy[2], current)}


def _short_overlap(s: Settings) -> Settings:
    """Settings whose post-rule window overlaps the previous run by 61 s only (crawl_timeout_s + 60)."""
    return s.model_copy(update={"schedule": s.schedule.model_copy(update={"crawl_timeout_s": 1})})


def test_a_post_indexed_after_later_runs_is_decided_whatever_its_fetch_time(
    settings: Settings, es_client: Elasticsearch, smtp: SMTPServer, tmp_path: Path
) -> None:
    """Elasticsearch was down: the crawl spooled the post with its fetch time; alert runs went on; the spool is
    replayed by a later crawl, long after the post was fetched. It is evaluated then."""
    s = _short_overlap(configure(settings, es_client, tmp_path, smtp.port))
    t0 = datetime.now(UTC) - timedelta(seconds=600)  # the post below is indexed at about t0 + 600 s
    decider = AlertDecider(s)
    assert decider.run(es_client, now=t0).signals == 0
    assert decider.run(es_client, now=t0 + timedelta(seconds=600)).signals == 0  # before the replay
    late = post(1, "市图书馆闭馆无人通知", fetched_at=t0 + timedelta(seconds=10))
    add_posts(es_client, s, late)  # the replay (the writer, as IngestService.replay_spool does)
    report = decider.run(es_client, now=t0 + timedelta(seconds=660))
    assert (report.signals, report.created) == (1, 1)
    assert [e.subject_key for e in entries(es_client, s)] == [f"post:{late.doc_id}"]


def test_a_failed_outbox_write_leaves_the_window_where_it_was(
    settings: Settings, es_client: Elasticsearch, smtp: SMTPServer, tmp_path: Path
) -> None:
    """The posts can be read but the outbox not written: the next run reads the same posts again."""
    s = _short_overlap(configure(settings, es_client, tmp_path, smtp.port))
    outbox = OUTBOX.alias(s.elasticsearch.index_prefix)
    t0 = datetime.now(UTC) - timedelta(seconds=600)
    decider = AlertDecider(s)
    assert decider.run(es_client, now=t0).signals == 0
    match = post(1, "市图书馆闭馆无人通知", fetched_at=t0 + timedelta(seconds=10))
    add_posts(es_client, s, match)  # indexed at about t0 + 600 s
    es_client.indices.put_settings(index=outbox, settings={"index.blocks.write": True})
    try:
        with pytest.raises(AlertRunError, match="next run"):
            decider.run(es_client, now=t0 + timedelta(hours=1))
    finally:
        es_client.indices.put_settings(index=outbox, settings={"index.blocks.write": None})
    assert entries(es_client, s) == []
    report = decider.run(es_client, now=t0 + timedelta(hours=2))  # an hour after the failed run's window
    assert (report.signals, report.created) == (1, 1)
    assert [e.subject_key for e in entries(es_client, s)] == [f"post:{match.doc_id}"]


def test_keyword_group_hit_indexed_late_is_decided(
    settings: Settings, es_client: Elasticsearch, smtp: SMTPServer, tmp_path: Path
) -> None:
    rules = f"""
people:
  - {{name: 宣传科, email: {PRESS}, unit: 宣传科}}
event_rules:
  - {{name: 图书馆专题, kind: keyword_group, groups: [图书馆闭馆], recipients: {{units: [宣传科]}}}}
"""
    s = _short_overlap(configure(settings, es_client, tmp_path, smtp.port, rules))
    t0 = datetime.now(UTC) - timedelta(seconds=600)
    decider = AlertDecider(s)
    decider.run(es_client, now=t0)
    decider.run(es_client, now=t0 + timedelta(seconds=600))
    hit = post(1, "图书馆又闭馆了", fetched_at=t0 + timedelta(seconds=10), keyword_groups=["图书馆闭馆"])
    add_posts(es_client, s, hit)
    report = decider.run(es_client, now=t0 + timedelta(seconds=660))
    assert (report.signals, report.created) == (1, 1)
    (entry,) = entries(es_client, s)
    assert entry.rule == "图书馆专题" and entry.subject == "【专题·图书馆闭馆】图书馆又闭馆了"


# ---- other producers through the service path --------------------------------------------------------------
def test_keyword_group_hits_and_a_silent_source_are_decided_and_mailed(
    settings: Settings, es_client: Elasticsearch, smtp: SMTPServer, tmp_path: Path
) -> None:
    rules = f"""
people:
  - {{name: 宣传科, email: {PRESS}, unit: 宣传科}}
  - {{name: 信息中心, email: it@culture.example.gov.cn, unit: 信息中心}}
event_rules:
  - {{name: 图书馆专题, kind: keyword_group, groups: [图书馆闭馆], recipients: {{units: [宣传科]}}}}
  - {{name: 信源失效, kind: source_silent, recipients: {{names: [信息中心]}}}}
"""
    s = configure(settings, es_client, tmp_path, smtp.port, rules)
    hit, other = post(1, "图书馆又闭馆了"), post(2, "剧院演出取消")
    own = post(3, "图书馆闭馆情况说明", source="局官网")  # 本局发布 on the same 专题: not news to alert on
    add_posts(es_client, s, hit, other, own)
    set_post_events(es_client, POSTS.alias(s.elasticsearch.index_prefix), {},
                    {hit.doc_id: ["图书馆闭馆"], other.doc_id: ["演出市场"], own.doc_id: ["图书馆闭馆"]}, refresh=True)
    now = datetime.now(UTC)
    runs = [SourceRun(source="市民留言板", kind="message", started_at=now - timedelta(minutes=m),
                      finished_at=now - timedelta(minutes=m), ok=True) for m in (30, 20, 10)]
    runs.append(SourceRun(source="文化新闻", kind="article", started_at=now, finished_at=now, ok=True, found=3,
                          new=1))
    write_runs(es_client, s.elasticsearch.index_prefix, runs)
    decider = AlertDecider(s, sources=[("市民留言板", "message"), ("文化新闻", "article")], own_sources=["局官网"])
    assert decider.run(es_client).created == 2
    assert deliver_once(s, es_client).sent == 2
    got = {r.message["X-Yuqing-Rule"]: r for r in smtp.collector.wait_for(2)}
    assert got["图书馆专题"].rcpt_tos == [PRESS]
    assert got["图书馆专题"].message["Subject"] == "【专题·图书馆闭馆】图书馆又闭馆了"
    # "view in the platform" opens the post itself, not the front page
    assert f"http://dashboard.test:8501/judge?post={hit.doc_id}" in text_of(got["图书馆专题"].message)[0]
    assert got["信源失效"].rcpt_tos == ["it@culture.example.gov.cn"]
    assert got["信源失效"].message["Subject"] == "【信源异常】信源“市民留言板”静默"
    assert decider.run(es_client).created == 0  # the same hit and the same silence: decided before


def test_keyword_group_hits_past_max_per_run_continue_next_run_routed_to_the_topics_unit(
    settings: Settings, es_client: Elasticsearch, smtp: SMTPServer, tmp_path: Path
) -> None:
    rules = """
people:
  - {name: 公共服务科, email: pub@culture.example.gov.cn, unit: 公共服务科}
event_rules:
  - {name: 图书馆专题, kind: keyword_group, groups: [图书馆闭馆], recipients: {signal_unit: true}}
"""
    s = configure(settings, es_client, tmp_path, smtp.port, rules, alerts={"max_per_run": 2})
    a = Analysis(sentiment="negative", relevant=True, relevance_prob=0.9, topic="公共文化设施建设和使用",
                 model_version="t")
    hits = [post(i, f"图书馆第{i}次闭馆", analysis=a, age=timedelta(hours=10 - i)) for i in range(3)]
    add_posts(es_client, s, *hits)
    set_post_events(es_client, POSTS.alias(s.elasticsearch.index_prefix), {},
                    {p.doc_id: ["图书馆闭馆"] for p in hits}, refresh=True)
    decider = AlertDecider(s)
    first = decider.run(es_client)
    assert (first.created, first.deferred) == (2, ["专题 (图书馆专题)"])
    second = decider.run(es_client)  # the third hit was not dropped with the window: it comes now
    assert (second.created, second.deferred) == (1, [])
    assert decider.run(es_client).created == 0
    assert deliver_once(s, es_client).sent == 3
    got = smtp.collector.wait_for(3)
    assert all(r.rcpt_tos == ["pub@culture.example.gov.cn"] for r in got)  # the topic's 责任单位 (taxonomy)
    assert sorted(r.message["Subject"] for r in got) == sorted(f"【专题·图书馆闭馆】{p.title}" for p in hits)


def test_sender_thread_delivers_at_once_when_woken_and_stops(
    settings: Settings, es_client: Elasticsearch, smtp: SMTPServer, tmp_path: Path
) -> None:
    s = configure(settings, es_client, tmp_path, smtp.port, alerts={"delivery": {"poll_interval_s": 600}})
    sender = SenderThread(s)
    sender.start()
    try:
        add_posts(es_client, s, post(1, "图书馆闭馆"))
        assert AlertDecider(s).run(es_client).created == 1
        sender.wake()  # the poll interval is ten minutes: only the wake-up can deliver it now
        smtp.collector.wait_for(1, timeout=20)
        poll("the entry to be marked sent", lambda: [e.status for e in entries(es_client, s)] == ["sent"])
    finally:
        sender.close(timeout=20)
    assert not sender.thread.is_alive()


# ---- errors -----------------------------------------------------------------------------------------------
def test_no_smtp_host_refuses_to_send(settings: Settings, es_client: Elasticsearch, tmp_path: Path) -> None:
    s = configure(settings, es_client, tmp_path, 25)
    s = s.model_copy(update={"smtp": s.smtp.model_copy(update={"host": None})})
    for start in (lambda: SenderThread(s), lambda: deliver_once(s, es_client)):
        with pytest.raises(ConfigError) as info:
            start()
        assert info.value.field == "smtp.host"


def test_elasticsearch_down_is_reported_with_context(
    settings: Settings, es_client: Elasticsearch, smtp: SMTPServer, tmp_path: Path
) -> None:
    s = configure(settings, es_client, tmp_path, smtp.port)
    nowhere = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    es = s.elasticsearch.model_copy(update={"hosts": [nowhere], "request_timeout_s": 2})
    with client_for(es) as client, pytest.raises(AlertRunError) as info:
        AlertDecider(s).run(client)
    assert POSTS.alias(s.elasticsearch.index_prefix) in str(info.value) and "next run" in str(info.value)
    assert smtp.collector.received == []


def test_bad_rules_file_is_config_error_naming_file_and_field(
    settings: Settings, es_client: Elasticsearch, smtp: SMTPServer, tmp_path: Path
) -> None:
    bad = "rules:\n  - name: 甲\n    any: [图书馆]\n    recipients: [leaders]\n"
    s = configure(settings, es_client, tmp_path, smtp.port, bad)
    add_posts(es_client, s, post(1, "图书馆"))
    with pytest.raises(ConfigError) as info:
        AlertDecider(s).run(es_client)
    assert str(tmp_path / "alerts.yaml") in str(info.value)
    assert "rules[0].recipients[0]" in str(info.value)
    assert smtp.collector.received == []


def test_cli_alert_explains_rules_and_sends(
    settings: Settings, es_client: Elasticsearch, smtp: SMTPServer, tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    s = configure(settings, es_client, tmp_path, smtp.port)
    add_posts(es_client, s, post(1, "图书馆闭馆"))
    parser = argparse.ArgumentParser()
    cli.add_subcommand(parser.add_subparsers(dest="command", required=True))

    args = parser.parse_args(["alert", "--check"])
    assert args.func(args, s) == 0
    out = capsys.readouterr().out
    assert "【图书馆舆情】新抓取的信息符合条件（标题或正文含“图书馆”；不含“招聘”）" in out
    assert "【舆情日报】未配置收件人" in out
    assert smtp.collector.received == []

    args = parser.parse_args(["alert"])
    assert args.func(args, s) == 0
    out = capsys.readouterr().out
    assert "1 new outbox entries" in out and "1 sent" in out
    smtp.collector.wait_for(1)

    no_host = s.model_copy(update={"smtp": s.smtp.model_copy(update={"host": None})})
    with pytest.raises(ConfigError, match=r"smtp\.host"):
        args.func(args, no_host)
    args = parser.parse_args(["alert", "--check"])
    assert args.func(args, no_host) == 0  # checking the rules needs no mail server


def test_mails_given_up_on_are_sent_after_the_fix_with_retry_failed(
    settings: Settings, es_client: Elasticsearch, smtp: SMTPServer, tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    down = configure(settings, es_client, tmp_path, free_port(), alerts={"delivery": {"max_attempts": 1}})
    add_posts(es_client, down, post(1, "图书馆闭馆"))
    assert AlertDecider(down).run(es_client).created == 1
    assert deliver_once(down, es_client).failed == 1  # the mail server was down: given up after one attempt
    assert [e.status for e in entries(es_client, down)] == ["failed"]

    fixed = configure(settings, es_client, tmp_path, smtp.port)  # the server is back
    parser = argparse.ArgumentParser()
    cli.add_subcommand(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["alert"])
    assert args.func(args, fixed) == 0 and smtp.collector.received == []  # a plain run leaves it given up
    args = parser.parse_args(["alert", "--retry-failed"])
    assert args.func(args, fixed) == 0
    assert "1 failed mails queued again" in capsys.readouterr().out
    (got,) = smtp.collector.wait_for(1)
    assert got.message["Subject"].endswith("图书馆闭馆")
    assert [e.status for e in entries(es_client, fixed)] == ["sent"]


# ---- TLS -------------------------------------------------------------------------------------------------
@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")
@pytest.mark.parametrize("mode", ["starttls", "ssl"])
def test_tls_and_login(
    mode: str, settings: Settings, es_client: Elasticsearch, start_smtp: StartSMTP, tmp_path: Path,
    tls_files: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch,
) -> None:
    cert, key = tls_files
    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_ctx.load_cert_chain(cert, key)
    # aiosmtpd only counts STARTTLS as TLS for auth_require_tls; with implicit TLS the whole session is TLS.
    tls_kwargs: dict[str, Any] = (
        {"tls_context": server_ctx, "require_starttls": True, "auth_require_tls": True}
        if mode == "starttls"
        else {"ssl_context": server_ctx, "auth_require_tls": False}
    )
    server = start_smtp(authenticator=authenticator, auth_required=True, **tls_kwargs)
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))  # the client trusts the self-signed certificate
    login = {"username": "yuqing", "password": "s3cret", mode: True}

    wrong = configure(settings, es_client, tmp_path, server.port, smtp={**login, "password": "wrong"})
    add_posts(es_client, wrong, post(1, "图书馆闭馆"))
    AlertDecider(wrong).run(es_client)
    report = deliver_once(wrong, es_client)
    assert report.sent == 0 and report.retried == 1
    assert f"127.0.0.1:{server.port}" in report.errors[0] and "login" in report.errors[0]
    (entry,) = entries(es_client, wrong)
    assert entry.status == "pending" and entry.last_error == report.errors[0]

    s = configure(settings, es_client, tmp_path, server.port, smtp=login)
    sender = make_sender(s, es_client)
    later = Sender(sender.client, sender.alias, sender.smtp, sender.delivery,
                   clock=lambda: datetime.now(UTC) + timedelta(hours=1))  # after the backoff
    assert later.deliver_due().sent == 1
    (got,) = server.collector.wait_for(1)
    assert got.login == "yuqing"
    assert got.message["Subject"] == "【舆情预警】图书馆舆情：图书馆闭馆"


# ---- events, 处置单 and 依申请公开 through the service path ------------------------------------------------------
def test_previous_level_is_the_level_before_the_latest_change() -> None:
    at = "2026-10-28T03:00:00Z"
    assert previous_level([], "II") is None
    assert previous_level([{"level": "II", "at": at}], "II") is None  # recorded once: a new event
    assert previous_level([{"level": "IV", "at": at}, {"level": "III", "at": at}, {"level": "II", "at": at}],
                          "II") == "III"
    assert previous_level([{"level": "III", "at": at}], "II") is None  # history behind the record: no claim


def test_event_ticket_and_foia_signals_from_their_stores_are_mailed_to_their_people(
    settings: Settings, es_client: Elasticsearch, smtp: SMTPServer, tmp_path: Path
) -> None:
    tz = ZoneInfo("Asia/Shanghai")
    now = datetime(2026, 10, 28, 12, 0, tzinfo=tz)
    rules = f"""
people:
  - {{name: 局领导, email: {LEADER}, unit: 局领导}}
  - {{name: 公共服务科, email: pub@culture.example.gov.cn, unit: 公共服务科}}
  - {{name: 公开办, email: foia@culture.example.gov.cn, unit: 政务公开办}}
event_rules:
  - {{name: 重大舆情, kind: new_event, min_level: II, recipients: {{names: [局领导]}}}}
  - {{name: 等级上升, kind: level_raised, min_level: III, recipients: {{signal_unit: true}}}}
  - {{name: 处置超期, kind: ticket_due, overdue: true, recipients: {{signal_unit: true}}}}
  - {{name: 批示转办, kind: instruction, recipients: {{signal_unit: true}}}}
  - {{name: 依申请公开到期, kind: foia_due, within_working_days: 3, recipients: {{units: [政务公开办]}}}}
"""
    s = configure(settings, es_client, tmp_path, smtp.port, rules)
    prefix = s.elasticsearch.index_prefix
    setup(es_client, s.elasticsearch, [EVENTS])
    ensure_indices(es_client, s.elasticsearch)
    member = post(1, "市图书馆突然闭馆", published_at=now - timedelta(hours=5), fetched_at=now - timedelta(hours=5))
    add_posts(es_client, s, member)
    set_post_events(es_client, POSTS.alias(prefix), {member.doc_id: "E-lib"}, refresh=True)
    first = FirstPostRecord(id=member.doc_id, title=member.title, source="微博", kind="social",
                            published_at=now - timedelta(hours=5), url=member.url)
    timeline = [TimelinePointRecord(at=now - timedelta(hours=h), hours=1, posts=6 - h, negative=4 - h // 2)
                for h in range(5, 0, -1)]
    record = EventRecord(event_id="E-lib", status="open", title="市图书馆突然闭馆引发读者不满", first_post=first,
                         started_at=first.published_at, last_post_at=now, updated_at=now, count=20, heat=78.0,
                         heat_6h=80.0, heat_24h=60.0, growth=2.0, risk_level="II", risk_colour="橙",
                         risk_reasons=["负面占比 62% ≥ 50%"], unit="公共服务科", topic="公共文化设施建设和使用",
                         negative_share=0.62, timeline=timeline, members=[member.doc_id],
                         level_history=[LevelChangeRecord(level="III", at=now - timedelta(hours=2)),
                                        LevelChangeRecord(level="II", at=now)])
    upsert_events(es_client, EVENTS.alias(prefix), [record], refresh=True)
    subject = Subject(kind="event", id="E-lib", title=record.title, topic=record.topic,
                      started_at=now - timedelta(hours=6), keywords=("图书馆",))
    ticket = open_ticket(subject, unit="公共服务科", by="张三", now=now - timedelta(hours=6), config=ResponseConfig(),
                         risk_level="II")  # 权威信息发布 within 5 h: passed an hour ago
    ticket = add_instruction(ticket, leader="王局长", text="请公共服务科尽快恢复开放，结果报我", by="李秘书",
                             at=now - timedelta(hours=1), now=now - timedelta(hours=1),
                             due_at=now + timedelta(hours=23))
    TicketService(es_client, prefix).create(ticket)
    request = register(applicant="张某", content="新馆建设资金使用情况", channel="邮寄", received_on=date(2026, 9, 28),
                       by="李明", now=now)  # due Fri 10-30: 2 working days left on Wed 10-28
    FoiaService(es_client, prefix).create(request)
    es_client.indices.refresh(index=f"{prefix}-*")

    decider = AlertDecider(s)
    assert decider.run(es_client, now=now).created == 5
    assert deliver_once(s, es_client).sent == 5
    got = {r.message["X-Yuqing-Rule"]: r for r in smtp.collector.wait_for(5)}
    event_mail = got["重大舆情"]
    assert event_mail.rcpt_tos == [LEADER]
    assert event_mail.message["Subject"] == "【舆情预警·Ⅱ级橙色】市图书馆突然闭馆引发读者不满"
    assert any(part.get_content_type() == "image/png" for part in event_mail.message.walk())  # the trend chart
    assert member.url in text_of(event_mail.message)[0] and "负面占比 62% ≥ 50%" in text_of(event_mail.message)[0]
    assert "本局发布：本局渠道尚未就此发布信息" in text_of(event_mail.message)[0]  # 不失声: nothing said yet
    assert got["等级上升"].rcpt_tos == ["pub@culture.example.gov.cn"]  # the event's unit
    assert "风险等级由Ⅲ级黄色升至Ⅱ级橙色" in text_of(got["等级上升"].message)[0]
    assert got["处置超期"].rcpt_tos == ["pub@culture.example.gov.cn"]
    assert got["处置超期"].message["Subject"].startswith("【处置时限·Ⅱ级橙色】权威信息发布已超期")
    assert got["批示转办"].rcpt_tos == ["pub@culture.example.gov.cn"]  # 批示转办 to the unit that carries it out
    assert got["批示转办"].message["Subject"] == "【领导批示·Ⅱ级橙色】王局长批示：市图书馆突然闭馆引发读者不满"
    body = text_of(got["批示转办"].message)[0]
    assert "请公共服务科尽快恢复开放，结果报我" in body and "请于 2026-10-29 11:00 前反馈落实情况" in body
    assert f"/tickets?id={ticket.id}" in body
    assert got["依申请公开到期"].rcpt_tos == ["foia@culture.example.gov.cn"]
    assert "剩余 2 个工作日" in got["依申请公开到期"].message["Subject"]
    assert decider.run(es_client, now=now + timedelta(minutes=1)).created == 0  # each decided once


def test_negative_surge_from_the_posts_index_is_decided_once_per_window(
    settings: Settings, es_client: Elasticsearch, smtp: SMTPServer, tmp_path: Path
) -> None:
    topic = "公共文化设施建设和使用"
    rules = f"""
people:
  - {{name: 场馆联络员, email: pub@culture.example.gov.cn, unit: 办公室, topics: [{topic}]}}
  - {{name: 公共服务科, email: head@culture.example.gov.cn, unit: 公共服务科}}
event_rules:
  - {{name: 负面激增, kind: negative_surge, window_minutes: 60, min_count: 5, min_share: 0.3, growth: 2,
      recipients: {{signal_topic: true, signal_unit: true}}}}
"""
    s = configure(settings, es_client, tmp_path, smtp.port, rules)
    now = datetime.now(UTC)

    def analysed(n: int, sentiment: Sentiment, minutes_ago: int) -> Post:
        a = Analysis(sentiment=sentiment, relevant=True, relevance_prob=0.9, topic=topic, model_version="t")
        return post(n, f"场馆第{n}号意见", analysis=a, fetched_at=now - timedelta(minutes=minutes_ago))

    add_posts(es_client, s, *[analysed(i, "negative", 5 + i) for i in range(6)], analysed(10, "neutral", 20),
              analysed(11, "negative", 90), analysed(12, "neutral", 100))
    decider = AlertDecider(s)
    assert decider.run(es_client, now=now).created == 1
    later = now + timedelta(seconds=30 if now.minute * 60 + now.second < 3560 else -30)  # within the same hour
    assert decider.run(es_client, now=later).created == 0  # the same surge in the same 60-minute slot
    assert deliver_once(s, es_client).sent == 1
    (got,) = smtp.collector.wait_for(1)
    # the topic's people, and its 责任单位 from config/taxonomy.yaml (公共服务科)
    assert sorted(got.rcpt_tos) == ["head@culture.example.gov.cn", "pub@culture.example.gov.cn"]
    assert got.message["Subject"] == f"【负面激增】“{topic}”负面信息激增"
    assert "近60分钟“公共文化设施建设和使用”话题负面信息 6 条" in text_of(got.message)[0]
