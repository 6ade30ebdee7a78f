"""人工研判: the pure rules, then against the real Elasticsearch — a judgement written into the indexed post
(search and filters follow it), surviving a re-crawl through the ingest stage, its history and compare-and-set,
refusals, `yuqing judgements list|set|export|reapply`."""

from __future__ import annotations

import csv
import json
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from elasticsearch import Elasticsearch

from index.judgements import JUDGEMENTS, JudgementRecord, judgement_query, judgements_of
from index.layout import POSTS, setup
from index.search import PostQuery, build_search
from index.versioned import ConcurrentUpdateError
from index.writer import index_posts
from ingest.batch import Batch
from ingest.judgements import (
    JudgementError,
    JudgementService,
    PostNotUpdatedError,
    apply_judgement,
    check_judgement,
    next_record,
    post_update,
    shows_judgement,
)
from ingest.judgements_cli import export_format, post_id_of, record_line, since_of
from ingest.service import IngestService, standard_stages
from ingest.spool import Spool
from ingest.stages import ApplyJudgements, Segment
from yuqing.cli import main
from yuqing.models import Analysis, JudgementMark, Post
from yuqing.settings import Settings

TZ = ZoneInfo("Asia/Shanghai")
T0 = datetime(2026, 11, 28, 9, 30, tzinfo=TZ)
TOPICS = ("公共文化设施建设和使用", "文化遗产保护", "文化市场执法")


def analysis(relevant: bool, topic: str | None = None) -> Analysis:
    return Analysis(sentiment="negative", relevant=relevant, relevance_prob=0.8 if relevant else 0.2, topic=topic,
                    model_version="m@1")


def post(n: int = 1, content: str = "文艺路小区夜里KTV太吵，希望有关部门管管。", **kw: object) -> Post:
    return Post(url=f"http://e.cn/msg/{n}", title=f"投诉{n}", content=content, source="board", kind="message",
                fetched_at=T0, **kw)


def record(p: Post, relevant: bool, topic: str | None = None, by: str = "wang", at: datetime = T0) -> JudgementRecord:
    return next_record(None, p, relevant=relevant, topic=topic, by=by, at=at, note=None)


# ---- pure rules --------------------------------------------------------------------------------------------


def test_a_judgement_replaces_the_classifiers_values_and_keeps_them_in_the_mark() -> None:
    p = post(analysis=analysis(True, "文化市场执法"))
    judged = apply_judgement(p, record(p, False))
    assert judged.analysis is not None and (judged.analysis.relevant, judged.analysis.topic) == (False, None)
    assert judged.analysis.sentiment == "negative" and judged.analysis.relevance_prob == 0.8  # the rest untouched
    assert judged.judgement == JudgementMark(relevant=False, topic=None, by="wang", at=T0, model_relevant=True,
                                             model_topic="文化市场执法")
    # Applied again (a spooled post replayed): the classifier's values still come from the mark, not from the
    # analysis the judgement already changed.
    again = apply_judgement(judged, record(judged, False))
    assert again.judgement is not None and again.judgement.model_relevant is True
    assert again.judgement.model_topic == "文化市场执法"


def test_without_an_analysis_only_the_mark_is_set() -> None:
    p = post()
    judged = apply_judgement(p, record(p, True, "公共文化设施建设和使用"))
    assert judged.analysis is None
    assert judged.judgement is not None and judged.judgement.relevant and judged.judgement.model_relevant is None
    assert post_update(record(p, True, "公共文化设施建设和使用"), p) == {"judgement": {
        "relevant": True, "topic": "公共文化设施建设和使用", "by": "wang", "at": T0.isoformat(), "model_relevant": None,
        "model_topic": None}, "event_id": None}  # cleared: the events job counts the person's values


def test_the_topic_rules() -> None:
    assert check_judgement(True, " 文化遗产保护 ", TOPICS) == "文化遗产保护"
    assert check_judgement(True, "", TOPICS) is None  # relevant, topic left open
    assert check_judgement(False, None, TOPICS) is None
    with pytest.raises(JudgementError, match="unknown topic '体育'"):
        check_judgement(True, "体育", TOPICS)
    with pytest.raises(JudgementError, match="no topic"):
        check_judgement(False, "文化遗产保护", TOPICS)


