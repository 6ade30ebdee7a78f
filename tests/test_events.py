"""Events logic (issue 8): clustering, heat, forecast, risk rules, 专题 expressions, config — pure, no servers."""

from __future__ import annotations

import dataclasses
import itertools
import json
import math
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from events.aggregate import HOUR, EventAggregate
from events.cluster import event_id_for
from events.config import EventsConfig, RiskRule, load_events_config
from events.engine import EventEngine
from events.forecast import forecast_heat, holt_damped, holt_forecast
from events.heat import HeatInputs, heat_of, heat_score
from events.keyword_groups import (
    ExpressionError,
    GroupMatcher,
    es_query,
    load_keyword_groups,
    parse_expression,
)
from events.risk import assess
from events.text import Vocabulary
from events.types import EventPost
from nlp.taxonomy import load_taxonomy
from yuqing.errors import ConfigError
from yuqing.settings import PROJECT_ROOT

TZ = ZoneInfo("Asia/Shanghai")
T0 = datetime(2024, 5, 6, 8, 0, tzinfo=TZ)
CONFIG = PROJECT_ROOT / "config"


def post(pid: str, title: str, text: str = "", hours: float = 0.0, **kw: object) -> EventPost:
    return EventPost(id=pid, title=title, text=text, published_at=T0 + timedelta(hours=hours), **kw)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def cfg() -> EventsConfig:
    return load_events_config(CONFIG / "events.yaml")


def words(text: str) -> list[str]:
    """A predictable segmenter for tests that control the vocabulary exactly."""
    return text.split()


LIBRARY = [
    post("lib-1", "市图书馆突然闭馆装修", "市图书馆今天贴出通知，闭馆装修三个月，读者借阅和自习受影响。", 0,
         kind="social"),
    post("lib-2", "图书馆闭馆三个月，读者不满", "市图书馆闭馆装修三个月，借阅证无法使用，自习的学生无处可去。", 1,
         kind="social"),
    post("ktv-1", "万达KTV深夜噪音扰民", "万达广场KTV每天营业到凌晨三点，噪音扰民，居民无法入睡。", 1.5,
         kind="social"),
    post("lib-3", "市图书馆闭馆装修引发读者投诉", "读者投诉市图书馆闭馆装修时间过长，借阅服务中断。", 3,
         kind="article"),
    post("ktv-2", "万达广场KTV噪音扰民问题", "万达广场KTV凌晨噪音扰民，多次投诉无果。", 4, kind="social"),
]


# ---- clustering -------------------------------------------------------------------------------------------
def test_posts_on_one_matter_join_one_event_named_after_its_first_post(cfg: EventsConfig) -> None:
    engine = EventEngine(cfg)
    results = engine.process_many(LIBRARY)
    ev = {r.post_id: r.event_id for r in results}
    assert ev["lib-1"] == ev["lib-2"] == ev["lib-3"] == event_id_for("lib-1")
    assert ev["ktv-1"] == ev["ktv-2"] == event_id_for("ktv-1")
    assert [r.assignment.how for r in results] == ["new", "joined", "new", "joined", "joined"]


def test_same_posts_in_same_order_give_same_events_and_state(cfg: EventsConfig) -> None:
    a, b = EventEngine(cfg), EventEngine(cfg)
    ra, rb = a.process_many(LIBRARY), b.process_many(LIBRARY)
    assert [(r.post_id, r.event_id, r.score.heat) for r in ra] == [(r.post_id, r.event_id, r.score.heat) for r in rb]
    assert json.dumps(a.to_state(), sort_keys=True) == json.dumps(b.to_state(), sort_keys=True)


def test_rerun_is_idempotent_and_carried_event_ids_are_kept(cfg: EventsConfig) -> None:
    engine = EventEngine(cfg)
    first = engine.process_many(LIBRARY)
    before = json.dumps(engine.to_state(), sort_keys=True)
    again = engine.process_many(LIBRARY)
    assert [r.assignment.how for r in again] == ["known"] * len(LIBRARY)
    assert [r.event_id for r in again] == [r.event_id for r in first]
    assert json.dumps(engine.to_state(), sort_keys=True) == before
    # a post assigned in an earlier run to an event this state no longer holds keeps its event
    old = post("old-1", "市图书馆闭馆装修", "图书馆闭馆", 5, event_id="ev-from-last-year")
    kept = engine.process(old)
    assert kept.event_id == "ev-from-last-year" and kept.assignment.how == "kept"
    assert "ev-from-last-year" not in engine.clusterer.events and "old-1" not in engine.clusterer.assigned


