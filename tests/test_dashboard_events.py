"""热点事件 and 事件详情 with AppTest against the real Elasticsearch, on events the events update job made."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from elasticsearch import Elasticsearch

from index.events import EVENT_SPECS
from index.layout import setup
from ingest.events_job import EventsUpdater
from tests.conftest import seed_posts
from tests.test_dashboard_app import _run, app_env, frame_with, shown_titles, signed_in
from tests.test_events_job import LIBRARY, library_posts, other_posts
from yuqing.settings import Settings

__all__ = ["app_env"]  # fixture


@pytest.fixture()
def clustered(app_env: Settings, es_client: Elasticsearch) -> dict[str, str]:
    """The library story (8 posts over the last 3 hours) and four other news, through the events job; returns
    the event id of each post's title."""
    setup(es_client, app_env.elasticsearch, EVENT_SPECS)
    now = datetime.now(UTC)
    tagged = [p.model_copy(update={"content": f"{p.content} #青川市图书馆闭馆#"})  # Weibo's 话题
              for p in library_posts(now - timedelta(hours=3), 8)]
    posts = tagged + other_posts(now - timedelta(hours=5))
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
    assert len(table) == 5
    top = table.iloc[0]
    assert top["事件"] == "#青川市图书馆闭馆#" and top["条数"] == 8  # named by the 话题 its posts carry
    assert top["风险等级"].split()[0] in ("🔴", "🟠", "🟡") and top["首发"].startswith("微博（")
    assert top["责任单位"] != "—" and sum(top["近24小时"]) == 8
    assert top["详情"] == f"event?id={clustered[LIBRARY[0][0]]}"
    assert list(table["热度"]) == sorted(table["热度"], reverse=True)

    at.sidebar.multiselect(key="events_levels").set_value(["IV"])
    _run(at)
    assert top["事件"] not in set(frame_with(at, "事件")["事件"])
    at.sidebar.multiselect(key="events_levels").set_value(["I"])
    _run(at)
    assert at.info[0].value.startswith("没有符合条件的事件")


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
