"""Human relevance / topic labels (``nlp/labels/relevance.csv``: IDs and labels only, never the texts).

Each row: ``uid`` (see :mod:`nlp.corpus`), ``relevance`` (relevant / not_relevant / uncertain), ``topic``
(one of the taxonomy's 12 names, only for relevant rows), ``round`` (1: broad sample ``sample.py``; 2:
strong-keyword sample ``sample2.py``; 3: texts ranked by a scorer fitted on the round 1-2 train split,
``sample3.py``). The labels were given by people reading each text under the
guidelines in the model card.

The test split is fixed by a hash of the uid (:func:`split_of`), so it does not depend on file order and
stays the same when labels are added; it is never used for training, tuning or model selection.
"""

from __future__ import annotations

import csv
import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

RELEVANCE_VALUES: tuple[str, ...] = ("relevant", "not_relevant", "uncertain")
TEST_FRACTION = 0.25
LABELS_FILE = Path(__file__).resolve().parent / "labels" / "relevance.csv"
FIELDS: tuple[str, ...] = ("uid", "relevance", "topic", "round")

Split = Literal["train", "test"]


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
    """``test`` for a fixed ``test_fraction`` of uids (by SHA-1 of the uid), else ``train``."""
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


def load_labels(topics: list[str], path: Path = LABELS_FILE) -> list[LabelRow]:
    """The committed labels, validated against the taxonomy's topic names."""
    with path.open(encoding="utf-8", newline="") as fh:
        rows = [
            LabelRow(r["uid"].strip(), r["relevance"].strip(), (r.get("topic") or "").strip() or None, int(r["round"]))
            for r in csv.DictReader(fh)
        ]
    return validate(rows, topics, str(path))


def save_labels(rows: list[LabelRow], path: Path = LABELS_FILE) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh, lineterminator="\n")
        w.writerow(FIELDS)
        for r in sorted(rows, key=lambda r: (r.round, r.uid)):
            w.writerow([r.uid, r.relevance, r.topic or "", r.round])


# the labelling round of each sample chunk: chunk0-2 round 1, chunk3-4 round 2, chunk5-10 round 3, chunk11-16 round 4
ROUND_OF_CHUNK: tuple[int, ...] = (1, 1, 1, 2, 2) + (3,) * 6 + (4,) * 6


def merge_annotations(notes_dir: Path, topics: list[str]) -> list[LabelRow]:
    """Rows from the annotators' files ``labels{J}.csv`` (uid,relevance,topic,note) in ``notes_dir``; the
    round comes from the sample chunk ``chunk{J}.jsonl`` a uid was drawn in (:data:`ROUND_OF_CHUNK`). The note
    column (a short reason) is dropped."""
    import json

    round_of: dict[str, int] = {}
    for j, rnd in enumerate(ROUND_OF_CHUNK):
        chunk = notes_dir / f"chunk{j}.jsonl"
        if chunk.exists():
            for line in chunk.read_text(encoding="utf-8").splitlines():
                if line.strip():
                    round_of[json.loads(line)["uid"]] = rnd
    rows: list[LabelRow] = []
    for j in range(len(ROUND_OF_CHUNK)):
        path = notes_dir / f"labels{j}.csv"
        if not path.exists():
            continue
        with path.open(encoding="utf-8-sig", newline="") as fh:
            for r in csv.DictReader(fh):
                uid = r["uid"].strip()
                if uid not in round_of:
                    raise ValueError(f"{path}: uid {uid} was not in any sample chunk")
                rel = r["relevance"].strip()
                topic = (r.get("topic") or "").strip() or None
                rows.append(LabelRow(uid, rel, topic if rel == "relevant" else None, round_of[uid]))
    return validate(rows, topics, str(notes_dir))


def main(argv: list[str] | None = None) -> int:
    """``python -m nlp.human_labels NOTES_DIR``: merge the annotators' files into nlp/labels/relevance.csv."""
    import argparse

    from nlp.taxonomy import load_taxonomy

    ap = argparse.ArgumentParser(description=main.__doc__)
    ap.add_argument("notes_dir", type=Path)
    ap.add_argument("--taxonomy", type=Path, default=Path("config/taxonomy.yaml"))
    ap.add_argument("--out", type=Path, default=LABELS_FILE)
    args = ap.parse_args(argv)
    rows = merge_annotations(args.notes_dir, load_taxonomy(args.taxonomy).names)
    save_labels(rows, args.out)
    counts = {v: sum(r.relevance == v for r in rows) for v in RELEVANCE_VALUES}
    print(f"{len(rows)} labels -> {args.out}: {counts}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
