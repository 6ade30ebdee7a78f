"""A real Scrapy crawl of a local feed of saved real pages, indexed in the real Elasticsearch."""

from __future__ import annotations

import csv
from datetime import datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from elasticsearch import Elasticsearch

from crawlers.feeds import FeedEntry, rss_document
from crawlers.runner import crawl_in_subprocess
from index.layout import POSTS
from index.search import PostQuery, post_from_source, search_posts
from tests.conftest import MockServer, crawl_env
from yuqing.models import Post
from yuqing.settings import Settings

PAGES = ["tests/people/1.html", "tests/sina/1.html", "tests/thepaper/2.html", "tests/ifeng/2.html",
         "tests/baijiahao/4.html"]
GB_PAGE = "tests/people/1.html"  # served transcoded to GB18030, as its <meta charset=GB2312> declares


def page_titles(shared_data: Path) -> dict[str, str]:
    with (shared_data / "html" / "gne" / "index.csv").open(encoding="utf-8-sig") as fh:
        return {row["file"].removeprefix("gne/"): row["title"] for row in csv.DictReader(fh)}


def write_feed(server: MockServer, pages: list[str]) -> str:
    now = datetime.now(ZoneInfo("Asia/Shanghai"))
    entries = [
        FeedEntry(
            link=f"{server.url}/{'gb' if p == GB_PAGE else 'pages'}/{p}",
            title=f"feed title {i}",
            published=format_datetime(now - timedelta(hours=i)),
        )
        for i, p in enumerate(pages)
    ]
    return server.write("feed.xml", rss_document("测试源", server.url, entries, built=now))


def write_sources(config_dir: Path, feed_url: str) -> None:
    (config_dir / "sources.yaml").write_text(
        f"sources:\n  - name: test-feed\n    kind: feed\n    start_urls: ['{feed_url}']\n", encoding="utf-8"
    )


def all_posts(es: Elasticsearch, alias: str) -> list[Post]:
    es.indices.refresh(index=alias)
    resp = es.search(index=alias, size=100, query={"match_all": {}})
    return [post_from_source(h["_source"]) for h in resp["hits"]["hits"]]


def test_feed_crawl_indexes_each_article_once(
    settings: Settings, es_client: Elasticsearch, mockserver: MockServer, config_dir: Path, shared_data: Path
) -> None:
    feed_url = write_feed(mockserver, PAGES)
    write_sources(config_dir, feed_url)
    env = crawl_env(settings, config_dir)  # with the shipped classifier, as in production

    report = crawl_in_subprocess(None, [], timeout_s=300, env=env)

    run = report.sources[0]
    assert (run.source, run.found, run.indexed, run.new, run.errors) == ("test-feed", 5, 5, 5, 0)
    alias = POSTS.alias(settings.elasticsearch.index_prefix)
    posts = all_posts(es_client, alias)
    titles = page_titles(shared_data)
    by_path = {p.url.split("/", 4)[-1]: p for p in posts}
    assert sorted(by_path) == sorted(PAGES)
    for path, post in by_path.items():
        # The extracted title is the page's own headline (the saved <title> minus the site suffix),
        # not the feed's placeholder: proves the article page was fetched, decoded and extracted.
        assert post.title and post.title in titles[path], (path, post.title)
        assert len(post.content) > 100
        assert post.published_at is not None and post.published_at.tzinfo is not None
        assert post.source == "test-feed"
        # Every indexed post carries the classifier's output and the model version.
        assert post.analysis is not None and post.analysis.model_version.startswith("yuqing-zh-small@")
        assert post.analysis.sentiment in ("negative", "neutral", "positive")
        assert abs(sum(post.analysis.sentiment_probs.values()) - 1) < 1e-3 and post.analysis.keywords
    assert "东方朔" in by_path[GB_PAGE].content  # the GB18030 bytes were decoded

    # Re-crawl with the feed rebuilt: every article is requested again; none changed, so none is re-indexed
    # (304 for the pages that send validators, equal content hash for the transcoded one) and none duplicated.
    write_feed(mockserver, PAGES)
    report2 = crawl_in_subprocess(None, [], timeout_s=300, env=env)
    assert (report2.sources[0].found, report2.sources[0].indexed, report2.sources[0].unchanged) == (5, 0, 5)
    assert len(all_posts(es_client, alias)) == 5

    # The per-character field finds exact Chinese substrings.
    hits = search_posts(es_client, alias, PostQuery(text="郑板桥"))
    assert [h.post.url for h in hits.hits] == [by_path[GB_PAGE].url]


