"""`list` sources: item links and paging by selectors on real and generated list pages; a real Scrapy crawl of
list pages linking to saved real articles, indexed in the real Elasticsearch."""

from __future__ import annotations

import csv
from html import escape
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

import pytest
import yaml
from elasticsearch import Elasticsearch
from parsel import Selector

from crawlers.encoding import decode_html
from crawlers.runner import crawl_in_subprocess
from crawlers.spiders import SPIDERS, ListSpider
from crawlers.spiders.listing import html_root, select_links
from index.layout import POSTS
from index.search import post_from_source
from tests.conftest import MockServer, crawl_env
from yuqing.errors import ConfigError
from yuqing.models import Post
from yuqing.settings import PROJECT_ROOT, Settings
from yuqing.sources import load_sources

ARTICLES = ["tests/people/1.html", "tests/sina/1.html", "tests/thepaper/2.html", "tests/ifeng/2.html",
            "tests/baijiahao/4.html", "tests/163/2.html", "tests/guancha/3.html", "tests/163/5.html"]
NOISE = "tests/huanqiu/1.html"  # linked from the page's navigation, never an item


# ---- helpers shared by the spider tests -------------------------------------------------------------------


def page_titles(shared_data: Path) -> dict[str, str]:
    """The saved pages' <title>s by path under html/gne (from the data set's index)."""
    with (shared_data / "html" / "gne" / "index.csv").open(encoding="utf-8-sig") as fh:
        return {row["file"].removeprefix("gne/"): row["title"] for row in csv.DictReader(fh)}


def write_sources(config_dir: Path, sources: list[dict[str, Any]]) -> None:
    (config_dir / "sources.yaml").write_text(
        yaml.safe_dump({"sources": sources}, allow_unicode=True, sort_keys=False), encoding="utf-8"
    )


def all_posts(es: Elasticsearch, settings: Settings) -> list[Post]:
    alias = POSTS.alias(settings.elasticsearch.index_prefix)
    es.indices.refresh(index=alias)
    resp = es.search(index=alias, size=1000, query={"match_all": {}})
    return [post_from_source(h["_source"]) for h in resp["hits"]["hits"]]


def html_page(body: str, title: str = "列表") -> str:
    return f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{escape(title)}</title></head>" \
           f"<body>{body}</body></html>"


# ---- selectors on the saved real list pages (offline) ------------------------------------------------------


def _real(shared_data: Path, rel: str) -> str:
    text, _ = decode_html((shared_data / "html" / "gne" / rel).read_bytes())
    return text


@pytest.mark.parametrize(
    ("rel", "url", "css"),
    [
        ("test_list_page/163/1.html", "https://news.163.com/", "div.news_title h3 a"),
        ("test_list_page/163/2.html", "https://news.163.com/", "div.news_title h3 a"),
        ("test_list_page/tieba/1.html", "https://tieba.baidu.com/f?kw=x", "div.threadlist_title a.j_th_tit"),
        ("test_list_page/netease_forum/1.html", "https://bbs.nie.163.com/forum-9-1.html", "th.new a.xst"),
    ],
)
def test_item_links_on_real_list_pages(shared_data: Path, rel: str, url: str, css: str) -> None:
    text = _real(shared_data, rel)
    root = html_root(text)
    assert root is not None
    links = select_links(root, css, url)
    # An independent reading of the same page (parsel, as Scrapy's own selectors): hrefs made absolute
    # against the page's <base href> (the forum page has one) or its URL.
    sel = Selector(text=text)
    base = urljoin(url, sel.css("base::attr(href)").get(url))
    expected = list(dict.fromkeys(urljoin(base, h.strip()) for h in sel.css(f"{css}::attr(href)").getall()))
    assert links == expected
    assert len(links) >= 29 and all(link.startswith(("http://", "https://")) for link in links)


