"""The n-gram classifier, the human labels and the holdout-free corpus (issue 12)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from nlp import corpus, human_labels, ngram, train_ngram
from nlp.corpus import Record
from nlp.taxonomy import load_taxonomy
from yuqing.settings import load_settings

ROOT = Path(__file__).resolve().parent.parent
TAXONOMY = ROOT / "config" / "taxonomy.yaml"


@pytest.fixture(scope="module")
def shared() -> Path:
    path = load_settings().paths.shared_data
    assert (path / corpus.HOLDOUT_IDS).exists(), f"shared data not found at {path}; set YUQING_PATHS__SHARED_DATA"
    return path


def test_head_tail():
    assert ngram.head_tail("abcdef", 10, 2) == "abcdef"
    assert ngram.head_tail("abcdefghij", 6, 2) == "abcd ij"
    assert ngram.head_tail("abcdefghij", 6, 0) == "abcdef"


def test_fine_classes_sum_into_labels():
    head = ngram.Head(["angry", "happy", "sad"], [0, 2, 0], np.eye(3, dtype=np.float32), np.zeros(3, np.float32))
    p = head.label_proba(np.array([[5.0, 0.0, 5.0]], dtype=np.float32), 3)
    assert p.shape == (1, 3) and p[0, 1] == 0.0 and p[0, 0] > 0.99 and p.sum() == pytest.approx(1.0)
    binary = ngram.Head(["not_relevant", "relevant"], [0, 1], np.ones((1, 2), np.float32), np.zeros(1, np.float32))
    q = binary.label_proba(np.array([[0.0, 0.0], [3.0, 3.0]], dtype=np.float32), 2)
    assert q[0].tolist() == [0.5, 0.5] and q[1, 1] > 0.99


def test_holdout_messages_never_enter_the_corpus(shared):
    holdout = corpus.load_holdout_ids(shared)
    assert len(holdout) == 397
    import pandas as pd

    kept = {r.uid.split(":", 1)[1] for r in corpus.gov_records(shared, holdout)}
    raw = set()
    for name in corpus.GOV_FILES:
        raw |= {str(x).strip() for x in pd.read_excel(shared / "gov_messages" / name, usecols=["留言编号"])["留言编号"]}
    assert holdout & raw, "the held-out ids should name messages of the board files"
    assert not holdout & kept and kept <= raw - holdout and len(kept) > 0.95 * len(raw - holdout)


def test_committed_labels_are_valid_and_never_held_out(shared):
    tax = load_taxonomy(TAXONOMY)
    rows = human_labels.load_labels(tax.names)
    holdout = corpus.load_holdout_ids(shared)
    assert len(rows) >= 1500
    assert not {r.uid.split(":", 1)[1] for r in rows if r.uid.startswith("gov:")} & holdout
    assert all(r.topic in tax.names for r in rows if r.relevance == "relevant")
    with human_labels.LABELS_FILE.open(encoding="utf-8") as fh:
        assert next(csv.reader(fh)) == list(human_labels.FIELDS)  # ids and labels only, no text column
    test = [r for r in rows if human_labels.split_of(r.uid) == "test"]
    assert 0.2 < len(test) / len(rows) < 0.3 and any(r.relevant for r in test)


def test_label_validation_names_the_line(tmp_path):
    bad = tmp_path / "l.csv"
    bad.write_text("uid,relevance,topic,round\ngov:1,relevant,版权,1\ngov:2,maybe,,1\n", encoding="utf-8")
    with pytest.raises(ValueError, match="line 3: relevance 'maybe'"):
        human_labels.load_labels(["版权"], bad)
    bad.write_text("uid,relevance,topic,round\ngov:1,not_relevant,版权,1\n", encoding="utf-8")
    with pytest.raises(ValueError, match="line 2: topic"):
        human_labels.load_labels(["版权"], bad)


def _tiny_dataset(topics: list[str]) -> train_ngram.Dataset:
    recs: list[Record] = []
    fine: dict[str, str] = {}
    posts = [("太开心了，真好", "happy"), ("气死我了，太差", "angry"), ("今天下雨", "neutral"), ("好难过", "sad")]
    for i in range(40):
        text, emo = posts[i % 4]
        uid = f"smp_virus_train:{i}"
        recs.append(Record(uid, f"{text}{i}", "smp_virus_train", sentiment={"happy": 2, "neutral": 1}.get(emo, 0)))
        fine[uid] = emo
    for i in range(10):
        recs.append(Record(f"waimai:{i}", "很好吃" if i % 2 else "太难吃", "waimai", sentiment=2 if i % 2 else 0))
    labels = []
    for i in range(30):
        rel = i % 3 == 0
        text = f"市图书馆延长开放时间{i}" if rel else f"小区噪音扰民{i}"
        recs.append(Record(f"gov:{i}", text, "gov"))
        labels.append(human_labels.LabelRow(f"gov:{i}", "relevant" if rel else "not_relevant",
                                            topics[3] if rel else None, 1))
    return train_ngram.Dataset({r.uid: r for r in recs}, fine, labels, topics, [])


def test_fit_save_load_round_trip(tmp_path):
    tax = load_taxonomy(TAXONOMY)
    ds = _tiny_dataset(tax.names)
    cfg = train_ngram.NgramTrainConfig(taxonomy=str(TAXONOMY), min_df=1, max_chars=64, tail_chars=16)
    sent = {u for u, r in ds.records.items() if r.sentiment != -100}
    model = train_ngram.fit_model(ds, cfg, train_ngram.training_rows(ds, cfg, sentiment_uids=sent,
                                                                    relevance_rows=ds.labels))
    assert model.heads["sentiment"].classes == ["angry", "happy", "neutral", "review_negative",
                                                "review_positive", "sad"]
    model.info = {"relevance_threshold": 0.5, "blend_rules": False}
    model.save(tmp_path / "m")
    assert json.loads((tmp_path / "m" / "config.json").read_text(encoding="utf-8"))["model_type"] == "char_ngram"
    loaded = ngram.NgramClassifier.load(tmp_path / "m")
    texts = ["市图书馆开放时间", "气死我了", "", "很好吃" * 100]
    a, b = model.predict_proba(texts), loaded.predict_proba(texts)
    for task in a:
        np.testing.assert_allclose(a[task], b[task], atol=2e-3)  # weights are stored as float16
        assert a[task].shape == (4, len(model.task_labels[task]))
        np.testing.assert_allclose(a[task].sum(1), 1.0, atol=1e-5)
    assert a["relevance"][0, 1] > 0.5 > a["relevance"][1, 1]
    assert loaded.info == model.info


def test_metrics_helpers():
    m = train_ngram.prf([1, 1, 0, 0], [1, 0, 1, 0])
    assert (m["precision"], m["recall"], m["f1"], m["tp"], m["fp"], m["fn"]) == (0.5, 0.5, 0.5, 1, 1, 1)
    thr, f1 = train_ngram.best_threshold(np.array([0, 0, 1, 1]), np.array([0.1, 0.2, 0.7, 0.9]))
    assert f1 == 1.0 and thr == pytest.approx(0.45)
    lo, hi = train_ngram.bootstrap_f1_ci(np.array([1, 0] * 20), np.array([1, 0] * 20))
    assert lo == hi == 1.0


def test_training_command_selects_evaluates_and_saves(tmp_path, monkeypatch, capsys):
    """``yuqing nlp train`` with a char_ngram config: dev-fold selection, test split, CV, saved model."""
    import argparse

    from nlp.cli import add_subcommands

    tax = load_taxonomy(TAXONOMY)
    ds = _tiny_dataset(tax.names)
    monkeypatch.setattr(train_ngram, "load_dataset", lambda shared, cfg: ds)
    conf = tmp_path / "c.json"
    conf.write_text(json.dumps({"model_type": "char_ngram", "min_df": 1, "max_chars": 64, "tail_chars": 16,
                                "tail_candidates": [0, 16], "folds": 2, "n_jobs": 1}), encoding="utf-8")
    parser = argparse.ArgumentParser()
    add_subcommands(parser.add_subparsers(dest="cmd", required=True))
    args = parser.parse_args(["train", str(conf), f"output_dir={tmp_path / 'm'}"])
    assert args.func(args, load_settings()) == 0
    out = json.loads(capsys.readouterr().out.splitlines()[-1])
    sel = out["selection"]
    assert set(sel["tail_chars_oof_f1"]) == {"0", "16"} and sel["tail_chars"] in (0, 16)
    assert sel["deployed_threshold"] == (sel["rule_blended_threshold"] if sel["blend_rules"]
                                         else sel["relevance_threshold"])
    n_test = sum(human_labels.split_of(r.uid) == "test" for r in ds.labels)
    assert out["test"]["n"] == n_test and "relevance_keyword_rules" in out["test"]
    assert out["sentiment_cv"]["model"]["posts"]["n"] == 40 and out["sentiment_cv"]["folds"] == 2
    model = ngram.NgramClassifier.load(tmp_path / "m")
    assert model.info["relevance_threshold"] == sel["deployed_threshold"]
    assert model.tail_chars == sel["tail_chars"]
