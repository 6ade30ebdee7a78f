"""Human relevance / topic labels (``nlp/labels/relevance.csv``: IDs and labels only, never the texts).

Each row: ``uid`` (see :mod:`nlp.corpus`), ``relevance`` (relevant / not_relevant / uncertain), ``topic``
(one of the taxonomy's 12 names, only for relevant rows), ``round`` (1: broad sample ``sample.py``; 2:
strong-keyword sample ``sample2.py``; 3: texts ranked by a scorer fitted on the round 1-2 train split,
``sample3.py``). The labels were given by people reading each text under the
guidelines in the model card.

The test split is fixed by a hash of the uid (:func:`split_of`), so it does not depend on file order and
stays the same when labels are added; it is never used for training, tuning or model selection.

The texts were read twice. ``relevance_second.csv`` (uid, relevance, topic) is a second, independent reading
(of every test-split text, and of train-split texts), made without seeing the first; ``relevance_adjudicated.csv``
settles each text where the two readings differ (relevance or topic), decided by a third reader who saw the text
and both readings in random order, and no model output. :func:`load_labels` applies the adjudication (the gold labels);
:func:`first_reading` is the file as first labelled, and :func:`reading_agreement` measures how far the two
readings agree (:class:`Agreement`), which bounds what any model can be expected to reach on these labels.
"""

from __future__ import annotations

import csv
import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

RELEVANCE_VALUES: tuple[str, ...] = ("relevant", "not_relevant", "uncertain")
TEST_FRACTION = 0.25
LABELS_FILE = Path(__file__).resolve().parent / "labels" / "relevance.csv"
FIELDS: tuple[str, ...] = ("uid", "relevance", "topic", "round")

Split = Literal["train", "test"]
# uids of officers' 人工研判 texts added for training (nlp.judged_labels): always in the train split.
JUDGED_PREFIX = "judged:"


@dataclass(frozen=True)
class LabelRow:
    uid: str
    relevance: str
    topic: str | None
    round: int

    @property
    def relevant(self) -> bool | None:
        """True / False, or None when the annotator was uncertain."""
        return None if self.relevance == "uncertain" else self.relevance == "relevant"


def split_of(uid: str, test_fraction: float = TEST_FRACTION) -> Split:
    """``test`` for a fixed ``test_fraction`` of uids (by SHA-1 of the uid), else ``train``; an officer's judged
    text (``judged:…``) is always ``train``: the test split is the shared data's alone."""
    if uid.startswith(JUDGED_PREFIX):
        return "train"
    h = int(hashlib.sha1(uid.encode("utf-8")).hexdigest()[:8], 16) / 0xFFFFFFFF
    return "test" if h < test_fraction else "train"


def validate(rows: Iterable[LabelRow], topics: list[str], where: str) -> list[LabelRow]:
    """Rows checked (known relevance value and topic, topic only on relevant rows, unique uids)."""
    out: list[LabelRow] = []
    seen: set[str] = set()
    for i, r in enumerate(rows, start=2):
        if r.relevance not in RELEVANCE_VALUES:
            raise ValueError(f"{where} line {i}: relevance {r.relevance!r} not in {RELEVANCE_VALUES}")
        if r.topic is not None and (r.relevance != "relevant" or r.topic not in topics):
            raise ValueError(f"{where} line {i}: topic {r.topic!r} (only one of the 12 names, on relevant rows)")
        if r.uid in seen:
            raise ValueError(f"{where} line {i}: duplicate uid {r.uid}")
        seen.add(r.uid)
        out.append(r)
    return out


def second_reading_file(path: Path = LABELS_FILE) -> Path:
    """The second reading of the test split beside a labels file: ``<stem>_second.csv``."""
    return path.with_name(f"{path.stem}_second.csv")


def adjudication_file(path: Path = LABELS_FILE) -> Path:
    """The adjudicated disagreements beside a labels file: ``<stem>_adjudicated.csv``."""
    return path.with_name(f"{path.stem}_adjudicated.csv")


def _read(path: Path, topics: list[str]) -> list[LabelRow]:
    """Rows of a labels file; ``round`` is 0 in the files that have no such column (second reading, adjudication)."""
    with path.open(encoding="utf-8", newline="") as fh:
        rows = [
            LabelRow(r["uid"].strip(), r["relevance"].strip(), (r.get("topic") or "").strip() or None,
                     int(r.get("round") or 0))
            for r in csv.DictReader(fh)
        ]
    return validate(rows, topics, str(path))


def first_reading(topics: list[str], path: Path = LABELS_FILE) -> list[LabelRow]:
    """The labels file as first labelled (one reading of every text), validated against the topic names."""
    return _read(path, topics)


def load_labels(topics: list[str], path: Path = LABELS_FILE) -> list[LabelRow]:
    """The gold labels: the first reading, with the adjudicated decisions (:func:`adjudication_file`, when there
    is one beside ``path``) in place of the first reading's where two readings differed."""
    rows = first_reading(topics, path)
    adj_path = adjudication_file(path)
    if not adj_path.exists():
        return rows
    decided = {r.uid: r for r in _read(adj_path, topics)}
    unknown = sorted(set(decided) - {r.uid for r in rows})
    if unknown:
        raise ValueError(f"{adj_path}: {len(unknown)} uid(s) not in {path}, e.g. {unknown[:3]}")
    return [LabelRow(r.uid, decided[r.uid].relevance, decided[r.uid].topic, r.round) if r.uid in decided else r
            for r in rows]