def test_the_history_grows_and_the_note_is_trimmed() -> None:
    p = post(analysis=analysis(True))
    first = record(p, False)
    second = next_record(first, apply_judgement(p, first), relevant=True, topic="公共文化设施建设和使用", by="li",
                         at=T0 + timedelta(hours=1), note="  是图书馆噪音投诉  " + "x" * 600)
    assert [(e.by, e.relevant, e.topic) for e in second.history] == [
        ("wang", False, None), ("li", True, "公共文化设施建设和使用")]
    assert (second.judged_by, second.relevant, second.model_relevant) == ("li", True, True)
    assert second.note is not None and second.note.startswith("是图书馆噪音投诉") and len(second.note) == 500


def test_the_list_query_and_the_cli_helpers() -> None:
    assert judgement_query() == {"match_all": {}}
    q = judgement_query(relevant=True, judged_by="wang", since=T0, differs_from_model=True)
    filters = q["bool"]["filter"]
    assert {"term": {"relevant": True}} in filters and {"term": {"judged_by": "wang"}} in filters
    assert {"range": {"judged_at": {"gte": T0.isoformat()}}} in filters
    assert post_id_of("http://e.cn/msg/1") == post().doc_id and post_id_of(" abc ") == "abc"
    assert since_of("2026-11-28", "Asia/Shanghai") == datetime(2026, 11, 28, tzinfo=TZ)
    assert export_format(Path("a.CSV"), None) == "csv" and export_format(Path("a.txt"), None) == "jsonl"
    assert export_format(Path("a.csv"), "jsonl") == "jsonl"
    p = post(analysis=analysis(True, "文化市场执法"))
    line = record_line(record(p, False), "Asia/Shanghai")
    assert line.startswith("2026-11-28 09:30  wang  不相关  模型：相关（文化市场执法）  投诉1")


def test_the_stage_applies_only_to_judged_posts() -> None:
    a, b = post(1, analysis=analysis(True)), post(2, analysis=analysis(True))
    judged = record(a, False)
    asked: list[list[str]] = []

    def lookup(ids: object) -> dict[str, JudgementRecord]:
        asked.append(list(ids))  # type: ignore[call-overload]
        return {a.doc_id: judged}

    out = ApplyJudgements(lookup).run(Batch([a, b])).posts
    assert asked == [[a.doc_id, b.doc_id]]  # one lookup per batch
    assert out[0].analysis is not None and out[0].analysis.relevant is False and out[0].judgement is not None
    assert out[1] == b


# ---- against Elasticsearch ---------------------------------------------------------------------------------


class Says:
    """A stand-in classifier with a fixed answer (the real one is exercised by the crawl tests)."""

    version = "says@1"

    def __init__(self, relevant: bool, topic: str | None = None) -> None:
        self.relevant, self.topic = relevant, topic

    def analyze(self, texts: list[str]) -> list[Analysis]:
        return [Analysis(sentiment="negative", relevant=self.relevant, relevance_prob=0.9 if self.relevant else 0.1,
                         topic=self.topic, model_version=self.version) for _ in texts]


def _ingest(settings: Settings, client: Elasticsearch, posts: list[Post], says: Says) -> None:
    stages = standard_stages(settings, client, analyzer=says)
    report = IngestService(stages, Spool(settings.paths.data_dir / "spool"), tag="t").run(posts)
    assert report.indexed == len(posts), report.summary()


def _doc(client: Elasticsearch, settings: Settings, p: Post) -> dict[str, object]:
    return dict(client.get(index=POSTS.alias(settings.elasticsearch.index_prefix), id=p.doc_id)["_source"])


def _relevant_ids(client: Elasticsearch, settings: Settings) -> set[str]:
    body = build_search(PostQuery(relevant_only=True, size=50))
    hits = client.search(index=POSTS.alias(settings.elasticsearch.index_prefix), **body)["hits"]["hits"]
    return {h["_id"] for h in hits}


