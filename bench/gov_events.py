"""The provincial government board's messages (shared data) as events input, for the events benchmarks.

Held-out messages (``gov_messages/holdout_ids.csv``) are never returned. Message text carries ``\\n\\t\\t``
padding, collapsed here; times are the board's local time (Asia/Shanghai).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pandas as pd

from events.types import EventPost

TZ = ZoneInfo("Asia/Shanghai")
REPLIES = "messages_with_replies_2816.xlsx"
LIKES = "messages_with_likes_4326.xlsx"
LABELLED = "messages_labelled_495.xlsx"


@dataclass(frozen=True)
class Message:
    id: int
    user: str
    title: str
    text: str
    at: datetime
    likes: int = 0
    dislikes: int = 0

    def json_line(self) -> dict[str, Any]:
        """The input line of ``yuqing events assign``."""
        return {
            "id": str(self.id), "title": self.title, "text": self.text, "published_at": self.at.isoformat(),
            "likes": self.likes, "dislikes": self.dislikes,
        }

    def event_post(self, kind: str = "message", source: str = "问政西地省") -> EventPost:
        return EventPost(
            id=str(self.id), title=self.title, text=self.text, published_at=self.at, source=source, kind=kind,
            likes=self.likes, dislikes=self.dislikes,
        )


def _clean(value: object) -> str:
    return " ".join(str(value).replace("_x000D_", " ").split()) if isinstance(value, str) else ""


def _time(value: object) -> datetime:
    ts = pd.Timestamp(value)  # a string like 2019/4/25 9:32:09 or a datetime (the sheets mix both)
    return ts.to_pydatetime().replace(tzinfo=TZ)


def holdout_ids(shared: Path) -> set[int]:
    return {int(x) for x in pd.read_csv(shared / "gov_messages" / "holdout_ids.csv")["留言编号"]}


def load_messages(shared: Path, name: str = REPLIES) -> list[Message]:
    """The file's messages without the held-out ones, in time order (ties: by id); likes where the file has
    them."""
    frame = pd.read_excel(shared / "gov_messages" / name)
    held = holdout_ids(shared)
    has_likes = "点赞数" in frame.columns
    out: list[Message] = []
    for row in frame.itertuples(index=False):
        mid = int(row.留言编号)
        if mid in held:
            continue
        out.append(
            Message(
                id=mid, user=str(row.留言用户), title=_clean(row.留言主题), text=_clean(row.留言详情),
                at=_time(row.留言时间),
                likes=int(row.点赞数) if has_likes else 0, dislikes=int(row.反对数) if has_likes else 0,
            )
        )
    out.sort(key=lambda m: (m.at, m.id))
    return out


def join_likes(messages: list[Message], shared: Path) -> tuple[list[Message], int]:
    """Likes / dislikes from the likes file joined by 留言编号, else by (留言用户, 留言主题); returns the messages
    and how many were joined."""
    likes = load_messages(shared, LIKES)
    by_id = {m.id: m for m in likes}
    by_key = {(m.user, m.title): m for m in likes}
    out: list[Message] = []
    joined = 0
    for m in messages:
        src = by_id.get(m.id) or by_key.get((m.user, m.title))
        if src is not None:
            joined += 1
            m = replace(m, likes=src.likes, dislikes=src.dislikes)
        out.append(m)
    return out, joined