def test_restored_state_continues_exactly_like_an_uninterrupted_run(cfg: EventsConfig) -> None:
    whole = EventEngine(cfg)
    expected = whole.process_many(LIBRARY)
    part = EventEngine(cfg)
    part.process_many(LIBRARY[:3])
    state = json.loads(json.dumps(part.to_state()))  # what goes to Elasticsearch and back
    restored = EventEngine.from_state(cfg, state)
    rest = restored.process_many(LIBRARY[3:])
    assert [r.event_id for r in rest] == [r.event_id for r in expected[3:]]
    assert [round(r.score.heat, 9) for r in rest] == [round(r.score.heat, 9) for r in expected[3:]]
    assert json.dumps(restored.to_state(), sort_keys=True) == json.dumps(whole.to_state(), sort_keys=True)


def test_vocabulary_prune_keeps_the_most_frequent_terms() -> None:
    v = Vocabulary(n_docs=10, df={"图书馆": 6, "闭馆": 3, "甲": 1, "乙": 1, "丙": 2})
    unseen = v.idf("从未出现")
    assert v.prune(5) == 0 and len(v.df) == 5
    assert v.prune(3) == 2
    assert v.df == {"图书馆": 6, "闭馆": 3, "丙": 2} and v.n_docs == 10  # ties at the bound would go by the term
    assert v.idf("甲") == unseen  # a dropped term weighs as an unseen one
    assert Vocabulary(n_docs=2, df={"b": 1, "a": 1, "c": 1}).prune(2) == 1
    w = Vocabulary(n_docs=2, df={"b": 1, "a": 1, "c": 1})
    w.prune(2)
    assert w.df == {"a": 1, "b": 1}


def test_vocabulary_is_saved_as_one_string_and_read_back_in_either_form() -> None:
    v = Vocabulary(n_docs=7, df={"图书馆": 6, "A7县": 2, "tab\tin": 1})
    saved = json.loads(json.dumps(v.to_dict()))
    assert isinstance(saved["terms"], str) and "df" not in saved  # one string field, not a key per term
    back = Vocabulary.from_dict(saved)
    assert back.df == v.df and list(back.df) == list(v.df) and back.n_docs == 7
    assert Vocabulary.from_dict({"n_docs": 7, "df": {"图书馆": 6}}).df == {"图书馆": 6}  # a state saved before
    assert Vocabulary.from_dict(Vocabulary().to_dict()).df == {}
    with pytest.raises(ValueError, match="line break"):
        Vocabulary(n_docs=1, df={"两\n行": 1}).to_dict()


def test_a_bounded_vocabulary_stays_bounded_across_restarts_and_still_joins_a_matter() -> None:
    """Years of posts bring ever new words (names, numbers, one-off slang): past ``max_vocabulary`` the rarest
    are dropped, so the state saved after every batch stops growing; the words of a matter that keeps coming
    back stay, and its posts still join one event; a restart mid-stream continues exactly."""
    cfg = EventsConfig.model_validate({"text": {"title_weight": 1, "stopwords": [], "max_vocabulary": 100}})
    stream = []
    for i in range(300):
        if i % 10 == 0:
            stream.append(post(f"lib-{i}", "", f"图书馆 闭馆 借阅 自习 读者 噪{i}", i * 0.05, kind="social"))
        else:
            stream.append(post(f"n-{i}", "", f"词{i}a 词{i}b 词{i}c 词{i}d 词{i}e", i * 0.05, kind="social"))
    whole = EventEngine(cfg, segment=words)
    sizes = []
    for p_ in stream:
        whole.process(p_)
        sizes.append(len(whole.clusterer.vocab.df))
    assert max(sizes) <= 100 and sizes[-1] >= 90  # bounded, and pruned to 90 % of the bound, not emptier
    assert whole.clusterer.vocab.n_docs == 300
    assert {"图书馆", "闭馆", "借阅"} <= set(whole.clusterer.vocab.df)
    assert len({whole.clusterer.event_of(p_.id) for p_ in stream if p_.id.startswith("lib-")}) == 1
    # a restart from the saved state in the middle continues as if uninterrupted
    part = EventEngine(cfg, segment=words)
    part.process_many(stream[:150])
    restored = EventEngine.from_state(cfg, json.loads(json.dumps(part.to_state())), segment=words)
    restored.process_many(stream[150:])
    assert json.dumps(restored.to_state(), sort_keys=True) == json.dumps(whole.to_state(), sort_keys=True)
    # a state saved without a bound (or under a higher one) is pruned when loaded
    unbounded = EventsConfig.model_validate({"text": {"title_weight": 1, "stopwords": [], "max_vocabulary": 5000}})
    big = EventEngine(unbounded, segment=words)
    big.process_many(stream)
    assert len(big.clusterer.vocab.df) > 1000
    loaded = EventEngine.from_state(cfg, big.to_state(), segment=words)
    assert len(loaded.clusterer.vocab.df) == 90 and "图书馆" in loaded.clusterer.vocab.df


