"""What the events stage reads: one post, reduced to the fields clustering and scoring need.

Independent of ``Post`` (the ingest stage builds an :class:`EventPost` from a ``Post`` and its ``Analysis``;
``yuqing events assign`` builds one from a JSON line).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from yuqing.models import SENTIMENTS, Sentiment

__all__ = ["SENTIMENTS", "EventPost", "Sentiment"]


@dataclass(frozen=True)
class EventPost:
    """One post as the events stage sees it. ``event_id`` is set when the post was assigned before."""

    id: str
    title: str
    text: str
    published_at: datetime
    source: str = ""
    kind: str = "message"
    url: str | None = None
    likes: int = 0
    dislikes: int = 0
    comments: int = 0
    reposts: int = 0
    sentiment: Sentiment | None = None
    relevant: bool | None = None
    relevance_prob: float | None = None
    topic: str | None = None
    places: tuple[str, ...] = ()
    orgs: tuple[str, ...] = ()
    duplicate_of: str | None = None
    keyword_groups: tuple[str, ...] = ()
    event_id: str | None = None
    # 人工研判: ``relevant`` and ``topic`` above are a person's; the classifier had said these
    judged: bool = False
    model_relevant: bool | None = None
    model_topic: str | None = None
    # 本局发布: the post came from one of the bureau's own channels (``own: true`` in sources.yaml)
    own: bool = False

    def __post_init__(self) -> None:
        if not self.id:
            raise ValueError("a post needs a non-empty id")
        if self.published_at.tzinfo is None or self.published_at.utcoffset() is None:
            raise ValueError(f"post {self.id}: published_at must be timezone-aware")
        for name in ("likes", "dislikes", "comments", "reposts"):
            if getattr(self, name) < 0:
                raise ValueError(f"post {self.id}: {name} must be >= 0")
        if self.sentiment is not None and self.sentiment not in SENTIMENTS:
            raise ValueError(f"post {self.id}: unknown sentiment {self.sentiment!r}")
        if self.relevance_prob is not None and not 0.0 <= self.relevance_prob <= 1.0:
            raise ValueError(f"post {self.id}: relevance_prob must be within 0..1")

    @property
    def is_relevant(self) -> bool | None:
        """``relevant`` when given, else ``relevance_prob >= 0.5`` when that is given, else unknown."""
        if self.relevant is not None:
            return self.relevant
        if self.relevance_prob is not None:
            return self.relevance_prob >= 0.5
        return None
