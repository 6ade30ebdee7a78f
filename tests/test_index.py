"""Index layout and writing against the real Elasticsearch."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from elasticsearch import ApiError, Elasticsearch
from elasticsearch import ConnectionError as ESConnectionError

from index.client import es_client as client_for
from index.es_server import LocalElasticsearch
from index.hotwords import hot_terms_of, load_stopwords
from index.layout import POSTS, current_index, migrate, setup
from index.search import PostQuery, hot_terms, search_posts
from index.writer import BulkIndexError, index_posts
from nlp.segment import segment_for_index
from yuqing.models import Analysis, Post, canonicalize_url, doc_id_for
from yuqing.settings import PROJECT_ROOT, Settings

TZ = ZoneInfo("Asia/Shanghai")


def post(url: str, title: str, content: str, **kw: object) -> Post:
    """A post as the segmentation stage leaves it (the writer never segments), its hot terms without stopwords."""
    title_seg, content_seg = segment_for_index(title), segment_for_index(content)
    return Post(url=url, title=title, content=content, source="t", fetched_at=datetime.now(TZ),
                title_seg=title_seg, content_seg=content_seg, hot_terms=hot_terms_of(title_seg, content_seg), **kw)


def test_local_server_second_start_is_a_noop(es_server: LocalElasticsearch) -> None:
    pid_before = es_server.pid_file.read_text() if es_server.pid_file.exists() else None
    health = es_server.start()
    assert health.status in ("green", "yellow") and health.number_of_nodes == 1
    after = es_server.pid_file.read_text() if es_server.pid_file.exists() else None
    assert after == pid_before


def test_setup_is_idempotent_and_uses_alias_and_versioned_index(
    settings: Settings, es_client: Elasticsearch
) -> None:
    prefix = settings.elasticsearch.index_prefix
    first = setup(es_client, settings.elasticsearch)
    second = setup(es_client, settings.elasticsearch)
    assert first == second
    alias = POSTS.alias(prefix)
    assert first[alias] == f"{alias}-v2"
    assert es_client.indices.exists_index_template(name=f"{alias}-template")
    mapping = es_client.indices.get_mapping(index=alias)[first[alias]]["mappings"]["properties"]
    assert mapping["content"]["analyzer"] == "standard"
    assert mapping["content_seg"]["analyzer"] == "whitespace"
    assert "fielddata" not in mapping["content_seg"] and mapping["hot_terms"]["type"] == "keyword"


def test_migrate_copies_documents_and_swaps_alias(settings: Settings, es_client: Elasticsearch) -> None:
    alias = POSTS.alias(settings.elasticsearch.index_prefix)
    index_posts(es_client, alias, [post(f"http://e.cn/{i}", f"标题{i}", "正文") for i in range(3)], refresh=True)
    old = current_index(es_client, alias)
    new = migrate(es_client, POSTS, settings.elasticsearch)
    assert new != old and current_index(es_client, alias) == new
    assert es_client.count(index=alias)["count"] == 3


def test_recrawl_updates_never_duplicates(settings: Settings, es_client: Elasticsearch) -> None:
    alias = POSTS.alias(settings.elasticsearch.index_prefix)
    r1 = index_posts(es_client, alias, [post("HTTP://News.Example.cn:80/a#top", "旧标题", "旧正文")], refresh=True)
    r2 = index_posts(es_client, alias, [post("http://news.example.cn/a", "新标题", "新正文")], refresh=True)
    assert (r1.created, r2.created, r2.updated) == (1, 0, 1)
    assert es_client.count(index=alias)["count"] == 1
    doc = es_client.get(index=alias, id=doc_id_for(canonicalize_url("http://news.example.cn/a")))
    assert doc["_source"]["title"] == "新标题"


def test_phrase_search_finds_exact_substrings_only(settings: Settings, es_client: Elasticsearch) -> None:
    alias = POSTS.alias(settings.elasticsearch.index_prefix)
    now = datetime.now(TZ)
    index_posts(es_client, alias, [
        post("http://e.cn/1", "市图书馆延长开放时间", "读者欢迎图书馆夜间开放。", published_at=now),
        post("http://e.cn/2", "图书捐赠活动", "一批图书送到文化馆。", published_at=now - timedelta(hours=1)),
        post("http://e.cn/3", "博物馆新展", "图书馆旁边的博物馆开展。", published_at=now - timedelta(hours=2)),
    ], refresh=True)
    result = search_posts(es_client, alias, PostQuery(text="图书馆"))
    assert result.total == 2
    assert [h.post.url for h in result.hits] == ["http://e.cn/1", "http://e.cn/3"]  # newest first
    both = search_posts(es_client, alias, PostQuery(text="图书馆 博物馆"))
    assert [h.post.url for h in both.hits] == ["http://e.cn/3"]


def test_analysis_fields_round_trip_and_filter(settings: Settings, es_client: Elasticsearch) -> None:
    alias = POSTS.alias(settings.elasticsearch.index_prefix)
    neg = Analysis(sentiment="negative", sentiment_probs={"negative": 0.9, "neutral": 0.05, "positive": 0.05},
                   relevant=True, relevance_prob=0.8, topic="公共文化设施建设和使用",
                   topic_probs={"公共文化设施建设和使用": 0.7}, keywords=["图书馆"], model_version="m1")
    index_posts(es_client, alias, [post("http://e.cn/n", "投诉", "图书馆空调坏了", analysis=neg),
                                   post("http://e.cn/p", "点赞", "文化馆活动很好")], refresh=True)
    hits = search_posts(es_client, alias, PostQuery(sentiments=("negative",))).hits
    assert [h.post.url for h in hits] == ["http://e.cn/n"]
    assert hits[0].post.analysis == neg
    src = es_client.get(index=alias, id=hits[0].id)["_source"]
    assert src["analysis"]["sentiment_score"] == pytest.approx(0.9)


def test_per_document_errors_are_reported_not_swallowed(settings: Settings, es_client: Elasticsearch) -> None:
    alias = POSTS.alias(settings.elasticsearch.index_prefix)
    good = post("http://e.cn/good", "好", "正文")
    bad = post("http://e.cn/bad", "坏", "正文", author="x" * 40000)  # keyword term too long: rejected by ES
    with pytest.raises(BulkIndexError) as err:
        index_posts(es_client, alias, [good, bad], refresh=True)
    report = err.value.report
    assert report.created == 1 and [f.url for f in report.failures] == ["http://e.cn/bad"]
    assert "http://e.cn/bad" in str(err.value)
    assert es_client.count(index=alias)["count"] == 1  # the good neighbour was kept


def test_elasticsearch_down_raises_connection_error(settings: Settings) -> None:
    down = settings.elasticsearch.model_copy(update={"hosts": ["http://127.0.0.1:9"], "request_timeout_s": 2})
    with client_for(down) as client, pytest.raises((ESConnectionError, ApiError)):
        index_posts(client, "x", [post("http://e.cn/1", "t", "c")])


def test_an_unsegmented_post_is_refused_before_it_is_written(settings: Settings, es_client: Elasticsearch) -> None:
    alias = POSTS.alias(settings.elasticsearch.index_prefix)
    raw = Post(url="http://e.cn/raw", title="标题", content="正文", source="t", fetched_at=datetime.now(TZ))
    with pytest.raises(ValueError, match=r"http://e\.cn/raw was not segmented"):
        index_posts(es_client, alias, [raw], refresh=True)
    assert es_client.count(index=alias)["count"] == 0


def test_hot_terms_count_words_and_leave_out_stopwords(settings: Settings, es_client: Elasticsearch) -> None:
    alias = POSTS.alias(settings.elasticsearch.index_prefix)
    index_posts(es_client, alias, [
        post("http://e.cn/h1", "图书馆", "我们认为图书馆的开放时间需要延长。"),
        post("http://e.cn/h2", "图书馆", "图书馆的座位不够，我们认为需要增加。"),
        post("http://e.cn/h3", "博物馆", "博物馆的讲解很好。"),
    ], refresh=True)
    terms = dict(hot_terms(es_client, alias, PostQuery(), size=10))
    assert terms["图书馆"] == 2 and terms["我们"] == 2 and "的" not in terms  # single characters never count
    filtered = dict(hot_terms(es_client, alias, PostQuery(), size=10, exclude=("我们", "认为", "需要")))
    assert filtered["图书馆"] == 2 and not {"我们", "认为", "需要"} & set(filtered)
    assert {"我们", "需要", "认为"} <= set(load_stopwords(PROJECT_ROOT / "config" / "hotwords.yaml"))


def test_a_post_without_a_publication_time_is_found_by_its_fetch_time(
    settings: Settings, es_client: Elasticsearch
) -> None:
    alias = POSTS.alias(settings.elasticsearch.index_prefix)
    now = datetime.now(TZ)  # every post is fetched now (``post``)
    undated = post("http://e.cn/undated", "图书馆闭馆通知", "页面没有发布时间")
    old = post("http://e.cn/old", "图书馆旧闻", "一年前的文章", published_at=now - timedelta(days=365))
    recent = post("http://e.cn/recent", "图书馆新闻", "昨天的文章", published_at=now - timedelta(days=1))
    index_posts(es_client, alias, [undated, old, recent], refresh=True)
    week = search_posts(es_client, alias, PostQuery(since=now - timedelta(days=7)))
    assert {h.post.url for h in week.hits} == {"http://e.cn/undated", "http://e.cn/recent"}  # not lost, not the old
    earlier = search_posts(es_client, alias, PostQuery(since=now - timedelta(days=7), until=now - timedelta(hours=1)))
    assert {h.post.url for h in earlier.hits} == {"http://e.cn/recent"}  # fetched now: outside that range


def test_a_killed_node_not_yet_reaped_is_not_running(tmp_path: Path) -> None:
    """A node started with -d belongs to init; killed, it is a zombie until init reaps it (slow in a container)."""
    import os
    import signal
    import subprocess
    import time

    from index.es_server import read_pid

    proc = subprocess.Popen(["sleep", "60"])
    pid_file = tmp_path / "node.pid"
    pid_file.write_text(str(proc.pid))
    try:
        assert read_pid(pid_file) == proc.pid
        os.kill(proc.pid, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while not Path(f"/proc/{proc.pid}/stat").read_text().split(") ")[1].startswith("Z"):
            assert time.monotonic() < deadline, "the process did not become a zombie"
            time.sleep(0.05)
        assert read_pid(pid_file) is None  # exited, not yet reaped: not running
    finally:
        proc.wait()
