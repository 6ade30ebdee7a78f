"""The events update job against the real Elasticsearch: posts clustered from the index into event records, posts'
``event_id``, the level history, idempotent re-runs, and a restart after a crash between or inside batches that
loses and doubles nothing."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from elasticsearch import Elasticsearch, helpers

import ingest.events_job as job
from events.config import load_events_config
from events.text import Vocabulary
from index.events import EVENT_SPECS, EVENT_STATE, EVENTS, EventRecord, count_unassigned, load_state
from index.layout import POSTS, setup
from index.outbox import OUTBOX
from ingest.events_job import EventsUpdater
from response.config import ResponseConfig
from response.service import TicketService, ensure_indices
from response.tickets import Subject, open_ticket
from tests.conftest import seed_posts
from yuqing.models import Analysis, Engagement, Post
from yuqing.settings import Settings

TZ = ZoneInfo("Asia/Shanghai")
T0 = datetime(2026, 3, 2, 9, 0, tzinfo=TZ)
TOPIC = "公共文化设施建设和使用"
ENFORCEMENT = "文化市场执法"

LIBRARY = [
    ("青川市图书馆突然闭馆", "青川市图书馆今天没有任何通知就闭馆了，门口只贴了一张纸，读者扑空。"),
    ("图书馆闭馆没通知，白跑一趟", "带孩子去青川市图书馆还书，大门紧闭，闭馆也不提前通知。"),
    ("青川市图书馆闭馆，自习学生无处可去", "备考的学生每天在青川市图书馆自习，突然闭馆，学生无处可去。"),
    ("市图书馆闭馆引发读者不满", "青川市图书馆闭馆事件持续发酵，读者质疑为何不提前公告闭馆。"),
    ("青川市图书馆闭馆，年卡退费无人管", "办了青川市图书馆年卡，闭馆后退费无人管，电话也打不通。"),
    ("记者探访：青川市图书馆为何突然闭馆", "记者来到青川市图书馆，闭馆通知只有一句话，读者不满情绪明显。"),
    ("青川市图书馆突然闭馆，老人被拒门外", "七十岁老人冒雨去青川市图书馆看报，图书馆闭馆，读者被拒门外。"),
    ("青川市图书馆闭馆风波：读者要求说法", "青川市图书馆闭馆风波，读者要求文化部门给个说法。"),
]
OTHER = [
    ("青川博物馆夜场开放受欢迎", "青川博物馆周末夜场开放，市民排队参观青铜器展。"),
    ("文化路KTV深夜噪音扰民", "文化路一家KTV营业到凌晨，噪音扰民，居民投诉。"),
    ("非遗展演周末在人民广场举行", "剪纸、皮影等非遗项目周末在人民广场展演，欢迎市民观看。"),
    ("送戏下乡走进青川山区", "剧团送戏下乡，在山区村里演出三场，村民看得津津有味。"),
]


def _analysis(sentiment: str) -> Analysis:
    return Analysis.model_validate({"sentiment": sentiment, "relevant": True, "relevance_prob": 0.9, "topic": TOPIC,
                                    "model_version": "test"})


def library_posts(start: datetime, n: int, first: int = 0) -> list[Post]:
    """``n`` posts of the library story from number ``first`` on, ten minutes apart, negative, spreading."""
    out = []
    for i in range(first, first + n):
        title, text = LIBRARY[i % len(LIBRARY)]
        out.append(Post(url=f"https://weibo.example.cn/lib/{i}", title=title, content=text, source="微博",
                        kind="social", published_at=start + timedelta(minutes=10 * (i - first)),
                        fetched_at=start + timedelta(minutes=10 * (i - first) + 1),
                        engagement=Engagement(likes=50 * i, comments=10 * i, reposts=20 * i),
                        analysis=_analysis("negative")))
    return out


def other_posts(start: datetime) -> list[Post]:
    return [Post(url=f"https://news.example.cn/o/{i}", title=t, content=c, source="青川晚报", kind="article",
                 published_at=start + timedelta(minutes=7 * i), fetched_at=start + timedelta(minutes=7 * i + 1),
                 analysis=_analysis("neutral"))
            for i, (t, c) in enumerate(OTHER)]


def _settings(settings: Settings, suffix: str = "") -> Settings:
    if not suffix:
        return settings
    es = settings.elasticsearch.model_copy(update={"index_prefix": settings.elasticsearch.index_prefix + suffix})
    return settings.model_copy(update={"elasticsearch": es})


@pytest.fixture()
def ev_settings(settings: Settings, es_client: Elasticsearch) -> Iterator[Settings]:
    setup(es_client, settings.elasticsearch, EVENT_SPECS)
    yield settings


def updater(settings: Settings, client: Elasticsearch, at: datetime, **kw: Any) -> EventsUpdater:
    return EventsUpdater(settings, client, clock=lambda: at, **kw)


def stored(client: Elasticsearch, settings: Settings) -> tuple[dict[str, str], dict[str, EventRecord]]:
    """Every post's event_id and every event record."""
    prefix = settings.elasticsearch.index_prefix
    for alias in (POSTS.alias(prefix), EVENTS.alias(prefix)):
        client.indices.refresh(index=alias)
    posts = {h["_id"]: h["_source"].get("event_id") for h in helpers.scan(
        client, index=POSTS.alias(prefix), query={"query": {"match_all": {}}, "_source": ["event_id"]})}
    events = {h["_id"]: EventRecord.model_validate(h["_source"]) for h in helpers.scan(
        client, index=EVENTS.alias(prefix), query={"query": {"match_all": {}}})}
    return posts, events


