"""The ingest service: ordered stages, failures told apart (unavailable: spooled; refused: reported), and
`yuqing ingest FILE.jsonl`."""

from __future__ import annotations

import errno
import json
import logging
import os
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from elasticsearch import Elasticsearch

from index.client import es_client as client_for
from index.crawl_state import CrawlState
from index.layout import CRAWL_STATE, POSTS, current_index
from index.writer import BulkFailure
from ingest.service import IngestService, standard_stages
from ingest.session import IngestSession
from ingest.spool import Spool
from yuqing.cli import main
from yuqing.models import Analysis, Post
from yuqing.settings import Settings

TZ = ZoneInfo("Asia/Shanghai")


def post(n: int, **kw: object) -> Post:
    return Post(url=f"http://e.cn/{n}", title=f"图书馆通知{n}", content=f"市图书馆第{n}期讲座报名开始。", source="s",
                fetched_at=datetime(2026, 11, 27, 8, tzinfo=TZ), **kw)


def no_nlp(settings: Settings) -> Settings:
    return settings.model_copy(update={"nlp": settings.nlp.model_copy(update={"enabled": False})})


def service(settings: Settings, client: Elasticsearch) -> IngestService:
    return IngestService(standard_stages(settings, client), Spool(settings.paths.data_dir / "spool"), tag="t")


class Neutral:
    """A stand-in classifier (the real one is exercised by the crawl tests)."""

    version = "neutral@1"

    def analyze(self, texts: list[str]) -> list[Analysis]:
        return [Analysis(sentiment="neutral", relevant=False, relevance_prob=0.0, model_version=self.version)
                for _ in texts]


def test_the_standard_stages_in_order(settings: Settings, es_client: Elasticsearch) -> None:
    state = CrawlState(es_client, CRAWL_STATE.alias(settings.elasticsearch.index_prefix), "s")
    stages = standard_stages(settings, es_client, state=state, analyzer=Neutral())
    assert [s.name for s in stages] == [
        "redact", "skip-unchanged", "analyse", "segment", "link-duplicates", "groups", "judgements", "index",
        "remember-indexed"]
    report = IngestService(stages, Spool(settings.paths.data_dir / "spool"), tag="t").run([post(1)])
    assert (report.indexed, report.new) == (1, 1)
    again = IngestService(stages, Spool(settings.paths.data_dir / "spool"), tag="t").run([post(1)])
    assert (again.unchanged, again.indexed) == (1, 0)  # remembered, then skipped


def test_elasticsearch_down_spools_and_replay_indexes(settings: Settings, es_client: Elasticsearch) -> None:
    settings = no_nlp(settings)
    down = settings.elasticsearch.model_copy(update={"hosts": ["http://127.0.0.1:9"], "request_timeout_s": 1})
    with client_for(down) as dead:
        report = service(settings, dead).run([post(1), post(2)])
    assert (report.received, report.indexed, report.spooled) == (2, 0, 2)
    spool = Spool(settings.paths.data_dir / "spool")
    assert len(spool.files()) == 1

    replayed = service(settings, es_client).replay_spool()
    assert (replayed.replayed, replayed.indexed, replayed.spooled) == (2, 2, 0)
    assert spool.files() == []
    # What was spooled had been segmented already; the replayed documents carry it.
    doc = es_client.get(index=POSTS.alias(settings.elasticsearch.index_prefix), id=post(1).doc_id)["_source"]
    assert doc["content_seg"] and doc["content_hash"]


def test_a_refused_document_is_reported_with_its_url_not_spooled(
    settings: Settings, es_client: Elasticsearch, caplog: pytest.LogCaptureFixture
) -> None:
    settings = no_nlp(settings)
    bad = post(2, author="x" * 40000)  # a keyword longer than Lucene allows: a 400 for this document only
    with caplog.at_level(logging.ERROR):
        report = service(settings, es_client).run([post(1), bad])
    assert (report.indexed, report.index_errors, report.spooled) == (1, 1, 0)
    assert any(bad.url in r.getMessage() and "(400)" in r.getMessage() for r in caplog.records)
    assert Spool(settings.paths.data_dir / "spool").files() == []


