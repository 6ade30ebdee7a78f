"""`search` sources: real Scrapy crawls of generated keyword search endpoints. The keywords come from the alert
rules in config (by default) or the source; HTML result pages lead to saved real articles, JSON results carry
REAL news headlines (CLUE TNEWS) that contain the keyword; indexed in the real Elasticsearch."""

from __future__ import annotations

import json
from datetime import datetime
from html import escape
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from elasticsearch import Elasticsearch

from alerts.rules import load_rules
from crawlers.runner import crawl_in_subprocess
from tests.conftest import MockServer, crawl_env
from tests.test_spider_listing import ARTICLES, all_posts, html_page, page_titles, write_sources
from yuqing.errors import ConfigError
from yuqing.settings import Settings
from yuqing.sources import load_sources

ZONE = ZoneInfo("Asia/Shanghai")


def results_page(links: list[str]) -> str:
    if not links:
        return html_page("<div class='empty'>抱歉，没有找到相关结果</div>", title="搜索")
    rows = "".join(f"<div class='result'><h3><a href='{escape(h)}'>结果{i}</a></h3><p>摘要</p></div>"
                   for i, h in enumerate(links))
    return html_page(f"<div class='head'><a href='/pages/{ARTICLES[7]}'>推荐</a></div>{rows}", title="搜索")


def write_result(server: MockServer, keyword: str, page: int, body: str) -> None:
    server.write(f"search/{keyword}/{page}.html", body)


def test_search_uses_alert_keywords_and_pages_until_empty(
    settings: Settings, es_client: Elasticsearch, mockserver: MockServer, config_dir: Path, shared_data: Path
) -> None:
    keywords = list(dict.fromkeys(w for rule in load_rules(config_dir / "alerts.yaml") for w in rule.any_of))
    assert len(keywords) >= 3
    first, second, third = keywords[:3]
    # first: two result pages, then an empty one; page 4 must never be read.
    write_result(mockserver, first, 1, results_page([f"/pages/{ARTICLES[0]}", f"/pages/{ARTICLES[1]}"]))
    write_result(mockserver, first, 2, results_page([f"/pages/{ARTICLES[2]}"]))
    write_result(mockserver, first, 3, results_page([]))
    write_result(mockserver, first, 4, results_page([f"/pages/{ARTICLES[6]}"]))
    # second: one new result and one the first keyword found too (fetched once).
    write_result(mockserver, second, 1, results_page([f"/pages/{ARTICLES[3]}", f"/pages/{ARTICLES[0]}"]))
    write_result(mockserver, second, 2, results_page([]))
    # third: the search answers with something that is not a result page: counted, the crawl goes on.
    write_result(mockserver, third, 1, '{"error": "rate limited"}')
    for other in keywords[3:]:
        write_result(mockserver, other, 1, results_page([]))
    write_sources(config_dir, [{
        "name": "site-search", "kind": "search", "site": "站内搜索",
        "start_urls": [f"{mockserver.url}/search/{{keyword}}/{{page}}.html"],
        "selectors": {"item_links": "div.result h3 a"}, "max_pages": 10,
    }])
    env = crawl_env(settings, config_dir, YUQING_NLP__ENABLED="false", YUQING_CRAWL__RETRY_TIMES="0")

    report = crawl_in_subprocess(None, [], timeout_s=240, env=env)

    run = report.sources[0]
    found = ARTICLES[:4]
    assert (run.found, run.indexed, run.errors) == (len(found), len(found), 1)
    titles = page_titles(shared_data)
    posts = {p.url.split("/pages/", 1)[-1]: p for p in all_posts(es_client, settings)}
    assert sorted(posts) == sorted(found)
    for rel, post in posts.items():
        assert post.kind == "search" and post.source == "site-search" and post.site == "站内搜索"
        assert post.title and post.title in titles[rel]
        assert len(post.content) > 100


def tnews_headlines(shared_data: Path, keyword: str, n: int) -> list[dict[str, Any]]:
    rows = [json.loads(line) for line in (shared_data / "topics" / "tnews" / "dev.json").open(encoding="utf-8")]
    return [r for r in rows if keyword in r["sentence"]][:n]