def test_state_delta_lists_changed_and_forgotten_events(cfg: EventsConfig) -> None:
    engine = EventEngine(cfg)
    engine.process_many(LIBRARY[:2])
    first = engine.state_delta()
    assert set(first.events) == {event_id_for("lib-1")} and first.removed == ()
    engine.process(LIBRARY[2])
    assert set(engine.state_delta().events) == {event_id_for("ktv-1")}
    late = post("late", "无关的新话题", "完全不同的内容", 24 * 400, kind="social")
    engine.process(late)  # the clock moves a year on: both events close
    closed = engine.event_ids(status="closed")
    assert set(closed) == {event_id_for("lib-1"), event_id_for("ktv-1")}
    assert engine.prunable(late.published_at.timestamp()) == sorted(closed)  # long closed; the open one stays
    soon = T0 + timedelta(days=cfg.clustering.window_hours.default / 24 + cfg.clustering.state_retention_days - 1)
    assert engine.prunable(soon.timestamp()) == []  # closed less than the retention ago: kept
    engine.prune(closed)
    delta = engine.state_delta()
    assert set(delta.removed) == set(closed) and set(delta.events) == {event_id_for("late")}
    assert engine.process(LIBRARY[0]).assignment.how == "new"  # forgotten, and not carried: a new event


def test_near_duplicate_link_is_a_hard_link_even_after_the_window(cfg: EventsConfig) -> None:
    engine = EventEngine(cfg)
    engine.process_many(LIBRARY[:3])
    dup = post("dup", "完全不同的标题", "转载内容与原文字面不同", 24 * 30, kind="social", duplicate_of="lib-2")
    r = engine.process(dup)
    assert r.event_id == event_id_for("lib-1") and r.assignment.how == "hard_link"
    assert engine.clusterer.events[event_id_for("lib-1")].status == "open"  # closed by the window, reopened


def test_window_and_place_veto_start_new_events(cfg: EventsConfig) -> None:
    engine = EventEngine(cfg)
    a = engine.process(post("a", "A7县星沙图书馆闭馆装修", "A7县星沙图书馆闭馆装修三个月。", 0, kind="social"))
    b = engine.process(post("b", "B2区图书馆闭馆装修", "B2区图书馆闭馆装修三个月。", 1, kind="social"))
    assert a.event_id != b.event_id  # same matter, other county: another event
    c = engine.process(post("c", "A7县星沙图书馆闭馆装修", "A7县星沙图书馆闭馆装修三个月。", 2, kind="social"))
    assert c.event_id == a.event_id
    assert "A7县" in engine.summary(a.event_id).places  # found by clustering when no classifier names are given
    window = cfg.clustering.window_hours.of("social")
    d = engine.process(post("d", "A7县星沙图书馆闭馆装修", "A7县星沙图书馆闭馆装修三个月。", 3 + window, kind="social"))
    assert d.event_id not in (a.event_id, b.event_id)


def test_a_shared_hashtag_links_short_posts_that_share_few_words() -> None:
    cfg = EventsConfig.model_validate({"text": {"title_weight": 1, "stopwords": []}, "clustering": {
        "threshold": 0.3, "hashtag_bonus": 0.25, "hashtag_min_chars": 4, "hashtag_ignore": ["青川文旅资讯"]}})
    def no_tags(text: str) -> list[str]:  # the words only: the 话题 count through the bonus alone
        return [w for w in text.split() if not w.startswith("#")]

    engine = EventEngine(cfg, segment=no_tags)
    first = engine.process(post("w1", "", "aa bb cc dd #青川图书馆闭馆#", 0, kind="social"))
    # one word in common of four (cosine < 0.25 < 0.3) but the same 话题: the same matter
    same = engine.process(post("w2", "", "aa ee ff gg #青川图书馆闭馆#", 1, kind="social"))
    assert same.event_id == first.event_id and 0.3 <= same.assignment.similarity < 0.25 + 0.25
    # the same words without the 话题 do not reach the threshold; a 话题 shared with no word at all neither
    assert engine.process(post("w3", "", "aa hh ii jj", 2, kind="social")).event_id != first.event_id
    assert engine.process(post("w4", "", "kk ll mm #青川图书馆闭馆#", 2, kind="social")).event_id != first.event_id
    # a short 话题 links nothing
    short = engine.process(post("w5", "", "aa nn oo pp #青川#", 3, kind="social"))
    again = engine.process(post("w6", "", "aa qq rr ss #青川#", 4, kind="social"))
    assert again.event_id != short.event_id
    standing = engine.process(post("w8", "", "aa tt uu vv #青川文旅资讯#", 3.5, kind="social"))
    assert engine.process(post("w9", "", "aa ww xx #青川文旅资讯#", 3.6, kind="social")).event_id != standing.event_id
    # the 话题 survive a restart from the saved state, and leave the index when their event closes
    restored = EventEngine.from_state(cfg, engine.to_state(), segment=no_tags)
    assert restored.clusterer.events[first.event_id].tags == {"青川图书馆闭馆": 2}
    assert restored.summary(first.event_id).hashtags == ("青川图书馆闭馆",)  # the record names its 话题
    assert restored.clusterer.tag_postings["青川图书馆闭馆"] == {first.event_id, engine.clusterer.event_of("w4")}
    window = cfg.clustering.window_hours.of("social")
    late = restored.process(post("w7", "", "zz yy", 5 + window, kind="social"))
    assert late.event_id not in (first.event_id, short.event_id) and restored.clusterer.tag_postings == {}


