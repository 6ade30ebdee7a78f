"""Hot words (热词) from the ``hot_terms`` keyword field filled at ingest, and the migration of a v1 posts index
(fielddata over ``content_seg``, no ``hot_terms``) to v2."""

from __future__ import annotations

import copy
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from elasticsearch import Elasticsearch, helpers

from index.hotwords import HotWords, hot_terms_of, load_hot_words
from index.layout import POSTS, POSTS_MAPPING, current_index, setup_spec
from index.records import PostRecord
from index.search import PostQuery, build_hot_terms, hot_terms, sample_probability
from index.spec import IndexSpec
from ingest.batch import Batch
from ingest.stages import Segment
from tests.conftest import seed_posts
from yuqing.cli import main
from yuqing.models import Post
from yuqing.settings import PROJECT_ROOT, Settings

TZ = ZoneInfo("Asia/Shanghai")


def test_a_posts_hot_terms_are_its_most_frequent_words() -> None:
    terms = hot_terms_of("图书馆 开放", "我们 认为 图书馆 的 开放 时间 延长 图书馆 a1 2026 读者 延长",
                         stopwords={"我们", "认为"}, per_post=3)
    assert terms == ["图书馆", "开放", "延长"]  # most frequent first; title counted; 的, a1, 2026 never
    assert hot_terms_of("", "", per_post=3) == []
    assert build_hot_terms(PostQuery(), 5, ("我们",))["aggs"]["terms"]["terms"] == {
        "field": "hot_terms", "size": 5, "exclude": ["我们"]}


def test_the_segment_stage_fills_hot_terms_with_the_configured_stopwords() -> None:
    cfg = load_hot_words(PROJECT_ROOT / "config" / "hotwords.yaml")
    assert "我们" in cfg.stopwords and cfg.per_post >= 10
    post = Post(url="http://e.cn/1", title="图书馆", content="我们认为图书馆的开放时间需要延长。", source="s",
                fetched_at=datetime.now(TZ))
    out = Segment(hot_words=cfg).run(Batch([post])).posts[0]
    assert out.hot_terms is not None and out.hot_terms[0] == "图书馆" and "我们" not in out.hot_terms
    kept = Segment(hot_words=HotWords(per_post=1)).run(Batch([out])).posts[0]
    assert kept.hot_terms == out.hot_terms  # a post that has them (replayed from the spool) keeps them


def test_hot_words_over_many_posts_are_counted_over_a_sample() -> None:
    assert sample_probability(150_000, 100_000) == 1.0 and sample_probability(10, 0) == 1.0
    assert sample_probability(1_000_000, 100_000) == 0.1
    body = build_hot_terms(PostQuery(), 5, (), probability=0.1)
    assert body["aggs"]["sample"]["random_sampler"]["probability"] == 0.1
    assert body["aggs"]["sample"]["aggs"]["terms"]["terms"]["field"] == "hot_terms"


def test_the_sampled_hot_words_query_runs_on_elasticsearch(settings: Settings, es_client: Elasticsearch) -> None:
    alias = POSTS.alias(settings.elasticsearch.index_prefix)
    posts = [Post(url=f"http://e.cn/{i}", title="图书馆", content=f"图书馆开放时间延长第{i}次", source="s",
                  fetched_at=datetime.now(TZ)) for i in range(30)]
    seed_posts(es_client, settings, posts)
    exact = dict(hot_terms(es_client, alias, PostQuery(), size=10))
    assert exact["图书馆"] == 30
    sampled = dict(hot_terms(es_client, alias, PostQuery(), size=10, sample_docs=5))  # 30 > 2 × 5: a sample
    assert set(sampled) <= set(exact) and all(n > 0 for n in sampled.values())


# The posts layout before hot_terms: fielddata over content_seg.
V1_MAPPING = copy.deepcopy(POSTS_MAPPING)
del V1_MAPPING["properties"]["hot_terms"]
V1_MAPPING["properties"]["content_seg"]["fielddata"] = True
POSTS_V1 = IndexSpec("posts", V1_MAPPING, version=1)


def test_migrate_moves_a_v1_posts_index_to_hot_terms(settings: Settings, es_client: Elasticsearch,
                                                     monkeypatch: pytest.MonkeyPatch,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    prefix = settings.elasticsearch.index_prefix
    alias = POSTS.alias(prefix)
    es_client.indices.delete(index=current_index(es_client, alias) or alias)
    old = setup_spec(es_client, POSTS_V1, settings.elasticsearch)
    assert old == f"{alias}-v1"
    texts = ["我们认为图书馆的开放时间需要延长。", "图书馆的座位不够，我们认为需要增加。", "博物馆的讲解很好。"]
    posts = Segment().run(Batch([Post(url=f"http://e.cn/{i}", title="", content=t, source="s",
                                      fetched_at=datetime.now(TZ)) for i, t in enumerate(texts)])).posts
    sources = [PostRecord.source_of(p.model_copy(update={"hot_terms": None})) for p in posts]
    assert not any("hot_terms" in s for s in sources)
    actions = [{"_index": alias, "_id": p.doc_id, "_source": s} for p, s in zip(posts, sources, strict=True)]
    helpers.bulk(es_client, actions, refresh=True)

    monkeypatch.setenv("YUQING_ELASTICSEARCH__INDEX_PREFIX", prefix)
    assert main(["migrate"]) == 0
    assert f"{alias}: {old} -> {alias}-v2 (3 documents" in capsys.readouterr().out
    assert current_index(es_client, alias) == f"{alias}-v2" and es_client.indices.exists(index=old)
    mapping = es_client.indices.get_mapping(index=alias)[f"{alias}-v2"]["mappings"]["properties"]
    assert "fielddata" not in mapping["content_seg"]
    words = dict(hot_terms(es_client, alias, PostQuery(), size=10))
    assert words["图书馆"] == 2 and words["博物馆"] == 1 and "我们" not in words  # stopwords left out at migration
    assert main(["migrate"]) == 0
    assert "every index is up to date" in capsys.readouterr().out