def test_the_page_of_a_refused_document_is_fetched_in_full_next_time(
    settings: Settings, es_client: Elasticsearch
) -> None:
    settings = no_nlp(settings)
    state = CrawlState(es_client, CRAWL_STATE.alias(settings.elasticsearch.index_prefix), "s")
    bad = post(2, author="x" * 40000)  # refused (400)
    now = datetime.now(TZ)
    for p in (post(1), bad):  # as the crawl did on their 200 answers
        state.record_http(p.url, etag='"v1"', last_modified=None, now=now)
    stages = standard_stages(settings, es_client, state=state)
    report = IngestService(stages, Spool(settings.paths.data_dir / "spool"), tag="t", state=state).run([post(1), bad])
    assert (report.indexed, report.index_errors) == (1, 1)
    kept, refused = state.get(post(1).url), state.get(bad.url)
    assert kept is not None and kept.etag == '"v1"'  # indexed: a 304 next time is right
    assert refused is not None and refused.etag is None  # not indexed: no If-None-Match, the page comes again


def test_a_replayed_spool_file_with_a_refused_post_is_kept_for_a_person(
    settings: Settings, es_client: Elasticsearch, caplog: pytest.LogCaptureFixture
) -> None:
    settings = no_nlp(settings)
    spool = Spool(settings.paths.data_dir / "spool")
    bad = post(2, author="x" * 40000)  # refused by Elasticsearch (400): replaying it again would not help
    spooled = spool.write([post(1), bad], tag="crawl_test")
    with caplog.at_level(logging.ERROR):
        report = service(settings, es_client).replay_spool()
    assert (report.replayed, report.indexed, report.index_errors) == (2, 1, 1)
    assert spool.files() == [] and not spooled.exists()  # not replayed again and again
    kept = spooled.with_suffix(".rejected")
    posts, unreadable = spool.read(kept)  # the posts of the file are all still there
    assert [p.url for p in posts] == [post(1).url, bad.url] and unreadable == 0
    assert any(str(kept) in r.getMessage() and "1 posts refused" in r.getMessage() for r in caplog.records)


def test_a_refused_request_is_reported_not_spooled_as_elasticsearch_down(
    settings: Settings, es_client: Elasticsearch, caplog: pytest.LogCaptureFixture
) -> None:
    # No indices under this prefix (setup never ran): the duplicate lookup is answered 404.
    missing = no_nlp(settings).model_copy(update={
        "elasticsearch": settings.elasticsearch.model_copy(update={"index_prefix": "yuqing-test-nothing-here"})})
    with caplog.at_level(logging.ERROR):
        report = service(missing, es_client).run([post(1)])
    assert (report.indexed, report.index_errors, report.spooled) == (0, 1, 0)
    (line,) = [r.getMessage() for r in caplog.records if r.name == "ingest.service"]
    assert "refused" in line and "404" in line and post(1).url in line and "unavailable" not in line
    assert Spool(missing.paths.data_dir / "spool").files() == []


def test_what_elasticsearch_cannot_take_now_is_told_from_a_bad_document() -> None:
    def failure(status: int, kind: str, error: str = "x") -> BulkFailure:
        return BulkFailure(doc_id="1", url="http://e.cn/1", status=status, error=error, error_type=kind)

    assert failure(503, "unavailable_shards_exception").for_now
    assert failure(429, "es_rejected_execution_exception").for_now  # still full after streaming_bulk's retries
    assert failure(429, "cluster_block_exception").for_now and failure(403, "cluster_block_exception").for_now
    assert not failure(400, "mapper_parsing_exception").for_now
    assert not failure(400, "document_parsing_exception").for_now
    # Elasticsearch quotes a one-document shard request with its source: the post's text stays out of the log.
    quoted = ("[t-posts-v1][1] primary shard is not active Timeout: [1s], request: [BulkShardRequest "
              '[[t-posts-v1][1]] containing [index {[t-posts-v1][1], source[{"content":"市图书馆讲座"}]}]]')
    assert failure(503, "unavailable_shards_exception", quoted).reason == (
        "[t-posts-v1][1] primary shard is not active Timeout: [1s]")