def membership(posts: dict[str, str], events: dict[str, EventRecord]) -> dict[str, frozenset[str]]:
    """Each live event's members as the posts' event_id say, checked against the records' counts."""
    by_event: dict[str, set[str]] = {}
    for pid, eid in posts.items():
        assert eid is not None, f"post {pid} has no event"
        by_event.setdefault(eid, set()).add(pid)
    live = {eid: r for eid, r in events.items() if r.status != "merged"}
    assert set(by_event) == set(live)
    for eid, members in by_event.items():
        assert live[eid].count == len(members), f"event {eid}: record counts {live[eid].count}, posts {len(members)}"
    return {eid: frozenset(m) for eid, m in by_event.items()}


def test_the_job_clusters_indexed_posts_and_a_rerun_changes_nothing(ev_settings: Settings,
                                                                    es_client: Elasticsearch) -> None:
    posts = library_posts(T0, 6) + other_posts(T0)
    seed_posts(es_client, ev_settings, posts)
    up = updater(ev_settings, es_client, T0 + timedelta(hours=1), batch_size=4)
    report = up.run_once()
    assert (report.posts, report.new, report.batches) == (10, 10, 3)

    by_post, events = stored(es_client, ev_settings)
    groups = membership(by_post, events)
    library = {p.doc_id for p in posts[:6]}
    lib_event = by_post[posts[0].doc_id]
    assert groups[lib_event] == library  # one event for the story, none of the other news in it
    rec = events[lib_event]
    assert rec.title and rec.first_post.id == posts[0].doc_id and rec.topic == TOPIC and rec.unit
    assert rec.sentiment.negative == 6 and rec.engagement.reposts == sum(20 * i for i in range(6))
    assert [h.level for h in rec.level_history] == [rec.risk_level] and rec.risk_level in ("I", "II", "III")
    assert rec.level_history[0].at == T0 + timedelta(hours=1)
    doc = es_client.get(index=POSTS.alias(ev_settings.elasticsearch.index_prefix), id=posts[0].doc_id)["_source"]
    assert doc["keyword_groups"] == ["图书馆闭馆"]  # matched here when the ingest stage did not store them

    # a re-run (new process: state from Elasticsearch) finds nothing to do and rewrites nothing
    again = updater(ev_settings, es_client, T0 + timedelta(hours=1)).run_once()
    assert (again.posts, again.events, again.rescored) == (0, 0, 0)
    assert stored(es_client, ev_settings) == (by_post, events)

    # a re-indexed post (indexing replaces the document: its event_id is gone) keeps its event, counted once;
    # the engagement it gained since (a Weibo post spreading) joins the event's
    spread = posts[2].model_copy(update={"engagement": Engagement(likes=500, comments=20, reposts=340)})
    seed_posts(es_client, ev_settings, [spread])
    assert count_unassigned(es_client, POSTS.alias(ev_settings.elasticsearch.index_prefix)) == 1
    relabel = updater(ev_settings, es_client, T0 + timedelta(hours=1)).run_once()
    assert (relabel.posts, relabel.new, relabel.labelled, relabel.events) == (1, 0, 1, 1)
    again_posts, again_events = stored(es_client, ev_settings)
    assert again_posts == by_post
    grown = again_events[lib_event]
    assert grown.count == rec.count and grown.heat >= rec.heat
    assert grown.engagement.reposts == rec.engagement.reposts + 340 - 40


