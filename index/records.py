"""One record model per index: what a document's ``_source`` holds, as a pydantic model.

``record.as_source()`` (``model_dump(mode="json", exclude_none=True)``) is the ``_source`` written;
``Model.model_validate(hit["_source"])`` reads one back. Each model's fields are checked against its mapping in
:mod:`index.layout` (both directions) by ``tests/test_records.py``, so a field cannot be added to one and
forgotten in the other.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict

from yuqing.models import Analysis, Post


class Record(BaseModel):
    """Base of the record models: unknown ``_source`` keys are ignored when reading (a retired field)."""

    model_config = ConfigDict(extra="ignore")

    def as_source(self) -> dict[str, Any]:
        """The Elasticsearch ``_source`` of this record."""
        return self.model_dump(mode="json", exclude_none=True)


# ---- posts ------------------------------------------------------------------------------------------------


def fingerprint_bands(value: int, bands: int = 4) -> list[str]:
    """Band keys of a 64-bit SimHash for candidate lookup: four 16-bit bands, e.g. ['0:1a2b', ...]."""
    width = 64 // bands
    return [f"{i}:{(value >> (i * width)) & ((1 << width) - 1):0{width // 4}x}" for i in range(bands)]


class AnalysisRecord(Analysis):
    """The classifier output as stored: with the winning labels' probabilities as sortable scores."""

    sentiment_score: float = 0.0
    topic_score: float = 0.0

    @classmethod
    def of(cls, a: Analysis) -> AnalysisRecord:
        return cls.model_construct(
            **dict(a),
            sentiment_score=a.sentiment_probs.get(a.sentiment, 0.0),
            topic_score=a.topic_probs.get(a.topic, 0.0) if a.topic else 0.0,
        )

    def to_analysis(self) -> Analysis:
        return Analysis.model_validate(self.model_dump(exclude={"sentiment_score", "topic_score"}))


def _check_segmented(post: Post) -> None:
    if not post.segmented:
        raise ValueError(f"post {post.url} was not segmented: run the ingest segmentation stage first")


class PostRecord(Post, Record):
    """A document of the posts index: the post, segmented (an ingest stage, never done here), with the
    SimHash band keys the near-duplicate lookup searches."""

    fingerprint_bands: list[str] | None = None
    analysis: AnalysisRecord | None = None
    # Set after indexing by the events job (index.events.set_post_events, partial updates), not by ingest: the
    # event the post belongs to. (``keyword_groups``, the 专题 groups it matches, is a field of the post.)
    event_id: str | None = None
    # Set by the writer (index.writer.index_posts) each time the post is written, not a field of the post.
    indexed_at: datetime | None = None

    @classmethod
    def from_post(cls, post: Post) -> PostRecord:
        """The record of a segmented post; an unsegmented one raises ValueError naming its URL."""
        _check_segmented(post)
        fields = dict(post)
        if post.fingerprint:
            fields["fingerprint_bands"] = fingerprint_bands(int(post.fingerprint, 16))
        if post.analysis is not None:
            fields["analysis"] = AnalysisRecord.of(post.analysis)
        return cls.model_construct(**fields)  # ``post`` was validated when it was made

    @staticmethod
    def source_of(post: Post) -> dict[str, Any]:
        """``PostRecord.from_post(post).as_source()`` without making the record: the indexing hot path (several
        times faster; ``tests/test_records.py`` keeps the two equal)."""
        _check_segmented(post)
        source = post.model_dump(mode="json", exclude={"analysis"}, exclude_none=True)
        if post.fingerprint:
            source["fingerprint_bands"] = fingerprint_bands(int(post.fingerprint, 16))
        a = post.analysis
        if a is not None:
            source["analysis"] = {
                **a.model_dump(mode="json", exclude_none=True),
                "sentiment_score": a.sentiment_probs.get(a.sentiment, 0.0),
                "topic_score": a.topic_probs.get(a.topic, 0.0) if a.topic else 0.0,
            }
        return source

    def to_post(self) -> Post:
        fields = dict(self)
        for name in ("fingerprint_bands", "event_id", "indexed_at"):
            fields.pop(name)
        if self.analysis is not None:
            fields["analysis"] = self.analysis.to_analysis()
        return Post.model_construct(**fields)


# ---- crawl state ------------------------------------------------------------------------------------------


class PageState(Record):
    """What the crawler remembers of one page between runs (``<prefix>-crawl-state``)."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    url: str  # canonical
    source: str
    etag: str | None = None
    last_modified: str | None = None
    content_hash: str | None = None
    first_seen_at: datetime | None = None
    last_seen_at: datetime | None = None
    last_changed_at: datetime | None = None


# ---- source health ----------------------------------------------------------------------------------------


class SourceRun(Record):
    """One source's part of one crawl: what the crawl reports and the source-health index keeps."""

    source: str
    kind: str
    started_at: datetime
    finished_at: datetime
    found: int = 0
    indexed: int = 0
    new: int = 0
    unchanged: int = 0
    duplicates: int = 0
    errors: int = 0
    spooled: int = 0
    ok: bool = True
    error: str | None = None
    finish_reason: str = ""