def test_broken_feed_is_counted_not_fatal(
    settings: Settings, mockserver: MockServer, config_dir: Path
) -> None:
    feed_url = mockserver.write("feed.xml", b"<html><body>not a feed</body></html>")
    bad_article = mockserver.write(
        "feed2.xml",
        rss_document("x", mockserver.url, [FeedEntry(link=f"{mockserver.url}/status/500", title="t")],
                     built=datetime.now(ZoneInfo("Asia/Shanghai"))),
    )
    (config_dir / "sources.yaml").write_text(
        "sources:\n"
        f"  - {{name: broken, kind: feed, start_urls: ['{feed_url}']}}\n"
        f"  - {{name: failing-article, kind: feed, start_urls: ['{bad_article}']}}\n",
        encoding="utf-8",
    )
    env = crawl_env(settings, config_dir, YUQING_NLP__ENABLED="false", YUQING_CRAWL__RETRY_TIMES="0")
    report = crawl_in_subprocess(None, [], timeout_s=300, env=env)
    runs = {r.source: r for r in report.sources}
    assert runs["broken"].errors == 1 and runs["broken"].indexed == 0
    assert runs["failing-article"].found == 1 and runs["failing-article"].errors == 1


def test_elasticsearch_down_spools_and_the_next_crawl_replays(
    settings: Settings, es_client: Elasticsearch, mockserver: MockServer, config_dir: Path
) -> None:
    write_sources(config_dir, write_feed(mockserver, PAGES[:3]))
    spool = settings.paths.data_dir / "spool"
    down = crawl_env(settings, config_dir, YUQING_NLP__ENABLED="false",
                     YUQING_ELASTICSEARCH__HOSTS='["http://127.0.0.1:9"]', YUQING_ELASTICSEARCH__REQUEST_TIMEOUT_S="2")
    report = crawl_in_subprocess(None, [], timeout_s=300, env=down)
    assert (report.sources[0].found, report.sources[0].indexed, report.sources[0].spooled) == (3, 0, 3)
    assert len(list(spool.glob("*.jsonl"))) == 1

    # Elasticsearch is back; the feed has nothing new, but the spooled posts are indexed first.
    write_sources(config_dir, mockserver.write("empty.xml", rss_document(
        "空", mockserver.url, [], built=datetime.now(ZoneInfo("Asia/Shanghai")))))
    crawl_in_subprocess(None, [], timeout_s=300, env=crawl_env(settings, config_dir, YUQING_NLP__ENABLED="false"))
    assert not list(spool.glob("*.jsonl"))
    alias = POSTS.alias(settings.elasticsearch.index_prefix)
    assert sorted(p.url.split("/", 4)[-1] for p in all_posts(es_client, alias)) == sorted(PAGES[:3])


def test_spool_keeps_a_file_with_unreadable_lines_for_a_person(tmp_path: Path) -> None:
    from ingest.spool import Spool

    spool = Spool(tmp_path / "spool")
    post = Post(url="http://e.cn/1", title="t", content="c", source="s",
                fetched_at=datetime.now(ZoneInfo("Asia/Shanghai")))
    good = spool.write([post], tag="a")
    posts, bad = spool.read(good)
    assert (posts, bad) == ([post], 0)
    spool.done(good, bad_lines=0)
    assert not good.exists()

    broken = spool.write([post], tag="b")
    broken.write_text(broken.read_text(encoding="utf-8") + "{not json\n", encoding="utf-8")
    posts, bad = spool.read(broken)
    assert (posts, bad) == ([post], 1)
    spool.done(broken, bad_lines=bad)
    assert not broken.exists() and broken.with_suffix(".rejected").exists()
    assert spool.files() == []  # not replayed again
