"""Pure parts of 总览 and 检索: the 专题 expression in the posts query, the default window, the chart data."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from dashboard.summaries import apply_expression, default_window_label, volume_frame
from events.keyword_groups import parse_expression
from index.events import OUT_OF_SCOPE_QUERY
from index.overview import DataSpan, VolumePoint, build_top_events, interval_for
from index.search import PostQuery, build_query, build_sort, highlight_terms

LABELS = ["近24小时", "近7天", "近30天", "全部"]


def _phrases(clause: dict) -> list[str]:
    return [c["match_phrase"]["content"]["query"] for c in clause["bool"]["should"] if "content" in c["match_phrase"]]


def test_expression_becomes_must_any_and_must_not_phrases() -> None:
    q = apply_expression(PostQuery(), parse_expression('图书馆 博物馆 +闭馆 !招聘 "周末 开放"'))
    body = build_query(q)["bool"]
    must = body["must"]
    assert _phrases(must[0]) == ["闭馆"]
    assert [_phrases(c)[0] for c in must[1]["bool"]["should"]] == ["图书馆", "博物馆", "周末 开放"]
    assert must[1]["bool"]["minimum_should_match"] == 1
    assert [_phrases(c)[0] for c in body["must_not"]] == ["招聘"]
    assert highlight_terms(q) == ["闭馆", "图书馆", "博物馆", "周末 开放"]
    assert build_sort(apply_expression(PostQuery(sort="relevance"), parse_expression("+闭馆")))[0] == {
        "_score": {"order": "desc"}}
    assert build_query(apply_expression(q, None)) == {"match_all": {}}


def test_filters_for_unit_group_and_events_of_a_risk_level() -> None:
    filters = build_query(PostQuery(units=("公共服务科",), groups=("场馆开放",), event_ids=(),
                                    irrelevant_only=True))["bool"]["filter"]
    assert {"terms": {"reply.unit": ["公共服务科"]}} in filters
    assert {"terms": {"keyword_groups": ["场馆开放"]}} in filters
    assert {"terms": {"event_id": []}} in filters  # a risk level without events matches no post
    assert {"term": {"analysis.relevant": False}} in filters
    assert "filter" not in str(build_query(PostQuery(event_ids=None)))


def test_default_window_is_the_shortest_that_holds_posts() -> None:
    def span(**counts: int) -> DataSpan:
        return DataSpan(in_window={"近24小时": counts.get("d", 0), "近7天": counts.get("w", 0),
                                   "近30天": counts.get("m", 0)}, first=None, last=None, total=counts.get("all", 0))

    assert default_window_label(span(d=3, w=5, m=5, all=5), LABELS) == "近24小时"
    assert default_window_label(span(w=2, m=2, all=2), LABELS) == "近7天"
    assert default_window_label(span(all=40), LABELS) == "全部"  # only old posts: all of them, never zeros
    assert interval_for(timedelta(days=1)) == "hour" and interval_for(timedelta(days=30)) == "day"
    assert interval_for(timedelta(days=400)) == "week" and interval_for(timedelta(days=2000)) == "month"


def test_volume_frame_fills_every_sentiment_of_every_bucket() -> None:
    t0 = datetime(2026, 11, 29, 16, tzinfo=UTC)  # 00:00 on the 30th in Shanghai
    frame = volume_frame([VolumePoint(t0, "negative", 3), VolumePoint(t0 + timedelta(days=1), "unanalysed", 1)],
                         "Asia/Shanghai", "day")
    assert list(frame["时间"].unique()) == ["2026-11-30", "2026-12-01"]
    first = frame[frame["时间"] == "2026-11-30"]
    assert dict(zip(first["情感"], first["条数"], strict=True)) == {"负面": 3, "中性": 0, "正面": 0, "未分析": 0}
    assert frame["条数"].sum() == 4


def test_top_events_are_open_recent_and_hottest_first() -> None:
    since = datetime(2026, 11, 29, tzinfo=UTC)
    body = build_top_events(since, 5, ["I", "II"])
    assert body["sort"][0] == {"heat": "desc"} and body["size"] == 5
    assert {"term": {"status": "open"}} in body["query"]["bool"]["filter"]
    assert {"range": {"last_post_at": {"gte": since.isoformat()}}} in body["query"]["bool"]["filter"]
    assert body["query"]["bool"]["must_not"] == [OUT_OF_SCOPE_QUERY]  # 与本局业务无关: not on 总览
