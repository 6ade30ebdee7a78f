"""热点事件 and 事件详情 with AppTest against the real Elasticsearch, on events the events update job made."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from elasticsearch import Elasticsearch

from alerts.report_jobs import StoreEvents
from index.events import EVENT_SPECS, EVENTS, EventFilter, get_events, hot_events
from index.layout import POSTS, setup
from index.overview import top_events
from ingest.events_job import EventsUpdater
from tests.conftest import seed_posts
from tests.test_dashboard_app import _run, app_env, frame_with, shown_titles, signed_in
from tests.test_events_job import LIBRARY, library_posts, other_posts
from yuqing.models import Analysis, Post
from yuqing.settings import Settings

__all__ = ["app_env"]  # fixture

WATER = [("青川城区大面积停水", "青川城区大面积停水，自来水公司电话打不通，居民无水做饭。"),
         ("城区停水一整天没人管", "青川城区停水一整天，自来水公司没有任何通知，居民投诉无人管。"),
         ("停水第二天，青川城区居民排队接水", "青川城区停水第二天，居民排队接水，自来水公司仍未说明原因。"),
         ("青川停水何时恢复", "青川城区停水，自来水公司只说在抢修，居民问何时恢复供水。")]


def water_posts(start: datetime) -> list[Post]:
    """A story the classifier finds unrelated to the bureau's work (与本局业务无关)."""
    unrelated = Analysis.model_validate({"sentiment": "negative", "relevant": False, "relevance_prob": 0.05,
                                         "model_version": "test"})
    return [Post(url=f"https://weibo.example.cn/water/{i}", title=t, content=c, source="微博", kind="social",
                 published_at=start + timedelta(minutes=10 * i), fetched_at=start + timedelta(minutes=10 * i + 1),
                 analysis=unrelated)
            for i, (t, c) in enumerate(WATER)]


@pytest.fixture()
def clustered(app_env: Settings, es_client: Elasticsearch) -> dict[str, str]:
    """The library story (8 posts over the last 3 hours) and four other news, through the events job; returns
    the event id of each post's title."""
    setup(es_client, app_env.elasticsearch, EVENT_SPECS)
    now = datetime.now(UTC)
    tagged = [p.model_copy(update={"content": f"{p.content} #青川市图书馆闭馆#"})  # Weibo's 话题
              for p in library_posts(now - timedelta(hours=3), 8)]
    posts = tagged + other_posts(now - timedelta(hours=5)) + water_posts(now - timedelta(hours=2))
    seed_posts(es_client, app_env, posts)
    EventsUpdater(app_env, es_client, clock=lambda: now).run_once()
    es_client.indices.refresh(index=f"{app_env.elasticsearch.index_prefix}-*")
    hits = es_client.search(index=f"{app_env.elasticsearch.index_prefix}-posts", size=50,
                            source_includes=["title", "event_id"])["hits"]["hits"]
    return {h["_source"]["title"]: h["_source"]["event_id"] for h in hits}


def test_hot_events_lists_the_story_first_and_filters(clustered: dict[str, str]) -> None:
    at = _run(signed_in())
    at.switch_page("views/events.py")
    _run(at)
    table = frame_with(at, "事件")
    assert len(table) == 5  # the water story is not the bureau's: left out, and said so
    assert "另有 1 个与本局业务无关的事件未列出" in at.caption[0].value
    top = table.iloc[0]
    assert top["事件"] == "#青川市图书馆闭馆#" and top["条数"] == 8  # named by the 话题 its posts carry
    assert top["风险等级"].split()[0] in ("🔴", "🟠", "🟡") and top["首发"].startswith("微博（")
    assert top["责任单位"] != "—" and sum(top["近24小时"]) == 8
    assert top["详情"] == f"event?id={clustered[LIBRARY[0][0]]}"
    assert list(table["热度"]) == sorted(table["热度"], reverse=True)

    at.sidebar.checkbox(key="events_related").uncheck()
    _run(at)
    everything = frame_with(at, "事件")
    water = everything[everything["事件"].isin([t for t, _ in WATER])]
    assert len(everything) == 6 and len(water) == 1 and water.iloc[0]["风险等级"].endswith("IV级（蓝）")
    assert "与本局业务无关" not in at.caption[0].value
    at.sidebar.checkbox(key="events_related").check()

    at.sidebar.multiselect(key="events_levels").set_value(["IV"])
    _run(at)
    assert top["事件"] not in set(frame_with(at, "事件")["事件"])
    at.sidebar.multiselect(key="events_levels").set_value(["I"])
    _run(at)
    assert at.info[0].value.startswith("没有符合条件的事件")


def test_unrelated_events_stay_out_of_the_overview_and_the_reports(
    clustered: dict[str, str], app_env: Settings, es_client: Elasticsearch
) -> None:
    prefix = app_env.elasticsearch.index_prefix
    alias = EVENTS.alias(prefix)
    water = clustered[WATER[0][0]]
    stored = get_events(es_client, alias, [water, clustered[LIBRARY[0][0]]])
    assert not stored[water].related and stored[water].risk_level == "IV"
    assert stored[clustered[LIBRARY[0][0]]].related
    assert all(clustered[t] == water for t, _ in WATER)  # one event
    everything = hot_events(es_client, alias, EventFilter())
    ours = hot_events(es_client, alias, EventFilter(related_only=True))
    assert water in {r.event_id for r in everything.records} and everything.unrelated == 0
    assert water not in {r.event_id for r in ours.records} and ours.unrelated == 1 and ours.total == 5
    assert water not in {r.event_id for r in top_events(es_client, alias, None).items}  # 总览
    now = datetime.now(UTC)
    report = StoreEvents(es_client, alias, POSTS.alias(prefix)).top_events(now - timedelta(days=1), now, 10)
    assert len(report) == 5 and water not in {e.event_id for e in report}  # 日报 / 周报


def test_event_detail_shows_reasons_forecast_posts_and_the_ticket_link(clustered: dict[str, str]) -> None:
    event_id = clustered[LIBRARY[0][0]]
    at = signed_in()
    at.query_params["id"] = event_id
    at.switch_page("views/event.py")
    _run(at)
    assert at.subheader[0].value == "\\#青川市图书馆闭馆\\#"  # the 话题 (Markdown-escaped)
    metrics = {m.label: m.value for m in at.metric}
    assert set(metrics) == {"当前热度", "6小时预测", "24小时预测", "负面占比"} and metrics["负面占比"] == "100%"
    assert [c.value for c in at.caption if c.value.startswith("话题：")] == ["话题：\\#青川市图书馆闭馆\\#"]
    markdown = "\n".join(md.value for md in at.markdown)
    assert "预警等级依据" in markdown and "热度高" in markdown  # the reasons that fired, in Chinese
    assert "共 8 条" in markdown
    assert len(shown_titles(at)) == 8 and shown_titles(at)[0] == LIBRARY[0][0]  # member posts, earliest first
    assert frame_with(at, "来源").to_dict("list") == {"来源": ["微博"], "条数": [8]}
    assert len(frame_with(at, "风险等级")) == 1  # the level history
    links = [el for el in at.get("page_link")]
    assert any(f"event={event_id}" in str(el.proto) for el in links), "the 处置单 link carries the event id"


def test_event_detail_of_an_unknown_event_says_so(clustered: dict[str, str]) -> None:
    at = signed_in()
    at.query_params["id"] = "[请点此核实](http://phish.example)"  # a crafted link: shown as text, not as a link
    at.switch_page("views/event.py")
    _run(at)
    assert at.error[0].value.startswith("未找到事件 \\[请点此核实\\]\\(http")
