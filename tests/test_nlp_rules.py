"""Pure functions of nlp/: taxonomy rules, label mapping, vocabulary, batching, keywords, losses."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from nlp import data, taxonomy
from nlp.inference import length_batches, softmax
from nlp.keywords import merge_entities, tfidf_keywords
from nlp.vocab import SPECIAL_TOKENS, build_char_vocab
from yuqing.errors import ConfigError

ROOT = Path(__file__).resolve().parent.parent
TAXONOMY = ROOT / "config" / "taxonomy.yaml"
FOCUS_AREAS = [
    "公共文化服务保障政策",
    "公共文化服务体系建设",
    "财政资金投入和使用",
    "公共文化设施建设和使用",
    "政府购买公共文化服务",
    "文化遗产保护",
    "公共文化设施名录",
    "公益性文化服务活动",
    "受捐款物管理使用",
    "文化产业发展专项资金",
    "版权",
    "文化市场执法",
]


@pytest.fixture(scope="module")
def tax() -> taxonomy.Taxonomy:
    return taxonomy.load_taxonomy(TAXONOMY)


def test_shipped_taxonomy_has_the_focus_areas_with_units_and_rules(tax):
    assert tax.names == FOCUS_AREAS
    assert all(c.unit and c.keywords for c in tax.categories)
    assert tax.unit_of("版权") == next(c.unit for c in tax.categories if c.name == "版权")
    assert tax.unit_of("no such category") is None


def test_bad_taxonomy_raises_config_error_naming_file_and_field(tmp_path):
    bad = tmp_path / "taxonomy.yaml"
    bad.write_text("categories:\n  - name: 版权\n    keywords: [版权]\n", encoding="utf-8")
    with pytest.raises(ConfigError) as err:
        taxonomy.load_taxonomy(bad)
    assert str(bad) in str(err.value) and "categories[0].unit" in str(err.value)
    dup = tmp_path / "dup.yaml"
    dup.write_text(
        "categories:\n  - {name: a, unit: u, keywords: [x]}\n  - {name: a, unit: u, keywords: [y]}\n", encoding="utf-8"
    )
    with pytest.raises(ConfigError, match="unique"):
        taxonomy.load_taxonomy(dup)


def test_rule_scores_topic_and_distribution():
    t = taxonomy.Taxonomy(
        categories=[
            taxonomy.Category(name="A", unit="u1", keywords=["图书馆", "借阅"]),
            taxonomy.Category(name="B", unit="u2", keywords=["网吧"], weight=3.0),
        ],
        min_rule_score=1.0,
    )
    assert taxonomy.rule_scores("图书馆借阅证", t) == {"A": 2.0}
    assert taxonomy.rule_topic("图书馆旁边的网吧", t) == "B"  # weight 3 beats one hit of A
    assert taxonomy.rule_topic("今天天气很好", t) is None
    dist = taxonomy.rule_distribution("图书馆旁边的网吧", t)
    assert math.isclose(sum(dist.values()), 1.0) and dist["B"] == pytest.approx(0.75)
    assert taxonomy.rule_distribution("无关", t) == {}


def test_rule_relevance_ignores_weak_keywords(tax):
    assert taxonomy.rule_relevant("市图书馆周末延长开放时间", tax)
    assert not taxonomy.rule_relevant("小区施工噪音扰民，请求处罚", tax)  # only generic words
    assert taxonomy.combine_relevance(0.2, False, 0.9) == 0.2
    assert taxonomy.combine_relevance(0.2, True, 0.9) == pytest.approx(1 - 0.8 * 0.1)



@pytest.mark.parametrize(("text", "relevant"), [
    # an address named after culture is no evidence; a culture institution of the same words is
    ("受文艺路施工影响，6路公交临时绕行，文艺路沿线站点暂停停靠", False),
    ("文化小区停车难问题由来已久，请求施划车位", False),
    ("文化广场商场停车收费过高", False),
    ("乡镇文化站今晚有免费书法培训", True),
    ("历史文化街区的古建筑修缮进展如何？", True),
    # the author of a repost says nothing about the post; a library's own words still count
    ("开学又延期了//@考古系学生:家里蹲第三十天", False),
    ("转发//@青川市图书馆:本馆明日起闭馆三天，借阅到期顺延", True),
    # a venue only as a nuisance is not the bureau's work; its licensing or minors admitted is
    ("楼下那家KTV又唱到凌晨两点，窗户关死了都能听到", False),
    ("小区广场舞噪音太大，晚上十点还在跳", False),
    ("楼下KTV无证经营还天天扰民，希望文化执法部门查一查", True),
    ("小区里的网吧深夜吵闹，还接纳未成年人上网", True),
    ("图书馆旁边工地噪音太大，自习室没法看书", True),  # the library is not the nuisance
    ("凌晨一点半，文化路KTV门口又有人在吵架，楼下的车被砸了", False),
    ("那家KTV门口搞驻唱演出，天天唱到一两点，还让不让人睡觉", False),
    ("文化广场的商场停车太贵了", False),  # 文化广场 alone: as often a shopping area as a cultural square
    ("文化广场今晚有惠民演出", True),
    # culture abroad is not the bureau's work, unless the text is also about home
    ("巴黎一家博物馆向裸体主义者免费开放参观", False),
    ("考古学家在德国发现5千年前的鞋子", False),
    ("日本首相参观故宫文创展", True),
    ("市博物馆借展的英国文物今起展出", True),
    # a sports venue open free of charge is not a cultural facility
    ("A7县为何没有对中小学生免费开放游泳馆", False),
    ("市美术馆周一起免费开放", True),
])
def test_rule_relevance_reads_past_addresses_repost_authors_and_nuisances(tax, text, relevant):
    assert taxonomy.rule_relevant(text, tax) is relevant


def test_ignored_text_and_silenced_keywords_leave_the_topic_scores_too(tax):
    assert "公共文化服务体系建设" not in taxonomy.rule_scores("文化广场商场停车收费过高", tax)
    assert "公共文化服务体系建设" in taxonomy.rule_scores("文化广场周末有惠民演出", tax)
    assert taxonomy.rule_text("家住文艺路，//@某人:你好", tax) == "家住 ， 你好"
    assert taxonomy.rule_scores("巴黎一家博物馆闭馆", tax) == {}
    assert "文化市场执法" not in taxonomy.rule_scores("楼下KTV唱到半夜", tax)
    assert "文化市场执法" in taxonomy.rule_scores("楼下KTV无证经营唱到半夜", tax)


def test_rule_evidence_says_what_counted_and_what_did_not(tax):
    e = taxonomy.rule_evidence("家住文艺路，楼下KTV天天扰民，投诉多次无果", tax)
    assert (e.hits, e.silenced, e.ignored, e.abroad, e.relevant) == ((), ("KTV",), ("文艺路",), False, False)
    assert {"扰民", "投诉"} <= set(e.weak)
    e = taxonomy.rule_evidence("市图书馆闭馆，读者投诉", tax)
    assert e.relevant and e.hits[:1] == ("图书馆",) and "闭馆" in e.hits and "投诉" in e.weak
    assert taxonomy.rule_evidence("巴黎一家博物馆闭馆", tax).abroad
    for text in ("市图书馆闭馆", "楼下KTV无证经营", "文化小区停车难", "巴黎博物馆", "城南网吧接纳未成年人", "天气很好"):
        assert taxonomy.rule_relevant(text, tax) is taxonomy.rule_evidence(text, tax).relevant


def test_a_pattern_that_is_not_a_regular_expression_is_refused_naming_the_field(tmp_path):
    bad = tmp_path / "taxonomy.yaml"
    bad.write_text("categories:\n  - {name: a, unit: u, keywords: [x]}\n"
                   "relevance:\n  ignore_patterns: ['文艺(路']\n", encoding="utf-8")
    with pytest.raises(ConfigError) as err:
        taxonomy.load_taxonomy(bad)
    assert str(bad) in str(err.value) and "relevance.ignore_patterns" in str(err.value) and "文艺(路" in str(err.value)

def test_emotion_mapping_is_documented_three_way():
    assert {data.map_emotion(e) for e in ("angry", "sad", "fear")} == {"negative"}
    assert data.map_emotion("happy") == "positive"
    assert data.map_emotion("neutral") == data.map_emotion("surprise") == "neutral"
    with pytest.raises(KeyError):
        data.map_emotion("bored")


def test_clean_text_and_smp_reader(tmp_path):
    assert data.clean_text("\n\t\t\t 留言 \n\t 内容 \n") == "留言 内容"
    assert data.clean_text(None) == "" and data.clean_text(float("nan")) == ""
    f = tmp_path / "smp.txt"
    f.write_text(
        json.dumps(
            [
                {"id": 1, "content": "好开心", "label": "happy"},
                {"id": 2, "content": "  ", "label": "sad"},
                {"id": 3, "content": "唉", "label": "fear"},
            ],
            ensure_ascii=False,
        ),
        encoding="utf-8",
    )
    assert data.read_smp(f) == [("好开心", 2), ("唉", 0)]


def test_split_dev_is_seeded_and_disjoint():
    exs = [data.Example(str(i)) for i in range(100)]
    tr1, dv1 = data.split_dev(exs, 0.2, seed=1)
    _tr2, dv2 = data.split_dev(exs, 0.2, seed=1)
    _, dv3 = data.split_dev(exs, 0.2, seed=2)
    assert [e.text for e in dv1] == [e.text for e in dv2] and len(dv1) == 20
    assert {e.text for e in tr1}.isdisjoint({e.text for e in dv1}) and len(tr1) + len(dv1) == 100
    assert [e.text for e in dv1] != [e.text for e in dv3]


def test_weak_labels(tax):
    ex = data.label_example("市文化馆将举办非遗展示活动", tax, sentiment=1)
    assert ex.relevance == 1 and tax.names[ex.topic] in FOCUS_AREAS and ex.sentiment == 1
    ex = data.label_example("股市今天大涨", tax)
    assert ex.relevance == 0 and ex.topic == data.IGNORE
    assert data.label_example("股市今天大涨", tax, relevant=True).relevance == 1


def test_char_vocab():
    v = build_char_vocab(["我爱图书馆", "我爱博物馆", "Hi 我"], min_freq=2, max_size=100)
    assert v[: len(SPECIAL_TOKENS)] == list(SPECIAL_TOKENS)
    assert "我" in v and "爱" in v and "馆" in v and "图" not in v  # 图 seen once
    assert "##a" in v and len(v) == len(set(v))
    assert build_char_vocab(["我爱图书馆"] * 3, max_size=len(SPECIAL_TOKENS) + 72 + 2)[-2:] == ["书", "图"]


def test_length_batches_cover_every_index_once():
    lengths = [5, 1, 9, 3, 3, 7, 2]
    batches = length_batches(lengths, 3)
    flat = [i for b in batches for i in b]
    assert sorted(flat) == list(range(len(lengths))) and all(len(b) <= 3 for b in batches)
    assert [lengths[i] for i in flat] == sorted(lengths, reverse=True)


def test_softmax_rows_sum_to_one():
    import numpy as np

    p = softmax(np.array([[1000.0, 0.0], [1.0, 1.0]]))
    assert np.allclose(p.sum(1), 1.0) and p[0, 0] == pytest.approx(1.0) and p[1, 0] == pytest.approx(0.5)


def test_tfidf_keywords_ranks_by_tf_times_idf():
    idf = {"图书馆": 8.0, "开放": 3.0, "今天": 1.0}
    toks = ["今天", "图书馆", "开放", "开放", "今天", "今天", "的", "2024", "我们"]
    assert tfidf_keywords(toks, idf, 5.0, 2, frozenset({"我们"})) == ["图书馆", "开放"]
    assert tfidf_keywords(toks, idf, 5.0, 10, frozenset({"我们"})) == ["图书馆", "开放", "今天"]
    assert tfidf_keywords([], idf, 5.0, 3) == []


def test_merge_entities_joins_org_names_back_to_the_place():
    pairs = [
        ("北京市", "ns"),
        ("文化", "n"),
        ("和", "c"),
        ("旅游局", "n"),
        ("发布", "v"),
        ("国家图书馆", "nt"),
        ("北京市", "ns"),
    ]
    places, orgs = merge_entities(pairs, ["局", "馆"], 4)
    assert places == ["北京市"]
    assert orgs == ["北京市文化和旅游局", "国家图书馆"]


def test_multitask_loss_hard_and_soft():
    import torch
    from torch.nn import functional as F

    from nlp.train import multitask_loss

    logits = {"sentiment": torch.tensor([[2.0, 0.0, -1.0], [0.0, 1.0, 0.0]]), "relevance": torch.zeros(2, 2)}
    labels = {"sentiment": torch.tensor([0, -100]), "relevance": torch.tensor([-100, -100])}
    plain = multitask_loss(logits, labels, {"sentiment": 2.0})
    assert plain.item() == pytest.approx(2.0 * F.cross_entropy(logits["sentiment"][:1], labels["sentiment"][:1]).item())
    # soft targets equal to the student's own distribution add nothing (KL = 0)
    soft = {"sentiment": F.softmax(logits["sentiment"], -1)}
    same = multitask_loss(logits, labels, {"sentiment": 2.0}, soft, alpha=0.5, temperature=1.0)
    assert same.item() == pytest.approx(0.5 * plain.item(), rel=1e-5)
    other = {"sentiment": torch.tensor([[0.0, 0.0, 1.0], [1.0, 0.0, 0.0]])}
    assert multitask_loss(logits, labels, {}, other, alpha=0.5).item() > 0.5 * plain.item() / 2
