"""Sentiment cross-validation of the student recipe (nlp/student_cv.py) and the accelerator bundle
(nlp/student_bundle.py): on a tiny dataset, every fold is prepared here, its torch stages are trained from the
bundle alone in worker processes (as on a GPU machine, here on the CPU), brought back and finished; the summary
lands in the shipped model's metrics."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from nlp import student, student_bundle, student_cv, train_ngram
from nlp.inference import load_text_classifier
from nlp.taxonomy import load_taxonomy
from tests.test_nlp_student import TAXONOMY, _tiny_dataset

TINY: dict[str, Any] = {
    "hidden_size": 32, "num_layers": 1, "num_heads": 2, "intermediate_size": 64, "max_length": 24,
    "mlm_steps": 4, "mlm_batch_size": 16, "batch_size": 16, "epochs": 1, "max_steps": 3,
    "relevance_dev_folds": [0], "tail_token_candidates": [], "vocab_min_freq": 1,
    "teacher": {"min_df": 1, "max_chars": 64, "tail_chars": 0}, "threads": 1,
    "ngram_head_share": 0.5, "ngram_head_buckets": 4096, "ngram_head_min_df": 1,
    "relevance_ngram_head_shares": [0.0, 0.5], "folds": 3,
}


def _config(tmp_path: Path) -> student.StudentConfig:
    cfg = student.StudentConfig(**{**TINY, "relevance_dev_folds": (0,), "tail_token_candidates": ()})
    return student.apply_overrides(cfg, [f"output_dir={tmp_path / 'shipped'}", "sentiment_eval_fold=1"])


def test_summary_means_and_paired_difference():
    def fold(m: float, b: float) -> dict:
        s = {"posts": {"macro_f1": m, "accuracy": m, "n": 10}}
        return {"of": 2, "trained_on": 20, "model": s, "baseline": {"posts": {"macro_f1": b, "accuracy": b, "n": 10}}}

    out = student_cv.summarize({0: fold(0.8, 0.7), 1: fold(0.6, 0.65)})
    assert out["model"]["posts"]["macro_f1"] == pytest.approx(0.7)
    assert out["model"]["posts"]["n"] == 20 and out["model"]["posts"]["per_fold_macro_f1"] == [0.8, 0.6]
    assert out["model_minus_baseline"]["posts"]["mean"] == pytest.approx(0.025)
    assert out["model_minus_baseline"]["posts"]["min"] == pytest.approx(-0.05)
    assert "teacher" not in out


def test_summary_without_the_fold_chosen_on_and_against_the_weighted_baseline():
    def fold(m: float, b: float, bw: float) -> dict:
        def s(v: float) -> dict:
            return {"posts": {"macro_f1": v, "accuracy": v, "n": 10}}
        return {"of": 3, "trained_on": 20, "model": s(m), "baseline": s(b), "baseline_post_weighted": s(bw)}

    folds = {0: fold(0.90, 0.70, 0.80), 1: fold(0.80, 0.76, 0.78), 2: fold(0.70, 0.66, 0.69)}
    plain = student_cv.summarize(folds)
    assert "unselected" not in plain
    assert plain["model_minus_baseline"]["posts"]["mean"] == pytest.approx(0.0933, abs=1e-4)
    assert plain["model_minus_baseline_post_weighted"]["posts"]["mean"] == pytest.approx(0.0433, abs=1e-4)
    out = student_cv.summarize(folds, selected_on=0)
    un = out["unselected"]
    assert un["folds"] == [1, 2] and un["selected_on"] == 0 and "fold_figures" not in un
    assert un["model"]["posts"]["macro_f1"] == pytest.approx(0.75)
    assert un["model_minus_baseline"]["posts"]["mean"] == pytest.approx(0.04)
    assert un["model_minus_baseline_post_weighted"]["posts"]["mean"] == pytest.approx(0.015)
    assert out["model"] == plain["model"]  # the all-fold figures unchanged
    with pytest.raises(ValueError, match="not among the folds"):
        student_cv.summarize(folds, selected_on=4)
    with pytest.raises(ValueError, match="every fold"):
        student_cv.summarize({0: folds[0]}, selected_on=0)


def test_folds_are_trained_from_the_bundle_alone_and_summarised(tmp_path, monkeypatch):
    ds = _tiny_dataset(load_taxonomy(TAXONOMY).names)
    monkeypatch.setattr(train_ngram, "load_dataset", lambda shared, cfg: ds)
    cfg = _config(tmp_path)
    root, bundle, results = tmp_path / "cv", tmp_path / "bundle", tmp_path / "results"
    assert student_cv.fold_order(cfg) == [0, 2, 1]  # the recipe's own fold last: it writes the shipped model

    student_cv.run(cfg, tmp_path, root, "prepare", bundle)
    parts = student_bundle.load_parts(bundle)
    assert [(p.name, p.runs) for p in parts] == [("fold0", ("dev",)), ("fold2", ("dev",)),
                                                ("fold1", ("dev", "final"))]
    for k in range(3):  # each fold's pretraining never read its own evaluation texts
        splits = student.make_splits(ds, student_cv.fold_config(cfg, root, k))
        corpus = (root / f"fold{k}" / "mlm" / "corpus.jsonl").read_text(encoding="utf-8")
        seen = {json.loads(line)["uid"] for line in corpus.splitlines()}
        assert seen and not seen & (splits.sentiment_eval | splits.relevance_dev | splits.test)
        assert (root / f"fold{k}" / "e5_emb").exists()
    assert (root / "fold2" / "e5_emb").is_symlink()  # the embeddings are computed once
    with pytest.raises(RuntimeError, match="not finished"):
        student_cv.run(cfg, tmp_path, root, "finish")  # nothing is trained by finish

    # the torch stages from the bundle alone: no dataset, no work folder of this side
    monkeypatch.setattr(train_ngram, "load_dataset", lambda *a: pytest.fail("the bundle needs no dataset"))
    report = student_bundle.train_bundle(bundle, results, "cpu", jobs=2, threads=1)
    assert report["device"] == "cpu" and set(report["parts"]) == {"fold0", "fold1", "fold2"}
    assert not any("error" in str(v) for v in report["parts"].values()), report
    tars = sorted(p.name for p in results.glob("*.tar"))
    assert tars == ["fold0_dev.tar", "fold1_dev.tar", "fold1_final.tar", "fold2_dev.tar"]
    assert (results / "fold1.log").read_text(encoding="utf-8")

    monkeypatch.setattr(train_ngram, "load_dataset", lambda shared, cfg: ds)
    assert len(student_bundle.unpack(results, root)) == 4
    stats = json.loads((root / "fold1" / "run_final" / "train_stats.json").read_text(encoding="utf-8"))
    assert stats["device"] == "cpu" and stats["steps"] == 3
    assert json.loads((root / "fold0" / "mlm" / "done.json").read_text(encoding="utf-8"))["step"] == 4

    student_cv.run(cfg, tmp_path, root, "finish")
    summary = json.loads((root / "sentiment_cv.json").read_text(encoding="utf-8"))
    shipped = json.loads((tmp_path / "shipped" / "metrics.json").read_text(encoding="utf-8"))
    assert shipped["sentiment_cv"] == summary and summary["folds"] == [0, 1, 2]
    sentiment_rows = len(student.make_splits(ds, cfg).sentiment)
    assert summary["model"]["all"]["n"] == summary["baseline"]["all"]["n"] == sentiment_rows
    fold2 = json.loads((root / "fold2" / "model" / "metrics.json").read_text(encoding="utf-8"))
    assert summary["model"]["all"]["per_fold_macro_f1"] == [
        m["sentiment_fold"]["model"]["all"]["macro_f1"]
        for m in (json.loads((root / "fold0" / "model" / "metrics.json").read_text(encoding="utf-8")), shipped, fold2)]
    assert shipped["sentiment_fold"]["fold"] == 1 and fold2["sentiment_fold"]["fold"] == 2
    # the shipped model is the recipe fold's final run, with its heads attached here
    clf = load_text_classifier(tmp_path / "shipped")
    assert clf.info["run"] == "final" and clf.info["trained_on"] == "cpu"
    assert clf.predict(["市图书馆开放时间"], batch_size=1, max_length=24)["sentiment"].shape == (1, 3)


def test_unpack_refuses_members_outside_the_folds(tmp_path):
    import tarfile

    evil = tmp_path / "x_dev.tar"
    (tmp_path / "f").write_text("x", encoding="utf-8")
    with tarfile.open(evil, "w") as tar:
        tar.add(tmp_path / "f", arcname="../escape")
    with pytest.raises(ValueError, match="unexpected member"):
        student_bundle.unpack(tmp_path, tmp_path / "root")
    shutil.rmtree(tmp_path / "root", ignore_errors=True)
    with pytest.raises(FileNotFoundError):
        student_bundle.unpack(tmp_path / "none", tmp_path / "root")
    evil.unlink()
    with tarfile.open(tmp_path / "logs.tar", "w") as tar:  # not a run: left alone
        tar.add(tmp_path / "f", arcname="fold0.log")
    with pytest.raises(FileNotFoundError):
        student_bundle.unpack(tmp_path, tmp_path / "root")


def test_yuqing_command_line_keeps_the_recipe_apart_from_the_settings_file():
    from yuqing.cli import build_parser

    args = build_parser().parse_args(["nlp", "cv", "nlp/configs/student.json", ".student-cv", "finish"])
    assert args.config is None and args.recipe == Path("nlp/configs/student.json") and args.step == "finish"
    args = build_parser().parse_args(["-c", "config/yuqing.yaml", "nlp", "train", "r.json", "epochs=1"])
    assert args.config == "config/yuqing.yaml" and args.recipe == Path("r.json") and args.overrides == ["epochs=1"]
