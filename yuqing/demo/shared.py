"""Real material that joins the demo replay when the shared data folder (``paths.shared_data``) is present.

- the saved real news pages of ``html/gne`` (article pages only), listed in the demo news feed as published
  over the past three days and served as saved (their own bylines keep their own dates: the extractor reads
  what the page says);
- messages with their official replies from ``gov_messages/messages_with_replies_2816.xlsx``, never those
  whose 留言编号 is in ``holdout_ids.csv``, an evenly spaced sample, with their times mapped (in order) onto
  the past three days, served on the demo message board beside the demo corpus's messages.
"""

from __future__ import annotations

import csv
import logging
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from yuqing.demo.corpus import DemoPost, DemoReply

log = logging.getLogger(__name__)

MESSAGES_FILE = Path("gov_messages") / "messages_with_replies_2816.xlsx"
HOLDOUT_FILE = Path("gov_messages") / "holdout_ids.csv"
GNE_DIR = Path("html") / "gne"
# The window of the past the shared material is spread over, in minutes before the start.
PAST_FROM = -3 * 24 * 60
PAST_TO = -60


@dataclass(frozen=True)
class SharedPage:
    """A saved real page, served at ``/shared/gne/<path>`` and listed in the news feed."""

    path: str  # relative to the gne folder, e.g. tests/people/1.html
    title: str
    at: float


@dataclass
class SharedData:
    folder: Path
    pages: list[SharedPage] = field(default_factory=list)
    messages: list[DemoPost] = field(default_factory=list)

    @property
    def gne_dir(self) -> Path:
        return self.folder / GNE_DIR

    def describe(self) -> str:
        return f"{len(self.pages)} real news pages and {len(self.messages)} real board messages from {self.folder}"


def present(folder: Path) -> bool:
    """Whether ``folder`` holds the shared data the demo uses."""
    return (folder / GNE_DIR / "index.csv").is_file() and (folder / MESSAGES_FILE).is_file()


def _spread(n: int) -> list[float]:
    if n <= 1:
        return [PAST_TO] * n
    step = (PAST_TO - PAST_FROM) / (n - 1)
    return [PAST_FROM + i * step for i in range(n)]


def load_pages(gne_dir: Path) -> list[SharedPage]:
    """The article pages listed in the gne index (list pages left out), spread over the past days."""
    with (gne_dir / "index.csv").open(encoding="utf-8-sig") as fh:
        rows = [(r["file"].removeprefix("gne/"), r["title"]) for r in csv.DictReader(fh)]
    articles = [(path, title) for path, title in rows if path.startswith("tests/") and (gne_dir / path).is_file()]
    return [SharedPage(path, title, at) for (path, title), at in zip(articles, _spread(len(articles)), strict=True)]


def holdout_ids(path: Path) -> set[str]:
    with path.open(encoding="utf-8-sig") as fh:
        return {row["留言编号"].strip() for row in csv.DictReader(fh) if row.get("留言编号", "").strip()}


def _clean(value: Any) -> str:
    """A cell without the \\n\\t\\t padding of the export."""
    if value is None or (isinstance(value, float) and value != value):
        return ""
    return "\n".join(line.strip() for line in str(value).strip().splitlines() if line.strip())


def _when(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value
    text = _clean(value)
    for layout in ("%Y/%m/%d %H:%M:%S", "%Y-%m-%d %H:%M:%S", "%Y/%m/%d %H:%M", "%Y-%m-%d"):
        try:
            return datetime.strptime(text, layout)
        except ValueError:
            continue
    return None


def load_messages(folder: Path, limit: int) -> list[DemoPost]:
    """Up to ``limit`` replied messages (holdout IDs excluded), evenly spaced over the file, as demo posts
    (story ``shared-board``) whose message and reply times keep their order, mapped onto the past days."""
    import pandas as pd

    held = holdout_ids(folder / HOLDOUT_FILE)
    frame = pd.read_excel(folder / MESSAGES_FILE, dtype=str)
    rows = []
    for row in frame.to_dict("records"):
        number = _clean(row.get("留言编号"))
        asked, answered = _when(row.get("留言时间")), _when(row.get("答复时间"))
        title, text = _clean(row.get("留言主题")), _clean(row.get("留言详情"))
        if not number or number in held or asked is None or not (title and text):
            continue
        rows.append((number, asked, answered, row, title, text))
    if limit <= 0 or not rows:
        return []
    stride = max(1, len(rows) // limit)
    chosen = sorted(rows[::stride][:limit], key=lambda r: r[1])
    first, last = chosen[0][1], max(r[2] or r[1] for r in chosen)
    span = max((last - first).total_seconds(), 1.0)

    def at(when: datetime) -> float:
        return min(PAST_TO, PAST_FROM + (when - first).total_seconds() / span * (PAST_TO - PAST_FROM))

    out = []
    for number, asked, answered, row, title, text in chosen:
        reply_text = _clean(row.get("答复意见"))
        reply = None
        if reply_text and answered is not None and answered >= asked:
            reply = DemoReply(at=max(at(answered), at(asked)), text=reply_text)
        out.append(DemoPost(id=f"s{number}", kind="message", story="shared-board", at=at(asked), title=title,
                            text=text, author=_clean(row.get("留言用户")) or None, reply=reply))
    return out


def load_shared(folder: Path, message_limit: int) -> SharedData | None:
    """The shared material, or None when ``folder`` does not hold it."""
    if not present(folder):
        return None
    data = SharedData(folder=folder)
    data.pages = load_pages(folder / GNE_DIR)
    data.messages = load_messages(folder, message_limit)
    return data
