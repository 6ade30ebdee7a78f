"""The shipped model through the pipeline's interface (Analyzer) and the ``yuqing nlp`` commands."""

from __future__ import annotations

import argparse
import io
import json
from pathlib import Path

import pytest

from nlp.analyzer import Analyzer, blend_topic, get_analyzer
from nlp.cli import add_subcommands, cmd_predict, run_predict
from yuqing.models import Analysis
from yuqing.settings import NLPSettings, load_settings

ROOT = Path(__file__).resolve().parent.parent
TAXONOMY = ROOT / "config" / "taxonomy.yaml"


@pytest.fixture(scope="module")
def analyzer() -> Analyzer:
    nlp = NLPSettings()
    assert (Path(nlp.model_dir) / "config.json").exists(), f"the shipped model is missing from {nlp.model_dir}"
    return get_analyzer(nlp, TAXONOMY)


def test_model_is_loaded_once_per_process(analyzer):
    assert get_analyzer(NLPSettings(), TAXONOMY) is analyzer
    assert analyzer.version.startswith("yuqing-zh-small@") and len(analyzer.version.split("@")[1]) == 12


def test_bad_input_does_not_raise(analyzer):
    long_text = "市图书馆今天开放，读者很多。" * 8000  # 112k characters
    texts = [
        "",
        "   \n",
        long_text,
        "😀😂🎉👍",
        "Hello 世界 مرحبا Привет 123",
        "圖書館週末開放時間延長，市民讚不絕口",
        "\x00\ufffd控制字符",
    ]
    res = analyzer.analyze(texts)
    assert len(res) == len(texts) and all(isinstance(r, Analysis) for r in res)
    for r in res:
        assert r.model_version == analyzer.version
        assert sum(r.sentiment_probs.values()) == pytest.approx(1.0, abs=1e-3)
        assert r.sentiment == max(r.sentiment_probs, key=r.sentiment_probs.get)
        assert (r.topic is None) == (not r.relevant)
    assert res[0].sentiment == "neutral" and not res[0].relevant and res[0].keywords == []


def test_long_text_reads_head_and_tail(analyzer):
    clf = analyzer._classifier  # reads head + tail tokens, or the head only when training chose tail_tokens 0
    n = clf.reading_length(analyzer.settings.max_length)
    assert n == clf.info["max_length"] <= analyzer.settings.max_length  # never past the trained positions
    tail = "网吧违规接纳未成年人，请文化执法部门查处。"
    long_text = "文化馆的演出太精彩了，大家都很喜欢！" * 600 + tail
    head_chars = n - 2 - clf.tail_tokens  # one token per Chinese character or punctuation mark
    read = long_text[:head_chars] + long_text[-clf.tail_tokens:] if clf.tail_tokens else long_text[: n - 2]
    a, b, c = analyzer.analyze([long_text, read, long_text[: n - 2]])
    assert a.sentiment_probs == b.sentiment_probs and a.relevance_prob == b.relevance_prob
    assert (a.sentiment_probs == c.sentiment_probs) == (clf.tail_tokens == 0)


def test_batched_equals_single(analyzer):
    texts = ["博物馆新展开幕，免费预约参观", "这家网吧天天噪音扰民", "今天心情不好", "图书馆"]
    batched = analyzer.analyze(texts)
    single = [analyzer.analyze([t])[0] for t in texts]
    for x, y in zip(batched, single, strict=True):
        assert x.sentiment == y.sentiment
        for k in x.sentiment_probs:
            assert x.sentiment_probs[k] == pytest.approx(y.sentiment_probs[k], abs=2e-4)


def test_outputs_for_clear_cases(analyzer):
    pos, neg, rel = analyzer.analyze(
        [
            "太棒了，非常满意，给你们点赞！",
            "垃圾服务，气死我了，太差劲了！",
            "北京市文化和旅游局通知：国家图书馆下周一起恢复开放，请提前预约。",
        ]
    )
    assert pos.sentiment_probs["positive"] > pos.sentiment_probs["negative"]
    assert neg.sentiment_probs["negative"] > neg.sentiment_probs["positive"]
    assert rel.relevant and rel.topic in analyzer.taxonomy.names
    assert "北京市" in rel.places and any("图书馆" in o for o in rel.orgs) and rel.keywords


def test_blend_topic():
    model = {"a": 0.8, "b": 0.2}
    assert blend_topic(model, {}, 0.5) == model
    assert blend_topic(model, {"a": 0.0, "b": 1.0}, 0.5) == pytest.approx({"a": 0.4, "b": 0.6})


