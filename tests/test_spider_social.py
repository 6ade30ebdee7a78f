"""`social` sources: a real Scrapy crawl of a generated Weibo-style JSON endpoint whose posts are REAL Weibo
texts (SMP2020-EWECT), with reposts embedding their originals, paged until an empty page; indexed in the real
Elasticsearch and compared with the generated posts."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from html import escape
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from elasticsearch import Elasticsearch

from crawlers.extract import load_extraction_rules
from crawlers.runner import crawl_in_subprocess
from crawlers.spiders.social import items_at, markup_to_text, parse_count, with_query
from tests.conftest import MockServer, crawl_env
from tests.test_spider_listing import all_posts, write_sources
from yuqing.errors import ConfigError
from yuqing.jsonpath import get_all, get_one, parse_path
from yuqing.settings import PROJECT_ROOT, Settings
from yuqing.sources import load_sources

ZONE = ZoneInfo("Asia/Shanghai")
DETAIL = "https://m.weibo.cn/detail/{id}"
EMOJI = '<span class="url-icon"><img alt="{0}" src="//h5.sinaimg.cn/m/emoticon/{1}.png" style="width:1em;" /></span>'


@dataclass
class Weibo:
    id: str
    text: str  # the real text, as the user wrote it
    user: str
    time: datetime
    reposts: int
    comments: int
    likes: int
    original: Weibo | None = None

    @property
    def url(self) -> str:
        return DETAIL.format(id=self.id)


def as_weibo_html(text: str) -> str:
    """The text as Weibo's API serves it: emoji as images with alt text, @mentions as links."""
    html = re.sub(r"\[([^\[\]]{1,8})\]", lambda m: EMOJI.format(m.group(0), len(m.group(1))), escape(text))
    return re.sub(r"@([\w\-]+)", r"<a href='/n/\1'>@\1</a>", html)


def mblog(w: Weibo, n: int) -> dict[str, Any]:
    """Weibo's JSON for one post; times alternate between its created_at notation and a unix timestamp."""
    created: Any = w.time.strftime("%a %b %d %H:%M:%S %z %Y") if n % 2 else int(w.time.timestamp())
    likes: Any = f"{w.likes // 10000}万+" if w.likes >= 10000 else w.likes
    out: dict[str, Any] = {
        "id": w.id, "text": as_weibo_html(w.text), "created_at": created,
        "user": {"id": 1000 + n, "screen_name": w.user},
        "reposts_count": w.reposts, "comments_count": str(w.comments), "attitudes_count": likes,
    }
    if w.original is not None:
        out["retweeted_status"] = mblog(w.original, n + 1)
    return out


def make_weibos(shared_data: Path) -> tuple[list[Weibo], list[Weibo]]:
    """(the timeline's posts, the originals they repost) from real texts: reposts are the texts that carry
    a "//@someone:" repost chain."""
    rows = json.loads((shared_data / "sentiment" / "weibo_smp2020" / "virus_train.txt").read_text("utf-8"))
    rows = [r for r in rows if 10 <= len(r["content"]) <= 200]
    plain = [r for r in rows if "//@" not in r["content"]]
    chains = [r for r in rows if "//@" in r["content"] and "[" in r["content"]]
    base = datetime(2020, 2, 1, 9, 0, tzinfo=ZONE)

    def weibo(row: dict[str, Any], i: int, original: Weibo | None = None) -> Weibo:
        return Weibo(id=str(4400000000000000 + int(row["id"])), text=row["content"].strip(), user=f"网友{row['id']}",
                     time=base + timedelta(minutes=37 * i), reposts=i * 3, comments=i, likes=i * 7 if i != 5 else 23000,
                     original=original)

    originals = [weibo(r, 20 + i) for i, r in enumerate(plain[100:103])]
    timeline = [weibo(r, i) for i, r in enumerate(plain[:3])]
    timeline += [weibo(r, 3 + i, originals[i % 3]) for i, r in enumerate(chains[:5])]  # original 0 twice
    return timeline, originals


def write_pages(server: MockServer, pages: list[list[dict[str, Any]] | None]) -> None:
    """Weibo's pages of cards; None: what Weibo answers past the last page."""
    for n, cards in enumerate(pages, start=1):
        doc = ({"ok": 0, "msg": "这里还没有内容", "data": []} if cards is None
               else {"ok": 1, "data": {"cardlistInfo": {"page": n}, "cards": cards}})
        server.write(f"weibo/api/{n}.json", json.dumps(doc, ensure_ascii=False))


PATHS = {
    "items": "data.cards.*.mblog", "id": "id", "url_template": DETAIL, "text": "text",
    "author": "user.screen_name", "published_at": "created_at", "reposts": "reposts_count",
    "comments": "comments_count", "likes": "attitudes_count", "repost_of": "retweeted_status",
}


def squash(text: str) -> str:
    return "".join(text.split())


