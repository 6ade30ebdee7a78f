"""热点事件 and 事件详情 with AppTest against the real Elasticsearch, on events the events update job made."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from elasticsearch import Elasticsearch

from alerts.report_jobs import StoreEvents
from index.events import EVENT_SPECS, EVENTS, EventFilter, EventRecord, get_events, hot_events, upsert_events
from index.layout import POSTS, setup
from index.overview import top_events
from ingest.events_job import EventsUpdater
from tests.conftest import seed_posts
from tests.test_dashboard_app import _run, app_env, frame_with, shown_titles, signed_in
from tests.test_events_job import LIBRARY, library_posts, other_posts
from yuqing.cli import main
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


def bureau_notice(at: datetime) -> Post:
    """本局发布: the bureau's own statement on its website (``demo-bureau-site`` is ``own: true`` in sources.yaml),
    on a matter nobody outside has written about: an event out of scope, whatever the classifier says."""
    relevant = Analysis.model_validate({"sentiment": "neutral", "relevant": True, "relevance_prob": 0.97,
                                        "model_version": "test"})
    return Post(url="http://127.0.0.1:8601/gov/tzgg/notice-99.html", title="青川市非遗展示中心开放时间调整的通知",
                content="青川市非遗展示中心自下周起周一闭馆，周二至周日开放，节假日照常开放。",
                source="demo-bureau-site", kind="article", published_at=at, fetched_at=at + timedelta(minutes=1),
                analysis=relevant)


@pytest.fixture()
def clustered(app_env: Settings, es_client: Elasticsearch) -> dict[str, str]:
    """The library story (8 posts over the last 3 hours) and four other news, through the events job; returns
    the event id of each post's title."""
    setup(es_client, app_env.elasticsearch, EVENT_SPECS)
    now = datetime.now(UTC)
    tagged = [p.model_copy(update={"content": f"{p.content} #青川市图书馆闭馆#"})  # Weibo's 话题
              for p in library_posts(now - timedelta(hours=3), 8)]
    posts = tagged + other_posts(now - timedelta(hours=5)) + water_posts(now - timedelta(hours=2)) \
        + [bureau_notice(now - timedelta(hours=1))]
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
    assert len(table) == 5  # the water story is not the bureau's, the notice is the bureau's own: left out, said so
    assert "另有 2 个与本局业务无关或只有本局发布信息的事件未列出" in at.caption[0].value
    top = table.iloc[0]
    assert top["事件"] == "#青川市图书馆闭馆#" and top["条数"] == 8  # named by the 话题 its posts carry
    assert top["风险等级"].split()[0] in ("🔴", "🟠", "🟡") and top["首发"].startswith("微博（")
    assert top["责任单位"] != "—" and sum(top["近24小时"]) == 8 and top["本局发布"] == "未发布"
    assert top["详情"] == f"event?id={clustered[LIBRARY[0][0]]}"
    assert list(table["热度"]) == sorted(table["热度"], reverse=True)

    at.sidebar.checkbox(key="events_in_scope").uncheck()
    _run(at)
    everything = frame_with(at, "事件")
    water = everything[everything["事件"].isin([t for t, _ in WATER])]
    notice = everything[everything["事件"] == bureau_notice(datetime.now(UTC)).title]
    assert len(everything) == 7 and len(water) == 1 and water.iloc[0]["风险等级"].endswith("IV级（蓝）")
    assert len(notice) == 1 and notice.iloc[0]["风险等级"].endswith("IV级（蓝）")
    assert notice.iloc[0]["本局发布"] == "1 条"
    assert "与本局业务无关" not in at.caption[0].value
    at.sidebar.checkbox(key="events_in_scope").check()

    at.sidebar.multiselect(key="events_levels").set_value(["IV"])
    _run(at)
    assert top["事件"] not in set(frame_with(at, "事件")["事件"])
    at.sidebar.multiselect(key="events_levels").set_value(["I"])
    _run(at)
    assert at.info[0].value.startswith("没有符合条件的事件")


def test_events_out_of_scope_stay_out_of_the_overview_and_the_reports(
    clustered: dict[str, str], app_env: Settings, es_client: Elasticsearch
) -> None:
    prefix = app_env.elasticsearch.index_prefix
    alias = EVENTS.alias(prefix)
    water = clustered[WATER[0][0]]
    notice = clustered[bureau_notice(datetime.now(UTC)).title]
    stored = get_events(es_client, alias, [water, notice, clustered[LIBRARY[0][0]]])
    assert not stored[water].in_scope and stored[water].risk_level == "IV"
    assert not stored[notice].in_scope and stored[notice].risk_reasons == ["仅有本局渠道发布的信息，不是外部舆情"]
    assert stored[clustered[LIBRARY[0][0]]].in_scope
    assert all(clustered[t] == water for t, _ in WATER)  # one event
    everything = hot_events(es_client, alias, EventFilter())
    ours = hot_events(es_client, alias, EventFilter(in_scope_only=True))
    assert {water, notice} <= {r.event_id for r in everything.records} and everything.out_of_scope == 0
    assert not {water, notice} & {r.event_id for r in ours.records} and ours.out_of_scope == 2 and ours.total == 5
    assert not {water, notice} & {r.event_id for r in top_events(es_client, alias, None).items}  # 总览
    now = datetime.now(UTC)
    report = StoreEvents(es_client, alias, POSTS.alias(prefix)).top_events(now - timedelta(days=1), now, 10)
    assert len(report) == 5 and not {water, notice} & {e.event_id for e in report}  # 日报 / 周报
    assert {e.own_posts for e in report} == {0}  # the bureau spoke on none of them ...
    library = stored[clustered[LIBRARY[0][0]]]
    upsert_events(es_client, alias, [library.model_copy(update={"own_posts": 2})], refresh=True)  # ... now on one
    report = StoreEvents(es_client, alias, POSTS.alias(prefix)).top_events(now - timedelta(days=1), now, 10)
    assert {e.event_id: e.own_posts for e in report}[library.event_id] == 2
    # a record written when the field was called ``related`` reads by that name
    legacy = {**stored[clustered[LIBRARY[0][0]]].model_dump(mode="json"), "related": False}
    del legacy["in_scope"]
    assert not EventRecord.model_validate(legacy).in_scope


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
    assert "**本局发布**：本局渠道尚未就此发布信息" in markdown  # the bureau has not spoken on it

    at.query_params["id"] = clustered[bureau_notice(datetime.now(UTC)).title]
    _run(at)
    markdown = "\n".join(md.value for md in at.markdown)
    assert "**本局发布**：本局渠道已发布 1 条" in markdown and "仅有本局渠道发布的信息，不是外部舆情" in markdown


