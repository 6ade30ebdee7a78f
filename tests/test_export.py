"""CSV and Excel export of a whole search result, streamed from the real Elasticsearch (more posts than a page)."""

from __future__ import annotations

import csv
import io
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from elasticsearch import Elasticsearch
from openpyxl import load_workbook

from dashboard.auth import Viewer
from dashboard.data import Backend
from dashboard.downloads import export_download, export_summary
from index.export import HEADERS, UTF8_BOM, ExportStats, export_posts, iter_posts
from index.layout import POSTS, setup
from index.search import PostQuery
from index.writer import index_posts
from ingest.batch import Batch
from ingest.privacy import Redactor
from ingest.stages import Segment
from yuqing.models import Analysis, Post, Reply, doc_id_for
from yuqing.settings import PROJECT_ROOT, Settings

N_POSTS = 450
PAGE = 200
NOW = datetime.now(UTC).replace(microsecond=0)
PHONE = "13812345678"
FORMULA_TITLE = '=HYPERLINK("http://evil.example/x","点我")'
BAD_URL = "https://old-tool.example.cn/post/1"


def _posts() -> list[Post]:
    posts = []
    for i in range(N_POSTS):
        library = i % 3 == 0
        posts.append(Post(
            url=f"https://liuyan.example.cn/thread/{i}",
            title=FORMULA_TITLE if i == 7 else f"第{i}号留言：{'图书馆座位' if library else '地铁施工'}",
            content=f"市民来信，联系电话{PHONE}。" if i % 10 == 0 else "希望尽快处理。",
            source="liuyan", site="领导留言板", kind="message", author=f"网友{i}",
            published_at=NOW - timedelta(minutes=i), fetched_at=NOW,
            reply=Reply(text=f"已电话联系{PHONE}", unit="市图书馆", replied_at=NOW) if i == 0 else None,
            analysis=Analysis(sentiment="negative", relevant=True, relevance_prob=0.9, topic="公共文化设施建设和使用",
                              keywords=["图书馆", "座位"], model_version="t") if library else None,
        ))
    return posts


@pytest.fixture(scope="module")
def export_settings(base_settings: Settings, es_client: Elasticsearch) -> Iterator[Settings]:
    """One index for the module (read-only tests; the snapshot test removes what it adds)."""
    prefix = f"{base_settings.elasticsearch.index_prefix}-{uuid.uuid4().hex[:6]}"
    s = base_settings.model_copy(
        update={"elasticsearch": base_settings.elasticsearch.model_copy(update={"index_prefix": prefix})})
    setup(es_client, s.elasticsearch, [POSTS])
    yield s
    es_client.indices.delete(index=f"{prefix}-*", ignore_unavailable=True)
    es_client.options(ignore_status=404).indices.delete_index_template(name=f"{prefix}-*")


def segmented(posts: list[Post]) -> list[Post]:
    return Segment().run(Batch(posts)).posts


@pytest.fixture(scope="module")
def indexed(export_settings: Settings, es_client: Elasticsearch) -> str:
    alias = POSTS.alias(export_settings.elasticsearch.index_prefix)
    index_posts(es_client, alias, segmented(_posts()), refresh=True)
    # Written by an older tool: no analysis.relevance_prob, so it does not validate as a Post.
    es_client.index(index=alias, id=doc_id_for(BAD_URL), refresh=True, document={
        "url": BAD_URL, "canonical_url": BAD_URL, "title": "旧格式", "content": "", "source": "old",
        "fetched_at": NOW.isoformat(), "published_at": (NOW + timedelta(minutes=1)).isoformat(),
        "analysis": {"sentiment": "neutral", "relevant": True, "model_version": "0"}})
    return alias


def _csv_rows(data: bytes) -> list[list[str]]:
    assert data.startswith(UTF8_BOM)
    return list(csv.reader(io.StringIO(data.decode("utf-8-sig"), newline="")))


