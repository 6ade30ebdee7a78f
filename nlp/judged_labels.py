"""Officers' 人工研判 as training labels: the files ``yuqing judgements export`` writes (JSON lines: ``post_id``,
``text``, ``relevant``, ``topic``, …), read as extra human relevance / topic labels of the train split.

Training reads them when the recipe names them (``extra_labels``: a list of files). Each judged text becomes a
record ``judged:<post_id>`` with a human label row; such rows are always in the train split
(:func:`nlp.human_labels.split_of`), so they never enter the test split, and a judged text that is the text of a
test-split label or of a held-out board message is left out (with a count), as is one already labelled.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from nlp.corpus import Record
from nlp.data import clean_text
from nlp.human_labels import JUDGED_PREFIX, LabelRow

log = logging.getLogger(__name__)

JUDGED_SOURCE = "judged"
JUDGED_ROUND = 0  # not one of the shared-data labelling rounds


class JudgedLabelsError(ValueError):
    """An export file that cannot be read as judged labels (names the file and the line)."""


@dataclass(frozen=True)
class JudgedText:
    post_id: str
    text: str
    relevant: bool
    topic: str | None


def read_judged(path: Path, topics: Sequence[str]) -> list[JudgedText]:
    """The judged texts of one export file (JSON lines), validated: a bad line raises naming the file and line."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise JudgedLabelsError(f"{path}: cannot read the judged labels: {exc}") from exc
    out: list[JudgedText] = []
    for n, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            post_id, text, relevant, topic = row["post_id"], row["text"], row["relevant"], row.get("topic")
        except (json.JSONDecodeError, KeyError, TypeError) as exc:
            raise JudgedLabelsError(f"{path} line {n}: not a judged label ({exc!r}); expected the JSON lines of "
                                    "`yuqing judgements export`") from exc
        if not isinstance(relevant, bool) or not isinstance(text, str) or not str(post_id).strip():
            raise JudgedLabelsError(f"{path} line {n}: 'relevant' must be true/false, 'text' a string, 'post_id' "
                                    "given")
        if topic is not None and (not relevant or topic not in topics):
            raise JudgedLabelsError(f"{path} line {n}: topic {topic!r} (only one of the taxonomy's names, on "
                                    "relevant texts)")
        out.append(JudgedText(str(post_id).strip(), text, relevant, topic))
    return out


@dataclass
class JudgedRows:
    """What the judged files add to a dataset, and what was left out (counts by reason)."""

    records: list[Record] = field(default_factory=list)
    labels: list[LabelRow] = field(default_factory=list)
    skipped: dict[str, int] = field(default_factory=dict)

    def skip(self, reason: str) -> None:
        self.skipped[reason] = self.skipped.get(reason, 0) + 1


def judged_rows(texts: Iterable[JudgedText], *, banned: set[str], labelled: set[str]) -> JudgedRows:
    """Records and train-split label rows of ``texts`` (pure). ``banned``: texts no training may read (test-split
    labels, held-out board messages); ``labelled``: texts that already have a label (the shared data's). A post
    judged in several files counts once (the last file wins)."""
    latest: dict[str, JudgedText] = {}
    for t in texts:
        latest[t.post_id] = t
    out = JudgedRows()
    seen_texts: set[str] = set()
    for t in latest.values():
        text = clean_text(t.text)
        if not text:
            out.skip("empty")
        elif text in banned:
            out.skip("test split or held-out text")
        elif text in labelled:
            out.skip("already labelled")
        elif text in seen_texts:
            out.skip("same text as another judged post")
        else:
            seen_texts.add(text)
            uid = f"{JUDGED_PREFIX}{t.post_id}"
            out.records.append(Record(uid, text, JUDGED_SOURCE))
            out.labels.append(LabelRow(uid, "relevant" if t.relevant else "not_relevant", t.topic, JUDGED_ROUND))
    return out


def load_judged(paths: Sequence[str | Path], topics: Sequence[str], *, banned: set[str],
                labelled: set[str]) -> JudgedRows:
    """:func:`judged_rows` of every file in ``paths``; logs what was added and left out."""
    texts = [t for p in paths for t in read_judged(Path(p), topics)]
    rows = judged_rows(texts, banned=banned, labelled=labelled)
    relevant = sum(1 for r in rows.labels if r.relevance == "relevant")
    log.info("人工研判 labels: %d texts added from %d file(s) (%d relevant); left out: %s", len(rows.labels),
             len(paths), relevant, rows.skipped or "none")
    return rows