def test_the_level_history_records_each_change(ev_settings: Settings, es_client: Elasticsearch) -> None:
    seed_posts(es_client, ev_settings, library_posts(T0, 2))
    up = updater(ev_settings, es_client, T0 + timedelta(minutes=20))
    up.run_once()
    _, events = stored(es_client, ev_settings)
    (first,) = events.values()
    seed_posts(es_client, ev_settings, library_posts(T0 + timedelta(minutes=20), 14, first=2))
    later = T0 + timedelta(hours=3)
    up.clock = lambda: later
    up.run_once()
    _, events = stored(es_client, ev_settings)
    rec = events[first.event_id]
    assert rec.count == 16 and rec.risk_level < first.risk_level  # "I" < "II" < ...: it rose
    assert [(h.level, h.at) for h in rec.level_history] == [(first.risk_level, T0 + timedelta(minutes=20)),
                                                           (rec.risk_level, later)]
    # a day and a half later, without new posts, the rescoring pass lowers the level and records it
    cooled = later + timedelta(hours=36)
    report = updater(ev_settings, es_client, cooled).run_once()
    assert report.posts == 0 and report.rescored == 1
    rec = stored(es_client, ev_settings)[1][first.event_id]
    assert rec.risk_level > rec.level_history[-2].level and rec.level_history[-1].at == cooled
    assert rec.level_history[-1].level == rec.risk_level


class Crash(Exception):
    pass


def fail_second_call(monkeypatch: pytest.MonkeyPatch, where: str) -> None:
    """``ingest.events_job.<where>`` raises :class:`Crash` on its second call (inside the second batch) and works
    before and after (Elasticsearch itself stays real)."""
    real = getattr(job, where)
    calls = {"n": 0}

    def failing(*args: Any, **kwargs: Any) -> Any:
        calls["n"] += 1
        if calls["n"] == 2:
            raise Crash(where)
        return real(*args, **kwargs)

    monkeypatch.setattr(job, where, failing)


CRASH_POSTS = library_posts(T0, 8) + other_posts(T0 + timedelta(minutes=5))
CRASH_AT = T0 + timedelta(hours=2)


@pytest.fixture(scope="module")
def reference(base_settings: Settings, es_client: Elasticsearch) -> Iterator[tuple[Settings, Any]]:
    """The crash tests' posts through one uninterrupted run, on indices of their own (made once)."""
    ref = _settings(base_settings, "-crashref")
    setup(es_client, ref.elasticsearch, (POSTS, *EVENT_SPECS))
    seed_posts(es_client, ref, CRASH_POSTS)
    updater(ref, es_client, CRASH_AT, batch_size=3).run_once()
    yield ref, stored(es_client, ref)
    es_client.indices.delete(index=f"{ref.elasticsearch.index_prefix}-*", ignore_unavailable=True)
    es_client.options(ignore_status=404).indices.delete_index_template(name=f"{ref.elasticsearch.index_prefix}-*")


