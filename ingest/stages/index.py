"""Writing the batch to the posts index; what Elasticsearch refuses is reported with its URL and left out of
the batch the later stages see; what it could not take now (a write block, a 5xx, a 429) is raised for the
service to spool."""

from __future__ import annotations

from dataclasses import dataclass

from elasticsearch import Elasticsearch

from index.client import WriteBlocked
from index.crawl_state import CrawlState
from index.writer import NotWrittenNow, index_posts
from ingest.batch import Batch


@dataclass
class IndexPosts:
    """``timeout_s``: how long Elasticsearch may wait for a shard before answering a document 503 (see
    :func:`index.writer.index_posts`). ``state``: the crawl state, which forgets the HTTP validators of a page
    whose post was refused, so the next crawl fetches it again (not a 304)."""

    client: Elasticsearch
    alias: str
    chunk_size: int = 500
    timeout_s: float | None = None
    state: CrawlState | None = None
    name: str = "index"

    def run(self, batch: Batch) -> Batch:
        if not batch.posts:
            return batch
        report = index_posts(self.client, self.alias, batch.posts, raise_on_error=False, refresh=True,
                             chunk_size=self.chunk_size, timeout_s=self.timeout_s)
        batch.report.indexed += report.ok
        batch.report.new += report.created
        later = report.for_now
        batch.report.index_errors += len(report.failures) - len(later)
        if self.state is not None:
            for failure in report.failures:
                if not failure.for_now:
                    self.state.forget_http(failure.url)
        if later:  # the service spools the posts not taken now (the others are written)
            unwritten = tuple(f.doc_id for f in later)
            what = f"{len(later)} of {len(batch.posts)} posts refused by {self.alias}"
            if len(report.blocked) == len(later):  # read-only indices
                raise WriteBlocked(what, unwritten)
            first = next(f for f in later if f not in report.blocked)
            raise NotWrittenNow(f"{what} for now ({first.status} {first.error_type}: {first.reason})", unwritten)
        failed = {f.doc_id for f in report.failures}
        return batch.with_posts([p for p in batch.posts if p.doc_id not in failed])