def test_predict_streams_one_line_per_input(analyzer):
    settings = load_settings()
    lines = [
        json.dumps({"id": 7, "text": "图书馆周末开放吗"}, ensure_ascii=False),
        "not json",
        json.dumps({"text": 3}),
        json.dumps({"text": ""}),
        json.dumps({"id": "x", "text": "好开心"}),
    ]
    out = io.StringIO()
    rc = run_predict(settings, io.StringIO("\n".join(lines) + "\n"), out, batch_size=2)
    rows = [json.loads(x) for x in out.getvalue().splitlines()]
    assert rc == 1 and len(rows) == len(lines)
    assert rows[0]["id"] == 7 and set(Analysis.model_fields) <= set(rows[0]) and "topic_unit" in rows[0]
    for row in (rows[0], rows[3], rows[4]):
        assert row["relevance"] == ("relevant" if row["relevant"] else "not_relevant")
    assert rows[1]["line"] == 2 and "invalid JSON" in rows[1]["error"] and "error" in rows[2]
    assert rows[3]["sentiment"] == "neutral" and rows[4]["id"] == "x"
    assert rows[4]["model_version"] == analyzer.version


def test_subcommands_are_wired(monkeypatch, capsys, analyzer):
    parser = argparse.ArgumentParser(prog="yuqing nlp")
    add_subcommands(parser.add_subparsers(dest="cmd", required=True))
    args = parser.parse_args(["predict", "--batch", "4"])
    assert args.func is cmd_predict
    monkeypatch.setattr("sys.stdin", io.StringIO('{"text": "文化馆"}\n'))
    assert args.func(args, load_settings()) == 0
    assert json.loads(capsys.readouterr().out)["model_version"] == analyzer.version
    assert parser.parse_args(["train", "c.json", "max_steps=3"]).overrides == ["max_steps=3"]
    assert parser.parse_args(["eval", "--json"]).json


def test_eval_reproduces_the_model_card(analyzer, capsys, tmp_path):
    from nlp.cli import evaluate_student

    settings = load_settings()
    assert (settings.paths.shared_data / "sentiment").exists(), (
        f"shared data not found at {settings.paths.shared_data}; set YUQING_PATHS__SHARED_DATA")
    model_dir = Path(settings.nlp.model_dir)
    card = json.loads((model_dir / "metrics.json").read_text(encoding="utf-8"))
    # the configured threshold is the one chosen on the dev folds when the model was trained
    assert settings.nlp.relevance_threshold == card["selection"]["deployed_threshold"]
    assert analyzer._classifier.info["relevance_threshold"] == card["selection"]["deployed_threshold"]
    assert analyzer.blend_relevance_rules == card["selection"]["blend_rules"]
    res = evaluate_student(model_dir, settings)
    deployed = "relevance_model_plus_rules" if card["selection"]["blend_rules"] else "relevance_model"
    # the card was scored at training time on the gold labels of the test split (two readings, adjudicated),
    # and scored again (`nlp eval --record`) when the keyword rules were revised since: with the rules in force
    from nlp.cli import file_sha256, record_rescore

    taxonomy_file = settings.config_file("taxonomy.yaml")
    scored = card["test"]
    if "rescored" in card:
        assert card["rescored"]["taxonomy_sha256"] == file_sha256(taxonomy_file), (
            "config/taxonomy.yaml changed since the model card was scored: run `yuqing nlp eval --record` and "
            "update the card's figures")
        scored = card["rescored"]["test"]
    for key in (deployed, "relevance_keyword_rules", "relevance_model"):
        for m in ("precision", "recall", "f1"):
            assert res["test"][key][m] == pytest.approx(scored[key][m], abs=0.02)
    assert res["test"]["topic_accuracy"]["n"] == card["test"]["topic_accuracy"]["n"]
    # recording writes the figures and the taxonomy's hash beside the training run's, which stay as they were
    copy = tmp_path / "model"
    copy.mkdir()
    (copy / "metrics.json").write_text(json.dumps(card), encoding="utf-8")
    block = record_rescore(copy, res, taxonomy_file, "2026-12-02T00:00:00+00:00")
    again = json.loads((copy / "metrics.json").read_text(encoding="utf-8"))
    assert again["rescored"] == block and again["test"] == card["test"]
    assert block["test"][deployed] == res["test"][deployed] and block["taxonomy_sha256"] == file_sha256(taxonomy_file)
    first = res["test_first_reading"]  # also reported on the first reading alone, as scored before session 7
    assert first["n"] < res["test"]["n"] and first[deployed]["f1"] < res["test"][deployed]["f1"]
    # the gold (adjudicated) labels: every test text decided, the two readings' agreement reported beside
    from nlp.human_labels import load_labels, split_of

    gold = [r for r in load_labels(analyzer.taxonomy.names) if split_of(r.uid) == "test" and r.relevant is not None]
    assert (res["test"]["n"], res["test"]["relevant"]) == (len(gold), sum(bool(r.relevant) for r in gold))
    assert res["annotators"]["adjudicated"] > 0 and 0 < res["annotators"]["positive_f1"] < 1
    # a recipe whose sentiment head was chosen on its own fold reports the other folds apart, as `nlp eval` prints
    from nlp.cli import _print_student_eval
    from nlp.student import StudentConfig

    recipe = StudentConfig.from_json(model_dir / "train_config.json")
    cv = card["sentiment_cv"]
    assert ("unselected" in cv) == recipe.sentiment_selected_on_eval_fold
    _print_student_eval(res)
    out = capsys.readouterr().out
    if recipe.sentiment_selected_on_eval_fold:
        assert cv["unselected"]["folds"] == [k for k in cv["folds"] if k != recipe.sentiment_eval_fold]
        assert f"without fold {recipe.sentiment_eval_fold}, on which the sentiment head was chosen" in out
    assert ("baseline with the posts weighted" in out) == (recipe.ngram_head_post_weight != 1.0)


