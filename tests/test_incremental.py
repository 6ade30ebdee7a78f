"""Incremental crawling: unchanged pages are not re-indexed, edited ones update their document."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from elasticsearch import Elasticsearch

from crawlers.feeds import FeedEntry, rss_document
from crawlers.runner import crawl_in_subprocess
from index.layout import CRAWL_STATE, POSTS
from tests.conftest import MockServer, crawl_env
from yuqing.models import canonicalize_url, doc_id_for
from yuqing.settings import Settings

ARTICLE = """<html><head><title>{title}_测试站</title>
<meta name="publishdate" content="2026-11-20 09:30"></head><body><h1>{title}</h1><div class="article">
<p>{body}</p><p>第二段：读者普遍表示欢迎，认为这项举措方便了上班族。</p>
<p>第三段：馆方表示将根据读者反馈继续优化服务时间和服务内容。</p></div></body></html>"""


def test_unchanged_pages_skipped_edited_pages_updated(
    settings: Settings, es_client: Elasticsearch, mockserver: MockServer, config_dir: Path
) -> None:
    own = mockserver.write("news/1.html", ARTICLE.format(title="市图书馆延长开放时间",
                                                        body="市图书馆自下月起每晚开放至二十一点，周末照常开放。"))
    real_validated = f"{mockserver.url}/pages/tests/sina/1.html"
    real_no_validators = f"{mockserver.url}/noetag/tests/qq/qq.html"
    entries = [FeedEntry(link=u, title="t") for u in (own, real_validated, real_no_validators)]
    feed = mockserver.write("feed.xml", rss_document("t", mockserver.url, entries,
                                                     built=datetime(2026, 11, 27, tzinfo=ZoneInfo("Asia/Shanghai"))))
    (config_dir / "sources.yaml").write_text(f"sources:\n  - {{name: inc, kind: feed, start_urls: ['{feed}']}}\n",
                                             encoding="utf-8")
    env = crawl_env(settings, config_dir, YUQING_NLP__ENABLED="false")
    alias = POSTS.alias(settings.elasticsearch.index_prefix)

    first = crawl_in_subprocess(None, [], timeout_s=300, env=env).sources[0]
    assert (first.found, first.indexed, first.new, first.unchanged) == (3, 3, 3, 0)
    state = es_client.get(index=CRAWL_STATE.alias(settings.elasticsearch.index_prefix),
                          id=doc_id_for(canonicalize_url(real_validated)))["_source"]
    assert state["etag"] and state["last_modified"] and state["content_hash"]

    # Nothing changed: the feed itself answers 304, so no article is even requested.
    second = crawl_in_subprocess(None, [], timeout_s=300, env=env).sources[0]
    assert (second.found, second.indexed, second.unchanged) == (0, 0, 1)

    # The article is edited and the feed rebuilt: the 304-capable page answers 304, the page without
    # validators is fetched but recognised by its content hash, and only the edited article is re-indexed.
    mockserver.write("news/1.html", ARTICLE.format(title="市图书馆延长开放时间（更新）",
                                                   body="更正：市图书馆自下月起每晚开放至二十二点。"))
    mockserver.write("feed.xml", rss_document("t", mockserver.url, entries,
                                              built=datetime(2026, 11, 28, tzinfo=ZoneInfo("Asia/Shanghai"))))
    third = crawl_in_subprocess(None, [], timeout_s=300, env=env).sources[0]
    assert (third.found, third.indexed, third.new, third.unchanged) == (3, 1, 0, 2)
    es_client.indices.refresh(index=alias)
    doc = es_client.get(index=alias, id=doc_id_for(canonicalize_url(own)))["_source"]
    assert doc["title"] == "市图书馆延长开放时间（更新）" and "二十二点" in doc["content"]
    assert es_client.count(index=alias)["count"] == 3


def test_turning_the_classifier_on_reanalyses_unchanged_pages(
    settings: Settings, es_client: Elasticsearch, mockserver: MockServer, config_dir: Path
) -> None:
    page = f"{mockserver.url}/noetag/tests/people/1.html"  # no validators: fetched every time
    feed = mockserver.write("feed.xml", rss_document("t", mockserver.url, [FeedEntry(link=page, title="t")],
                                                     built=datetime(2026, 11, 27, tzinfo=ZoneInfo("Asia/Shanghai"))))
    (config_dir / "sources.yaml").write_text(f"sources:\n  - {{name: re, kind: feed, start_urls: ['{feed}']}}\n",
                                             encoding="utf-8")
    alias = POSTS.alias(settings.elasticsearch.index_prefix)
    without = crawl_env(settings, config_dir, YUQING_NLP__ENABLED="false")
    assert crawl_in_subprocess(None, [], timeout_s=300, env=without).sources[0].indexed == 1
    mockserver.write("feed.xml", rss_document("t", mockserver.url, [FeedEntry(link=page, title="t")],
                                              built=datetime(2026, 11, 28, tzinfo=ZoneInfo("Asia/Shanghai"))))
    assert crawl_in_subprocess(None, [], timeout_s=300, env=without).sources[0].unchanged == 1
    doc_id = doc_id_for(canonicalize_url(page))
    assert "analysis" not in es_client.get(index=alias, id=doc_id)["_source"]

    mockserver.write("feed.xml", rss_document("t", mockserver.url, [FeedEntry(link=page, title="t")],
                                              built=datetime(2026, 11, 29, tzinfo=ZoneInfo("Asia/Shanghai"))))
    run = crawl_in_subprocess(None, [], timeout_s=300, env=crawl_env(settings, config_dir)).sources[0]
    assert (run.indexed, run.unchanged) == (1, 0)
    analysis = es_client.get(index=alias, id=doc_id)["_source"]["analysis"]
    assert analysis["model_version"].startswith("yuqing-zh-small@")


def test_a_page_that_could_not_be_read_is_fetched_in_full_next_time(
    settings: Settings, es_client: Elasticsearch, mockserver: MockServer, config_dir: Path
) -> None:
    good = mockserver.write("news/good.html", ARTICLE.format(title="市博物馆夜场开放",
                                                            body="市博物馆本周五起夜场开放至二十一点。"))
    # a page the extractor cannot read (no markup: the site served plain text where an article was expected)
    broken = mockserver.write("news/broken.html", "维护中，请稍后访问。" * 20)
    entries = [FeedEntry(link=u, title="t") for u in (good, broken)]

    def feed(day: int) -> None:
        mockserver.write("feed.xml", rss_document("t", mockserver.url, entries,
                                                  built=datetime(2026, 11, day, tzinfo=ZoneInfo("Asia/Shanghai"))))

    feed(27)
    (config_dir / "sources.yaml").write_text(
        f"sources:\n  - {{name: rd, kind: feed, start_urls: ['{mockserver.url}/feed.xml']}}\n", encoding="utf-8")
    env = crawl_env(settings, config_dir, YUQING_NLP__ENABLED="false")
    first = crawl_in_subprocess(None, [], timeout_s=300, env=env).sources[0]
    assert (first.indexed, first.errors) == (1, 1)
    state = CRAWL_STATE.alias(settings.elasticsearch.index_prefix)
    assert es_client.get(index=state, id=doc_id_for(canonicalize_url(good)))["_source"]["etag"]
    kept = es_client.options(ignore_status=404).get(index=state, id=doc_id_for(canonicalize_url(broken)))
    assert not kept.get("found") or not kept["_source"].get("etag")  # its validators were not kept

    feed(28)  # the items are requested again: the good page answers 304, the broken one is fetched (and fails) again
    second = crawl_in_subprocess(None, [], timeout_s=300, env=env).sources[0]
    assert (second.unchanged, second.errors) == (1, 1)