def test_documents_elasticsearch_cannot_take_now_are_spooled_the_others_written(
    settings: Settings, es_client: Elasticsearch, caplog: pytest.LogCaptureFixture
) -> None:
    """A primary shard of the posts index not active (a node lost, a disk full): its documents are answered 503
    each; they are spooled and indexed by the next replay, the others are written now."""
    settings = no_nlp(settings)
    alias = POSTS.alias(settings.elasticsearch.index_prefix)
    index = current_index(es_client, alias)
    assert index is not None
    es_client.indices.delete(index=index)
    # Two shards, at most one per node: on this one-node cluster shard 1's primary stays unassigned.
    es_client.indices.create(index=index, aliases={alias: {"is_write_index": True}}, wait_for_active_shards="0",
                             settings={"number_of_shards": 2, "index.routing.allocation.total_shards_per_node": 1})
    es_client.cluster.health(index=index, wait_for_active_shards="1", timeout="30s")
    quick = settings.model_copy(update={  # each document answered 503 after 1 s
        "elasticsearch": settings.elasticsearch.model_copy(update={"request_timeout_s": 2})})
    spool = Spool(settings.paths.data_dir / "spool")
    posts = [post(n) for n in range(8)]
    with client_for(quick.elasticsearch) as client:
        service = IngestService(standard_stages(quick, client), spool, tag="t")
        with caplog.at_level(logging.ERROR):
            report = service.run(posts)
        found = {d["_id"] for d in es_client.mget(index=alias, ids=[p.doc_id for p in posts])["docs"]
                 if d.get("found")}
        assert 0 < len(found) < 8  # the documents of shard 0 are written now
        assert (report.indexed, report.spooled, report.index_errors) == (len(found), 8 - len(found), 0)
        (path,) = spool.files()
        assert {p.doc_id for p in spool.read(path)[0]} == {p.doc_id for p in posts} - found  # exactly the others
        (line,) = [r.getMessage() for r in caplog.records if r.name == "ingest.service"]
        assert "could not take posts now" in line and "503 unavailable_shards_exception" in line
        assert str(path) in line and "primary shard is not active" in line
        assert "source[" not in line and "图书馆" not in line  # Elasticsearch's quote of a document: not logged
        assert not [r for r in caplog.records if r.name == "index.writer"]  # not a line per document

        es_client.indices.put_settings(index=index, settings={"index.routing.allocation.total_shards_per_node": None})
        es_client.cluster.health(index=index, wait_for_status="green", timeout="30s")
        replayed = service.replay_spool()
    assert (replayed.replayed, replayed.indexed, replayed.spooled) == (8 - len(found), 8 - len(found), 0)
    assert spool.files() == []
    es_client.indices.refresh(index=alias)
    assert es_client.count(index=alias)["count"] == 8


