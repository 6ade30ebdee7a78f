"""The shared data types: a post (article, message, social item, search result) and what analysis adds.

Dependency-free (pydantic and the standard library only): every layer passes these between its stages.
Storage shapes live in ``index.records``; segmentation and fingerprints are ingest stages (``ingest``).
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Any, Literal
from urllib.parse import urlsplit, urlunsplit

from pydantic import BaseModel, Field, field_validator

PostKind = Literal["article", "message", "social", "search"]
Sentiment = Literal["negative", "neutral", "positive"]
SENTIMENTS: tuple[Sentiment, ...] = ("negative", "neutral", "positive")
# What press officers and leaders read (dashboard, alert mails).
SENTIMENT_LABELS: dict[str, str] = {"negative": "负面", "neutral": "中性", "positive": "正面"}
# What a post is, as every page, mail, report and export names it (PostKind values).
KIND_LABELS: dict[str, str] = {"article": "文章", "message": "留言", "social": "社交媒体", "search": "搜索结果"}


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


def doc_id_for(canonical_url: str) -> str:
    """Document id: a stable hash of the canonical URL, so a re-crawl updates and never duplicates."""
    return hashlib.sha1(canonical_url.encode("utf-8")).hexdigest()


class Analysis(BaseModel):
    """Classifier and keyword output for one text, with probabilities and the model version."""

    sentiment: Sentiment
    sentiment_probs: dict[str, float] = Field(default_factory=dict)
    relevant: bool
    relevance_prob: float = Field(ge=0.0, le=1.0)
    topic: str | None = None
    topic_probs: dict[str, float] = Field(default_factory=dict)
    keywords: list[str] = Field(default_factory=list)
    places: list[str] = Field(default_factory=list)
    orgs: list[str] = Field(default_factory=list)
    model_version: str


class JudgementMark(BaseModel):
    """A person's 人工研判 of a post, as the post carries it: the human relevance and topic (which replace the
    classifier's in ``analysis``), who judged and when, and what the classifier had said (kept here, since
    ``analysis`` then holds the human values)."""

    relevant: bool
    topic: str | None = None
    by: str
    at: datetime
    model_relevant: bool | None = None
    model_topic: str | None = None


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
    """One crawled (or imported) item, keyed by its canonical URL. The ingest stages fill the optional
    derived fields (``content_hash``, ``analysis``, ``*_seg``, ``fingerprint``, ``duplicate_of``/``is_first``)."""

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
    fingerprint: str | None = None  # 64-bit SimHash, hex (ingest.fingerprint)
    content_hash: str | None = None
    duplicate_of: str | None = None
    is_first: bool | None = None
    analysis: Analysis | None = None
    # 人工研判: set by the judgement stage (ingest.stages.judged) or when an officer judges the indexed post.
    judgement: JudgementMark | None = None
    # the 专题 keyword groups (config/keyword_groups.yaml) the post matches: filled by the ingest stage
    # (ingest.stages.groups); None: not matched yet (the events job then matches it).
    keyword_groups: list[str] | None = None
    # jieba tokens, lower-cased, space-joined: filled by the segmentation stage (ingest.stages.segment).
    title_seg: str | None = None
    content_seg: str | None = None
    # The post's most frequent words (two or more Han characters, stopwords left out): the keyword field the
    # dashboard's hot words (热词) aggregate; filled with the segmentation (index.hotwords.hot_terms_of).
    hot_terms: list[str] | None = None

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

    @property
    def segmented(self) -> bool:
        """Whether the segmentation stage filled ``title_seg`` and ``content_seg``."""
        return self.title_seg is not None and self.content_seg is not None
