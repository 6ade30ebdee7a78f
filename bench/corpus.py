"""Real Chinese text for benchmarks: citizens' messages and Weibo posts from the shared data."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pandas as pd


def _clean(text: object) -> str:
    return " ".join(str(text).split()) if isinstance(text, str) else ""


def texts(shared_data: Path) -> Iterator[tuple[str, str]]:
    """(title, body) pairs: government-board messages, then Weibo posts (no title)."""
    gov = shared_data / "gov_messages"
    for name in ("messages_with_likes_4326.xlsx", "messages_with_replies_2816.xlsx"):
        frame = pd.read_excel(gov / name)
        for title, body in zip(frame["留言主题"], frame["留言详情"], strict=True):
            if _clean(body):
                yield _clean(title), _clean(body)
    weibo = json.loads((shared_data / "sentiment" / "weibo_smp2020" / "virus_train.txt").read_text("utf-8"))
    for row in weibo:
        if _clean(row["content"]):
            yield "", _clean(row["content"])
