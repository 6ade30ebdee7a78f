"""Events in the real Elasticsearch: records, the clustering state across a restart, posts' event ids and
专题 groups, and a group's query against the index."""

from __future__ import annotations

import dataclasses
import json
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from elasticsearch import Elasticsearch

from events.config import load_events_config
from events.engine import EventEngine
from events.keyword_groups import es_query, parse_expression
from events.types import EventPost
from index.events import (
    EVENT_SPECS,
    EVENT_STATE,
    EVENTS,
    EventRecord,
    get_events,
    load_open_events,
    load_state,
    post_ids_matching,
    save_state,
    set_post_events,
    upsert_events,
)
from index.layout import POSTS, setup
from tests.conftest import seed_posts
from yuqing.models import Post
from yuqing.settings import PROJECT_ROOT, Settings

TZ = ZoneInfo("Asia/Shanghai")
T0 = datetime(2024, 5, 6, 8, 0, tzinfo=TZ)
TEXTS = [
    ("市图书馆突然闭馆装修", "市图书馆贴出通知，闭馆装修三个月，借阅暂停。"),
    ("万达广场KTV深夜噪音扰民", "KTV营业到凌晨三点，噪音扰民，居民无法入睡。"),
    ("图书馆闭馆三个月，读者不满", "市图书馆闭馆装修三个月，自习的学生无处可去。"),
    ("博物馆暑期延长开放", "市博物馆暑期每天开放到晚上九点，无需预约。"),
    ("图书馆闭馆期间招聘志愿者", "市图书馆闭馆装修期间招聘志愿者整理图书。"),
    ("KTV噪音问题再次被投诉", "万达广场KTV凌晨噪音扰民，多次投诉无果。"),
]


def record(summary: Any) -> EventRecord:
    return EventRecord.model_validate(dataclasses.asdict(summary))


@pytest.fixture()
def event_settings(settings: Settings, es_client: Elasticsearch) -> Settings:
    setup(es_client, settings.elasticsearch, EVENT_SPECS)
    return settings


def _posts() -> list[Post]:
    return [
        Post(url=f"https://news.example.cn/{i}", title=t, content=c, source="本地新闻" if i % 2 else "微博",
             kind="social", published_at=T0 + timedelta(hours=i), fetched_at=T0 + timedelta(hours=i))
        for i, (t, c) in enumerate(TEXTS)
    ]


def _event_posts(posts: list[Post]) -> list[EventPost]:
    return [
        EventPost(id=p.doc_id, title=p.title, text=p.content, published_at=p.published_at or p.fetched_at,
                  source=p.source, kind=p.kind, url=p.url)
        for p in posts
    ]


def test_records_state_and_post_fields_across_a_restart(event_settings: Settings, es_client: Elasticsearch) -> None:
    prefix = event_settings.elasticsearch.index_prefix
    events_alias, state_alias, posts_alias = EVENTS.alias(prefix), EVENT_STATE.alias(prefix), POSTS.alias(prefix)
    cfg = load_events_config(PROJECT_ROOT / "config" / "events.yaml")
    posts = _posts()
    seed_posts(es_client, event_settings, posts)
    eposts = _event_posts(posts)
    assert load_state(es_client, state_alias) is None

    # the service runs on the first half, saves, "restarts" and continues from Elasticsearch
    first = EventEngine(cfg)
    first_results = first.process_many(eposts[:3])
    delta = first.state_delta()
    save_state(es_client, state_alias, delta.global_state, delta.events, delta.removed, now=T0)
    stored = load_state(es_client, state_alias)
    assert stored is not None
    restarted = EventEngine.from_state(cfg, stored)
    rest = restarted.process_many(eposts[3:])
    uninterrupted = EventEngine(cfg).process_many(eposts)
    assert [r.event_id for r in first_results + rest] == [r.event_id for r in uninterrupted]
    assert json.dumps(restarted.to_state(), sort_keys=True) == json.dumps(
        EventEngine.from_state(cfg, json.loads(json.dumps(restarted.to_state()))).to_state(), sort_keys=True
    )

    # event records: written, read back, open ones hottest first; a merged/closed one is not open
    records = [record(restarted.summary(eid)) for eid in restarted.event_ids()]
    upsert_events(es_client, events_alias, records, refresh=True)
    back = get_events(es_client, events_alias, [r.event_id for r in records] + ["ev-missing"])
    assert set(back) == {r.event_id for r in records} and back[records[0].event_id] == records[0]
    assert get_events(es_client, f"{events_alias}-never-created", [records[0].event_id]) == {}  # no index: none
    open_ = load_open_events(es_client, events_alias)
    assert [r.event_id for r in open_] == [r.event_id for r in sorted(records, key=lambda r: (-r.heat, r.event_id))]
    closed = records[0].model_copy(update={"status": "closed"})
    upsert_events(es_client, events_alias, [closed], refresh=True)
    assert closed.event_id not in {r.event_id for r in load_open_events(es_client, events_alias)}

    # posts carry their event id and 专题 groups
    event_of = {r.post_id: r.event_id for r in first_results + rest}
    set_post_events(es_client, posts_alias, event_of, {eposts[0].id: ["图书馆闭馆"]}, refresh=True)
    doc = es_client.get(index=posts_alias, id=eposts[0].id)["_source"]
    assert doc["event_id"] == event_of[eposts[0].id] and doc["keyword_groups"] == ["图书馆闭馆"]
    hits = es_client.search(index=posts_alias, query={"term": {"event_id": event_of[eposts[0].id]}}, size=10)
    assert {h["_id"] for h in hits["hits"]["hits"]} == {p for p, e in event_of.items() if e == event_of[eposts[0].id]}
    with pytest.raises(RuntimeError, match="1 bulk actions failed"):
        set_post_events(es_client, posts_alias, {"no-such-post": "ev-x"})

    # forgetting closed events deletes their state documents
    later = T0 + timedelta(days=400)
    late = EventPost(id="late", title="全新话题", text="与之前无关", published_at=later, kind="social")
    restarted.process(late)
    gone = restarted.event_ids(status="closed")
    restarted.prune(gone)
    delta = restarted.state_delta()
    save_state(es_client, state_alias, delta.global_state, delta.events, delta.removed, now=later)
    again = load_state(es_client, state_alias)
    assert again is not None and set(again["events"]) == set(restarted.event_ids())
    assert not set(gone) & set(again["events"])


def test_a_group_query_finds_what_the_matcher_finds(event_settings: Settings, es_client: Elasticsearch) -> None:
    posts_alias = POSTS.alias(event_settings.elasticsearch.index_prefix)
    posts = _posts()
    seed_posts(es_client, event_settings, posts)
    for source in ["图书馆 +闭馆 !招聘", "博物馆 KTV", "+噪音 +投诉", '"闭馆 装修" 开放', "+万达广场 !凌晨三点"]:
        expr = parse_expression(source)
        expected = sorted(p.doc_id for p in posts if expr.matches(p.title, p.content))
        assert post_ids_matching(es_client, posts_alias, es_query(expr)) == expected, source
        assert expected or source.startswith('"')
