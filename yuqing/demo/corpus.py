"""The demo corpus: posts written for the demo about the fictional 青川市, stored as YAML under ``data/``.

Each post has a kind (which channel of the demo site serves it), a story tag (what it is about; tests and the
README refer to stories by tag), the tone its writer meant (``neg``/``neu``/``pos``: a check on the classifier,
never fed to it) and ``at``: minutes relative to the demo's start. Negative offsets are the past (published
at once); positive ones are replayed after the start on the demo clock (:mod:`yuqing.demo.replay`).

Kinds and where they are served (see :mod:`yuqing.demo.site`):

- ``news``     news articles: ``channel: feed`` (青川日报's RSS feed) or ``channel: column`` (青川新闻网's
               culture column, a paged list); ``outlet`` is the paper named in the byline
- ``message``  citizens' messages on the board (市民留言板), optionally with the official ``reply``
               (its own ``at``, the replying unit and text)
- ``social``   Weibo-style posts with engagement (reposts, comments, likes) and ``repost_of`` (a post id)
- ``search``   forum threads found through the keyword search endpoint (``outlet``: the forum)
- ``notice``   the bureau's own website (官网 通知公告)
- ``wechat``   the bureau's own 微信公众号 articles
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from yuqing.config_files import load_model
from yuqing.errors import ConfigError

DATA_DIR = Path(__file__).resolve().parent / "data"

DemoKind = Literal["news", "message", "social", "search", "notice", "wechat"]
Tone = Literal["neg", "neu", "pos"]
KINDS: tuple[DemoKind, ...] = ("news", "message", "social", "search", "notice", "wechat")
# The story the demo is about: it grows fast after the start and turns negative.
RISING_STORY = "library"
# Story minutes after the start over which it rises (and the bureau responds).
RISE_MINUTES = 300
# The past the corpus covers, and how far after the start it runs, in minutes.
MIN_AT = -7 * 24 * 60
MAX_AT = 24 * 60


class DemoReply(BaseModel):
    """The official reply to a board message, published ``at`` minutes after the demo's start."""

    model_config = ConfigDict(extra="forbid")
    at: float = Field(ge=MIN_AT, le=MAX_AT)
    unit: str | None = None
    text: str = Field(min_length=1)


class DemoPost(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*$", max_length=64)
    kind: DemoKind
    story: str = Field(min_length=1)
    tone: Tone = "neu"
    at: float = Field(ge=MIN_AT, le=MAX_AT)
    title: str = ""
    text: str = Field(min_length=1)
    author: str | None = None
    channel: Literal["feed", "column"] | None = None
    outlet: str | None = None
    category: str | None = None
    reply: DemoReply | None = None
    reposts: int = Field(0, ge=0)
    comments: int = Field(0, ge=0)
    likes: int = Field(0, ge=0)
    repost_of: str | None = None

    @model_validator(mode="after")
    def _kind_fields(self) -> DemoPost:
        if self.kind != "social" and not self.title:
            raise ValueError(f"a {self.kind} post needs a title")
        if (self.kind == "news") != (self.channel is not None):
            raise ValueError("a news post needs a channel (feed or column); other kinds have none")
        if self.reply is not None:
            if self.kind != "message":
                raise ValueError("only a board message has a reply")
            if self.reply.at < self.at:
                raise ValueError("the reply comes before the message")
        if self.kind != "social" and (self.reposts or self.comments or self.likes or self.repost_of):
            raise ValueError("engagement and repost_of belong to social posts")
        return self


class DemoFile(BaseModel):
    model_config = ConfigDict(extra="forbid")
    posts: list[DemoPost] = Field(default_factory=list)


def load_corpus(folder: Path = DATA_DIR) -> list[DemoPost]:
    """Every post of the ``*.yaml`` files in ``folder``, in time order (ties: file order). Ids must be unique
    and a repost must name an earlier social post; errors name the file and the field."""
    posts: list[DemoPost] = []
    where: dict[str, tuple[Path, int]] = {}
    files = sorted(folder.glob("*.yaml"))
    if not files:
        raise ConfigError("no demo corpus files (*.yaml)", file=folder)
    for path in files:
        for i, post in enumerate(load_model(path, DemoFile, root_key="posts").posts):
            if post.id in where:
                raise ConfigError(f"duplicate post id {post.id!r} (also in {where[post.id][0].name})", file=path,
                                  field=f"posts[{i}].id")
            where[post.id] = (path, i)
            posts.append(post)
    by_id = {p.id: p for p in posts}
    for post in posts:
        if post.repost_of is None:
            continue
        original = by_id.get(post.repost_of)
        path, i = where[post.id]
        if original is None or original.kind != "social" or original.at > post.at:
            raise ConfigError(f"repost_of {post.repost_of!r} is not an earlier social post", file=path,
                              field=f"posts[{i}].repost_of")
    return sorted(posts, key=lambda p: p.at)


def summary(posts: list[DemoPost]) -> str:
    """One line: how many posts of each kind."""
    counts = Counter(p.kind for p in posts)
    return ", ".join(f"{counts[k]} {k}" for k in KINDS if counts[k])
