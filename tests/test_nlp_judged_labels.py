"""Officers' 人工研判 exports as training labels: validation naming file and line, what is left out (test-split and
held-out texts, texts already labelled, repeats), the train split always, and the recipe passing them on."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest

from ingest.judgements import TrainingRow
from nlp import human_labels, student
from nlp.judged_labels import JudgedLabelsError, JudgedText, judged_rows, read_judged
from nlp.taxonomy import load_taxonomy
from tests.test_nlp_student import TAXONOMY, _tiny_dataset

TOPICS = ("文化遗产保护", "版权")


def _write(path: Path, rows: list[dict[str, object]]) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


def test_an_export_file_reads_back(tmp_path: Path) -> None:
    row = TrainingRow("p1", "市博物馆文物修复公开课\n报名开始", True, "文化遗产保护", "board", "wang",
                      datetime(2026, 11, 28, tzinfo=UTC), False)
    path = _write(tmp_path / "j.jsonl", [row.as_json(), {**row.as_json(), "post_id": "p2", "relevant": False,
                                                          "topic": None}])
    assert read_judged(path, TOPICS) == [JudgedText("p1", "市博物馆文物修复公开课\n报名开始", True, "文化遗产保护"),
                                         JudgedText("p2", "市博物馆文物修复公开课\n报名开始", False, None)]


@pytest.mark.parametrize(("line", "message"), [
    ("{not json", "line 2: not a judged label"),
    (json.dumps({"post_id": "p", "text": "x"}), "line 2: not a judged label"),
    (json.dumps({"post_id": "p", "text": "x", "relevant": "yes"}), "line 2: 'relevant' must be true/false"),
    (json.dumps({"post_id": "p", "text": "x", "relevant": False, "topic": "版权"}), "line 2: topic '版权'"),
    (json.dumps({"post_id": "p", "text": "x", "relevant": True, "topic": "体育"}), "line 2: topic '体育'"),
])
def test_a_bad_line_is_named(tmp_path: Path, line: str, message: str) -> None:
    path = tmp_path / "j.jsonl"
    path.write_text(json.dumps({"post_id": "ok", "text": "y", "relevant": True}) + "\n" + line + "\n",
                    encoding="utf-8")
    with pytest.raises(JudgedLabelsError, match=f"{path.name} {message}"):
        read_judged(path, TOPICS)
    with pytest.raises(JudgedLabelsError, match="cannot read"):
        read_judged(tmp_path / "missing.jsonl", TOPICS)


def test_what_is_added_and_what_is_left_out() -> None:
    texts = [
        JudgedText("a", "图书馆  周末闭馆", True, None),  # whitespace collapsed like the corpus
        JudgedText("b", "考试题目", False, None),  # a test-split text
        JudgedText("c", "已经标注过的文本", True, "版权"),
        JudgedText("d", "图书馆 周末闭馆", False, None),  # the same text as a
        JudgedText("e", "   ", False, None),
        JudgedText("f", "先判相关", True, None), JudgedText("f", "先判相关", False, None),  # judged twice: the last
    ]
    rows = judged_rows(texts, banned={"考试题目"}, labelled={"已经标注过的文本"})
    assert [(r.uid, r.relevance) for r in rows.labels] == [("judged:a", "relevant"), ("judged:f", "not_relevant")]
    assert [r.text for r in rows.records] == ["图书馆 周末闭馆", "先判相关"]
    assert rows.skipped == {"test split or held-out text": 1, "already labelled": 1,
                            "same text as another judged post": 1, "empty": 1}
    assert all(human_labels.split_of(r.uid) == "train" for r in rows.labels)
    assert human_labels.split_of("judged:" + "0" * 40) == "train"


def test_judged_rows_train_and_are_never_scored() -> None:
    tax = load_taxonomy(TAXONOMY)
    ds = _tiny_dataset(tax.names)
    rows = judged_rows([JudgedText(f"p{i}", f"文化馆公益课堂第{i}期", True, tax.names[3]) for i in range(30)],
                       banned=set(), labelled=set())
    with_judged = replace(ds, records={**ds.records, **{r.uid: r for r in rows.records}},
                          labels=ds.labels + rows.labels, first_labels=ds.labels)
    cfg = student.apply_overrides(student.StudentConfig(), ["relevance_dev_folds=[0]", 'extra_labels=["a.jsonl"]'])
    splits = student.make_splits(with_judged, cfg)
    judged = {r.uid for r in rows.labels}
    assert judged <= {r.uid for r in splits.relevance_train}
    assert not judged & (splits.relevance_dev | splits.test)
    assert splits.relevance_dev == student.make_splits(replace(ds, first_labels=ds.labels), cfg).relevance_dev
    assert student.teacher_config(cfg).extra_labels == ("a.jsonl",)


def test_training_never_reads_a_held_out_or_test_text(shared_data: Path, tmp_path: Path) -> None:
    """Against the real shared data: a judged post whose text is a held-out board message (holdout_ids.csv) or a
    test-split text is left out, as is one already labelled; a new text is added."""
    from nlp.corpus import Record, gov_records, load_holdout_ids
    from nlp.train_ngram import _judged

    holdout = load_holdout_ids(shared_data)
    held = next(r for r in gov_records(shared_data, set()) if r.uid.split(":", 1)[1] in holdout)
    uids = [f"gov:judged-test-{i}" for i in range(200)]
    test_uid = next(u for u in uids if human_labels.split_of(u) == "test")
    train_uid = next(u for u in uids if human_labels.split_of(u) == "train")
    records = {test_uid: Record(test_uid, "测试集里的一条留言", "gov"),
               train_uid: Record(train_uid, "训练集里的一条留言", "gov")}
    labels = [human_labels.LabelRow(test_uid, "not_relevant", None, 1),
              human_labels.LabelRow(train_uid, "not_relevant", None, 1)]
    path = _write(tmp_path / "j.jsonl", [
        {"post_id": "a", "text": held.text, "relevant": True},
        {"post_id": "b", "text": "测试集里的一条留言", "relevant": True},
        {"post_id": "c", "text": "训练集里的一条留言", "relevant": True},
        {"post_id": "d", "text": "区文化馆公益课堂报名开始", "relevant": True, "topic": "版权"},
    ])
    rows = _judged(shared_data, [str(path)], list(TOPICS), records, labels)
    assert [(r.uid, r.relevance, r.topic) for r in rows.labels] == [("judged:d", "relevant", "版权")]
    assert rows.skipped == {"test split or held-out text": 2, "already labelled": 1}