def test_xpath_item_links_and_next_page_on_real_pages(shared_data: Path) -> None:
    url = "https://news.163.com/"
    root = html_root(_real(shared_data, "test_list_page/163/1.html"))
    assert root is not None
    css = select_links(root, "div.news_title h3 a", url)
    assert select_links(root, "//div[@class='news_title']/h3/a/@href", url) == css  # href strings
    assert select_links(root, "//div[@class='news_title']/h3", url) == css  # elements containing an <a href>
    assert not select_links(root, "div.no-such-class a", url)
    with pytest.raises(ValueError, match="invalid selector"):
        select_links(root, "//div[", url)

    tieba = html_root(_real(shared_data, "test_list_page/tieba/1.html"))
    assert tieba is not None
    nxt = select_links(tieba, "a.next", "https://tieba.baidu.com/f?kw=x")
    assert len(nxt) == 1 and nxt[0].startswith("https://tieba.baidu.com/f?") and nxt[0].endswith("pn=50")
    forum = html_root(_real(shared_data, "test_list_page/netease_forum/1.html"))
    assert forum is not None
    # Relative to the page's <base href="https://n.netease.com/">, not to its URL.
    assert select_links(forum, "a.nxt", "https://bbs.nie.163.com/forum-9-1.html") == [
        "https://n.netease.com/forum-9-2.html"
    ]


def test_every_shipped_example_loads_and_has_its_spider() -> None:
    shipped = load_sources(PROJECT_ROOT / "config" / "sources.yaml")
    assert {s.kind for s in shipped.sources} == {"feed", "list", "message_board", "social", "search"}
    for source in shipped.sources:
        assert source.kind in SPIDERS
        assert source.enabled == source.name.startswith("demo-")  # the examples ship disabled


def test_list_source_needs_item_links(tmp_path: Path) -> None:
    assert SPIDERS["list"] is ListSpider
    path = tmp_path / "sources.yaml"
    write_sources(tmp_path, [{"name": "l", "kind": "list", "start_urls": ["http://x/list.html"]}])
    with pytest.raises(ConfigError, match="item_links"):
        load_sources(path)
    write_sources(tmp_path, [{"name": "l", "kind": "list", "start_urls": ["http://x/list.html"],
                              "selectors": {"item_links": "a", "bogus": "b"}}])
    with pytest.raises(ConfigError, match="bogus"):
        load_sources(path)


# ---- a real crawl ----------------------------------------------------------------------------------------------


def write_list(server: MockServer, rel: str, links: list[str], next_href: str | None = None) -> str:
    items = "".join(f"<li><a class='t' href='{escape(h)}'>第{i}条</a><span>2020-08-0{i % 9 + 1}</span></li>"
                    for i, h in enumerate(links))
    nav = f"<div class='nav'><a href='/pages/{NOISE}'>环球</a><a href='/'>首页</a></div>"
    nxt = f"<div class='pager'><a class='next' href='{escape(next_href)}'>下一页</a></div>" if next_href else ""
    return server.write(rel, html_page(f"{nav}<ul class='news'>{items}</ul>{nxt}"))


