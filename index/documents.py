"""The indexed document: one post, article, message or social item, keyed by its canonical URL."""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Any, Literal
from urllib.parse import urlsplit, urlunsplit

from pydantic import BaseModel, Field, field_validator

from nlp.segment import segment_for_index
from nlp.types import Analysis

PostKind = Literal["article", "message", "social", "search"]


def canonicalize_url(url: str) -> str:
    """A stable form of ``url``: lower-case scheme and host, no fragment, default ports dropped."""
    parts = urlsplit(url.strip())
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    port = parts.port
    if port and not ((scheme == "http" and port == 80) or (scheme == "https" and port == 443)):
        host = f"{host}:{port}"
    path = parts.path or "/"
    return urlunsplit((scheme, host, path, parts.query, ""))


def fingerprint_bands(value: int, bands: int = 4) -> list[str]:
    """Band keys of a 64-bit SimHash for candidate lookup: four 16-bit bands, e.g. ['0:1a2b', ...]."""
    width = 64 // bands
    return [f"{i}:{(value >> (i * width)) & ((1 << width) - 1):0{width // 4}x}" for i in range(bands)]


def doc_id_for(canonical_url: str) -> str:
    """Document id: a stable hash of the canonical URL, so a re-crawl updates and never duplicates."""
    return hashlib.sha1(canonical_url.encode("utf-8")).hexdigest()


class Engagement(BaseModel):
    reposts: int = Field(0, ge=0)
    comments: int = Field(0, ge=0)
    likes: int = Field(0, ge=0)
    views: int = Field(0, ge=0)


class Reply(BaseModel):
    """The official reply to a message-board post (留言板 / 问政)."""

    text: str
    replied_at: datetime | None = None
    unit: str | None = None


class Post(BaseModel):
    url: str
    canonical_url: str = ""
    title: str = ""
    content: str = ""
    source: str
    site: str | None = None
    kind: PostKind = "article"
    author: str | None = None
    published_at: datetime | None = None
    fetched_at: datetime
    engagement: Engagement = Field(default_factory=Engagement)
    category: str | None = None
    reply: Reply | None = None
    repost_of: str | None = None
    fingerprint: str | None = None  # 64-bit SimHash, hex (crawlers.fingerprint)
    content_hash: str | None = None
    duplicate_of: str | None = None
    is_first: bool | None = None
    analysis: Analysis | None = None
    # Filled by the segmentation stage (nlp.segment); the writer fills them when a caller skipped it.
    title_seg: str | None = None
    content_seg: str | None = None

    @field_validator("fetched_at", "published_at")
    @classmethod
    def _aware(cls, value: datetime | None) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("datetimes must be timezone-aware (Asia/Shanghai)")
        return value

    def model_post_init(self, __context: Any) -> None:
        if not self.canonical_url:
            self.canonical_url = canonicalize_url(self.url)

    @property
    def doc_id(self) -> str:
        return doc_id_for(self.canonical_url)

    def segmented(self) -> Post:
        """This post with ``title_seg``/``content_seg`` filled (jieba tokens, lower-cased, space-joined)."""
        if self.title_seg is not None and self.content_seg is not None:
            return self
        return self.model_copy(
            update={"title_seg": segment_for_index(self.title), "content_seg": segment_for_index(self.content)}
        )

    def to_source(self) -> dict[str, Any]:
        """The Elasticsearch ``_source`` of this post."""
        post = self.segmented()
        src = post.model_dump(mode="json", exclude={"analysis"}, exclude_none=True)
        if post.fingerprint:
            src["fingerprint_bands"] = fingerprint_bands(int(post.fingerprint, 16))
        if post.analysis is not None:
            a = post.analysis
            src["analysis"] = {
                **a.model_dump(mode="json"),
                "sentiment_score": a.sentiment_probs.get(a.sentiment, 0.0),
                "topic_score": a.topic_probs.get(a.topic, 0.0) if a.topic else 0.0,
            }
        return src

    @classmethod
    def from_source(cls, source: dict[str, Any]) -> Post:
        data = dict(source)
        analysis = data.pop("analysis", None)
        data.pop("first_seen_at", None)
        data.pop("fingerprint_bands", None)
        if analysis is not None:
            analysis = {k: v for k, v in analysis.items() if k not in ("sentiment_score", "topic_score")}
            data["analysis"] = analysis
        return cls.model_validate(data)