def test_a_hashtag_most_posts_carry_names_the_event(cfg: EventsConfig) -> None:
    engine = EventEngine(cfg)
    texts = ["市图书馆今天突然闭馆，门口贴了告示", "图书馆闭馆，借的书怎么还", "闭馆了，自习室也没了",
             "市图书馆闭馆没有提前通知"]
    tagged = [engine.process(post(f"t{i}", "", f"{t} #青川市图书馆突然闭馆#", i * 0.1, kind="social"))
              for i, t in enumerate(texts[:3])]
    (event_id,) = {r.event_id for r in tagged}
    assert engine.summary(event_id).title == "#青川市图书馆突然闭馆#"
    # carried by fewer than three posts, or by less than half of them: a post's own title names the event
    few = EventEngine(cfg)
    first = few.process(post("f0", "市图书馆今天突然闭馆", f"{texts[0]} #青川市图书馆突然闭馆#", 0, kind="social"))
    few.process(post("f1", "", f"{texts[1]} #青川市图书馆突然闭馆#", 0.1, kind="social"))
    assert not few.summary(first.event_id).title.startswith("#")


def test_merge_of_two_events_is_recorded_and_their_members_move() -> None:
    cfg = EventsConfig.model_validate(
        {"text": {"title_weight": 1, "stopwords": []}, "clustering": {"threshold": 0.3, "merge_threshold": 0.3}}
    )
    engine = EventEngine(cfg, segment=words)
    first = engine.process(post("p1", "", "aa bb cc", 0, kind="social"))
    second = engine.process(post("p2", "", "dd ee ff", 1, kind="social"))
    assert first.event_id != second.event_id
    # closer to the second (younger) event, which takes it; both pass the threshold, so the two merge into
    # the older one
    bridge = engine.process(post("p3", "", "aa bb cc dd ee ff ff", 2, kind="social"))
    (merge,) = bridge.assignment.merges
    assert (merge.source, merge.target, merge.post_id) == (second.event_id, first.event_id, "p3")
    assert merge.members == ("p2", "p3") and engine.clusterer.merges == [merge]
    assert bridge.event_id == first.event_id and bridge.assignment.how == "joined"
    assert engine.clusterer.event_of("p2") == first.event_id
    merged = engine.clusterer.events[second.event_id]
    assert merged.status == "merged" and merged.merged_into == first.event_id
    summary = engine.summary(first.event_id)
    assert summary.count == 3 and summary.merged_from == (second.event_id,)
    assert engine.summary(second.event_id).merged_into == first.event_id  # the merged event keeps a record


def test_summary_fields(cfg: EventsConfig) -> None:
    taxonomy = load_taxonomy(CONFIG / "taxonomy.yaml")
    engine = EventEngine(cfg, unit_of=taxonomy.unit_of)
    posts = [
        post("s1", "市图书馆闭馆装修", "市图书馆闭馆装修三个月，借阅暂停。", 0, source="微博", kind="social",
             likes=10, comments=2, sentiment="negative", relevant=True, topic="公共文化设施建设和使用",
             places=("杭州市",), url="https://weibo.example/s1"),
        post("s2", "图书馆闭馆装修三个月", "市图书馆闭馆装修三个月，读者无处自习。", 2, source="本地新闻",
             kind="article", reposts=4, sentiment="neutral", relevant=True, topic="公共文化设施建设和使用"),
        post("s3", "市图书馆闭馆装修太久", "市图书馆闭馆装修三个月太久了。", 2.5, source="微博", kind="social",
             dislikes=1, relevant=False),
    ]
    results = engine.process_many(posts)
    assert len({r.event_id for r in results}) == 1
    s = engine.summary(results[0].event_id)
    assert s.count == 3 and s.first_post.id == "s1" and s.first_post.source == "微博"
    assert s.first_post.url == "https://weibo.example/s1"
    assert [(x.name, x.count) for x in s.sources] == [("微博", 2), ("本地新闻", 1)]
    assert (s.sentiment.negative, s.sentiment.neutral, s.sentiment.unknown) == (1, 1, 1)
    assert s.negative_share == 0.5
    assert (s.engagement.likes, s.engagement.dislikes, s.engagement.comments, s.engagement.reposts) == (10, 1, 2, 4)
    assert sum(p.posts for p in s.timeline) == 3 and [p.posts for p in s.timeline] == [1, 2]
    assert s.relevance_share == pytest.approx(2 / 3, abs=1e-3)
    assert s.topic == "公共文化设施建设和使用" and s.unit == "公共服务科"
    assert s.places == ("杭州市",) and "图书馆" in s.keywords and "图书馆" in s.title
    assert 0 < s.heat <= 100 and s.risk_level in ("I", "II", "III", "IV") and s.risk_reasons


