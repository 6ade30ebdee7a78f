"""Every text of the shared data folder as one keyed record, with the held-out board messages removed.

Each record has a stable ``uid`` (the same scheme as the relevance labels in ``nlp/labels/``):

* ``gov:<留言编号>`` — a government-board message (subject + detail), first file wins when a message appears
  in several of the three xlsx files; **messages listed in** ``gov_messages/holdout_ids.csv`` **are never
  returned** (not as labelled data, not as unlabelled pretraining text, not for vocabulary building);
* ``smp_virus_train:<id>``, ``smp_usual_eval:<id>``, ``smp_virus_eval:<id>`` — SMP2020-EWECT Weibo posts
  with their sentiment (six emotions mapped to three classes, see :data:`nlp.data.EMOTION_TO_SENTIMENT`);
* ``chnsenticorp:<row>``, ``waimai:<row>`` — hotel / food-delivery reviews (1 positive, 0 negative);
* ``tnews_dev:<line>``, ``thucnews_dev:<line>`` — news headlines (0-based line numbers of the files).
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from nlp.data import IGNORE, SENTIMENTS, clean_text, map_emotion

HOLDOUT_IDS = "gov_messages/holdout_ids.csv"
GOV_FILES: tuple[str, ...] = (
    "messages_labelled_495.xlsx",
    "messages_with_likes_4326.xlsx",
    "messages_with_replies_2816.xlsx",
)
SMP_FILES: dict[str, str] = {
    "smp_virus_train": "sentiment/weibo_smp2020/virus_train.txt",
    "smp_usual_eval": "sentiment/weibo_smp2020/usual_eval_labeled.txt",
    "smp_virus_eval": "sentiment/weibo_smp2020/virus_eval_labeled.txt",
}
REVIEW_FILES: dict[str, str] = {
    "chnsenticorp": "sentiment/chnsenticorp_htl/ChnSentiCorp_htl_all.csv",
    "waimai": "sentiment/waimai_10k/waimai_10k.csv",
}
TNEWS = "topics/tnews/dev.json"
THUCNEWS = "topics/thucnews_titles/dev.txt"


@dataclass(frozen=True)
class Record:
    uid: str
    text: str
    source: str  # uid prefix: gov, smp_virus_train, ..., tnews_dev, thucnews_dev
    sentiment: int = IGNORE  # index into SENTIMENTS, or IGNORE
    category: str | None = None  # gov 一级分类 or TNEWS label_desc, when the source has one

    @property
    def is_post(self) -> bool:
        """Weibo posts (3-class sentiment), as opposed to reviews (2-class) and unlabelled sources."""
        return self.source.startswith("smp_")


def load_holdout_ids(shared: Path) -> set[str]:
    """The 留言编号 of the held-out board messages (FileNotFoundError when the list is missing: without it
    nothing from the board may be used)."""
    path = shared / HOLDOUT_IDS
    with path.open(encoding="utf-8-sig", newline="") as fh:
        ids = {str(row["留言编号"]).strip() for row in csv.DictReader(fh)}
    if not ids:
        raise ValueError(f"{path}: no 留言编号 listed")
    return ids


def gov_records(shared: Path, holdout: set[str]) -> list[Record]:
    import pandas as pd

    seen: set[str] = set()
    out: list[Record] = []
    for fname in GOV_FILES:
        df = pd.read_excel(shared / "gov_messages" / fname)
        for _, row in df.iterrows():
            mid = str(row["留言编号"]).strip()
            if mid in holdout or mid in seen:
                continue
            seen.add(mid)
            text = clean_text(f"{clean_text(row.get('留言主题'))} {clean_text(row.get('留言详情'))}")
            cat = row.get("一级分类")
            if text:
                category = clean_text(cat) if isinstance(cat, str) else None
                out.append(Record(f"gov:{mid}", text, "gov", category=category))
    return out


def smp_records(shared: Path) -> list[Record]:
    out: list[Record] = []
    for src, rel in SMP_FILES.items():
        for r in json.loads((shared / rel).read_text(encoding="utf-8")):
            text = clean_text(r["content"])
            if text:
                s = SENTIMENTS.index(map_emotion(r["label"]))
                out.append(Record(f"{src}:{r['id']}", text, src, sentiment=s))
    return out


def review_records(shared: Path) -> list[Record]:
    out: list[Record] = []
    for src, rel in REVIEW_FILES.items():
        with (shared / rel).open(encoding="utf-8-sig", newline="") as fh:
            for i, row in enumerate(csv.DictReader(fh)):
                text = clean_text(row.get("review"))
                if text and row.get("label") in ("0", "1"):
                    s = SENTIMENTS.index("positive" if row["label"] == "1" else "negative")
                    out.append(Record(f"{src}:{i}", text, src, sentiment=s))
    return out


def news_records(shared: Path) -> list[Record]:
    out: list[Record] = []
    for i, line in enumerate((shared / TNEWS).read_text(encoding="utf-8").splitlines()):
        if line.strip():
            r = json.loads(line)
            text = clean_text(r["sentence"])
            if text:
                out.append(Record(f"tnews_dev:{i}", text, "tnews_dev", category=str(r["label_desc"])))
    for i, line in enumerate((shared / THUCNEWS).read_text(encoding="utf-8").splitlines()):
        text = clean_text(line.rsplit("\t", 1)[0])
        if text:
            out.append(Record(f"thucnews_dev:{i}", text, "thucnews_dev"))
    return out


def load_records(shared: Path) -> list[Record]:
    """Every usable text of the shared data, held-out board messages excluded, in a fixed order."""
    holdout = load_holdout_ids(shared)
    recs = gov_records(shared, holdout) + smp_records(shared) + review_records(shared) + news_records(shared)
    leaked = [r.uid for r in recs if r.source == "gov" and r.uid.split(":", 1)[1] in holdout]
    assert not leaked, f"held-out messages in the corpus: {leaked[:5]}"
    return recs


def write_corpus(records: Iterable[Record], path: Path) -> int:
    """One JSON line ``{"uid", "text"}`` per record (the MLM / vocabulary corpus); returns the count."""
    path.parent.mkdir(parents=True, exist_ok=True)
    n = 0
    with path.open("w", encoding="utf-8") as fh:
        for r in records:
            fh.write(json.dumps({"uid": r.uid, "text": r.text}, ensure_ascii=False) + "\n")
            n += 1
    return n
