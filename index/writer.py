"""Writing posts through ``streaming_bulk``: every per-document failure is reported, none swallowed."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from elasticsearch import Elasticsearch, helpers

from index.client import blocked_answer
from index.records import PostRecord
from yuqing.errors import YuqingError
from yuqing.models import Post

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class BulkFailure:
    doc_id: str
    url: str
    status: int | None
    error: str
    error_type: str | None = None  # e.g. cluster_block_exception (index.client.blocked_answer)


@dataclass
class BulkReport:
    created: int = 0
    updated: int = 0
    failures: list[BulkFailure] = field(default_factory=list)

    @property
    def ok(self) -> int:
        return self.created + self.updated

    @property
    def blocked(self) -> list[BulkFailure]:
        """The failures that are a write block (read-only indices), not a fault of the document."""
        return [f for f in self.failures if blocked_answer(f.status, f.error_type)]


class BulkIndexError(YuqingError):
    def __init__(self, report: BulkReport) -> None:
        self.report = report
        first = report.failures[0]
        super().__init__(
            f"{len(report.failures)} of {report.ok + len(report.failures)} documents failed to index; "
            f"first: {first.url} ({first.status}): {first.error}"
        )


def _actions(alias: str, posts: Iterable[Post], urls: dict[str, str]) -> Iterator[dict[str, Any]]:
    for post in posts:
        urls[post.doc_id] = post.url
        source = PostRecord.source_of(post)
        # Stamped as the chunk is sent (the generator is consumed chunk by chunk): what the alert rules' window
        # reads (alerts.query), so a post fetched long ago but indexed only now is still evaluated.
        source["indexed_at"] = datetime.now(UTC).isoformat()
        yield {"_op_type": "index", "_index": alias, "_id": post.doc_id, "_source": source}


def index_posts(
    client: Elasticsearch,
    alias: str,
    posts: Iterable[Post],
    *,
    chunk_size: int = 500,
    raise_on_error: bool = True,
    refresh: bool = False,
) -> BulkReport:
    """Index ``posts`` (id = hash of the canonical URL, so a re-crawl replaces the earlier version), each stamped
    with ``indexed_at`` (now). Each must have been segmented (an ingest stage): one that was not raises ValueError
    naming it.

    Failures are logged with the document's URL and collected; with ``raise_on_error`` a
    :class:`BulkIndexError` is raised after the whole stream was sent, so good documents are never lost
    because of a bad neighbour. Connection errors propagate at once.
    """
    report = BulkReport()
    urls: dict[str, str] = {}
    for ok, info in helpers.streaming_bulk(
        client,
        _actions(alias, posts, urls),
        chunk_size=chunk_size,
        raise_on_error=False,
        raise_on_exception=True,
        max_retries=3,
        initial_backoff=1,
    ):
        item = info.get("index", {})
        doc_id = str(item.get("_id", ""))
        if ok:
            if item.get("result") == "created":
                report.created += 1
            else:
                report.updated += 1
            urls.pop(doc_id, None)
            continue
        error = item.get("error")
        failure = BulkFailure(doc_id=doc_id, url=urls.pop(doc_id, "?"), status=item.get("status"),
                              error=str(error.get("reason") if isinstance(error, dict) else error),
                              error_type=str(error.get("type")) if isinstance(error, dict) else None)
        # A write block is logged once by the caller (the block, not each document, is the event).
        if not blocked_answer(failure.status, failure.error_type):
            log.error("indexing %s failed (%s): %s", failure.url, failure.status, failure.error)
        report.failures.append(failure)
    if refresh:
        client.indices.refresh(index=alias)
    if report.failures and raise_on_error:
        raise BulkIndexError(report)
    return report