# ---- heat -------------------------------------------------------------------------------------------------
def _agg(cfg: EventsConfig, posts: list[EventPost]) -> EventAggregate:
    agg = EventAggregate()
    for p in posts:
        agg.add(p, cfg)
    return agg


def _history(n: int, step_h: float, **kw: object) -> list[EventPost]:
    return [post(f"h{i}", "t", "x", i * step_h, kind="social", **kw) for i in range(n)]


@pytest.mark.parametrize("n,step", [(1, 1.0), (3, 0.5), (8, 3.0), (30, 0.2)])
def test_heat_never_drops_when_a_post_arrives_or_engagement_grows(cfg: EventsConfig, n: int, step: float) -> None:
    hist = _history(n, step)
    now_h = (n - 1) * step
    now = (T0 + timedelta(hours=now_h)).timestamp()
    base = heat_of(_agg(cfg, hist), now, cfg.heat)
    for sentiment in ("negative", "neutral", None):
        more = [*hist, post("new", "t", "x", now_h, kind="social", sentiment=sentiment)]
        assert heat_of(_agg(cfg, more), now, cfg.heat) > base
    engaged = [*hist[:-1], post("last", "t", "x", now_h, kind="social", likes=50, reposts=5)]
    assert heat_of(_agg(cfg, engaged), now, cfg.heat) > base
    assert 0 < base < 100


def test_an_old_event_cools_down(cfg: EventsConfig) -> None:
    agg = _agg(cfg, _history(20, 0.25, sentiment="negative", likes=3))
    start = agg.last or 0.0
    heats = [heat_of(agg, start + h * HOUR, cfg.heat) for h in (0, 1, 6, 24, 72, 24 * 14)]
    assert all(b < a for a, b in itertools.pairwise(heats))
    assert heats[-1] < 1.0


def test_heat_terms_are_bounded_and_negative_share_counts() -> None:
    cfg = EventsConfig()
    quiet = HeatInputs(volume=5, engagement=0, negative=0, recent=0, previous=0)
    angry = HeatInputs(volume=5, engagement=0, negative=5, recent=0, previous=0)
    assert heat_score(angry, cfg.heat) > heat_score(quiet, cfg.heat)
    huge = HeatInputs(volume=1e9, engagement=1e12, negative=1e9, recent=1e9, previous=0)
    assert heat_score(huge, cfg.heat) <= 100.0
    assert heat_score(HeatInputs(0, 0, 0, 0, 0), cfg.heat) == 0.0


# ---- forecast ---------------------------------------------------------------------------------------------
def test_holt_damped_level_trend_and_forecast() -> None:
    level, trend = holt_damped([4.0] * 20, 0.5, 0.2, 0.9)
    assert level == pytest.approx(4.0) and trend == pytest.approx(0.0)
    level, trend = holt_damped([float(i) for i in range(20)], 0.5, 0.2, 0.9)
    assert trend > 0.5
    ahead = holt_forecast(level, trend, 0.9, 24)
    assert all(b >= a for a, b in itertools.pairwise(ahead))
    assert ahead[-1] - ahead[0] < trend * 9  # damped: the trend's sum is bounded by phi / (1 - phi)
    assert holt_forecast(1.0, -5.0, 0.9, 6) == [0.0] * 6


def test_forecast_sees_a_growing_event_rise_and_a_silent_one_fall(cfg: EventsConfig) -> None:
    burst = [post(f"b{i}", "t", "x", 10 + i * 0.25, kind="social") for i in range(12)]
    growing = _agg(cfg, burst)
    now = growing.last or 0.0
    heat_now = heat_of(growing, now, cfg.heat)
    h6, h24 = forecast_heat(growing, now, cfg, (6, 24))
    assert h6 > heat_of(growing, now + 6 * HOUR, cfg.heat)  # expects more posts than none
    silent = _agg(cfg, [post("s", "t", "x", 0, kind="social")])
    later = (silent.last or 0.0) + 48 * HOUR
    s6, s24 = forecast_heat(silent, later, cfg, (6, 24))
    assert s24 <= s6 <= heat_of(silent, later, cfg.heat)
    assert 0 <= h24 <= 100 and math.isfinite(heat_now)


