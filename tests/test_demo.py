"""The demo `yuqing up` starts (yuqing/demo): its corpus, its clock, every channel in the format its spider
reads, the shared data joining it, and a real crawl of every demo source into the real Elasticsearch."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from datetime import datetime, timedelta
from itertools import pairwise
from pathlib import Path
from statistics import median
from urllib.error import HTTPError
from zoneinfo import ZoneInfo

import pytest
import yaml
from elasticsearch import Elasticsearch

from crawlers.runner import crawl_in_subprocess
from index.layout import POSTS
from index.search import post_from_source
from tests.conftest import _read_port, crawl_env
from yuqing.demo.corpus import RISE_MINUTES, RISING_STORY, DemoPost, load_corpus
from yuqing.demo.replay import DemoClock, engagement, visible
from yuqing.demo.server import make_server
from yuqing.demo.shared import holdout_ids, load_shared
from yuqing.demo.site import DemoSite
from yuqing.errors import ConfigError
from yuqing.settings import PROJECT_ROOT, Settings
from yuqing.sources import load_sources

ZONE = ZoneInfo("Asia/Shanghai")
BASE = "http://demo.test"
SHIPPED = PROJECT_ROOT / "config" / "sources.yaml"
# The corpus kind each demo source serves, and the post kind its spider indexes.
SOURCE_KINDS = {"demo-news": "news", "demo-news-column": "news", "demo-board": "message", "demo-weibo": "social",
                "demo-search": "search", "demo-bureau-site": "notice", "demo-bureau-wechat": "wechat"}
POST_KIND = {"news": "article", "notice": "article", "wechat": "article", "message": "message",
             "social": "social", "search": "search"}


@pytest.fixture(scope="module")
def corpus() -> list[DemoPost]:
    return load_corpus()


def story(posts: list[DemoPost], name: str) -> list[DemoPost]:
    return [p for p in posts if p.story == name]


# ---- the corpus -----------------------------------------------------------------------------------------------


def test_corpus_is_large_varied_and_tells_a_rising_story(corpus: list[DemoPost]) -> None:
    assert len(corpus) >= 300
    kinds = {k: [p for p in corpus if p.kind == k] for k in POST_KIND}
    assert all(len(v) >= 8 for v in kinds.values()), {k: len(v) for k, v in kinds.items()}
    assert {"library", "museum-night", "heritage-festival", "opera-village", "netcafe", "relic-repair"} <= {
        p.story for p in corpus}
    assert any(p.reply for p in kinds["message"]) and any(not p.reply for p in kinds["message"])
    assert any(p.channel == "feed" for p in kinds["news"]) and any(p.channel == "column" for p in kinds["news"])

    rising = story(corpus, RISING_STORY)
    before = [p for p in rising if -300 <= p.at < 0]
    during = [p for p in rising if 0 <= p.at <= RISE_MINUTES]
    assert max(p.at for p in rising) <= RISE_MINUTES
    assert len(during) >= 5 * len(before) >= 5  # volume grows
    complaints = [p for p in during if p.at < 240]
    assert sum(p.tone == "neg" for p in complaints) >= 0.9 * len(complaints)  # and turns negative
    media = {p.outlet for p in during if p.kind == "news" and p.at < 240}
    assert len(media) >= 3  # local and provincial media report it
    weibo = [p for p in rising if p.kind == "social"]
    assert all("#青川市图书馆" in p.text for p in weibo)  # a trending topic: its posts carry the hashtag
    likes = sorted(p.likes for p in weibo)
    assert likes[-1] >= 10 * median(likes)  # big accounts amplify it
    # Later the bureau's own channels publish an explanation.
    own = [p for p in rising if p.kind in ("notice", "wechat")]
    assert own and min(p.at for p in own) > max(p.at for p in complaints) - 10
    assert all(p.at > 0 for p in own)
    # Calm stories stay calm, non-relevant noise mentions culture words (relevance matters).
    assert all(p.tone != "neg" for p in story(corpus, "museum-night") if p.kind == "news")
    culture_words = re.compile("文化|文艺|图书|博物馆|演出|艺术|书城|书店")
    for name in {p.story for p in corpus if p.story.startswith("noise-")}:
        assert any(culture_words.search(p.title + p.text) for p in story(corpus, name)), name


def test_every_search_thread_is_found_by_a_keyword_of_the_demo_search_source(corpus: list[DemoPost]) -> None:
    source = next(s for s in load_sources(SHIPPED).sources if s.name == "demo-search")
    assert source.keywords
    for post in (p for p in corpus if p.kind == "search"):
        assert any(k in post.title + post.text for k in source.keywords), post.id


def test_a_bad_corpus_file_is_refused_naming_file_and_field(tmp_path: Path) -> None:
    bad = tmp_path / "news.yaml"
    bad.write_text("- {id: n-1, kind: news, story: s, at: 1, title: t, text: x}\n", encoding="utf-8")
    with pytest.raises(ConfigError) as err:
        load_corpus(tmp_path)
    assert str(bad) in str(err.value) and err.value.field == "posts[0]" and "channel" in str(err.value)
    bad.write_text("- {id: w-1, kind: social, story: s, at: 1, text: x, repost_of: w-2}\n"
                   "- {id: w-2, kind: social, story: s, at: 2, text: y}\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="earlier social post") as err:
        load_corpus(tmp_path)
    assert err.value.field == "posts[0].repost_of"
    (tmp_path / "more.yaml").write_text("- {id: w-2, kind: social, story: s, at: 3, text: z}\n", encoding="utf-8")
    bad.write_text("- {id: w-2, kind: social, story: s, at: 2, text: y}\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="duplicate post id"):
        load_corpus(tmp_path)


# ---- the clock ------------------------------------------------------------------------------------------------


def test_the_past_is_published_at_once_and_the_rise_over_the_first_minutes(corpus: list[DemoPost]) -> None:
    clock = DemoClock(start=10_000.0, minute_s=1.0, ramp_minutes=60)
    assert clock.time_of(-90) == 10_000 - 90 * 60 and clock.time_of(120) == 10_120
    rising = story(corpus, RISING_STORY)
    counts = [len(visible(rising, clock, 10_000 + s)) for s in (0, 100, 200, 300)]
    assert counts[0] == len([p for p in rising if p.at <= 0])
    assert counts[0] < counts[1] < counts[2] < counts[3] == len(rising)  # the story grows over five minutes
    shown = visible(corpus, clock, 10_100)
    assert [p.at for p in shown] == sorted((p.at for p in shown), reverse=True)

    big = next(p for p in corpus if p.id == "w-lib-bigv1")
    at = clock.time_of(big.at)
    grown = [engagement(big, clock, at + s)[2] for s in (-1, 0, 16, 31, 46, 61)]
    assert grown[0] == 0 and grown[1:] == sorted(grown[1:]) and grown[-1] == big.likes and grown[1] < big.likes / 2
    fast = DemoClock(start=10_000.0, minute_s=0.01)
    assert len(visible(corpus, fast, 10_003)) == len(corpus)  # a compressed clock for tests


# ---- the site -------------------------------------------------------------------------------------------------


@pytest.fixture()
def site(corpus: list[DemoPost]) -> DemoSite:
    return DemoSite(corpus, DemoClock(start=50_000.0, minute_s=1.0, ramp_minutes=60), ZONE)


def get(site: DemoSite, target: str, now: float) -> tuple[int, str]:
    page = site.respond(target, now, BASE)
    return page.status, page.body.decode()


def test_news_feed_and_column_grow_with_the_clock(site: DemoSite) -> None:
    start = site.clock.start
    _, feed = get(site, "/news/feed.xml", start)
    assert "n-lib-01" not in feed and "n-road-01" in feed  # the past is there, the media report not yet
    assert get(site, "/news/a/n-lib-01.html", start)[0] == 404
    _, feed = get(site, "/news/feed.xml", start + 75)
    assert feed.index("n-lib-01") < feed.index("n-road-01")  # newest first
    status, page = get(site, "/news/a/n-lib-01.html", start + 75)
    assert status == 200 and "市图书馆突然闭馆 大批读者扑空" in page and "青川晚报" in page
    _, column = get(site, "/news/culture/list_1.html", start + 120)
    assert column.count("<li>") == 10 and "/news/culture/list_2.html" in column and "n-lib-02" in column
    assert get(site, "/news/culture/list_9.html", start)[0] == 404
    assert get(site, "/news/a/w-lib-01.html", start)[0] == 404  # one kind's route does not serve another's


def test_board_shows_the_reply_once_it_is_published(site: DemoSite) -> None:
    start = site.clock.start
    _, before = get(site, "/board/msg/m-lib-01.html", start + 100)
    assert "正在办理中" in before and "reply-content" not in before
    _, after = get(site, "/board/msg/m-lib-01.html", start + 280)
    assert "reply-content" in after and "青川市文化广电旅游局" in after
    _, listing = get(site, "/board/list_1.html", start + 280)
    assert listing.count("class=\"title\"") == 20 and "已答复" in listing and "/board/list_2.html" in listing


def test_weibo_json_pages_engagement_and_reposts(site: DemoSite) -> None:
    start = site.clock.start
    doc = json.loads(get(site, "/api/weibo?page=1", start + 170)[1])
    cards = [c["mblog"] for c in doc["data"]["cards"]]
    assert len(cards) == 20
    assert datetime.strptime(cards[0]["created_at"], "%a %b %d %H:%M:%S %z %Y") == site.when(
        max(p.at for p in visible(site.posts, site.clock, start + 170)))
    repost = next(m for m in cards if m["id"] == "w-lib-bigv2")
    assert repost["retweeted_status"]["id"] == "w-lib-bigv1" and repost["reposts_count"] > 0
    assert "#" in repost["retweeted_status"]["text"]
    last = json.loads(get(site, "/api/weibo?page=99", start)[1])
    assert last["ok"] == 0 and last["data"]["cards"] == []


def test_search_finds_threads_by_keyword_page_by_page(site: DemoSite, corpus: list[DemoPost]) -> None:
    now = site.clock.start + 300
    expected = [p.id for p in visible(corpus, site.clock, now) if p.kind == "search" and "图书馆" in p.title + p.text]
    found: list[str] = []
    for page in range(1, 10):
        _, html = get(site, f"/search?q=%E5%9B%BE%E4%B9%A6%E9%A6%86&page={page}", now)
        ids = re.findall(r"/bbs/thread/([a-z0-9-]+)\.html", html)
        if not ids:
            assert "没有找到" in html
            break
        assert len(ids) <= 10
        found += ids
    assert found == expected and len(found) > 10


def test_own_channels_publish_the_explanation_after_the_complaints(site: DemoSite) -> None:
    start = site.clock.start
    assert "g-lib-01" not in get(site, "/gov/tzgg/list_1.html", start + 200)[1]
    assert "g-lib-01" in get(site, "/gov/tzgg/list_1.html", start + 241)[1]
    _, feed = get(site, "/wechat/feed.xml", start + 246)
    assert "/wechat/s/c-lib-01.html" in feed
    _, page = get(site, "/wechat/s/c-lib-01.html", start + 246)
    assert "js_content" in page and "var ct" in page


@pytest.fixture()
def http_site(site: DemoSite) -> Iterator[str]:
    server = make_server(site, "127.0.0.1", 0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_pages_carry_validators_and_answer_304(http_site: str) -> None:
    with urllib.request.urlopen(f"{http_site}/board/msg/m-net-01.html", timeout=5) as resp:
        etag, modified = resp.headers["ETag"], resp.headers["Last-Modified"]
        assert resp.status == 200 and etag and modified
    for header, value in (("If-None-Match", etag), ("If-Modified-Since", modified)):
        request = urllib.request.Request(f"{http_site}/board/msg/m-net-01.html", headers={header: value})
        with pytest.raises(HTTPError) as err:
            urllib.request.urlopen(request, timeout=5)
        assert err.value.code == 304
    request = urllib.request.Request(f"{http_site}/board/msg/m-net-01.html", headers={"If-None-Match": '"other"'})
    with urllib.request.urlopen(request, timeout=5) as resp:
        assert resp.status == 200


# ---- the shared data ------------------------------------------------------------------------------------------


def test_shared_pages_and_board_messages_join_without_held_out_messages(shared_data: Path,
                                                                         corpus: list[DemoPost]) -> None:
    shared = load_shared(shared_data, 120)
    assert shared is not None and len(shared.pages) >= 50 and len(shared.messages) == 120
    held = holdout_ids(shared_data / "gov_messages" / "holdout_ids.csv")
    assert len(held) > 300 and not {m.id.removeprefix("s") for m in shared.messages} & held
    assert all(-3 * 24 * 60 <= m.at <= -60 for m in shared.messages)
    assert all(m.reply is None or m.reply.at >= m.at for m in shared.messages)
    assert sum(m.reply is not None for m in shared.messages) >= 100
    site = DemoSite(corpus, DemoClock(start=time.time()), ZONE, shared)
    now = time.time()
    _, feed = get(site, "/news/feed.xml", now)
    page = shared.pages[-1]
    assert f"/shared/gne/{page.path}" in feed
    assert site.respond(f"/shared/gne/{page.path}", now, BASE).body == (shared.gne_dir / page.path).read_bytes()
    _, board = get(site, f"/board/msg/{shared.messages[0].id}.html", now)
    assert shared.messages[0].title in board
    assert load_shared(shared_data.parent / "nowhere", 10) is None


# ---- a real crawl of every demo source ------------------------------------------------------------------------


def demo_sources(port: int) -> str:
    """The shipped demo source entries, pointed at a demo site on ``port``."""
    data = yaml.safe_load(SHIPPED.read_text(encoding="utf-8"))
    demo = [s for s in data["sources"] if s["name"].startswith("demo-")]
    assert {s["name"] for s in demo} == set(SOURCE_KINDS)
    return yaml.safe_dump({"sources": demo}, allow_unicode=True).replace(":8601/", f":{port}/")


@pytest.fixture()
def demo_site(tmp_path: Path) -> Iterator[int]:
    """`python -m yuqing.demo` on a free port, its clock compressed (the story's 300 minutes in 0.6 s), without
    the shared data (as in a plain clone)."""
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "YUQING_DEMO__PORT": "0",
           "YUQING_DEMO__MINUTE_S": "0.002", "YUQING_DEMO__RAMP_MINUTES": "0",
           "YUQING_PATHS__SHARED_DATA": str(tmp_path / "no-shared-data")}
    proc = subprocess.Popen([sys.executable, "-m", "yuqing.demo"], cwd=PROJECT_ROOT, env=env,
                            stdout=subprocess.PIPE, text=True)
    try:
        yield _read_port(proc)
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def fetch(url: str) -> str:
    with urllib.request.urlopen(url, timeout=5) as resp:
        return str(resp.read().decode())


def test_crawl_every_demo_source_into_elasticsearch(
    settings: Settings, es_client: Elasticsearch, config_dir: Path, demo_site: int, corpus: list[DemoPost]
) -> None:
    base = f"http://127.0.0.1:{demo_site}"
    deadline = time.monotonic() + 30
    while "c-lib-01" not in fetch(f"{base}/wechat/feed.xml"):  # the story's end is out
        assert time.monotonic() < deadline, "the demo clock did not reach the story's end"
        time.sleep(0.1)
    (config_dir / "sources.yaml").write_text(demo_sources(demo_site), encoding="utf-8")
    env = crawl_env(settings, config_dir, YUQING_NLP__ENABLED="false")

    report = crawl_in_subprocess(None, [], timeout_s=300, env=env)

    runs = {r.source: r for r in report.sources}
    assert set(runs) == set(SOURCE_KINDS)
    for run in runs.values():
        assert run.errors == 0 and run.indexed > 0, run
    alias = POSTS.alias(settings.elasticsearch.index_prefix)
    es_client.indices.refresh(index=alias)
    hits = es_client.search(index=alias, size=1000, query={"match_all": {}})["hits"]["hits"]
    posts = {p.url.rsplit("/", 1)[-1].removesuffix(".html"): p for p in (post_from_source(h["_source"]) for h in hits)}
    by_id = {p.id: p for p in corpus}
    assert len(hits) == len(corpus) and set(posts) == set(by_id)  # every post once, nothing else
    for ident, post in posts.items():
        demo = by_id[ident]
        assert SOURCE_KINDS[post.source] == demo.kind and post.kind == POST_KIND[demo.kind], ident
        assert post.content.replace("\n", "") == demo.text.replace("\n", ""), ident
        assert post.published_at is not None and post.published_at.tzinfo is not None
        if demo.kind != "social":
            assert post.title == demo.title, ident
    # The board's official replies, with their unit; Weibo engagement and repost chains.
    for demo in (p for p in corpus if p.kind == "message"):
        reply = posts[demo.id].reply
        assert (reply is None) == (demo.reply is None), demo.id
        if reply is not None and demo.reply is not None:
            assert reply.unit == demo.reply.unit and reply.replied_at is not None
    big = posts["w-lib-bigv2"]
    assert (big.engagement.reposts, big.engagement.likes) == (3850, 9870)
    assert big.repost_of is not None and big.repost_of.endswith("/weibo/detail/w-lib-bigv1")
    # The rising story in full, published in its order; the bureau's explanation on its own channels.
    rising = [posts[p.id] for p in story(corpus, RISING_STORY)]  # the corpus is in time order
    times = [p.published_at for p in rising if p.published_at is not None]
    assert len(times) == len(rising) and all(b >= a - timedelta(minutes=1) for a, b in pairwise(times))
    assert times[-1] - times[0] > timedelta(hours=5)  # the past hours, then the rise
    own = {s.name for s in load_sources(config_dir / "sources.yaml").sources if s.own}
    assert own == {"demo-bureau-site", "demo-bureau-wechat"}
    assert {posts[p.id].source for p in corpus if p.kind in ("notice", "wechat")} == own
    assert {posts["g-lib-01"].source, posts["c-lib-01"].source} == own

    # Crawled again, nothing is indexed again: the board's message pages answer 304 Not Modified (its list pages
    # are always read in full); the unchanged 公众号 feed itself answers 304.
    again = crawl_in_subprocess(None, ["demo-board", "demo-bureau-wechat"], timeout_s=300, env=env)
    assert [(r.found, r.indexed, r.errors, r.unchanged) for r in again.sources] == [
        (runs["demo-board"].found, 0, 0, runs["demo-board"].found), (0, 0, 0, 1)]


def test_up_registers_demo_foia_requests_once(settings: Settings, es_client: Elasticsearch) -> None:
    from index.foia import FOIA
    from response.calendar import WorkCalendar
    from response.config import ResponseConfig
    from response.foia import foia_clock, reminders
    from response.service import FoiaService, ensure_indices
    from yuqing.demo.requests import DEMO_REQUESTS, seed_demo_requests

    ensure_indices(es_client, settings.elasticsearch)
    prefix = settings.elasticsearch.index_prefix
    now = datetime(2026, 12, 1, 10, 0, tzinfo=ZoneInfo("Asia/Shanghai"))  # a Tuesday
    assert seed_demo_requests(es_client, prefix, now) == len(DEMO_REQUESTS)
    assert seed_demo_requests(es_client, prefix, now) == 0  # a second `up`: nothing added
    es_client.indices.refresh(index=FOIA.alias(prefix))
    total, requests = FoiaService(es_client, prefix).list()
    assert total == len(DEMO_REQUESTS)
    cal, cfg = WorkCalendar.official(), ResponseConfig().foia
    clocks = {r.applicant: foia_clock(r, now.date(), cal, cfg) for r in requests}
    assert clocks["陈立"].state == "征求意见中"  # the page shows a consultation pausing the clock
    assert clocks["吴敏"].remaining == cfg.answer_working_days  # received today
    near = [m.kind for r in requests for m in reminders(r, now.date(), cal, cfg)]
    assert near == ["答复期限临近"]  # 林晓's, 3 working days left: the page's reminder has something to say



def test_up_opens_the_demo_ticket_with_leaders_instructions_once_its_event_exists(
        settings: Settings, es_client: Elasticsearch, caplog: pytest.LogCaptureFixture) -> None:
    """`up` polls until the 魁星阁 story's first board message is in an event, then opens the 处置单 with its 领导批示
    on that event (once); without an event by the deadline it says so and stops looking."""
    from index.events import set_post_events
    from index.layout import POSTS, setup
    from index.writer import index_posts
    from response.config import ResponseConfig
    from response.service import TicketService, ensure_indices
    from response.tickets import TicketError, change_status
    from yuqing.demo.tickets import RELIC_FOUNDER, DemoTicketSeeder, relic_post_id
    from yuqing.models import Post

    setup(es_client, settings.elasticsearch, [POSTS])
    ensure_indices(es_client, settings.elasticsearch)
    prefix = settings.elasticsearch.index_prefix
    start = datetime(2026, 12, 1, 10, 0, tzinfo=ZONE)
    url = "http://127.0.0.1:8601/"
    tickets = TicketService(es_client, prefix)
    seeder = DemoTicketSeeder(es_client, prefix, url, ResponseConfig(), start)
    assert seeder.poll(start) is False  # not crawled yet
    founder = Post(url=f"{url}board/msg/{RELIC_FOUNDER}.html", title="魁星阁修缮“修旧如新”，请求公开修缮方案",
                   content="临溪区魁星阁是市级文物保护单位……", source="demo-board", kind="message",
                   published_at=start - timedelta(days=2), fetched_at=start, title_seg="魁星阁 修缮",
                   content_seg="魁星阁 文物")
    assert founder.doc_id == relic_post_id(url)
    index_posts(es_client, POSTS.alias(prefix), [founder], refresh=True)
    assert seeder.poll(start + timedelta(seconds=5)) is False  # crawled, not clustered yet
    set_post_events(es_client, POSTS.alias(prefix), {founder.doc_id: "ev-relic"}, refresh=True)
    assert seeder.poll(start + timedelta(seconds=6)) is False  # looks only every 5 s
    assert tickets.list()[0] == 0
    assert seeder.poll(start + timedelta(seconds=10)) is True
    (ticket,) = tickets.list()[1]
    assert (ticket.subject.kind, ticket.subject.id, ticket.status) == ("event", "ev-relic", "已回应")
    assert [(i.leader, i.state(start)) for i in ticket.instructions] == [("周副局长", "已反馈"), ("李局长", "待反馈")]
    assert all(e.at <= start for e in ticket.audit) and ticket.subject.started_at is not None
    assert ticket.subject.started_at < start - timedelta(days=2)  # the story's first message, two days before
    assert ticket.instructions[1].due_at is not None and ticket.instructions[1].due_at > start
    with pytest.raises(TicketError, match="尚未反馈落实情况（#2 李局长）"):
        change_status(ticket, "已办结", by="张三", now=start)  # the page has a loop left to close
    assert tickets.list(instructions_pending=True)[0] == 1
    # a second `up` that kept the replay finds the ticket there and adds nothing
    again = DemoTicketSeeder(es_client, prefix, url, ResponseConfig(), start + timedelta(hours=1))
    assert again.poll(start + timedelta(hours=1)) is True and tickets.list()[1] == [ticket]
    # no event by the deadline: said once, and no more looking
    lost = DemoTicketSeeder(es_client, prefix, "http://127.0.0.1:9999/", ResponseConfig(), start,
                            patience=timedelta(minutes=1))
    with caplog.at_level("WARNING", logger="yuqing.demo.tickets"):
        assert lost.poll(start) is False and lost.poll(start + timedelta(minutes=1)) is True
    assert [r.getMessage() for r in caplog.records if "魁星阁" in r.getMessage()] == [
        "demo: the 魁星阁 posts were not in an event after 0:01:00; its 处置单 with 领导批示 was not opened "
        "(is the events job running?)"]


@pytest.mark.parametrize("clock", ["00:10", "10:00", "23:59"])
def test_the_demo_tickets_steps_fall_in_office_hours_before_the_start_whenever_it_starts(clock: str) -> None:
    from response.config import ResponseConfig
    from yuqing.demo.tickets import relic_ticket

    hour, minute = map(int, clock.split(":"))
    start = datetime(2026, 12, 1, hour, minute, tzinfo=ZONE)
    ticket = relic_ticket("ev-relic", start, ResponseConfig())
    assert all(e.at <= start for e in ticket.audit)
    office = [e for e in ticket.audit[1:] if e.by != "系统"]  # after the opening: the people's steps
    assert all(9 <= e.at.astimezone(ZONE).hour < 18 for e in office), [e.at for e in office]
    # 专报 → 批示: the 舆情专报 was submitted before the first instruction
    assert [e.action for e in office][:2] == ["呈报专报", "记录批示"]
    assert [(i.leader, i.state(start)) for i in ticket.instructions] == [("周副局长", "已反馈"), ("李局长", "待反馈")]
    # 专报 → 批示: the 舆情专报 was submitted before the first instruction
    assert [e.action for e in office][:2] == ["呈报专报", "记录批示"]
    assert ticket.status == "已回应" and ticket.deadlines[0].met_by(ticket.responses[0])  # answered in time