def test_event_detail_links_its_ticket_with_how_it_stands(clustered: dict[str, str], app_env: Settings,
                                                           es_client: Elasticsearch) -> None:
    from response.config import ResponseConfig
    from response.service import TicketService, ensure_indices
    from response.tickets import Subject, add_instruction, add_response, open_ticket

    event_id = clustered[LIBRARY[0][0]]
    ensure_indices(es_client, app_env.elasticsearch)
    now = datetime.now(UTC).replace(microsecond=0)
    t = open_ticket(Subject(kind="event", id=event_id, title="图书馆闭馆", started_at=now - timedelta(hours=3)),
                    unit="公共服务科", by="张三", now=now - timedelta(hours=2), config=ResponseConfig(),
                    risk_level="III")
    t = add_response(t, channel="官网", text="情况说明", by="张三", at=now - timedelta(hours=1), now=now)
    t = add_instruction(t, leader="李局长", text="请尽快恢复开放", at=now, by="李秘书", now=now)
    TicketService(es_client, app_env.elasticsearch.index_prefix).create(t)
    at = signed_in()
    at.query_params["id"] = event_id
    at.switch_page("views/event.py")
    _run(at)
    (link,) = [el for el in at.get("page_link") if el.proto.page == "tickets"]
    assert link.proto.label == "查看处置单（已回应 · 按时回应 · 领导批示 1 件待反馈）"
    assert link.proto.query_string == f"id={t.id}"  # opens the ticket, no new one
    # 热点事件 says which hot events have a 处置单 and how it stands
    at.switch_page("views/events.py")
    _run(at)
    table = frame_with(at, "事件")
    by_link = dict(zip(table["详情"], table["处置单"], strict=True))
    assert by_link.pop(f"event?id={event_id}") == "已回应·批示待反馈"
    assert set(by_link.values()) == {"未建"}


def test_event_detail_of_an_unknown_event_says_so(clustered: dict[str, str]) -> None:
    at = signed_in()
    at.query_params["id"] = "[请点此核实](http://phish.example)"  # a crafted link: shown as text, not as a link
    at.switch_page("views/event.py")
    _run(at)
    assert at.error[0].value.startswith("未找到事件 \\[请点此核实\\]\\(http")


def test_cli_lists_and_shows_events_as_the_pages_do(clustered: dict[str, str], app_env: Settings,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    library = clustered[LIBRARY[0][0]]
    water = clustered[WATER[0][0]]
    assert main(["events", "list"]) == 0
    out = capsys.readouterr().out.splitlines()
    rows, footer = out[:-1], out[-1]
    assert len(rows) == 5 and rows[0].startswith(library) and "#青川市图书馆闭馆#" in rows[0] and "8条" in rows[0]
    assert not any(water in r for r in rows)  # out of scope: counted, not listed
    assert footer == "共 5 个事件；另有 2 个与本局业务无关或只有本局发布信息的事件未列出（--all 可查看）。"
    assert main(["events", "list", "--all", "--limit", "3"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 4 and out[-1] == "共 7 个事件，显示热度最高的 3 个。"
    assert main(["events", "list", "--all", "--level", "IV", "--json"]) == 0
    records = [EventRecord.model_validate_json(line) for line in capsys.readouterr().out.splitlines()]
    assert water in {r.event_id for r in records} and {r.risk_level for r in records} == {"IV"}
    assert library not in {r.event_id for r in records}

    assert main(["events", "show", library, "--posts", "3"]) == 0
    shown = capsys.readouterr().out
    assert shown.startswith(f"事件 {library}  #青川市图书馆闭馆#") and "研判依据：" in shown
    assert "信息（共 8 条，显示前 3 条）" in shown and shown.count("weibo.example.cn") >= 3
    assert "本局发布：尚无" in shown
    assert main(["events", "show", water]) == 0
    assert "不需关注：不预警、不开处置单、不列入日报" in capsys.readouterr().out
    assert main(["events", "show", clustered[bureau_notice(datetime.now(UTC)).title]]) == 0
    shown = capsys.readouterr().out
    assert "研判依据：仅有本局渠道发布的信息，不是外部舆情" in shown and "本局发布：1 条" in shown
    assert main(["events", "list", "--hours", "0"]) == 2
    assert "--hours must be more than 0" in capsys.readouterr().err
    assert main(["events", "list", "--hours", "1", "--all"]) == 0  # the water story (2 h ago) is left out
    assert water not in capsys.readouterr().out
    assert main(["events", "show", "no-such-event"]) == 2
    assert "没有事件 no-such-event" in capsys.readouterr().err