def test_list_crawl_follows_items_and_pages(
    settings: Settings, es_client: Elasticsearch, mockserver: MockServer, config_dir: Path, shared_data: Path
) -> None:
    base = mockserver.url
    # news-list: three list pages linked by "下一页"; max_pages 2, so the third is never read.
    first = write_list(
        mockserver, "list/1.html",
        [f"{base}/pages/{p}" for p in ARTICLES[:3]] + ["javascript:void(0)", "#top", f"{base}/status/404"],
        next_href="2.html",
    )
    write_list(mockserver, "list/2.html", [f"/pages/{p}" for p in ARTICLES[3:6]] + [f"/pages/{ARTICLES[0]}"],
               next_href="3.html")
    write_list(mockserver, "list/3.html", [f"/pages/{p}" for p in ARTICLES[6:]])
    # paged-list: a {page} template; max_items 4 ends it on the second page.
    write_list(mockserver, "tpl/1.html", [f"/noetag/{p}" for p in ARTICLES[:3]])
    write_list(mockserver, "tpl/2.html", [f"/noetag/{p}" for p in ARTICLES[3:6]])
    write_list(mockserver, "tpl/3.html", [f"/noetag/{p}" for p in ARTICLES[6:]])
    # end-list: {page} templates ending in a 404 and in an empty page: the normal end, not an error.
    write_list(mockserver, "end/1.html", [f"/gb/{ARTICLES[0]}"])
    write_list(mockserver, "end/2.html", [f"/gb/{ARTICLES[1]}"])
    write_list(mockserver, "end2/1.html", [f"/gb/{ARTICLES[2]}"])
    write_list(mockserver, "end2/2.html", [])
    # broken-list: not HTML, HTML without item links, a server error: each counted, none fatal.
    not_html = mockserver.write("broken/list.json", '{"items": [1, 2, 3]}')
    no_items = mockserver.write("broken/empty.html", html_page("<p>栏目调整中</p>"))
    write_sources(config_dir, [
        {"name": "news-list", "kind": "list", "site": "测试新闻栏目", "start_urls": [first],
         "selectors": {"item_links": "ul.news li a", "next_page": "div.pager a.next"}, "max_pages": 2},
        {"name": "paged-list", "kind": "list", "start_urls": [f"{base}/tpl/{{page}}.html"],
         "selectors": {"item_links": "//ul[@class='news']/li/a/@href"}, "max_items": 4},
        {"name": "end-list", "kind": "list", "start_urls": [f"{base}/end/{{page}}.html", f"{base}/end2/{{page}}.html"],
         "selectors": {"item_links": "ul.news a"}},
        {"name": "broken-list", "kind": "list", "start_urls": [not_html, no_items, f"{base}/status/500"],
         "selectors": {"item_links": "ul.news a"}},
    ])
    env = crawl_env(settings, config_dir, YUQING_NLP__ENABLED="false", YUQING_CRAWL__RETRY_TIMES="0")

    report = crawl_in_subprocess(None, [], timeout_s=240, env=env)

    runs = {r.source: r for r in report.sources}
    news, paged, broken = runs["news-list"], runs["paged-list"], runs["broken-list"]
    assert (news.found, news.indexed, news.errors) == (7, 6, 1)  # 6 articles + the 404, each counted once
    assert (paged.found, paged.indexed, paged.errors) == (4, 4, 0)
    assert (broken.found, broken.indexed, broken.errors) == (0, 0, 3)
    assert (runs["end-list"].found, runs["end-list"].indexed, runs["end-list"].errors) == (3, 3, 0)

    titles = page_titles(shared_data)
    posts = all_posts(es_client, settings)
    by_source: dict[str, dict[str, Post]] = {}
    for post in posts:
        by_source.setdefault(post.source, {})[post.url.removeprefix(base)] = post
    assert sorted(by_source) == ["end-list", "news-list", "paged-list"]
    assert sorted(by_source["end-list"]) == sorted(f"/gb/{p}" for p in ARTICLES[:3])
    assert sorted(by_source["news-list"]) == sorted(f"/pages/{p}" for p in ARTICLES[:6])
    assert sorted(by_source["paged-list"]) == sorted(f"/noetag/{p}" for p in ARTICLES[:4])
    for path, post in by_source["news-list"].items():
        rel = path.removeprefix("/pages/")
        # The article page's own headline (automatic extraction), not the list's link text.
        assert post.title and post.title in titles[rel], (rel, post.title)
        assert len(post.content) > 100
        assert post.kind == "article" and post.site == "测试新闻栏目"
        assert post.published_at is not None and post.published_at.tzinfo is not None
    assert "东方朔" in by_source["news-list"]["/pages/tests/people/1.html"].content