# ---- risk -------------------------------------------------------------------------------------------------
def test_risk_level_is_the_most_severe_rule_that_fired_with_its_reasons(cfg: EventsConfig) -> None:
    rules = [
        RiskRule(level="III", reason="热度较高", when={"heat": 40}),
        RiskRule(level="II", reason="热度高且负面", when={"heat": 60, "negative_share": 0.4}),
        RiskRule(level="I", reason="极高", when={"heat": 90}),
    ]
    c = cfg.model_copy(update={"risk": cfg.risk.model_copy(update={"rules": rules})})
    r = assess({"heat": 65.0, "negative_share": 0.55}, c)
    assert r.level == "II" and r.colour == "橙" and r.flagged
    assert r.reasons == ("热度高且负面（热度 65 ≥ 60；负面占比 55% ≥ 40%）",)
    low = assess({"heat": 10.0}, c)
    assert low.level == "IV" and low.reasons == (cfg.risk.default_reason,) and not low.flagged
    sens = RiskRule(level="III", reason="敏感", when={"sensitive": 1})
    c2 = cfg.model_copy(update={"risk": cfg.risk.model_copy(update={"rules": [sens]})})
    assert "敏感词：闭馆、投诉无门" in assess({"sensitive": 2.0}, c2, ["闭馆", "投诉无门"]).reasons[0]


def test_an_event_unrelated_to_the_bureaus_work_stays_at_level_iv(cfg: EventsConfig) -> None:
    hot = {"heat": 90.0, "negative_share": 0.8, "relevance_share": 0.1}
    assert cfg.risk.min_relevance_share == 0.3  # shipped config/events.yaml
    capped = assess(hot, cfg, relevance_known=True)
    assert capped.level == "IV" and not capped.in_scope and not capped.flagged
    assert capped.reasons == (f"{cfg.risk.unrelated_reason}（业务相关占比 10% < 30%）",)
    assert assess({**hot, "relevance_share": 0.3}, cfg, relevance_known=True).level == "I"  # at the floor: related
    # relevance unknown for every member: a low share says nothing, the rules decide
    assert assess(hot, cfg).level == "I" and assess(hot, cfg).in_scope
    off = cfg.model_copy(update={"risk": cfg.risk.model_copy(update={"min_relevance_share": 0.0})})
    assert assess({**hot, "relevance_share": 0.0}, off, relevance_known=True).level == "I"


def test_the_engine_holds_a_viral_unrelated_story_at_iv_and_marks_its_summary(cfg: EventsConfig) -> None:
    def story(relevant: bool) -> list[EventPost]:
        return [post(f"w{relevant}-{i}", f"青川城区大面积停水第{i}天", "青川城区停水，居民投诉无人管，群体聚集维权。",
                     i * 0.1, kind="social", sentiment="negative", relevant=relevant and i % 2 == 0)
                for i in range(40)]

    unrelated, related = EventEngine(cfg), EventEngine(cfg)
    last_u = unrelated.process_many(story(False))[-1]
    last_r = related.process_many(story(True))[-1]
    assert last_r.score.risk.level in ("I", "II") and last_r.score.risk.in_scope  # half relevant: the rules decide
    assert last_u.score.heat == pytest.approx(last_r.score.heat)  # as hot ...
    assert last_u.score.risk.level == "IV" and not last_u.score.risk.in_scope  # ... but not the bureau's
    summary = unrelated.summary(last_u.event_id)
    assert not summary.in_scope and summary.risk_reasons[0].startswith(cfg.risk.unrelated_reason)
    assert related.summary(last_r.event_id).in_scope


def test_an_event_only_the_bureau_published_is_out_of_scope_until_the_public_joins(cfg: EventsConfig) -> None:
    """本局发布: the bureau's own notice, reposted by its own channels, is not public opinion about it; the first
    outside post makes it an event like any other (scored by the rules)."""
    def notice(i: int, own: bool) -> EventPost:
        return post(f"n{i}-{own}", "关于市图书馆闭馆装修的情况说明", "市图书馆闭馆装修三个月，闭馆期间开放临时借阅点。",
                    i * 0.2, kind="article", source="官网" if own else "微博", own=own, relevant=True,
                    sentiment="negative")

    engine = EventEngine(cfg)
    results = engine.process_many([notice(i, True) for i in range(30)])
    eid = results[-1].event_id
    assert {r.event_id for r in results} == {eid}
    risk = results[-1].score.risk
    assert risk.level == "IV" and not risk.in_scope and risk.reasons == (cfg.risk.own_reason,)
    assert engine.aggregates[eid].own == 30 and engine.aggregates[eid].own_only
    assert not engine.summary(eid).in_scope and engine.summary(eid).own_posts == 30
    # the same 30 posts from outside: the rules decide (hot, negative, relevant)
    outside = EventEngine(cfg).process_many([notice(i, False) for i in range(30)])[-1]
    assert outside.score.risk.in_scope and outside.score.risk.level != "IV"
    joined = engine.process(notice(31, False))
    assert joined.event_id == eid and joined.score.risk.in_scope
    assert joined.score.risk.reasons != (cfg.risk.own_reason,)
    # the count survives a save and a merge
    again = EventAggregate.from_dict(engine.aggregates[eid].to_dict())
    assert again.own == 30 and not again.own_only
    legacy = {k: v for k, v in engine.aggregates[eid].to_dict().items() if k != "own"}
    assert EventAggregate.from_dict(legacy).own == 0
    merged = EventAggregate()
    merged.merge(again, cfg)
    assert merged.own == 30


