"""The BERT student recipe (nlp/student.py): token reading, the loss, and a training smoke test that runs
every stage (MLM pretraining, n-gram teacher with the e5 relevance teacher, dev run with selection, final run,
test split) on a tiny dataset for a few steps, through ``yuqing nlp train``."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from nlp import human_labels, student, train_ngram
from nlp.corpus import Record
from nlp.inference import BertClassifier, encode, load_text_classifier
from nlp.taxonomy import load_taxonomy
from nlp.vocab import build_char_vocab, make_tokenizer
from yuqing.settings import load_settings

ROOT = Path(__file__).resolve().parent.parent
TAXONOMY = ROOT / "config" / "taxonomy.yaml"


def test_encode_reads_head_and_tail():
    text = "甲" * 300 + "乙丙丁戊"
    tok: Any = make_tokenizer(build_char_vocab([text, "短文本"], min_freq=1))
    head_only, both, short = (
        encode(tok, [text], 16)[0],
        encode(tok, [text], 16, tail_tokens=4)[0],
        encode(tok, ["短文本"], 16, tail_tokens=4)[0],
    )
    assert len(head_only) == len(both) == 16
    assert tok.convert_ids_to_tokens(both[-5:-1]) == ["乙", "丙", "丁", "戊"] and both[-1] == tok.sep_token_id
    assert both[:11] == head_only[:11] and "乙" not in tok.convert_ids_to_tokens(head_only)
    assert short == encode(tok, ["短文本"], 16)[0]  # a text that fits is read whole
    assert both == encode(tok, [text[:10] + text[-4:]], 16)[0]  # [CLS] + 10 head + 4 tail + [SEP]


def test_loss_weights_hard_rows_and_distils_soft_targets():
    logits = {"relevance": torch.tensor([[2.0, -1.0], [0.0, 0.0], [-1.0, 1.0]])}
    hard = {"relevance": torch.tensor([1, -100, 1])}
    ones = {"relevance": torch.tensor([1.0, 0.0, 1.0])}
    weak = {"relevance": torch.tensor([0.2, 0.0, 1.0])}
    none = {"relevance": torch.zeros(3, 2)}
    ce = torch.nn.functional.cross_entropy(logits["relevance"][[0, 2]], torch.tensor([1, 1]), reduction="none")
    full = student.student_loss(logits, hard, ones, none, {}, 0.0, 2.0)
    assert float(full) == pytest.approx(float(ce.mean()), rel=1e-5)
    down = student.student_loss(logits, hard, weak, none, {}, 0.0, 2.0)
    assert float(down) == pytest.approx(float((0.2 * ce[0] + ce[1]) / 2), rel=1e-5)  # counted, not renormalised
    # soft targets equal to the student's own distribution: KL 0, only (1 - alpha) * hard remains
    soft = {"relevance": torch.softmax(logits["relevance"], -1)}
    mixed = student.student_loss(logits, hard, ones, soft, {"relevance": 2.0}, 0.5, 1.0)
    assert float(mixed) == pytest.approx(2.0 * 0.5 * float(ce.mean()), rel=1e-4)
    wrong = {"relevance": torch.tensor([[0.0, 1.0], [1.0, 0.0], [1.0, 0.0]])}
    assert float(student.student_loss(logits, hard, ones, wrong, {}, 0.5, 1.0)) > float(mixed) / 2.0


def _tiny_dataset(topics: list[str]) -> train_ngram.Dataset:
    recs: list[Record] = []
    fine: dict[str, str] = {}
    posts = [("太开心了，真好", "happy"), ("气死我了，太差", "angry"), ("今天下雨", "neutral"), ("好难过", "sad")]
    for i in range(80):
        text, emo = posts[i % 4]
        src = "smp_virus_train" if i < 60 else "smp_usual_eval"
        uid = f"{src}:{i}"
        recs.append(Record(uid, f"{text}{i}", src, sentiment={"happy": 2, "neutral": 1}.get(emo, 0)))
        fine[uid] = emo
    for i in range(20):
        text = f"{'很好吃' if i % 2 else '太难吃'}{i}"
        recs.append(Record(f"waimai:{i}", text, "waimai", sentiment=2 if i % 2 else 0))
    labels = []
    for i in range(80):
        rel = i % 3 == 0
        text = f"市图书馆延长开放时间，欢迎读者{i}" if rel else f"小区噪音扰民，请处理{i}" + "吵" * (i % 7) * 20
        recs.append(Record(f"gov:{i}", text, "gov"))
        labels.append(human_labels.LabelRow(f"gov:{i}", "relevant" if rel else "not_relevant",
                                            topics[3] if rel else None, 1))
    for i in range(20):
        recs.append(Record(f"tnews_dev:{i}", f"博物馆举办非遗展览{i}" if i % 2 else f"球队赢得比赛{i}", "tnews_dev"))
    weak = [r for r in recs if r.source == "tnews_dev"]
    return train_ngram.Dataset({r.uid: r for r in recs}, fine, labels, topics, weak)


def test_training_command_runs_every_stage_and_resumes(tmp_path, monkeypatch, capsys):
    from nlp.cli import add_subcommands

    tax = load_taxonomy(TAXONOMY)
    ds = _tiny_dataset(tax.names)
    monkeypatch.setattr(train_ngram, "load_dataset", lambda shared, cfg: ds)
    conf = tmp_path / "student.json"
    conf.write_text(json.dumps({
        "model_type": "bert_student", "hidden_size": 32, "num_layers": 1, "num_heads": 2, "intermediate_size": 64,
        "max_length": 24, "mlm_steps": 6, "mlm_stop_step": 4, "mlm_batch_size": 16, "batch_size": 16, "epochs": 1,
        "max_steps": 6, "finetune_stop_step": 5,
        "save_every": 2, "relevance_dev_folds": [0], "tail_token_candidates": [6], "vocab_min_freq": 1,
        "teacher": {"min_df": 1, "max_chars": 64, "tail_chars": 0}, "threads": 1,
        "e5_sentiment_weight": 0.5, "ngram_head_share": 0.5, "ngram_head_buckets": 4096, "ngram_head_min_df": 1,
        "relevance_ngram_head_shares": [0.0, 0.5], "ngram_head_post_weight": 3.0,
    }), encoding="utf-8")
    parser = argparse.ArgumentParser()
    add_subcommands(parser.add_subparsers(dest="cmd", required=True))
    out_dir, work = tmp_path / "model", tmp_path / "work"
    args = parser.parse_args(["train", str(conf), f"output_dir={out_dir}", f"work_dir={work}"])
    assert args.func(args, load_settings()) == 0
    res = json.loads(capsys.readouterr().out.splitlines()[-1])
    sel, fold, test = res["selection"], res["sentiment_fold"], res["test"]

    # the splits: nothing the runs are scored on was pretrained or trained on
    splits = student.make_splits(ds, student.apply_overrides(student.StudentConfig(), ["relevance_dev_folds=[0]"]))
    corpus = {json.loads(line)["uid"] for line in (work / "mlm" / "corpus.jsonl").read_text().splitlines()}
    assert corpus and not corpus & (splits.test | splits.relevance_dev | splits.sentiment_eval)
    teacher = dict(np.load(work / "teacher_dev.npz"))
    assert not set(teacher["uids"]) & (splits.relevance_dev | splits.sentiment_eval)
    # the e5 relevance teacher: every post / board message embedded once (cached), the reviews not
    cached = set()
    for part in (work / "e5_emb").glob("part-*.npz"):
        cached |= set(np.load(part)["uids"].tolist())
    assert cached == {u for u in ds.records if not u.startswith("waimai")}
    assert float(teacher["e5_C"]) in student.StudentConfig().e5_C
    rel_soft = dict(zip(teacher["uids"].tolist(), teacher["relevance"][:, 1], strict=True))
    train_gov = [r for r in splits.relevance_train if r.uid not in splits.relevance_dev]
    assert np.mean([rel_soft[r.uid] for r in train_gov if r.relevant]) > np.mean(
        [rel_soft[r.uid] for r in train_gov if not r.relevant])
    assert set(teacher["sentiment_eval_uids"]) == splits.sentiment_eval
    n_test = sum(1 for r in ds.labels if human_labels.split_of(r.uid) == "test")
    assert test["n"] == n_test and {"relevance_model", "relevance_keyword_rules"} <= set(test)
    assert fold["model"]["all"]["n"] == len(splits.sentiment_eval) and "baseline" in fold and "teacher" in fold
    assert sel["deployed_threshold"] == (sel["rule_blended_threshold"] if sel["blend_rules"]
                                         else sel["relevance_threshold"])
    assert set(sel["reading_best_f1"]) == {"0", "6"}
    # the e5 sentiment regression (posts only) and the sentiment n-gram head, fitted on each run's own rows
    assert float(teacher["e5_sentiment_C"]) in student.StudentConfig().e5_C
    dev_sent, _ = student.run_rows(splits, "dev")
    shipped_metrics = json.loads((out_dir / "metrics.json").read_text(encoding="utf-8"))
    heads = {run: shipped_metrics[f"train_{run}"]["ngram_head"] for run in ("dev", "final")}
    assert heads["dev"]["rows"] == len(dev_sent) and heads["final"]["rows"] == len(splits.sentiment)
    assert heads["final"]["share"] == 0.5 and "model_encoder_only" in fold
    # the posts weighted in the sentiment head, and the baseline given the same weights for the record
    assert heads["final"]["weighted"] and heads["dev"]["weighted"]
    assert fold["baseline_post_weighted"]["all"]["n"] == fold["baseline"]["all"]["n"] == len(splits.sentiment_eval)
    rel_head = sel["relevance_ngram_head"]  # chosen on the dev folds; the final run gets the same share
    assert set(rel_head["dev_best_f1_by_share"]) == {"0.0", "0.5"}
    assert rel_head["dev_best_f1_by_share"][str(rel_head["share"])] == max(rel_head["dev_best_f1_by_share"].values())
    final_rel = shipped_metrics["train_final"]["relevance_ngram_head"]
    assert (final_rel is None) if rel_head["share"] == 0 else (final_rel["share"] == rel_head["share"])

    # the shipped directory: a transformers checkpoint with the dev-chosen decisions in its config
    clf = load_text_classifier(out_dir)
    assert isinstance(clf, BertClassifier) and student.is_student_model(out_dir)
    assert clf.info["relevance_threshold"] == sel["deployed_threshold"] and clf.info["max_length"] == 24
    assert clf.reading_length(256) == 24 and clf.tail_tokens == sel["tail_tokens"]
    assert set(clf.task_labels) == {"sentiment", "relevance", "topic", "emotion"}
    assert clf.model.config.ngram_heads["sentiment"] == {"buckets": 4096, "orders": 3, "weight": 0.5}
    assert ("relevance" in clf.model.config.ngram_heads) == (sel["relevance_ngram_head"]["share"] > 0)
    texts = ["市图书馆开放时间", "气死我了", "很好吃" * 50]
    probs = clf.predict(texts, batch_size=2, max_length=256)
    assert probs["sentiment"].shape == (3, 3) and np.allclose(probs["topic"].sum(1), 1.0, atol=1e-3)
    metrics = json.loads((out_dir / "metrics.json").read_text(encoding="utf-8"))
    # fine-tuning stopped at finetune_stop_step, its schedule planned for max_steps
    assert metrics["train_final"]["steps"] == metrics["train_dev"]["steps"] == 5
    assert metrics["train_dev"]["of"] == 6 and metrics["train_dev"]["stopped_early"]
    # pretraining cut at mlm_stop_step, its schedule kept mlm_steps long
    assert metrics["mlm"]["step"] == 4 and metrics["mlm"]["of"] == 6

    # a second run resumes: stages already done are skipped, the final run resumes from its checkpoint
    (work / "run_final" / "train_stats.json").unlink()
    parts = sorted((work / "e5_emb").glob("part-*.npz"))
    args = parser.parse_args(["train", str(conf), f"output_dir={out_dir}", f"work_dir={work}"])
    assert args.func(args, load_settings()) == 0
    again = json.loads(capsys.readouterr().out.splitlines()[-1])
    assert again["selection"] == sel and again["test"] == test
    assert sorted((work / "e5_emb").glob("part-*.npz")) == parts  # nothing embedded twice
    np.testing.assert_allclose(load_text_classifier(out_dir).predict(texts, batch_size=2, max_length=256)["sentiment"],
                               probs["sentiment"], atol=1e-6)

    # final_run=false: no refit; the dev run's model is shipped and scored on the test split as it is
    dev_out = tmp_path / "model_dev"
    args = parser.parse_args(["train", str(conf), f"output_dir={dev_out}", f"work_dir={work}", "final_run=false"])
    assert args.func(args, load_settings()) == 0
    shipped = json.loads((dev_out / "metrics.json").read_text(encoding="utf-8"))
    assert shipped["shipped_run"] == "dev" and shipped["test"] == shipped["test_dev_model"]
    assert load_text_classifier(dev_out).info["run"] == "dev"


def test_relevance_dev_folds_come_from_the_first_reading():
    """A second reading (gold) that flips labels, decides a text the first reader left uncertain and leaves another
    uncertain moves no text between training and the dev folds."""
    from dataclasses import replace

    tax = load_taxonomy(TAXONOMY)
    first = _tiny_dataset(tax.names)
    train = [r for r in first.labels if human_labels.split_of(r.uid) == "train"]
    first_rows = list(first.labels)
    first_rows[first_rows.index(train[0])] = human_labels.LabelRow(train[0].uid, "uncertain", None, 1)
    flip = {r.uid for r in train[1:6]}
    gold = [human_labels.LabelRow(r.uid, "not_relevant" if r.relevant else "relevant",
                                  None if r.relevant else tax.names[0], 1) if r.uid in flip else r
            for r in first.labels]
    gold[gold.index(train[7])] = human_labels.LabelRow(train[7].uid, "uncertain", None, 1)
    cfg = student.apply_overrides(student.StudentConfig(), ["relevance_dev_folds=[0]"])
    before = student.make_splits(replace(first, labels=first_rows, first_labels=None), cfg).relevance_dev
    after = student.make_splits(replace(first, labels=gold, first_labels=first_rows), cfg)
    assert after.relevance_dev == before - {train[7].uid}
    assert train[0].uid not in after.relevance_dev  # decided only by the gold: trains, never scored
    assert train[0].uid in {r.uid for r in after.relevance_train}
    assert student.make_splits(replace(first, labels=gold, first_labels=None), cfg).relevance_dev != before