@pytest.mark.parametrize("where", ["save_state", "set_post_events", "between"])
def test_a_crash_loses_and_doubles_nothing(where: str, ev_settings: Settings, es_client: Elasticsearch,
                                           reference: tuple[Settings, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    ref, expected = reference
    at = CRASH_AT
    seed_posts(es_client, ev_settings, CRASH_POSTS)
    if where == "between":  # killed after the second batch was completely done
        updater(ev_settings, es_client, at, batch_size=3).run_once(max_batches=2)
    else:  # killed inside the second batch, before the state was saved / after it, before the posts were labelled
        fail_second_call(monkeypatch, where)
        with pytest.raises(Crash):
            updater(ev_settings, es_client, at, batch_size=3).run_once()
    restarted = updater(ev_settings, es_client, at, batch_size=3).run_once()
    assert restarted.posts > 0
    by_post, events = stored(es_client, ev_settings)
    assert membership(by_post, events) == membership(*expected)
    strip = {"level_history", "updated_at"}
    assert ({eid: r.model_dump(exclude=strip) for eid, r in events.items()}
            == {eid: r.model_dump(exclude=strip) for eid, r in expected[1].items()})
    states = [EVENT_STATE.alias(s.elasticsearch.index_prefix) for s in (ev_settings, ref)]
    es_client.indices.refresh(index=states)
    assert len({es_client.count(index=alias)["count"] for alias in states}) == 1


@pytest.mark.parametrize("where", ["upsert_events", "save_state"])
def test_a_failed_run_of_the_same_updater_loses_and_doubles_nothing(
        where: str, ev_settings: Settings, es_client: Elasticsearch, reference: tuple[Settings, Any],
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The service keeps one updater for its lifetime: after a run that failed inside a batch (Elasticsearch timed
    out writing the records / the state), the next run of the same updater must not go on from the half-applied
    engine it holds in memory."""
    ref, expected = reference
    seed_posts(es_client, ev_settings, CRASH_POSTS)
    fail_second_call(monkeypatch, where)
    same = updater(ev_settings, es_client, CRASH_AT, batch_size=3)
    with pytest.raises(Crash):
        same.run_once()
    assert same.run_once().posts > 0
    by_post, events = stored(es_client, ev_settings)
    assert membership(by_post, events) == membership(*expected)
    strip = {"level_history", "updated_at"}
    assert ({eid: r.model_dump(exclude=strip) for eid, r in events.items()}
            == {eid: r.model_dump(exclude=strip) for eid, r in expected[1].items()})
    assert saved_state(es_client, ev_settings) == saved_state(es_client, ref)  # what a restart would load


def saved_state(client: Elasticsearch, settings: Settings) -> dict[str, Any]:
    """The events state as saved: document id → its data (without when it was saved)."""
    alias = EVENT_STATE.alias(settings.elasticsearch.index_prefix)
    client.indices.refresh(index=alias)
    return {h["_id"]: h["_source"]["data"] for h in helpers.scan(client, index=alias,
                                                                  query={"query": {"match_all": {}}})}


def test_the_demo_reset_forgets_the_events_of_the_posts_it_removes(ev_settings: Settings,
                                                                    es_client: Elasticsearch) -> None:
    from yuqing.demo.reset import forget_earlier_replay

    prefix = ev_settings.elasticsearch.index_prefix
    replay = library_posts(T0, 5)  # from the "demo site" (weibo.example.cn)
    outsider = Post(url="https://news.example.cn/lib", title=LIBRARY[0][0], content=LIBRARY[0][1], source="青川晚报",
                    kind="article", published_at=T0 + timedelta(minutes=45), fetched_at=T0 + timedelta(minutes=46),
                    analysis=_analysis("negative"))
    seed_posts(es_client, ev_settings, [*replay, outsider, *other_posts(T0)])
    updater(ev_settings, es_client, T0 + timedelta(hours=1)).run_once()
    by_post, events = stored(es_client, ev_settings)
    old = by_post[replay[0].doc_id]
    assert by_post[outsider.doc_id] == old and events[old].count == 6
    # a 处置单 on the replay's event (and its deadline alert, and the event's alert), and one on another event
    ensure_indices(es_client, ev_settings.elasticsearch)
    setup(es_client, ev_settings.elasticsearch, [OUTBOX])
    tickets = TicketService(es_client, prefix)
    kept_event = next(e for e in events if e != old)
    opened = [open_ticket(Subject(kind="event", id=eid, title="t", started_at=T0), unit="公共服务科", by="张三",
                          now=T0 + timedelta(hours=1), config=ResponseConfig(), risk_level="II")
              for eid in (old, kept_event)]
    for t in opened:
        tickets.create(t)
    for key in (f"event:{old}", f"ticket:{opened[0].id}", f"event:{kept_event}", f"ticket:{opened[1].id}"):
        es_client.index(index=OUTBOX.alias(prefix), id=key.replace(":", "-"),
                        document={"rule": "r", "subject_key": key, "status": "sent"}, refresh=True)

    text_cfg = load_events_config(ev_settings.config_file("events.yaml")).text
    assert forget_earlier_replay(es_client, prefix, "https://weibo.example.cn/", text_cfg) == 5
    by_post, events = stored(es_client, ev_settings)
    assert old not in events and by_post[outsider.doc_id] is None and len(by_post) == 5
    # the replay's 处置单 went with its event (its deadlines counted from the replay's times), and their alerts
    es_client.indices.refresh(index=f"{prefix}-tickets")
    left = [t.subject.id for t in tickets.list(size=10)[1]]
    assert left == [kept_event]
    alerts = es_client.search(index=OUTBOX.alias(prefix), query={"match_all": {}})["hits"]["hits"]
    assert sorted(h["_source"]["subject_key"] for h in alerts) == sorted(
        [f"event:{kept_event}", f"ticket:{opened[1].id}"])
    # the engine's document frequencies are those of the posts left, as if the replay had never been counted:
    # the same as those of an engine that only ever saw those posts
    ref = _settings(ev_settings, "-ref")
    setup(es_client, ref.elasticsearch, (POSTS, *EVENT_SPECS))
    seed_posts(es_client, ref, [outsider, *other_posts(T0)])
    updater(ref, es_client, T0 + timedelta(hours=1)).run_once()
    mine, reference = (load_state(es_client, EVENT_STATE.alias(s.elasticsearch.index_prefix))
                       for s in (ev_settings, ref))
    assert mine is not None and reference is not None
    assert mine["global"]["vocab"]["n_docs"] == 1 + len(OTHER)
    ours, theirs = Vocabulary.from_dict(mine["global"]["vocab"]), Vocabulary.from_dict(reference["global"]["vocab"])
    assert ours.df == theirs.df and ours.n_docs == theirs.n_docs
    # the next replay publishes the same pages at new times: the story is told again, from its beginning
    later = T0 + timedelta(days=1)
    seed_posts(es_client, ev_settings, library_posts(later, 5))
    updater(ev_settings, es_client, later + timedelta(hours=1)).run_once()
    by_post, events = stored(es_client, ev_settings)
    membership(by_post, events)
    new = events[by_post[replay[0].doc_id]]
    assert new.count == 6 and new.first_post.published_at == T0 + timedelta(minutes=45)


def test_an_unreadable_post_is_reported_once_and_the_others_go_on(ev_settings: Settings, es_client: Elasticsearch,
                                                                   caplog: pytest.LogCaptureFixture) -> None:
    posts = library_posts(T0, 2)
    seed_posts(es_client, ev_settings, posts)
    alias = POSTS.alias(ev_settings.elasticsearch.index_prefix)
    # written by another tool: a publish time without its offset (the engine cannot place it in time)
    es_client.index(index=alias, id="odd", refresh=True, document={
        "url": "https://x.cn/odd", "canonical_url": "https://x.cn/odd", "title": "图书馆", "content": "闭馆",
        "source": "x", "kind": "article", "published_at": "2026-03-02T09:30:00", "fetched_at": "2026-03-02T09:31:00"})
    up = updater(ev_settings, es_client, T0 + timedelta(hours=1))
    with caplog.at_level("DEBUG", logger="ingest.events_job"):
        first = up.run_once()
        up.run_once()
    errors = [r for r in caplog.records if r.levelname == "ERROR" and "post odd" in r.getMessage()]
    assert len(errors) == 1 and "https://x.cn/odd" in errors[0].getMessage()
    assert (first.posts, first.new) == (3, 2)
    by_post, _ = stored(es_client, ev_settings)
    assert by_post["odd"] is None and all(by_post[p.doc_id] for p in posts)


def test_a_judgement_reaches_the_event_of_the_post(ev_settings: Settings, es_client: Elasticsearch) -> None:
    """人工研判 of posts already in an event: the job reads them again (the judgement cleared their event_id) and
    counts the person's relevance and topic in the event, once; the posts keep their event."""
    from ingest.judgements import JudgementService

    posts = library_posts(T0, 6)
    seed_posts(es_client, ev_settings, posts)
    updater(ev_settings, es_client, T0 + timedelta(hours=1)).run_once()
    by_post, events = stored(es_client, ev_settings)
    lib_event = by_post[posts[0].doc_id]
    assert (events[lib_event].relevance_share, events[lib_event].topic) == (1.0, TOPIC)

    service = JudgementService.ready(es_client, ev_settings.elasticsearch, [TOPIC, ENFORCEMENT])
    at = T0 + timedelta(hours=1)
    for p in posts[:3]:  # three of the six are not the bureau's business after all, two are enforcement
        service.judge(p.doc_id, relevant=False, topic=None, by="宣传小王（press）", at=at)
    for p in posts[3:5]:
        service.judge(p.doc_id, relevant=True, topic=ENFORCEMENT, by="宣传小王（press）", at=at)
    prefix = ev_settings.elasticsearch.index_prefix
    assert count_unassigned(es_client, POSTS.alias(prefix)) == 5

    report = updater(ev_settings, es_client, at).run_once()
    assert (report.posts, report.new, report.labelled, report.events) == (5, 0, 5, 1)
    again_posts, again_events = stored(es_client, ev_settings)
    assert again_posts == by_post  # every post back in its event
    rec = again_events[lib_event]
    assert rec.count == 6 and rec.relevance_share == pytest.approx(3 / 6, abs=1e-4)
    assert rec.topic == ENFORCEMENT and rec.unit != events[lib_event].unit  # 2 of the 3 relevant: the unit follows

    # judged again the other way: counted once more, not twice; a re-run (state from Elasticsearch) changes nothing
    service.judge(posts[0].doc_id, relevant=True, topic=ENFORCEMENT, by="宣传小王（press）", at=at)
    updater(ev_settings, es_client, at).run_once()
    assert stored(es_client, ev_settings)[1][lib_event].relevance_share == pytest.approx(4 / 6, abs=1e-4)
    assert updater(ev_settings, es_client, at).run_once().posts == 0
    assert stored(es_client, ev_settings)[1][lib_event].relevance_share == pytest.approx(4 / 6, abs=1e-4)


def test_events_closed_long_ago_leave_the_state_and_keep_their_records(ev_settings: Settings,
                                                                       es_client: Elasticsearch) -> None:
    posts = library_posts(T0, 4)
    seed_posts(es_client, ev_settings, posts)
    updater(ev_settings, es_client, T0 + timedelta(hours=1)).run_once()
    prefix = ev_settings.elasticsearch.index_prefix
    by_post, _ = stored(es_client, ev_settings)
    event_id = by_post[posts[0].doc_id]

    def in_state() -> bool:
        es_client.indices.refresh(index=EVENT_STATE.alias(prefix))
        return bool(es_client.options(ignore_status=404).get(index=EVENT_STATE.alias(prefix),
                                                             id=f"event:{event_id}").get("found"))

    assert in_state()
    retention = timedelta(days=job.EventsConfigFiles.load(ev_settings).events.clustering.state_retention_days)
    # the story went quiet: closed after its window, still held within the retention
    updater(ev_settings, es_client, T0 + timedelta(days=4)).run_once()
    assert in_state()
    later = updater(ev_settings, es_client, T0 + timedelta(days=4) + retention)
    later.run_once()
    assert not in_state() and event_id not in later.engine.clusterer.events  # type: ignore[union-attr]
    _, events = stored(es_client, ev_settings)
    assert events[event_id].status == "closed" and events[event_id].count == 4  # the record stays for the dashboard
