"""Training and evaluation data from the shared folder (see ../shared/README.md), with weak labels.

Label sources (documented in the model card):

* sentiment: Weibo SMP2020-EWECT, six emotions mapped to three classes by :data:`EMOTION_TO_SENTIMENT`
  (angry, sad, fear -> negative; happy -> positive; neutral -> neutral; surprise -> neutral, since SMP2020
  "surprise" posts are mostly exclamations without a clear polarity). ``virus_train`` is the training set;
  ``usual_eval_labeled`` and ``virus_eval_labeled`` are held out for evaluation only. Hotel (ChnSentiCorp)
  and food-delivery (waimai_10k) reviews can add binary negative/positive examples (``use_reviews``).
* relevance (weak): TNEWS ``news_culture`` headlines are relevant; every text whose wording matches the
  taxonomy's relevance rules (:func:`nlp.taxonomy.rule_relevant`) is relevant; other TNEWS / THUCNews
  headlines, government-board messages, Weibo posts and reviews are not relevant. Government messages in
  the ``教育文体`` category that match no rule are left unlabelled (the category is mostly schooling).
* topic (weak): the taxonomy's keyword rules (:func:`nlp.taxonomy.rule_topic`) on relevant texts only.
"""

from __future__ import annotations

import csv
import json
import random
import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the taxonomy (pydantic) is only needed when labelling, not when reading a data cache
    from nlp.taxonomy import Taxonomy

SENTIMENTS: tuple[str, ...] = ("negative", "neutral", "positive")
RELEVANCE: tuple[str, ...] = ("not_relevant", "relevant")
IGNORE = -100

EMOTION_TO_SENTIMENT: dict[str, str] = {
    "angry": "negative",
    "sad": "negative",
    "fear": "negative",
    "happy": "positive",
    "neutral": "neutral",
    "surprise": "neutral",
}

SMP_TRAIN = "sentiment/weibo_smp2020/virus_train.txt"
SMP_EVAL = {
    "usual_eval": "sentiment/weibo_smp2020/usual_eval_labeled.txt",
    "virus_eval": "sentiment/weibo_smp2020/virus_eval_labeled.txt",
}
_WS = re.compile(r"\s+")


@dataclass
class Example:
    text: str
    sentiment: int = IGNORE
    relevance: int = IGNORE
    topic: int = IGNORE
    source: str = ""


def clean_text(text: object) -> str:
    """NFC-normalised text with runs of whitespace (the xlsx ``\\n\\t\\t`` padding) collapsed to one space."""
    if not isinstance(text, str):
        text = "" if text is None else str(text)
    if text == "nan":
        return ""
    return _WS.sub(" ", unicodedata.normalize("NFC", text)).strip()


def map_emotion(label: str) -> str:
    """SMP2020 emotion -> negative / neutral / positive (KeyError for an unknown label)."""
    return EMOTION_TO_SENTIMENT[label]


def read_smp(path: Path) -> list[tuple[str, int]]:
    """(text, sentiment index) pairs of one SMP2020 file; empty posts are dropped."""
    rows = json.loads(path.read_text(encoding="utf-8"))
    out = []
    for r in rows:
        text = clean_text(r["content"])
        if text:
            out.append((text, SENTIMENTS.index(map_emotion(r["label"]))))
    return out


def read_reviews(path: Path) -> list[tuple[str, int]]:
    """(text, sentiment index) of a label,review CSV: 1 -> positive, 0 -> negative."""
    out = []
    with path.open(encoding="utf-8-sig", newline="") as fh:
        for row in csv.DictReader(fh):
            text = clean_text(row.get("review"))
            if text and row.get("label") in ("0", "1"):
                out.append((text, SENTIMENTS.index("positive" if row["label"] == "1" else "negative")))
    return out


def read_tnews(path: Path) -> list[tuple[str, str]]:
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            r = json.loads(line)
            out.append((clean_text(r["sentence"]), str(r["label_desc"])))
    return out


def read_thucnews(path: Path) -> list[str]:
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        title = line.rsplit("\t", 1)[0]
        if title.strip():
            out.append(clean_text(title))
    return out


def read_gov(path: Path, *, exclude: set[str]) -> list[tuple[str, str | None]]:
    """(subject + detail, first-level category or None) of one government-board xlsx file, without the
    messages whose 留言编号 is in ``exclude`` (the held-out list: :func:`nlp.corpus.load_holdout_ids`)."""
    import pandas as pd

    df = pd.read_excel(path)
    out = []
    for _, row in df.iterrows():
        if str(row["留言编号"]).strip() in exclude:
            continue
        text = clean_text(f"{clean_text(row.get('留言主题'))} {clean_text(row.get('留言详情'))}")
        cat = row.get("一级分类")
        out.append((text, clean_text(cat) if isinstance(cat, str) else None))
    return [(t, c) for t, c in out if t]


