"""The 人工研判 page with AppTest against the real Elasticsearch: the queues (模型拿不准 by the configured
threshold and margin, 模型判为相关), a press officer's judgement written into the post and leaving the queue, the
已研判 list and its CSV, one post by ``?post=``, the 研判 links of 检索, and leaders reading only."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import streamlit as st
from elasticsearch import Elasticsearch
from streamlit.testing.v1 import AppTest

from dashboard.judging import JudgedFilter, evidence_line, judged_csv, judged_query, queue_query, topic_choice
from index.judgements import JUDGEMENTS
from index.layout import POSTS, setup
from index.search import build_sort
from ingest.judgements import JudgementService, next_record
from nlp.taxonomy import RuleEvidence
from tests.conftest import seed_posts
from tests.test_dashboard_app import _run, app_env, on_search, shown_titles, signed_in
from yuqing.models import Analysis, Post
from yuqing.settings import NLPSettings, Settings

__all__ = ["app_env"]  # fixture

PAGE = "views/judge.py"
UNSURE, SURE, NOISE = "文艺路小区广场舞扰民何时能管", "市图书馆古籍修复室对外开放", "某商场周末促销活动"
FAIRLY = "区文化馆周末公益课报名"


def _post(n: int, title: str, prob: float, *, hours_ago: float, topic: str | None = None) -> Post:
    now = datetime.now(UTC)
    relevant = prob >= NLPSettings().relevance_threshold
    a = Analysis(sentiment="neutral", relevant=relevant, relevance_prob=prob, topic=topic, model_version="m@1")
    return Post(url=f"http://e.cn/j/{n}", title=title, content=f"{title}。详情见正文。", source="board", kind="message",
                published_at=now - timedelta(hours=hours_ago), fetched_at=now, analysis=a)


@pytest.fixture()
def posts(app_env: Settings, es_client: Elasticsearch) -> list[Post]:
    """Four posts: one the model is unsure of (0.30, not relevant but within 0.15 of the default threshold), two
    it calls relevant (0.95, and an older one at 0.60), one clearly not (0.02); no judgements yet."""
    setup(es_client, app_env.elasticsearch, [POSTS, JUDGEMENTS])
    out = [_post(1, UNSURE, 0.30, hours_ago=1), _post(2, SURE, 0.95, hours_ago=2, topic="文化遗产保护"),
           _post(3, NOISE, 0.02, hours_ago=3), _post(4, FAIRLY, 0.60, hours_ago=5)]
    seed_posts(es_client, app_env, out)
    return out


def _page(username: str, **params: str) -> AppTest:
    at = _run(signed_in(username=username))
    at.switch_page(PAGE)
    for k, v in params.items():
        at.query_params[k] = v
    return _run(at)


def _doc(es_client: Elasticsearch, settings: Settings, post: Post) -> dict[str, dict[str, object]]:
    return dict(es_client.get(index=POSTS.alias(settings.elasticsearch.index_prefix), id=post.doc_id)["_source"])


def test_the_queues_and_pure_helpers() -> None:
    q = queue_query("uncertain", threshold=0.3599, margin=0.15, size=20)
    assert (q.judged, q.exclude_duplicates, q.relevance_prob, q.relevant_only) == (False, True, (0.2099, 0.5099), False)
    assert queue_query("uncertain", threshold=0.1, margin=0.15, size=5).relevance_prob == (0.0, 0.25)
    relevant = queue_query("model_relevant", threshold=0.5, margin=0.1, size=5)
    assert relevant.relevant_only and relevant.sort == "least_sure"
    assert build_sort(relevant)[0] == {"analysis.relevance_prob": {"order": "asc", "missing": "_last",
                                                                    "unmapped_type": "float"}}
    with pytest.raises(ValueError, match="unknown queue"):
        queue_query("everything", threshold=0.5, margin=0.1, size=5)
    assert (topic_choice(True, "版权"), topic_choice(True, "（暂不确定）"), topic_choice(False, "版权")) == (
        "版权", None, None)
    assert judged_query(JudgedFilter(relevant=False), None) == {"bool": {"filter": [{"term": {"relevant": False}}],
                                                                       "must_not": []}}
    a = Analysis(sentiment="neutral", relevant=True, relevance_prob=0.912, model_version="m@1")
    hit = RuleEvidence(hits=("图书馆", "闭馆"), weak=("投诉",), ignored=(), silenced=(), abroad=False)
    assert evidence_line(a, hit, 0.3557) == "模型相关概率 0.91（阈值 0.36） · 关键词规则命中：图书馆、闭馆"
    none = RuleEvidence(hits=(), weak=("噪音", "投诉"), ignored=("文化路",), silenced=("KTV",), abroad=False)
    assert evidence_line(None, none, 0.5) == ("关键词规则未命中（仅泛用词：噪音、投诉） · 扰民投诉中不计：KTV · "
                                              "地名或转发者不计：文化路")
    abroad = RuleEvidence(hits=("博物馆",), weak=(), ignored=(), silenced=(), abroad=True)
    assert evidence_line(None, abroad, 0.5) == "关键词规则：涉及境外，不计"
    many = RuleEvidence(hits=tuple("甲乙丙丁戊己庚"), weak=(), ignored=(), silenced=(), abroad=False)
    assert evidence_line(None, many, 0.5, shown=3) == "关键词规则命中：甲、乙、丙等"


def test_a_press_officer_judges_from_the_queue(app_env: Settings, es_client: Elasticsearch,
                                               posts: list[Post]) -> None:
    unsure = posts[0]
    at = _page("press")
    assert shown_titles(at) == [UNSURE]  # 模型拿不准: only the post near the threshold
    # why the model was unsure: its probability, and what the keyword rules read past (an address, a nuisance)
    (why,) = [c.value for c in at.caption if "模型相关概率" in c.value]
    assert why.startswith("模型相关概率 0") and "关键词规则未命中" in why
    assert "扰民投诉中不计：广场舞" in why and "地名或转发者不计：文艺路" in why
    at.radio(key="judge_queue").set_value("model_relevant")
    _run(at)
    assert shown_titles(at) == [FAIRLY, SURE]  # least sure first, not newest first

    at.radio(key="judge_queue").set_value("uncertain")
    _run(at)
    at.radio(key=f"judge-rel-{unsure.doc_id}").set_value("相关")
    at.selectbox(key=f"judge-topic-{unsure.doc_id}").set_value("公共文化设施建设和使用")
    at.text_input(key=f"judge-note-{unsure.doc_id}").input("广场在文化馆门前，属场馆管理")
    at.button(key=f"judge-save-{unsure.doc_id}").click()
    _run(at)
    assert any("研判为相关（公共文化设施建设和使用）" in s.value for s in at.success)
    doc = _doc(es_client, app_env, unsure)
    assert doc["analysis"]["relevant"] is True and doc["analysis"]["topic"] == "公共文化设施建设和使用"
    assert doc["judgement"]["by"] == "宣传小王（press）" and doc["judgement"]["model_relevant"] is False
    assert shown_titles(at) == []  # judged: out of the queue at once (cached queries were dropped)
    assert any("该队列暂无待研判的舆情" in i.value for i in at.info)

    # 已研判: the judgement against the model's call, and the CSV of the list.
    judged_md = "\n".join(m.value for m in at.markdown)
    assert UNSURE in judged_md
    assert "人工研判：相关·公共文化设施建设和使用 · 模型：不相关 · 宣传小王（press）" in judged_md
    assert "共 1 条研判" in judged_md
    assert [d.proto.label for d in at.get("download_button")] == ["下载全部 1 条研判记录（CSV）"]  # bytes: below
    at.checkbox(key="judged_differs").check()
    _run(at)
    assert "共 1 条研判" in "\n".join(m.value for m in at.markdown)  # the person differs from the model
    at.radio(key="judged_relevance").set_value("不相关")
    _run(at)
    assert any("暂无人工研判记录" in i.value for i in at.info)


def test_a_judgement_whose_post_write_fails_is_kept_and_reaches_the_post_later(
        app_env: Settings, es_client: Elasticsearch, posts: list[Post], monkeypatch: pytest.MonkeyPatch) -> None:
    from elasticsearch import ConnectionError as ESConnectionError

    unsure = posts[0]
    alias = POSTS.alias(app_env.elasticsearch.index_prefix)
    real_update = Elasticsearch.update

    def failing_update(self: Elasticsearch, **kw: Any) -> Any:
        if kw.get("index") == alias:  # Elasticsearch fails between storing the judgement and writing the post
            raise ESConnectionError("connection reset while writing the post")
        return real_update(self, **kw)

    at = _page("press")
    monkeypatch.setattr(Elasticsearch, "update", failing_update)
    at.radio(key=f"judge-rel-{unsure.doc_id}").set_value("不相关")
    at.button(key=f"judge-save-{unsure.doc_id}").click()
    _run(at)
    monkeypatch.setattr(Elasticsearch, "update", real_update)
    # not "研判未保存": it was stored, and a second try would meet it as someone else's judgement
    assert any("研判已保存，但写入该条舆情时出错" in w.value for w in at.warning)
    assert not [e for e in at.error if "研判未保存" in e.value]
    service = JudgementService.ready(es_client, app_env.elasticsearch, [])
    stored = service.get(unsure.doc_id)
    assert stored is not None and stored.record.judged_by == "宣传小王（press）"
    assert "judgement" not in _doc(es_client, app_env, unsure)
    assert service.reconcile() == 1  # the post-crawl job `judgements`
    doc = _doc(es_client, app_env, unsure)
    assert doc["analysis"]["relevant"] is False and doc["judgement"]["by"] == "宣传小王（press）"


def test_a_leader_reads_only_and_one_post_opens_by_id(app_env: Settings, es_client: Elasticsearch,
                                                      posts: list[Post]) -> None:
    _, sure, noise, _ = posts


    service = JudgementService.ready(es_client, app_env.elasticsearch, ["文化遗产保护"])
    service.judge(noise.doc_id, relevant=False, topic=None, by="宣传小王（press）",
                  at=datetime.now(UTC).replace(microsecond=0), note="商场促销，与本局无关")

    leader = _page("leader")
    assert any("可查看人工研判结果" in i.value for i in leader.info)
    assert shown_titles(leader) == [UNSURE] and not [b for b in leader.button if b.label == "保存研判"]
    assert "人工研判：不相关 · 模型：不相关 · 宣传小王（press）" in "\n".join(m.value for m in leader.markdown)

    press = _page("press", post=sure.doc_id)
    assert shown_titles(press)[0] == SURE  # the asked-for post first, with its form preset to the model's call
    assert press.radio(key=f"judge-rel-{sure.doc_id}").value == "相关"
    assert press.selectbox(key=f"judge-topic-{sure.doc_id}").value == "文化遗产保护"
    press.radio(key=f"judge-rel-{sure.doc_id}").set_value("不相关")
    press.button(key=f"judge-save-{sure.doc_id}").click()
    _run(press)
    doc = _doc(es_client, app_env, sure)
    assert doc["analysis"]["relevant"] is False and doc["analysis"]["topic"] is None
    assert doc["judgement"]["model_topic"] == "文化遗产保护"
    card = next(m.value for m in press.markdown if SURE in m.value)
    assert "人工研判" in card and "非相关" in card  # the card's badges now show the person's call

    # the asked-for post is also in the queue shown below: its form appears once (no duplicate widget keys)
    both = _page("press", post=posts[3].doc_id)
    both.radio(key="judge_queue").set_value("model_relevant")
    _run(both)
    assert shown_titles(both) == [FAIRLY]  # above; below, SURE was judged 不相关 and left the queue

    missing = _page("press", post="no-such-post")
    assert any("未找到该舆情" in w.value for w in missing.warning)


def test_search_links_to_the_judge_page_for_those_who_may_judge(app_env: Settings, posts: list[Post]) -> None:
    press = on_search("press")
    links = [p for p in press.get("page_link") if p.proto.label in ("人工研判", "修改人工研判")]
    assert len(links) == len(posts)
    assert {p.proto.query_string for p in links} == {f"post={p.doc_id}" for p in posts}
    leader = on_search("leader")
    assert not [p for p in leader.get("page_link") if p.proto.label == "人工研判"]


def test_the_judged_csv_masks_for_the_viewer() -> None:
    p = _post(9, "=SUM(A1) 读者13812345678反映", 0.4, hours_ago=1)
    r = next_record(None, p, relevant=True, topic="版权", by="宣传小王（press）",
                    at=datetime(2026, 11, 28, 1, 30, tzinfo=UTC), note="电话13812345678")
    r = r.model_copy(update={"note": "\t=1+1 电话13812345678"})  # as a record may hold it (notes are trimmed)
    data = judged_csv([r], "Asia/Shanghai", lambda t: t.replace("13812345678", "138****5678"))
    rows = list(csv.reader(io.StringIO(data.decode("utf-8-sig"))))
    assert rows[0][:3] == ["研判时间", "研判人", "人工结论"]
    assert rows[1][:6] == ["2026-11-28 09:30", "宣传小王（press）", "相关", "版权", "相关", ""]
    assert rows[1][8] == "'=SUM(A1) 读者138****5678反映" and rows[1][10] == "'\t=1+1 电话138****5678"  # a tab first too


def test_elasticsearch_down_is_a_clear_message(app_env: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    import socket

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv("YUQING_ELASTICSEARCH__HOSTS", f'["http://127.0.0.1:{port}"]')
    at = _run(signed_in(username="press"))
    at.switch_page(PAGE)
    _run(at)
    assert [e.value for e in at.error] and "无法连接舆情数据库" in at.error[0].value
    assert not at.get("form") and shown_titles(at) == []


def test_the_overview_counts_what_waits_for_a_judgement(app_env: Settings, es_client: Elasticsearch,
                                                         posts: list[Post]) -> None:
    def waiting(at: AppTest) -> dict[str, object]:
        return {m.label: m.value for m in at.metric if m.label.startswith("待研判·")}

    press = _run(signed_in(username="press"))  # the app opens on 总览
    assert waiting(press) == {"待研判·模型判为相关（待确认）": "2", "待研判·模型拿不准": "1"}
    assert [p.proto.label for p in press.get("page_link")] == ["去人工研判"]
    JudgementService.ready(es_client, app_env.elasticsearch, []).judge(
        posts[1].doc_id, relevant=False, topic=None, by="宣传小王（press）", at=datetime.now(UTC))
    st.cache_data.clear()  # as after dashboard.cache_ttl_s (the judgement was made outside this session)
    leader = _run(signed_in(username="leader"))
    assert waiting(leader) == {"待研判·模型判为相关（待确认）": "1", "待研判·模型拿不准": "1"}
    assert not leader.get("page_link")  # leaders read; they do not judge
