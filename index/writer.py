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

    @property
    def reason(self) -> str:
        """The error in one line for a log, without the request Elasticsearch may quote (a shard request of one
        document quotes its whole source, the post's text)."""
        return " ".join(self.error.split(", request: [", 1)[0].split())[:300]

    @property
    def for_now(self) -> bool:
        """Whether Elasticsearch could not take the document now, not a fault of the document: a write block
        (read-only indices), a 5xx (e.g. 503 unavailable_shards_exception: its primary shard is not active) or a
        429 (es_rejected_execution_exception: the write queue stayed full through streaming_bulk's retries).
        The same document is taken later; anything else (a 4xx such as a mapping error) would be refused again."""
        return blocked_answer(self.status, self.error_type) or (
            self.status is not None and (self.status >= 500 or self.status == 429))


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

    @property
    def for_now(self) -> list[BulkFailure]:
        """The failures that are Elasticsearch's state, not the document's (:attr:`BulkFailure.for_now`): the
        write blocks and the temporary refusals."""
        return [f for f in self.failures if f.for_now]


class NotWrittenNow(YuqingError):
    """Elasticsearch could not take some documents now (:attr:`BulkFailure.for_now`, not a write block); nothing
    is lost: the caller spools them. ``unwritten``: their ids."""

    def __init__(self, what: str, unwritten: tuple[str, ...]) -> None:
        super().__init__(what)
        self.unwritten = unwritten


class BulkIndexError(YuqingError):
    def __init__(self, report: BulkReport) -> None:
        self.report = report
        first = report.failures[0]
        super().__init__(
            f"{len(report.failures)} of {report.ok + len(report.failures)} documents failed to index; "
            f"first: {first.url} ({first.status}): {first.reason}"
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
    timeout_s: float | None = None,
) -> BulkReport:
    """Index ``posts`` (id = hash of the canonical URL, so a re-crawl replaces the earlier version), each stamped
    with ``indexed_at`` (now). Each must have been segmented (an ingest stage): one that was not raises ValueError
    naming it.

    Failures are logged with the document's URL and collected; with ``raise_on_error`` a
    :class:`BulkIndexError` is raised after the whole stream was sent, so good documents are never lost
    because of a bad neighbour. Connection errors propagate at once. A failure Elasticsearch would not meet later
    (:attr:`BulkFailure.for_now`) is not logged per document: the caller says the event once.

    ``timeout_s``: how long Elasticsearch waits for a document's primary shard to be active before answering
    it 503 (its default, a minute, is longer than a client's request timeout, which would abandon and resend
    the whole request). ``refresh`` is skipped when a shard was not available: a refresh waits for it.
    """
    report = BulkReport()
    urls: dict[str, str] = {}
    wait: dict[str, Any] = {} if timeout_s is None else {"timeout": f"{max(1, round(timeout_s * 1000))}ms"}
    for ok, info in helpers.streaming_bulk(
        client,
        _actions(alias, posts, urls),
        chunk_size=chunk_size,
        raise_on_error=False,
        raise_on_exception=True,
        max_retries=3,
        initial_backoff=1,
        **wait,
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
        # A write block or an unavailable shard is logged once by the caller (that, not each document, is the event).
        if not failure.for_now:
            log.error("indexing %s failed (%s): %s", failure.url, failure.status, failure.error)
        report.failures.append(failure)
    if refresh and not any(f.status is not None and f.status >= 500 for f in report.failures):
        client.indices.refresh(index=alias)
    if report.failures and raise_on_error:
        raise BulkIndexError(report)
    return report