def test_social_crawl_indexes_posts_engagement_and_repost_chain(
    settings: Settings, es_client: Elasticsearch, mockserver: MockServer, config_dir: Path, shared_data: Path
) -> None:
    timeline, originals = make_weibos(shared_data)
    cards = [{"card_type": 9, "mblog": mblog(w, i)} for i, w in enumerate(timeline)]
    banner = {"card_type": 11, "card_group": [{"card_type": 4, "desc": "热门"}]}  # not a post: no mblog
    late = Weibo(id="1", text="第四页不应被读取", user="x", time=timeline[0].time, reposts=0, comments=0, likes=0)
    write_pages(mockserver, [[banner, *cards[:4]], cards[4:], None, [{"card_type": 9, "mblog": mblog(late, 0)}]])
    not_json = mockserver.write("weibo/broken.json", "<html><body>系统繁忙</body></html>")
    no_items = mockserver.write("weibo/error.json", '{"ok": 0, "msg": "请求过于频繁"}')
    write_sources(config_dir, [
        {"name": "weibo", "kind": "social", "site": "新浪微博",
         "start_urls": [f"{mockserver.url}/weibo/api/{{page}}.json"], "json_paths": PATHS, "max_pages": 10},
        {"name": "weibo-broken", "kind": "social", "start_urls": [not_json, no_items], "json_paths": PATHS},
    ])
    env = crawl_env(settings, config_dir, YUQING_NLP__ENABLED="false", YUQING_CRAWL__RETRY_TIMES="0")

    report = crawl_in_subprocess(None, [], timeout_s=240, env=env)

    runs = {r.source: r for r in report.sources}
    expected = {w.url: w for w in [*timeline, *originals]}
    assert (runs["weibo"].found, runs["weibo"].indexed, runs["weibo"].errors) == (len(expected), len(expected), 0)
    assert (runs["weibo-broken"].indexed, runs["weibo-broken"].errors) == (0, 2)
    posts = {p.url: p for p in all_posts(es_client, settings)}
    assert sorted(posts) == sorted(expected)  # each original once although reposted; page 4 never read
    for url, w in expected.items():
        post = posts[url]
        assert post.kind == "social" and post.source == "weibo" and post.site == "新浪微博"
        assert squash(post.content) == squash(w.text), url  # the real text, markup removed
        assert post.author == w.user and post.published_at == w.time
        likes = (w.likes // 10000) * 10000 if w.likes >= 10000 else w.likes
        assert (post.engagement.reposts, post.engagement.comments, post.engagement.likes) == (
            w.reposts, w.comments, likes)
        assert post.repost_of == (w.original.url if w.original else None)
    assert sum(p.repost_of == originals[0].url for p in posts.values()) == 2


def test_json_paths() -> None:
    doc = {"data": {"cards": [{"mblog": {"id": 1, "user": {"n": "a"}}}, {"x": 1}, {"mblog": {"id": 2}}]}}
    assert [m["id"] for m in get_all(doc, "data.cards.*.mblog")] == [1, 2]
    assert get_one(doc, "$.data.cards[0].mblog.user.n") == get_one(doc, "data.cards.0.mblog.user.n") == "a"
    assert get_one(doc, "data.cards.-1.mblog.id") == 2
    assert get_one(doc, "data.cards.9.mblog") is None and get_one(doc, "data.nothing.deeper") is None
    assert get_one(doc, "data.cards.0.mblog.id.deeper") is None  # a scalar where an object was expected
    assert get_all([1, None, 2], "") == [[1, None, 2]]
    # Items: a list that is there but empty is a page without items; a missing one is no answer at all.
    assert items_at({"data": {"cards": []}}, "data.cards.*.mblog") == []
    assert items_at({"data": {"cards": [{"card_type": 11}]}}, "data.cards.*.mblog") == []
    assert items_at({"ok": 0, "data": []}, "data.cards.*.mblog") is None
    assert items_at(doc, "data.cards") == doc["data"]["cards"] and items_at([{"a": 1}], "") == [{"a": 1}]
    for bad in ("a..b", "a[x]", "a[1"):
        with pytest.raises(ValueError, match="malformed"):
            parse_path(bad)


def test_json_paths_are_checked_when_the_sources_file_is_read(tmp_path: Path) -> None:
    for paths, problem in [({**PATHS, "items": "data..cards"}, "malformed"), ({"text": "t"}, "url_template")]:
        write_sources(tmp_path, [{"name": "w", "kind": "social", "start_urls": ["http://x/api"], "json_paths": paths}])
        with pytest.raises(ConfigError, match=problem):
            load_sources(tmp_path / "sources.yaml")
    write_sources(tmp_path, [{"name": "w", "kind": "social", "start_urls": ["http://x/api"]}])
    with pytest.raises(ConfigError, match="json_paths"):
        load_sources(tmp_path / "sources.yaml")


def test_counts_and_markup() -> None:
    assert [parse_count(v) for v in (12, "1,234", "1.2万", "100万+", "3亿", "转发", None, -4, True)] == [
        12, 1234, 12000, 1000000, 300000000, 0, 0, 0, 0]
    text = "致敬[心]//@Mr_凡先生:大家出门记得戴口罩"
    blocks = frozenset(load_extraction_rules(PROJECT_ROOT / "config" / "extraction.yaml").content.block_tags)
    assert markup_to_text(as_weibo_html(text), blocks) == text
    assert markup_to_text("第一行<br />第二行", blocks) == "第一行\n第二行"


def test_cursor_paging_sets_the_query_parameter() -> None:
    url = "https://m.weibo.cn/api/container/getIndex?containerid=1076&since_id=1"
    assert with_query(url, "since_id", "4400") == "https://m.weibo.cn/api/container/getIndex?containerid=1076&since_id=4400"
    assert with_query("http://x/api", "cursor", "a b") == "http://x/api?cursor=a+b"