def test_csv_holds_the_whole_result_in_order(es_client: Elasticsearch, indexed: str) -> None:
    buf = io.BytesIO()
    stats = export_posts(es_client, indexed, PostQuery(), buf, "csv", tz="Asia/Shanghai", max_rows=10_000,
                         page_size=PAGE)

    rows = _csv_rows(buf.getvalue())
    assert rows[0] == list(HEADERS) and len(rows) == N_POSTS + 1
    assert (stats.rows, stats.matched, stats.unreadable, stats.truncated) == (N_POSTS, N_POSTS + 1,
                                                                             [doc_id_for(BAD_URL)], False)
    link = HEADERS.index("链接")
    assert [r[link] for r in rows[1:]] == [f"https://liuyan.example.cn/thread/{i}" for i in range(N_POSTS)]
    first = dict(zip(HEADERS, rows[1], strict=True))
    local = NOW.astimezone(ZoneInfo("Asia/Shanghai")).strftime("%Y-%m-%d %H:%M:%S")
    assert first["发布时间"] == local and first["情感倾向"] == "负面" and first["类型"] == "留言"
    assert first["官方回复"] == f"已电话联系{PHONE}" and first["关键词"] == "图书馆、座位"
    assert dict(zip(HEADERS, rows[2], strict=True))["情感倾向"] == "未分析"
    assert rows[8][HEADERS.index("标题")] == "'" + FORMULA_TITLE  # Excel shows it as text, never evaluates it


def test_excel_export_filtered_and_capped(es_client: Elasticsearch, indexed: str) -> None:
    buf = io.BytesIO()
    library = PostQuery(text="图书馆", sort="relevance")
    stats = export_posts(es_client, indexed, library, buf, "xlsx", tz="Asia/Shanghai", max_rows=120,
                         page_size=50)

    assert (stats.rows, stats.matched, stats.truncated) == (120, N_POSTS // 3, True)
    sheet = load_workbook(io.BytesIO(buf.getvalue()), read_only=True).active
    rows = list(sheet.iter_rows(values_only=True))
    assert rows[0] == HEADERS and len(rows) == 121
    titles = [r[HEADERS.index("标题")] for r in rows[1:]]
    assert all("图书馆" in t for t in titles) and len(set(titles)) == 120
    assert isinstance(rows[1][0], datetime)
    assert "超出导出上限 120 条" in export_summary(stats, 120)

    buf = io.BytesIO()
    export_posts(es_client, indexed, PostQuery(), buf, "xlsx", tz="Asia/Shanghai", max_rows=10, page_size=5)
    cells = {c.value: c.data_type for row in load_workbook(io.BytesIO(buf.getvalue())).active.iter_rows()
             for c in row if isinstance(c.value, str)}
    assert cells[FORMULA_TITLE] == "s"  # a string cell, not a formula


def test_export_reads_one_snapshot(es_client: Elasticsearch, indexed: str) -> None:
    stats = ExportStats()
    posts = iter_posts(es_client, indexed, PostQuery(), max_rows=10_000, stats=stats, page_size=PAGE)
    first = next(posts)
    late = Post(url="https://liuyan.example.cn/late", title="导出途中的新帖", source="liuyan",
                published_at=NOW + timedelta(hours=1), fetched_at=NOW)
    index_posts(es_client, indexed, segmented([late]), refresh=True)
    try:
        rest = list(posts)
    finally:
        es_client.delete(index=indexed, id=late.doc_id, refresh=True)
    assert first.url.endswith("/thread/0") and len(rest) == N_POSTS - 1
    assert late.url not in {p.url for p in rest}


@pytest.mark.parametrize(("role", "masked"), [("analyst", True), ("leader", True), ("press_officer", False),
                                              ("admin", False)])
def test_download_is_masked_by_role(export_settings: Settings, es_client: Elasticsearch, indexed: str, role: str,
                                    masked: bool) -> None:
    backend = Backend(key="test", settings=export_settings, client=es_client,
                      redactor=Redactor.from_file(PROJECT_ROOT / "config" / "privacy.yaml"))
    viewer = Viewer("u", "用户", role)  # type: ignore[arg-type]
    download = export_download(backend, PostQuery(text="联系电话", size=10), "csv", viewer, NOW)

    assert download.file_name.endswith(".csv") and download.mime == "text/csv"
    text = download.data.decode("utf-8-sig")
    assert download.stats.rows == N_POSTS // 10 == len(_csv_rows(download.data)) - 1  # not just `size`
    assert (PHONE in text) is not masked and ("138****5678" in text) is masked