def test_the_bureau_speaking_on_a_matter_never_raises_its_heat_or_level(cfg: EventsConfig) -> None:
    """The bureau's own posts are members of the public's event (size, sources, 本局发布) but its response, not
    opinion: with or without them the event has the same heat, level, sentiment mix and timeline."""
    public = [post(f"p{i}", "市图书馆突然闭馆装修，读者不满", "市图书馆闭馆装修三个月，借阅证无法使用，读者投诉。",
                   i * 0.25, kind="social", sentiment="negative", relevant=True, likes=5 * i)
              for i in range(16)]
    own = [post(f"o{i}", "关于市图书馆闭馆装修的情况说明", "市图书馆闭馆装修三个月，读者借阅证押金可退还，投诉电话。",
                1.1 + i, kind="article", source="官网", sentiment="negative", relevant=True, own=True, likes=500)
           for i in range(3)]
    alone, answered = EventEngine(cfg), EventEngine(cfg)
    last_alone = alone.process_many(public)[-1]
    results = answered.process_many(sorted(public + own, key=lambda p: p.published_at))
    last = results[-1]
    assert {r.event_id for r in results} == {last.event_id}  # the statement joined the public's event
    agg = answered.aggregates[last.event_id]
    assert agg.count == 19 and agg.own == 3 and agg.opinion_count == 16
    assert last.score.heat == pytest.approx(last_alone.score.heat)
    assert last.score.risk.level == last_alone.score.risk.level and last.score.risk.in_scope
    assert last.score.metrics["count"] == 16 and last.score.metrics == pytest.approx(last_alone.score.metrics)
    summary, before = answered.summary(last.event_id), alone.summary(last_alone.event_id)
    assert summary.own_posts == 3 and summary.count == 19 and summary.sentiment == before.sentiment
    assert summary.engagement == before.engagement and summary.timeline == before.timeline
    # seen again with more engagement: still nothing counted for the bureau's post
    assert not agg.update_engagement(dataclasses.replace(own[0], likes=9000), cfg, own[0].published_at.timestamp())


def test_board_reports_count_messages_on_the_matter_within_the_window(cfg: EventsConfig) -> None:
    engine = EventEngine(cfg)
    first = engine.process(post("b1", "K7县五一桥拆除改建廊桥", "反对拆除五一桥改建商业廊桥。", 0))
    assert first.score.metrics["board_reports"] == 1 and not first.score.risk.flagged
    again = engine.process(post("b2", "K7县反对拆除五一桥", "反对拆除五一桥建商业廊桥。", 24 * 10))
    assert again.event_id == first.event_id and again.score.metrics["board_reports"] == 2
    assert again.score.risk.level == "III" and any("两次以上反映" in r for r in again.score.risk.reasons)
    social = engine.process(post("b3", "五一桥拆除改建廊桥", "反对拆除五一桥建商业廊桥。", 24 * 11, kind="social"))
    assert social.score.metrics["board_reports"] == 2  # only message-board posts count
    late = engine.process(post("b4", "K7县五一桥改建廊桥", "反对拆除五一桥改建商业廊桥。", 24 * 110))
    assert late.event_id == first.event_id and late.score.metrics["board_reports"] == 1  # 90-day window