@dataclass(frozen=True)
class Agreement:
    """How far two readings of the same texts agree.

    ``kappa``: Cohen's kappa over the three relevance values. ``positive_f1``: 2·|both relevant| / (|first
    relevant| + |second relevant|), the F1 of either reading scored against the other, over every text with
    "uncertain" counted as not relevant (a model must decide every text: the figure to hold a model's relevance
    F1 against); ``positive_f1_certain``: the same over the texts neither reading called uncertain.
    ``topic_agreement``: share of the texts both call relevant given the same topic."""

    n: int
    counts: dict[tuple[str, str], int]  # (first, second) -> texts
    observed: float
    kappa: float
    certain: int  # texts neither reading called uncertain
    first_relevant: int
    second_relevant: int
    both_relevant: int
    positive_f1: float
    positive_f1_certain: float
    topic_agreement: float
    topics_compared: int

    def as_dict(self) -> dict[str, Any]:
        return {
            "n": self.n, "observed": round(self.observed, 4), "kappa": round(self.kappa, 4),
            "certain": self.certain, "first_relevant": self.first_relevant, "second_relevant": self.second_relevant,
            "both_relevant": self.both_relevant, "positive_f1": round(self.positive_f1, 4),
            "positive_f1_certain": round(self.positive_f1_certain, 4),
            "topic_agreement": round(self.topic_agreement, 4), "topics_compared": self.topics_compared,
            "counts": {f"{a}/{b}": c for (a, b), c in sorted(self.counts.items())},
        }


def agreement(first: Iterable[LabelRow], second: Iterable[LabelRow]) -> Agreement:
    """:class:`Agreement` of two readings of the same uids (a uid missing from either is an error)."""
    a = {r.uid: r for r in first}
    b = {r.uid: r for r in second}
    if set(a) != set(b):
        only = sorted(set(a) ^ set(b))
        raise ValueError(f"the two readings cover different texts ({len(only)} in one only, e.g. {only[:3]})")
    if not a:
        raise ValueError("no texts to compare")
    counts: dict[tuple[str, str], int] = {}
    for uid in a:
        key = (a[uid].relevance, b[uid].relevance)
        counts[key] = counts.get(key, 0) + 1
    n = len(a)
    observed = sum(c for (x, y), c in counts.items() if x == y) / n
    expected = sum(
        sum(c for (x, _), c in counts.items() if x == v) * sum(c for (_, y), c in counts.items() if y == v)
        for v in RELEVANCE_VALUES
    ) / n**2
    kappa = 1.0 if expected == 1 else (observed - expected) / (1 - expected)
    def pos_f1(uids: list[str]) -> tuple[int, int, int, float]:
        x = sum(bool(a[u].relevant) for u in uids)
        y = sum(bool(b[u].relevant) for u in uids)
        xy = sum(bool(a[u].relevant and b[u].relevant) for u in uids)
        return x, y, xy, (2 * xy / (x + y) if x + y else 1.0)

    certain = [u for u in a if a[u].relevant is not None and b[u].relevant is not None]
    first_rel, second_rel, n_both, f1_all = pos_f1(list(a))
    f1_certain = pos_f1(certain)[3]
    both = [u for u in a if a[u].relevant and b[u].relevant]
    same_topic = sum(a[u].topic == b[u].topic for u in both)
    return Agreement(n, counts, observed, kappa, len(certain), first_rel, second_rel, n_both, f1_all, f1_certain,
                     same_topic / len(both) if both else 1.0, len(both))


def disagreements(first: Iterable[LabelRow], second: Iterable[LabelRow]) -> set[str]:
    """Uids whose two readings differ in relevance or (both relevant) topic: what an adjudication settles."""
    b = {r.uid: r for r in second}
    return {r.uid for r in first if r.uid in b and (r.relevance, r.topic) != (b[r.uid].relevance, b[r.uid].topic)}


def reading_agreement(topics: list[str], path: Path = LABELS_FILE) -> dict[str, Any]:
    """The two readings compared (:class:`Agreement`) on the test split, and on the train split when it was
    read twice too (``train``), each with how many of its texts the adjudication settled (``adjudicated``).

    Refuses files that do not fit together: the second reading must cover the whole test split and name only
    labelled texts, and the adjudication must cover exactly the texts where the readings differ."""
    first = {r.uid: r for r in first_reading(topics, path)}
    second_path, adj_path = second_reading_file(path), adjudication_file(path)
    second = _read(second_path, topics)
    unknown = sorted({r.uid for r in second} - set(first))
    if unknown:
        raise ValueError(f"{second_path}: {len(unknown)} uid(s) not in {path}, e.g. {unknown[:3]}")
    read = {r.uid for r in second}
    unread = sorted(u for u in first if split_of(u) == "test" and u not in read)
    if unread:
        raise ValueError(f"{second_path}: {len(unread)} test-split text(s) not read a second time, e.g. {unread[:3]}")
    differ = disagreements([first[u] for u in sorted(read)], second)
    settled = {r.uid for r in _read(adj_path, topics)} if adj_path.exists() else set()
    if settled != differ:
        raise ValueError(f"{adj_path}: settles {len(settled)} texts, but the readings differ on {len(differ)} "
                         f"(e.g. {sorted(settled ^ differ)[:3]})")
    def part(split: Split) -> dict[str, Any]:
        again = [r for r in second if split_of(r.uid) == split]
        return {**agreement([first[r.uid] for r in again], again).as_dict(),
                "adjudicated": sum(split_of(u) == split for u in settled)}

    res = part("test")
    if any(split_of(r.uid) == "train" for r in second):
        res["train"] = part("train")
    return res