@pytest.fixture()
def service(settings: Settings, es_client: Elasticsearch) -> JudgementService:
    return JudgementService.ready(es_client, settings.elasticsearch, TOPICS)


def test_a_judgement_reaches_the_indexed_post_and_survives_a_recrawl(
    settings: Settings, es_client: Elasticsearch, service: JudgementService
) -> None:
    noise, library = post(1), post(2, content="区图书馆周末不开门，自习室也关了，希望恢复开放。")
    _ingest(settings, es_client, [noise, library], Says(True, "文化市场执法"))
    assert _relevant_ids(es_client, settings) == {noise.doc_id, library.doc_id}

    service.judge(noise.doc_id, relevant=False, topic=None, by="王敏（wang）", at=T0)
    service.judge(library.doc_id, relevant=True, topic="公共文化设施建设和使用", by="王敏（wang）", at=T0)
    assert _relevant_ids(es_client, settings) == {library.doc_id}  # the filters follow the person at once
    doc = _doc(es_client, settings, library)
    assert doc["analysis"]["topic"] == "公共文化设施建设和使用"  # type: ignore[index]
    assert doc["judgement"]["model_topic"] == "文化市场执法"  # type: ignore[index]

    # The page changes and is crawled again: the classifier (still wrong) meets the judgement at ingest.
    changed = post(1, content="文艺路小区夜里KTV太吵，已经第三次投诉了。")
    _ingest(settings, es_client, [changed], Says(True, "文化市场执法"))
    doc = _doc(es_client, settings, changed)
    assert "第三次" in str(doc["content"])
    assert doc["analysis"]["relevant"] is False and doc["judgement"]["by"] == "王敏（wang）"  # type: ignore[index]
    assert doc["judgement"]["model_relevant"] is True  # type: ignore[index]
    assert _relevant_ids(es_client, settings) == {library.doc_id}


def test_history_compare_and_set_and_refusals(settings: Settings, es_client: Elasticsearch,
                                             service: JudgementService) -> None:
    p = post(1)
    _ingest(settings, es_client, [p], Says(False))
    service.judge(p.doc_id, relevant=True, topic=None, by="wang", at=T0, note="文化市场执法范围")
    seen = service.get(p.doc_id)
    assert seen is not None
    service.judge(p.doc_id, relevant=False, topic=None, by="li", at=T0 + timedelta(minutes=5))
    with pytest.raises(ConcurrentUpdateError):  # someone judged after this person looked
        service.judge(p.doc_id, relevant=True, topic="公共文化设施建设和使用", by="zhao", at=T0 + timedelta(minutes=6),
                      expected=seen)
    now = service.get(p.doc_id)
    assert now is not None
    assert [(e.by, e.relevant) for e in now.record.history] == [("wang", True), ("li", False)]
    assert (now.record.model_relevant, now.record.note) == (False, None)
    assert _doc(es_client, settings, p)["analysis"]["relevant"] is False  # type: ignore[index]

    with pytest.raises(JudgementError, match="no post with id 'nope'"):
        service.judge("nope", relevant=True, topic=None, by="wang", at=T0)
    with pytest.raises(JudgementError, match="unknown topic"):
        service.judge(p.doc_id, relevant=True, topic="体育", by="wang", at=T0)
    assert service.latest()[0] == 1


def test_without_a_judgements_index_ingest_goes_on(settings: Settings, es_client: Elasticsearch) -> None:
    prefix = settings.elasticsearch.index_prefix
    assert not es_client.indices.exists_alias(name=JUDGEMENTS.alias(prefix))
    assert judgements_of(es_client, prefix, ["x"]) == {}
    _ingest(settings, es_client, [post(1)], Says(False))