def test_evaluation_refuses_clearly_without_the_shared_data(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    from yuqing.cli import main

    monkeypatch.setenv("YUQING_PATHS__SHARED_DATA", str(tmp_path / "nowhere"))
    monkeypatch.setenv("YUQING_PATHS__DATA_DIR", str(tmp_path / "data"))
    assert main(["nlp", "eval"]) == 2
    err = capsys.readouterr().err
    assert f"the shared data is not at {tmp_path / 'nowhere'}" in err and "YUQING_PATHS__SHARED_DATA" in err
    assert "Traceback" not in err


def test_a_missing_model_is_refused_with_the_setting_to_fix(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    from yuqing.cli import main

    monkeypatch.setenv("YUQING_NLP__MODEL_DIR", str(tmp_path / "no-model"))
    monkeypatch.setenv("YUQING_PATHS__DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setattr("sys.stdin", io.StringIO('{"text": "文化馆"}\n'))
    assert main(["nlp", "predict"]) == 2
    err = capsys.readouterr().err
    assert f"field 'nlp.model_dir': no trained model in {tmp_path / 'no-model'}" in err and "Traceback" not in err


def test_the_demo_fills_the_judging_queues(analyzer):
    """The demo's posts as the shipped model reads them fill both 人工研判 queues that `./run.sh up` shows:
    模型拿不准 (with the default threshold and margin; few, as the keyword rules blended in push most posts
    far from the threshold) and 模型判为相关."""
    from dashboard.judging import queue_query
    from yuqing.demo.corpus import load_corpus
    from yuqing.settings import DashboardSettings

    analyses = analyzer.analyze([f"{p.title}\n{p.text}".strip() for p in load_corpus()])
    threshold, margin = NLPSettings().relevance_threshold, DashboardSettings().judge_margin
    band = queue_query("uncertain", threshold=threshold, margin=margin, size=20).relevance_prob
    assert band is not None
    unsure = [a for a in analyses if band[0] <= a.relevance_prob <= band[1]]
    assert len(unsure) >= 1 and sum(a.relevant for a in analyses) >= 20


def test_the_demo_noise_is_told_from_the_bureau_s_stories(analyzer):
    """The demo's everyday noise that uses culture words (KTV 扰民 on 文化路, road works on 文艺路, a mall on 文化广场,
    schooling, sports) is mostly judged not relevant, and its culture stories mostly relevant: what 热点事件's
    需要关注 and the alerts rest on."""
    from collections import defaultdict

    from yuqing.demo.corpus import load_corpus

    corpus = load_corpus()
    judged = analyzer.analyze([(p.title + "\n" if p.title else "") + p.text for p in corpus])
    by_story: dict[str, list[bool]] = defaultdict(list)
    for post, analysis in zip(corpus, judged, strict=True):
        by_story[post.story].append(analysis.relevant)
    noise = {s: v for s, v in by_story.items() if s.startswith("noise-")}
    culture = {s: v for s, v in by_story.items() if not s.startswith("noise-")}
    assert len(noise) >= 5 and len(culture) >= 8
    share = {s: sum(v) / len(v) for s, v in by_story.items()}
    assert all(share[s] <= 1 / 3 for s in noise), {s: share[s] for s in noise}
    assert share["noise-ktv"] == 0  # a venue only as a nuisance
    assert sum(sum(v) for v in noise.values()) <= 0.2 * sum(len(v) for v in noise.values())
    assert all(share[s] >= 0.6 for s in culture), {s: share[s] for s in culture}
    assert sum(sum(v) for v in culture.values()) >= 0.9 * sum(len(v) for v in culture.values())
