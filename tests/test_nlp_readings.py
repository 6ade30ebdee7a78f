"""The test split read twice: agreement of the two readings, the adjudicated gold labels, and the refusal of label
files that do not fit together (issue 12)."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from nlp import corpus, human_labels
from nlp.human_labels import LabelRow, agreement, disagreements
from nlp.taxonomy import load_taxonomy
from yuqing.settings import load_settings

ROOT = Path(__file__).resolve().parent.parent
TOPICS = ["版权", "文化市场执法"]


def row(uid: str, relevance: str, topic: str | None = None) -> LabelRow:
    return LabelRow(uid, relevance, topic, 0)


def test_agreement_counts_kappa_and_positive_f1() -> None:
    first = [row("a", "relevant", "版权"), row("b", "relevant", "版权"), row("c", "relevant", "版权"),
             row("d", "not_relevant"), row("e", "not_relevant"), row("f", "uncertain"),
             row("g", "not_relevant"), row("h", "not_relevant")]
    second = [row("a", "relevant", "版权"), row("b", "relevant", "文化市场执法"), row("c", "uncertain"),
              row("d", "relevant", "版权"), row("e", "not_relevant"), row("f", "not_relevant"),
              row("g", "not_relevant"), row("h", "not_relevant")]
    a = agreement(first, second)
    assert a.n == 8 and a.counts[("relevant", "uncertain")] == 1 and a.counts[("not_relevant", "not_relevant")] == 3
    assert a.observed == pytest.approx(5 / 8)
    # expected by chance: first (3 rel, 4 not, 1 unc) x second (3 rel, 4 not, 1 unc) -> (9 + 16 + 1) / 64
    assert a.kappa == pytest.approx((5 / 8 - 26 / 64) / (1 - 26 / 64))
    # every text, uncertain as not relevant: first {a,b,c}, second {a,b,d} -> 2*2 / (3+3)
    assert (a.first_relevant, a.second_relevant, a.both_relevant) == (3, 3, 2)
    assert a.positive_f1 == pytest.approx(4 / 6)
    # texts neither called uncertain (c and f out): first {a,b}, second {a,b,d} -> 2*2 / (2+3)
    assert a.certain == 6 and a.positive_f1_certain == pytest.approx(4 / 5)
    assert a.topics_compared == 2 and a.topic_agreement == 0.5  # b: 版权 vs 文化市场执法
    assert disagreements(first, second) == {"b", "c", "d", "f"}


def test_agreement_refuses_readings_of_different_texts() -> None:
    with pytest.raises(ValueError, match="different texts"):
        agreement([row("a", "relevant", "版权")], [row("b", "relevant", "版权")])


def _write(path: Path, rows: list[tuple[str, ...]], header: tuple[str, ...] = ("uid", "relevance", "topic")) -> Path:
    with path.open("w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(header)
        w.writerows(rows)
    return path


def _test_uids(n: int) -> list[str]:
    uids = [f"gov:{i}" for i in range(400) if human_labels.split_of(f"gov:{i}") == "test"]
    return uids[:n]


def test_gold_labels_take_the_adjudication_and_files_must_fit(tmp_path: Path) -> None:
    t1, t2, t3 = _test_uids(3)
    train = next(f"gov:{i}" for i in range(400) if human_labels.split_of(f"gov:{i}") == "train")
    first = _write(tmp_path / "rel.csv", [(t1, "relevant", "版权", "1"), (t2, "not_relevant", "", "1"),
                                          (t3, "uncertain", "", "2"), (train, "relevant", "版权", "1")],
                   human_labels.FIELDS)
    _write(human_labels.second_reading_file(first), [(t1, "relevant", "版权"), (t2, "relevant", "文化市场执法"),
                                                     (t3, "not_relevant", "")])
    # no adjudication yet: the gold is the first reading, and the agreement refuses to run without one
    assert [r.relevance for r in human_labels.load_labels(TOPICS, first)] == ["relevant", "not_relevant",
                                                                              "uncertain", "relevant"]
    with pytest.raises(ValueError, match="settles 0 texts, but the readings differ on 2"):
        human_labels.reading_agreement(TOPICS, first)
    adj = _write(human_labels.adjudication_file(first), [(t2, "relevant", "文化市场执法"), (t3, "not_relevant", "")])
    gold = {r.uid: r for r in human_labels.load_labels(TOPICS, first)}
    assert gold[t2] == LabelRow(t2, "relevant", "文化市场执法", 1) and gold[t3].relevance == "not_relevant"
    assert gold[t3].round == 2 and gold[t1].relevance == "relevant" and gold[train].relevance == "relevant"
    assert human_labels.first_reading(TOPICS, first)[1].relevance == "not_relevant"  # the file itself is untouched
    res = human_labels.reading_agreement(TOPICS, first)  # the train-split row is not part of the comparison
    assert res["n"] == 3 and res["adjudicated"] == 2 and res["both_relevant"] == 1
    _write(adj, [(t2, "relevant", "文化市场执法")])  # one disagreement left unsettled
    with pytest.raises(ValueError, match="settles 1 texts, but the readings differ on 2"):
        human_labels.reading_agreement(TOPICS, first)
    _write(adj, [(t2, "relevant", "文化市场执法"), ("gov:999999", "not_relevant", "")])
    with pytest.raises(ValueError, match=r"1 uid\(s\) not in"):
        human_labels.load_labels(TOPICS, first)
    _write(adj, [(t2, "relevant", "没有这个主题")])
    with pytest.raises(ValueError, match="line 2: topic"):
        human_labels.load_labels(TOPICS, first)
    # a train-split text read twice: compared on its own, and its disagreement settled like the others
    second = human_labels.second_reading_file(first)
    _write(second, [(t1, "relevant", "版权"), (t2, "relevant", "文化市场执法"), (t3, "not_relevant", ""),
                    (train, "not_relevant", "")])
    _write(adj, [(t2, "relevant", "文化市场执法"), (t3, "not_relevant", "")])
    with pytest.raises(ValueError, match="settles 2 texts, but the readings differ on 3"):
        human_labels.reading_agreement(TOPICS, first)
    _write(adj, [(t2, "relevant", "文化市场执法"), (t3, "not_relevant", ""), (train, "not_relevant", "")])
    res = human_labels.reading_agreement(TOPICS, first)
    assert res["n"] == 3 and res["adjudicated"] == 2
    assert res["train"]["n"] == 1 and res["train"]["counts"] == {"relevant/not_relevant": 1}
    assert res["train"]["adjudicated"] == 1
    assert human_labels.load_labels(TOPICS, first)[3].relevance == "not_relevant"  # the train gold changed too
    _write(second, [(t1, "relevant", "版权"), (t2, "relevant", "文化市场执法")])  # t3 not read again
    with pytest.raises(ValueError, match="1 test-split text"):
        human_labels.reading_agreement(TOPICS, first)
    _write(second, [(t1, "relevant", "版权"), (t2, "relevant", "文化市场执法"), (t3, "not_relevant", ""),
                    ("gov:999999", "not_relevant", "")])
    with pytest.raises(ValueError, match=r"1 uid\(s\) not in"):
        human_labels.reading_agreement(TOPICS, first)


def test_the_committed_readings_cover_the_test_split_and_agree_as_reported() -> None:
    tax = load_taxonomy(ROOT / "config" / "taxonomy.yaml")
    res = human_labels.reading_agreement(tax.names)  # raises when the three files do not fit together
    first_test = [r for r in human_labels.first_reading(tax.names) if human_labels.split_of(r.uid) == "test"]
    assert res["n"] == len(first_test) >= 1400 and res["adjudicated"] > 0
    assert 0.6 < res["kappa"] < 1 and 0.5 < res["positive_f1"] < 1
    for path in (human_labels.second_reading_file(), human_labels.adjudication_file()):
        with path.open(encoding="utf-8") as fh:
            assert next(csv.reader(fh)) == ["uid", "relevance", "topic"]  # ids and labels only, no text
    shared = load_settings().paths.shared_data
    holdout = corpus.load_holdout_ids(shared)
    with human_labels.second_reading_file().open(encoding="utf-8") as fh:
        second = [r["uid"] for r in csv.DictReader(fh)]
    assert not {u.split(":", 1)[1] for u in second if u.startswith("gov:")} & holdout
    # the gold differs from the first reading only where the adjudication decided otherwise
    gold = {r.uid: r for r in human_labels.load_labels(tax.names)}
    changed = {r.uid for r in human_labels.first_reading(tax.names)
               if (gold[r.uid].relevance, gold[r.uid].topic) != (r.relevance, r.topic)}
    with human_labels.adjudication_file().open(encoding="utf-8") as fh:
        decided = {r["uid"] for r in csv.DictReader(fh)}
    assert changed and changed <= decided
    assert len(decided) == res["adjudicated"] + res["train"]["adjudicated"] and res["train"]["n"] >= 4000
