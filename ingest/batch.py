"""What flows between the ingest stages: a :class:`Batch` of posts and its :class:`IngestReport`."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Protocol

from yuqing.models import Post


@dataclass
class IngestReport:
    """What happened to the posts of one or more batches.

    ``received``: posts handed in; ``unchanged``: skipped, the same content was indexed before;
    ``indexed`` (``new`` of them never seen before): written; ``duplicates``: linked to an earlier first
    publisher; ``index_errors``: refused by Elasticsearch (each logged with its URL), not spooled;
    ``spooled``: kept in the spool because Elasticsearch was unavailable (or a stage failed unexpectedly);
    ``replayed``: taken from the spool.
    """

    received: int = 0
    unchanged: int = 0
    indexed: int = 0
    new: int = 0
    duplicates: int = 0
    index_errors: int = 0
    spooled: int = 0
    replayed: int = 0

    def add(self, other: IngestReport) -> None:
        for f in fields(self):
            setattr(self, f.name, getattr(self, f.name) + getattr(other, f.name))

    def counts(self) -> dict[str, int]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    def summary(self) -> str:
        return " ".join(f"{k}={v}" for k, v in self.counts().items())


@dataclass
class Batch:
    """Posts on their way through the stages; each stage returns the batch its successors see."""

    posts: list[Post]
    report: IngestReport = field(default_factory=IngestReport)

    def with_posts(self, posts: list[Post]) -> Batch:
        return Batch(posts, self.report)


class Stage(Protocol):
    """One step of ingestion. A later issue adds a step by appending a class with this shape."""

    name: str

    def run(self, batch: Batch) -> Batch: ...