def weak_relevance(text: str, taxonomy: Taxonomy, source_positive: bool = False) -> int:
    from nlp.taxonomy import rule_relevant

    return 1 if source_positive or rule_relevant(text, taxonomy) else 0


def weak_topic(text: str, relevance: int, taxonomy: Taxonomy) -> int:
    from nlp.taxonomy import rule_topic

    if relevance != 1:
        return IGNORE
    topic = rule_topic(text, taxonomy)
    return taxonomy.names.index(topic) if topic is not None else IGNORE


def label_example(
    text: str, taxonomy: Taxonomy, *, sentiment: int = IGNORE, source: str = "", relevant: bool | None = None
) -> Example:
    """An example with weak relevance/topic labels; ``relevant=True`` forces relevance (else rules decide)."""
    rel = 1 if relevant else weak_relevance(text, taxonomy)
    return Example(text, sentiment=sentiment, relevance=rel, topic=weak_topic(text, rel, taxonomy), source=source)


def build_training_examples(
    shared: Path, taxonomy: Taxonomy, *, use_reviews: bool = True, reviews_per_source: int = 4000, seed: int = 42
) -> list[Example]:
    """Every training example (never the SMP2020 eval splits, never a held-out board message), seeded order."""
    from nlp.corpus import load_holdout_ids
    from nlp.taxonomy import rule_relevant

    holdout = load_holdout_ids(shared)
    rng = random.Random(seed)
    exs: list[Example] = []
    for text, s in read_smp(shared / SMP_TRAIN):
        exs.append(label_example(text, taxonomy, sentiment=s, source="smp_train"))
    if use_reviews:
        for name, rel in (
            ("chnsenticorp", "sentiment/chnsenticorp_htl/ChnSentiCorp_htl_all.csv"),
            ("waimai", "sentiment/waimai_10k/waimai_10k.csv"),
        ):
            rows = read_reviews(shared / rel)
            rng.shuffle(rows)
            for text, s in rows[:reviews_per_source]:
                exs.append(label_example(text, taxonomy, sentiment=s, source=name))
    tn = taxonomy.relevance
    for text, cls in read_tnews(shared / "topics/tnews/dev.json"):
        if cls in tn.tnews_relevant:
            exs.append(label_example(text, taxonomy, source="tnews", relevant=True))
        elif cls in tn.tnews_excluded and not rule_relevant(text, taxonomy):
            exs.append(Example(text, source="tnews"))
        else:
            exs.append(label_example(text, taxonomy, source="tnews"))
    for text in read_thucnews(shared / "topics/thucnews_titles/dev.txt"):
        exs.append(label_example(text, taxonomy, source="thucnews"))
    gov = shared / "gov_messages"
    for fname in ("messages_labelled_495.xlsx", "messages_with_likes_4326.xlsx", "messages_with_replies_2816.xlsx"):
        path = gov / fname
        if not path.exists():
            continue
        for text, cat in read_gov(path, exclude=holdout):
            if cat == tn.gov_relevant_category and not rule_relevant(text, taxonomy):
                exs.append(Example(text, source="gov"))
            else:
                exs.append(label_example(text, taxonomy, source="gov"))
    rng.shuffle(exs)
    return exs


def split_dev(exs: list[Example], dev_fraction: float, seed: int) -> tuple[list[Example], list[Example]]:
    """Seeded train/dev split."""
    idx = list(range(len(exs)))
    random.Random(seed).shuffle(idx)
    n_dev = int(len(exs) * dev_fraction)
    dev = {i for i in idx[:n_dev]}
    return [e for i, e in enumerate(exs) if i not in dev], [e for i, e in enumerate(exs) if i in dev]


def load_sentiment_eval(shared: Path) -> dict[str, list[tuple[str, int]]]:
    """The held-out SMP2020 eval splits: name -> (text, sentiment index)."""
    return {name: read_smp(shared / rel) for name, rel in SMP_EVAL.items()}


def save_jsonl(exs: list[Example], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as fh:
        for e in exs:
            fh.write(json.dumps(e.__dict__, ensure_ascii=False) + "\n")


def load_jsonl(path: Path) -> list[Example]:
    return [Example(**json.loads(line)) for line in path.read_text(encoding="utf-8").splitlines() if line]