def no_space(fd: int) -> None:
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def test_a_spool_that_cannot_be_written_counts_the_posts_as_errors_and_raises_nothing(
    settings: Settings, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Elasticsearch down and the disk full: the batch can go nowhere. Said once; the session goes on."""
    down = no_nlp(settings).model_copy(update={
        "elasticsearch": settings.elasticsearch.model_copy(update={"hosts": ["http://127.0.0.1:9"],
                                                                    "request_timeout_s": 1}),
        "crawl": settings.crawl.model_copy(update={"ingest_batch_size": 2, "segment_workers": 0})})
    monkeypatch.setattr(os, "fsync", no_space)
    session = IngestSession(down, source="s", tag="crawl:s")
    with caplog.at_level(logging.ERROR):
        session.open()
        for n in range(3):
            session.add(post(n))
        report = session.close()
    assert (report.received, report.indexed, report.spooled, report.index_errors) == (3, 0, 0, 3)
    spool_dir = down.paths.data_dir / "spool"
    assert [p.name for p in spool_dir.iterdir()] == []  # no spool file, no partial one either
    lines = [r.getMessage() for r in caplog.records if "could not spool" in r.getMessage()]
    assert len(lines) == 2  # one per batch (2 posts, then 1)
    assert f"could not spool 2 posts to {spool_dir} (No space left on device)" in lines[0]
    assert "not indexed — the next crawl fetches them again" in lines[0] and post(0).url in lines[0]


def test_posts_neither_indexed_nor_spooled_are_fetched_in_full_next_time(
    settings: Settings, es_client: Elasticsearch, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = no_nlp(settings)
    state = CrawlState(es_client, CRAWL_STATE.alias(settings.elasticsearch.index_prefix), "s")
    now = datetime.now(TZ)
    state.record_http(post(1).url, etag='"v1"', last_modified=None, now=now)  # as the crawl did on its 200
    spool = Spool(settings.paths.data_dir / "spool")
    earlier = spool.write([post(2)], tag="crawl_s")
    down = settings.elasticsearch.model_copy(update={"hosts": ["http://127.0.0.1:9"], "request_timeout_s": 1})
    monkeypatch.setattr(os, "fsync", no_space)
    with client_for(down) as dead:
        service = IngestService(standard_stages(settings, dead), spool, tag="crawl_s", state=state)
        report = service.run([post(1)])
        replayed = service.replay_spool()
    assert report.index_errors == 1
    page = state.get(post(1).url)
    assert page is not None and page.etag is None  # no If-None-Match next time: no 304, the page comes again
    # A spool file being replayed is the only copy of its posts: it stays for the next replay.
    assert (replayed.replayed, replayed.index_errors, replayed.spooled) == (1, 0, 0)
    assert spool.files() == [earlier] and [p.url for p in spool.read(earlier)[0]] == [post(2).url]


def test_an_import_line_with_a_key_that_is_no_post_field_is_refused_naming_it() -> None:
    from ingest.cli import BadLine, parse_line

    now = datetime(2026, 11, 20, tzinfo=UTC)
    good = {"url": "http://e.cn/a", "title": "t", "content": "正文", "engagement": {"likes": 3},
            "reply": {"text": "已收悉", "unit": "市文化广电旅游局"}}
    assert parse_line(json.dumps(good), 1, source="import", fetched_at=now).engagement.likes == 3
    for extra, field in (({"text": "正文"}, "'text'"), ({"publish_time": "2026-11-20"}, "'publish_time'"),
                         ({"engagement": {"shares": 3}}, "'engagement.shares'"),
                         ({"reply": {"body": "已收悉"}}, "'reply.body'")):
        with pytest.raises(BadLine) as info:
            parse_line(json.dumps({**good, **extra}), 7, source="import", fetched_at=now)
        assert str(info.value).startswith(f"line 7: field {field}: not a field of a post")
    with pytest.raises(BadLine, match="the fields are url, title, content"):  # what the importer meant
        parse_line(json.dumps({"url": "http://e.cn/a", "text": "正文"}), 1, source=None, fetched_at=now)


def test_yuqing_ingest_reads_good_lines_and_names_the_bad_ones(
    settings: Settings, es_client: Elasticsearch, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    lines = [
        json.dumps({"url": "http://e.cn/a", "title": "博物馆夜场开放", "content": "市博物馆周五夜场开放至21点。",
                    "published_at": "2026-11-20T19:00:00+08:00"}, ensure_ascii=False),
        "{not json",
        json.dumps({"url": "http://e.cn/b", "title": "文化馆公益课", "content": "联系电话13812345678",
                    "kind": "article", "source": "import-b"}, ensure_ascii=False),
        json.dumps({"url": "http://e.cn/c", "title": "时间没有时区", "published_at": "2026-11-20T19:00:00"}),
        "",
        json.dumps({"title": "没有网址"}, ensure_ascii=False),
    ]
    path = tmp_path / "posts.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    monkeypatch.setenv("YUQING_ELASTICSEARCH__INDEX_PREFIX", settings.elasticsearch.index_prefix)
    monkeypatch.setenv("YUQING_PATHS__DATA_DIR", str(settings.paths.data_dir))
    monkeypatch.setenv("YUQING_NLP__ENABLED", "false")

    assert main(["ingest", str(path), "--source", "import"]) == 1  # some lines were bad

    captured = capsys.readouterr()
    for problem in ("line 2: not JSON", "line 4: field 'published_at'", "line 6: field 'url'"):
        assert problem in captured.err
    assert "5 lines, 3 bad" in captured.out and "indexed=2" in captured.out
    alias = POSTS.alias(settings.elasticsearch.index_prefix)
    docs = {h["_source"]["url"]: h["_source"] for h in es_client.search(index=alias)["hits"]["hits"]}
    assert set(docs) == {"http://e.cn/a", "http://e.cn/b"}
    assert docs["http://e.cn/a"]["source"] == "import" and docs["http://e.cn/b"]["source"] == "import-b"
    assert "138****5678" in docs["http://e.cn/b"]["content"]  # the same stages as a crawl: redacted
    assert docs["http://e.cn/a"]["content_seg"]
