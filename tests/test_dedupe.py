"""Near-duplicates: copies and reposts link to the earliest item, which is marked 首发."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pandas as pd
import pytest
from elasticsearch import Elasticsearch

from index.layout import POSTS
from ingest.batch import Batch
from ingest.dedupe import Deduper
from ingest.fingerprint import hamming, simhash, tokens_for
from ingest.stages import IndexPosts, LinkDuplicates, Segment
from yuqing.models import Post
from yuqing.settings import Settings

TZ = ZoneInfo("Asia/Shanghai")
T0 = datetime(2026, 11, 20, 9, 0, tzinfo=TZ)


@pytest.fixture(scope="module")
def messages(shared_data: Path) -> list[str]:
    frame = pd.read_excel(shared_data / "gov_messages" / "messages_with_replies_2816.xlsx")
    texts = [" ".join(str(t).split()) for t in frame["留言详情"] if isinstance(t, str)]
    return [t for t in texts if len(t) > 200][:5]


def post(url: str, content: str, when: datetime, source: str) -> Post:
    return Post(url=url, title=content[:20], content=content, source=source, published_at=when, fetched_at=when)


def test_simhash_separates_copies_from_other_texts(messages: list[str]) -> None:
    original = messages[0]
    copy = "转自某网友：" + original + "（来源：网络，侵删）"
    a, b, c = (simhash(tokens_for(t)) for t in (original, copy, messages[1]))
    assert a is not None and b is not None and c is not None
    assert hamming(a, b) <= 3
    assert hamming(a, c) > 10
    assert simhash(tokens_for("图书馆开放")) is None  # too short to fingerprint


def index_linked(es: Elasticsearch, alias: str, posts: list[Post]) -> list[Post]:
    """The ingest stages segment → link near-duplicates → index, on ``posts``."""
    batch = Batch(posts)
    for stage in (Segment(), LinkDuplicates(Deduper(es, alias)), IndexPosts(es, alias)):
        batch = stage.run(batch)
    return batch.posts


def test_copies_link_to_the_earliest_even_when_it_arrives_last(
    settings: Settings, es_client: Elasticsearch, messages: list[str]
) -> None:
    alias = POSTS.alias(settings.elasticsearch.index_prefix)
    original, other = messages[0], messages[1]
    # The copies are crawled first ...
    index_linked(es_client, alias, [
        post("http://b.cn/copy1", "转自网友：" + original, T0 + timedelta(hours=2), "forum"),
        post("http://c.cn/unrelated", other, T0 + timedelta(hours=3), "news"),
    ])
    index_linked(es_client, alias, [post("http://d.cn/copy2", original + "（来源：网络）", T0 + timedelta(hours=5),
                                         "weibo")])
    docs = {h["_source"]["url"]: h for h in es_client.search(index=alias, size=10)["hits"]["hits"]}
    first_copy = docs["http://b.cn/copy1"]
    assert first_copy["_source"]["is_first"] is True
    assert docs["http://d.cn/copy2"]["_source"]["duplicate_of"] == first_copy["_id"]
    assert "duplicate_of" not in docs["http://c.cn/unrelated"]["_source"]

    # ... then the original publisher, dated earlier, is found: it becomes 首发 and every copy re-links to it.
    (orig,) = index_linked(es_client, alias, [post("http://a.cn/original", original, T0, "gov-site")])
    assert orig.is_first is True and orig.duplicate_of is None
    es_client.indices.refresh(index=alias)
    docs = {h["_source"]["url"]: h["_source"] for h in es_client.search(index=alias, size=10)["hits"]["hits"]}
    assert docs["http://b.cn/copy1"]["duplicate_of"] == orig.doc_id and docs["http://b.cn/copy1"]["is_first"] is False
    assert docs["http://d.cn/copy2"]["duplicate_of"] == orig.doc_id
    assert "duplicate_of" not in docs["http://c.cn/unrelated"]

    # Re-crawling the original keeps it first; nothing links to itself.
    (again,) = index_linked(es_client, alias, [post("http://a.cn/original", original, T0, "gov-site")])
    assert again.is_first is True and again.duplicate_of is None


def test_duplicates_within_one_batch(settings: Settings, es_client: Elasticsearch, messages: list[str]) -> None:
    alias = POSTS.alias(settings.elasticsearch.index_prefix)
    text = messages[2]
    linked = index_linked(es_client, alias, [
        post("http://x.cn/late", text + "。", T0 + timedelta(hours=1), "a"),
        post("http://x.cn/early", text, T0, "b"),
    ])
    late, early = linked
    assert early.is_first is True
    assert late.duplicate_of == early.doc_id and late.is_first is False


def test_content_hash_changes_with_text_reply_and_engagement_not_fetch_time() -> None:
    from ingest.fingerprint import post_content_hash
    from yuqing.models import Engagement, Reply

    base = post("http://w.cn/1", "图书馆周末延长开放", T0, "weibo")
    assert post_content_hash(base) == post_content_hash(base.model_copy(update={"fetched_at": T0 + timedelta(days=1)}))
    variants = [
        base.model_copy(update={"content": "图书馆周末延长开放至晚上九点"}),
        base.model_copy(update={"engagement": Engagement(reposts=120, likes=3000)}),
        base.model_copy(update={"reply": Reply(text="已转相关部门办理", unit="市文化广电旅游局")}),
    ]
    hashes = {post_content_hash(p) for p in [base, *variants]}
    assert len(hashes) == 4