def test_search_json_results_from_source_keywords(
    settings: Settings, es_client: Elasticsearch, mockserver: MockServer, config_dir: Path, shared_data: Path
) -> None:
    keywords = ["博物馆", "图书馆"]
    expected: dict[str, tuple[dict[str, Any], datetime]] = {}
    for k, keyword in enumerate(keywords):
        rows = tnews_headlines(shared_data, keyword, 4)
        assert rows, keyword
        pages = [rows[:2], rows[2:], []]  # zero-based pages 0, 1, then an empty one
        for page, chunk in enumerate(pages):
            items = []
            for i, row in enumerate(chunk):
                link = f"/news/{k}-{page}-{i}.html"
                expected[f"{mockserver.url}{link}"] = (row, datetime(2020, 8, page + 1, 10 + i, 30, tzinfo=ZONE))
                items.append({"link": link, "title": row["sentence"], "summary": row["keywords"] or row["sentence"],
                              "source": row["label_desc"], "pubtime": f"2020-08-0{page + 1} 1{i}:30"})
            mockserver.write(f"api/{keyword}/{page}.json", json.dumps({"data": {"list": items}}))
    # follow: the JSON only points at the article page (a saved real one), which is fetched and extracted.
    mockserver.write("follow/0.json", json.dumps({"data": {"list": [{"link": f"/noetag/{ARTICLES[4]}"}]}}))
    mockserver.write("follow/1.json", json.dumps({"data": {"list": []}}))
    paths = {"items": "data.list", "url": "link", "title": "title", "text": "summary", "author": "source",
             "published_at": "pubtime"}
    write_sources(config_dir, [
        {"name": "news-api", "kind": "search", "keywords": keywords, "first_page": 0,
         "start_urls": [f"{mockserver.url}/api/{{keyword}}/{{page}}.json"],
         "search": {"results": "json", "follow": False}, "json_paths": paths},
        {"name": "follow-api", "kind": "search", "keywords": ["任意"], "first_page": 0,
         "start_urls": [f"{mockserver.url}/follow/{{page}}.json?q={{keyword}}"],
         "search": {"results": "json", "post_kind": "article"}, "json_paths": {"items": "data.list", "url": "link"}},
    ])
    env = crawl_env(settings, config_dir, YUQING_NLP__ENABLED="false", YUQING_CRAWL__RETRY_TIMES="0")

    report = crawl_in_subprocess(None, [], timeout_s=240, env=env)

    runs = {r.source: r for r in report.sources}
    news = runs["news-api"]
    assert (news.found, news.indexed, news.errors) == (len(expected), len(expected), 0)
    assert (runs["follow-api"].indexed, runs["follow-api"].errors) == (1, 0)
    posts = {p.url: p for p in all_posts(es_client, settings)}
    followed = posts.pop(f"{mockserver.url}/noetag/{ARTICLES[4]}")
    assert followed.kind == "article" and followed.title in page_titles(shared_data)[ARTICLES[4]]
    assert sorted(posts) == sorted(expected)
    for url, (row, when) in expected.items():
        post = posts[url]
        assert post.kind == "search" and post.title == row["sentence"] and post.author == row["label_desc"]
        assert post.content == (row["keywords"] or row["sentence"])
        assert post.published_at == when


def test_search_sources_are_checked(tmp_path: Path) -> None:
    base = {"name": "s", "kind": "search", "selectors": {"item_links": "a"}}
    cases: list[tuple[dict[str, Any], str]] = [
        ({"start_urls": ["http://x/s?page={page}"]}, "keyword"),
        ({"start_urls": ["http://x/s?q={keyword}"], "search": {"results": "json"}}, "json_paths"),
        ({"start_urls": ["http://x/s?q={keyword}"], "search": {"keyword_encoding": "klingon"}}, "encoding"),
        ({"start_urls": ["http://x/s?q={keyword}"], "keywords": ["", "x"]}, "empty"),
    ]
    for extra, problem in cases:
        write_sources(tmp_path, [{**base, **extra}])
        with pytest.raises(ConfigError, match=problem):
            load_sources(tmp_path / "sources.yaml")