def test_config_errors_name_the_file_and_the_field(tmp_path: Path) -> None:
    bad = tmp_path / "events.yaml"
    bad.write_text("risk:\n  rules:\n    - level: III\n      reason: x\n      when: {hot: 3}\n", encoding="utf-8")
    with pytest.raises(ConfigError) as exc:
        load_events_config(bad)
    assert str(bad) in str(exc.value) and "risk.rules[0].when" in str(exc.value) and "hot" in str(exc.value)
    bad.write_text("clustering:\n  threshold: 2\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"clustering\.threshold"):
        load_events_config(bad)


# ---- 专题 keyword groups ----------------------------------------------------------------------------------
def test_expression_parser() -> None:
    e = parse_expression('图书馆 博物馆 +闭馆 !招聘 "国家 大剧院" +“停 演” ！招标')
    assert e.any == ("图书馆", "博物馆", "国家 大剧院")
    assert e.must == ("闭馆", "停 演") and e.exclude == ("招聘", "招标")
    assert parse_expression(str(e)) == e
    for bad, why in [
        ("", "至少需要一个要匹配的词"),
        ("!招聘", "至少需要一个要匹配的词"),
        ("图书馆 +", "第 5 个字符“\\+”后面缺少词"),
        ('图书馆 "闭馆', "第 5 个字符的引号没有闭合"),
        ("+!闭馆", "连用了两个符号“\\+!”"),
        ("图书馆 !图书馆", "既要求出现又被排除：图书馆"),
        ('图书"馆', "第 3 个字符：引号在词的中间"),
    ]:
        with pytest.raises(ExpressionError, match=why):
            parse_expression(bad)


def test_expression_matching_and_its_query() -> None:
    e = parse_expression("图书馆 博物馆 +闭馆 !招聘")
    assert e.matches("市图书馆闭馆通知", "")
    assert e.matches("通知", "博物馆将闭馆一周")
    assert not e.matches("图书馆开放时间", "")  # must term missing
    assert not e.matches("图书馆闭馆期间招聘志愿者", "")  # excluded
    assert not e.matches("体育馆闭馆", "")  # no any term
    q = es_query(e)["bool"]
    assert q["minimum_should_match"] == 1
    assert {"match_phrase": {"content": "博物馆"}} in q["should"]
    assert q["filter"] == [
        {"bool": {"should": [{"match_phrase": {"title": "闭馆"}}, {"match_phrase": {"content": "闭馆"}}],
                  "minimum_should_match": 1}}
    ]
    assert {"match_phrase": {"title": "招聘"}} in q["must_not"]
    assert "should" not in es_query(parse_expression("+闭馆"))["bool"]


def test_keyword_groups_file(tmp_path: Path) -> None:
    shipped = load_keyword_groups(CONFIG / "keyword_groups.yaml")
    matcher = GroupMatcher(shipped.groups)
    assert "图书馆闭馆" in matcher.match("市图书馆闭馆装修", "")
    bad = tmp_path / "keyword_groups.yaml"
    bad.write_text("groups:\n  - name: 好的\n    expression: 图书馆\n  - name: 坏的\n    expression: '图书馆 +'\n",
                   encoding="utf-8")
    with pytest.raises(ConfigError) as exc:
        load_keyword_groups(bad)
    msg = str(exc.value)
    assert str(bad) in msg and "groups[1].expression" in msg and "坏的" in msg
    assert load_keyword_groups(tmp_path / "absent.yaml").groups == []


def test_a_batch_reports_changed_events_and_posts_to_relabel() -> None:
    cfg = EventsConfig.model_validate(
        {"text": {"title_weight": 1, "stopwords": []}, "clustering": {"threshold": 0.3, "merge_threshold": 0.3}}
    )
    engine = EventEngine(cfg, segment=words)
    first = engine.process_batch([post("p1", "", "aa bb cc", 0, kind="social"), post("p2", "", "dd ee ff", 1,
                                                                                        kind="social")])
    e1, e2 = event_id_for("p1"), event_id_for("p2")
    assert first.changed_events == tuple(sorted((e1, e2))) and first.event_of == {"p1": e1, "p2": e2}
    second = engine.process_batch([post("p3", "", "aa bb cc dd ee ff ff", 2, kind="social"),
                                   post("p1", "", "aa bb cc", 0, kind="social")])  # p1 again: nothing to do
    assert second.changed_events == tuple(sorted((e1, e2)))  # e2 was merged into e1: both records change
    assert second.event_of == {"p3": e1, "p2": e1}
    quiet = engine.process_batch([], now=(T0 + timedelta(days=4)).timestamp())  # social posts only: 72 h window
    assert quiet.changed_events == (e1,) and engine.clusterer.events[e1].status == "closed"


def test_labelled_pairs_fixture_is_sound(shared_data: Path) -> None:
    import csv

    held = {line.strip() for line in (shared_data / "gov_messages" / "holdout_ids.csv").read_text().splitlines()[1:]}
    with (PROJECT_ROOT / "tests" / "fixtures" / "event_pairs.csv").open(encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) >= 220 and set(rows[0]) == {"id_a", "id_b", "label", "split", "stratum", "reason"}
    assert {r["label"] for r in rows} == {"same", "different"} and {r["split"] for r in rows} == {"dev", "test"}
    assert {r["stratum"] for r in rows} == {"high", "medium", "low"} and all(r["reason"] for r in rows)
    ids = {r["id_a"] for r in rows} | {r["id_b"] for r in rows}
    assert not ids & held, "held-out messages must never be labelled"
    halves = {s: {r[k] for r in rows if r["split"] == s for k in ("id_a", "id_b")} for s in ("dev", "test")}
    assert not halves["dev"] & halves["test"]  # no message in both halves
    assert len({(r["id_a"], r["id_b"]) for r in rows}) == len(rows)
