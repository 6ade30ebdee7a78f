"""Personal data is masked before a post is indexed, analysed or mailed."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from elasticsearch import Elasticsearch

from crawlers.feeds import FeedEntry, rss_document
from crawlers.runner import crawl_in_subprocess
from index.layout import POSTS
from ingest.privacy import Redactor
from tests.conftest import MockServer, crawl_env
from yuqing.errors import ConfigError
from yuqing.models import Post, Reply
from yuqing.settings import PROJECT_ROOT, Settings


@pytest.fixture(scope="module")
def redactor() -> Redactor:
    return Redactor.from_file(PROJECT_ROOT / "config" / "privacy.yaml")


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ("请回电13812345678，谢谢", "请回电138****5678，谢谢"),
        ("身份证号110105199003071234。", "身份证号110105********1234。"),
        ("身份证11010519900307123X", "身份证110105********123X"),
        ("邮箱 zhang.san@example.com 联系", "邮箱 z***@example.com 联系"),
        ("订单号 2023110512345678901 不是身份证", "订单号 2023110512345678901 不是身份证"),
        ("电话 010-12345678、金额 13800000元", "电话 010-12345678、金额 13800000元"),
        ("座位号138123456789（12位）", "座位号138123456789（12位）"),
    ],
)
def test_patterns_mask_personal_data_only(redactor: Redactor, text: str, masked: str) -> None:
    assert redactor.redact(text) == masked


def test_title_body_and_reply_are_masked(redactor: Redactor) -> None:
    now = datetime.now(ZoneInfo("Asia/Shanghai"))
    post = Post(url="http://e.cn/1", title="13912345678 投诉", content="联系 13912345678", source="s",
                fetched_at=now, reply=Reply(text="已联系您13912345678"), author="A0001")
    masked = redactor.redact_post(post)
    assert (masked.title, masked.content, masked.reply and masked.reply.text) == (
        "139****5678 投诉", "联系 139****5678", "已联系您139****5678")
    assert masked.author == "A0001"
    clean = post.model_copy(update={"title": "t", "content": "c", "reply": None})
    assert redactor.redact_post(clean) is clean


def test_bad_pattern_is_a_config_error(tmp_path: Path) -> None:
    path = tmp_path / "privacy.yaml"
    path.write_text("patterns:\n  - {name: x, regex: '(unclosed', replace: ''}\n", encoding="utf-8")
    with pytest.raises(ConfigError) as err:
        Redactor.from_file(path)
    assert err.value.field == "patterns[0].regex" and str(path) in str(err.value)


def test_crawled_post_is_indexed_masked(
    settings: Settings, es_client: Elasticsearch, mockserver: MockServer, config_dir: Path
) -> None:
    page = mockserver.write("msg/1.html", """<html><head><title>市图书馆空调坏了_市民留言</title></head><body>
<h1>市图书馆空调坏了</h1><div class="article"><p>市图书馆三楼自习室空调坏了一周，请尽快维修。</p>
<p>我的电话13712345678，身份证号110105199003071234，邮箱 reader@example.com，请联系我。</p>
<p>希望有关部门尽快回复，谢谢。</p></div></body></html>""")
    feed = mockserver.write("feed.xml", rss_document("t", mockserver.url, [FeedEntry(link=page, title="t")],
                                                     built=datetime.now(ZoneInfo("Asia/Shanghai"))))
    (config_dir / "sources.yaml").write_text(f"sources:\n  - {{name: p, kind: feed, start_urls: ['{feed}']}}\n",
                                             encoding="utf-8")
    crawl_in_subprocess(None, [], timeout_s=300, env=crawl_env(settings, config_dir, YUQING_NLP__ENABLED="false"))
    alias = POSTS.alias(settings.elasticsearch.index_prefix)
    es_client.indices.refresh(index=alias)
    (hit,) = es_client.search(index=alias)["hits"]["hits"]
    content = hit["_source"]["content"]
    assert "137****5678" in content and "110105********1234" in content and "r***@example.com" in content
    for secret in ("13712345678", "199003071234", "reader@"):
        assert es_client.count(index=alias, query={"match_phrase": {"content": secret}})["count"] == 0
        assert secret not in content