def test_the_cli_sets_lists_exports_and_reapplies(
    settings: Settings, es_client: Elasticsearch, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    posts = [post(1), post(2, content="市博物馆文物修复公开课，报名电话已公布。"), post(3)]
    _ingest(settings, es_client, posts, Says(False))
    monkeypatch.setenv("YUQING_ELASTICSEARCH__INDEX_PREFIX", settings.elasticsearch.index_prefix)
    monkeypatch.setenv("YUQING_PATHS__DATA_DIR", str(settings.paths.data_dir))

    heritage = ["--topic", "文化遗产保护"]
    assert main(["judgements", "set", posts[1].url, "--relevant", "yes", *heritage, "--by", "wang"]) == 0
    assert main(["judgements", "set", posts[0].doc_id, "--relevant", "no", "--by", "li"]) == 0
    assert "wang  相关（文化遗产保护）  模型：不相关" in capsys.readouterr().out
    assert main(["judgements", "set", posts[2].doc_id, "--relevant", "no", *heritage, "--by", "li"]) == 2
    assert "has no topic" in capsys.readouterr().err

    assert main(["judgements", "list", "--differs"]) == 0
    out = capsys.readouterr().out
    assert "相关（文化遗产保护）" in out and "共 1 条" in out
    assert main(["judgements", "list", "--by", "li", "--json"]) == 0
    (line,) = capsys.readouterr().out.splitlines()
    assert json.loads(line)["post_id"] == posts[0].doc_id

    jsonl, table = tmp_path / "labels.jsonl", tmp_path / "labels.csv"
    assert main(["judgements", "export", str(jsonl)]) == 0
    assert "2 judged texts (1 relevant, 1 not relevant)" in capsys.readouterr().out
    rows = {r["post_id"]: r for r in map(json.loads, jsonl.read_text(encoding="utf-8").splitlines())}
    assert rows[posts[1].doc_id]["text"] == f"{posts[1].title}\n{posts[1].content}"
    assert (rows[posts[1].doc_id]["relevant"], rows[posts[1].doc_id]["topic"]) == (True, "文化遗产保护")
    assert rows[posts[0].doc_id]["model_relevant"] is False
    assert main(["judgements", "export", str(table), "--relevant", "yes"]) == 0
    with table.open(encoding="utf-8-sig", newline="") as f:
        (only,) = list(csv.DictReader(f))
    assert (only["post_id"], only["relevant"], only["topic"]) == (posts[1].doc_id, "True", "文化遗产保护")
    assert main(["judgements", "export", str(tmp_path / "missing" / "x.jsonl")]) == 2
    assert "导出目录不存在" in capsys.readouterr().err

    # A crawl that re-indexed a post while it was being judged wrote it without the judgement: reapply mends it.
    bare = Segment().run(Batch([posts[1].model_copy(update={"analysis": analysis(False)})])).posts
    index_posts(es_client, POSTS.alias(settings.elasticsearch.index_prefix), bare, refresh=True)
    assert "judgement" not in _doc(es_client, settings, posts[1])
    assert main(["judgements", "reapply"]) == 0
    assert "2 posts carry their judgement again" in capsys.readouterr().out
    doc = _doc(es_client, settings, posts[1])
    assert doc["analysis"]["relevant"] is True and doc["judgement"]["topic"] == "文化遗产保护"  # type: ignore[index]


def test_a_post_shows_its_judgement_only_when_mark_and_analysis_hold_it() -> None:
    p = post(1, analysis=analysis(True, "文化市场执法"))
    r = record(p, False)
    assert not shows_judgement(p, r)  # never written
    judged = apply_judgement(p, r)
    assert shows_judgement(judged, r)
    later = next_record(r, judged, relevant=True, topic="文化遗产保护", by="li", at=T0 + timedelta(hours=1), note=None)
    assert not shows_judgement(judged, later)  # carries an older judgement
    recrawled = judged.model_copy(update={"analysis": analysis(True, "文化市场执法")})
    assert not shows_judgement(recrawled, r)  # the mark survived, the analysis is the classifier's again
    bare = post(2)  # no analysis (classifier off): the mark is all there is to show
    assert shows_judgement(apply_judgement(bare, record(bare, True)), record(bare, True))


def test_reconcile_writes_only_what_did_not_reach_its_post(
    settings: Settings, es_client: Elasticsearch, service: JudgementService, monkeypatch: pytest.MonkeyPatch
) -> None:
    from elasticsearch import ConnectionError as ESConnectionError

    posts = [post(n) for n in (1, 2, 3)]
    _ingest(settings, es_client, posts, Says(True, "文化市场执法"))
    alias = POSTS.alias(settings.elasticsearch.index_prefix)
    service.judge(posts[0].doc_id, relevant=False, topic=None, by="wang", at=T0)
    old = T0 - timedelta(days=3)
    service.judge(posts[2].doc_id, relevant=False, topic=None, by="wang", at=old)

    # Elasticsearch fails between the two writes: the judgement is stored, the post keeps the classifier's values
    real_update = es_client.update

    def failing_update(**kw: Any) -> Any:
        if kw.get("index") == alias:
            raise ESConnectionError("connection reset while writing the post")
        return real_update(**kw)

    monkeypatch.setattr(es_client, "update", failing_update)
    with pytest.raises(PostNotUpdatedError, match=r"is stored, but writing it into the post failed") as failed:
        service.judge(posts[1].doc_id, relevant=False, topic=None, by="li", at=T0 + timedelta(minutes=1))
    assert failed.value.record.post_id == posts[1].doc_id
    monkeypatch.setattr(es_client, "update", real_update)
    assert service.get(posts[1].doc_id) is not None
    assert _doc(es_client, settings, posts[1])["analysis"]["relevant"] is True  # type: ignore[index]
    # the events job has since read the first post (its event_id set): a post showing its judgement keeps it
    es_client.update(index=alias, id=posts[0].doc_id, doc={"event_id": "ev-1"}, refresh=True)
    # and a re-crawl raced the old judgement: its post is bare again
    bare = Segment().run(Batch([posts[2].model_copy(update={"analysis": analysis(True)})])).posts
    index_posts(es_client, alias, bare, refresh=True)

    assert service.reconcile(since=T0 - timedelta(hours=1)) == 1  # the failed write; the old one is outside
    doc = _doc(es_client, settings, posts[1])
    assert doc["analysis"]["relevant"] is False and doc["judgement"]["by"] == "li"  # type: ignore[index]
    assert _doc(es_client, settings, posts[0])["event_id"] == "ev-1"
    assert "judgement" not in _doc(es_client, settings, posts[2])
    assert service.reconcile(since=None) == 1  # everything: the raced one too
    assert _doc(es_client, settings, posts[2])["analysis"]["relevant"] is False  # type: ignore[index]
    assert service.reconcile(since=None) == 0  # idempotent
    assert _relevant_ids(es_client, settings) == set()


def test_the_judgements_job_runs_before_the_events_update(settings: Settings, es_client: Elasticsearch) -> None:
    from yuqing.service import post_crawl_jobs

    jobs = post_crawl_jobs(settings, alerts=False)
    assert [j.name for j in jobs][:2] == ["judgements", "events"]
    p = post(1)
    _ingest(settings, es_client, [p], Says(True, "文化市场执法"))
    assert jobs[0].run(None) == 0  # before anybody judged: no judgements index, nothing to do
    assert not es_client.indices.exists_alias(name=JUDGEMENTS.alias(settings.elasticsearch.index_prefix))
    now = datetime.now(TZ)
    service = JudgementService.ready(es_client, settings.elasticsearch, TOPICS)
    service.store.create(p.doc_id, record(p, False, at=now))  # stored, never written into the post
    assert jobs[0].run(None) == 1
    assert _doc(es_client, settings, p)["analysis"]["relevant"] is False  # type: ignore[index]
    assert jobs[0].run(None) == 0


def test_setup_creates_the_judgements_index(settings: Settings, es_client: Elasticsearch) -> None:
    made = setup(es_client, settings.elasticsearch, [JUDGEMENTS])
    assert made == {JUDGEMENTS.alias(settings.elasticsearch.index_prefix):
                    JUDGEMENTS.index_name(settings.elasticsearch.index_prefix)}
