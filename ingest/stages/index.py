"""Writing the batch to the posts index; what Elasticsearch refuses is reported with its URL and left out of
the batch the later stages see."""

from __future__ import annotations

from dataclasses import dataclass

from elasticsearch import Elasticsearch

from index.client import WriteBlocked
from index.writer import index_posts
from ingest.batch import Batch


@dataclass
class IndexPosts:
    client: Elasticsearch
    alias: str
    chunk_size: int = 500
    name: str = "index"

    def run(self, batch: Batch) -> Batch:
        if not batch.posts:
            return batch
        report = index_posts(self.client, self.alias, batch.posts, raise_on_error=False, refresh=True,
                             chunk_size=self.chunk_size)
        batch.report.indexed += report.ok
        batch.report.new += report.created
        blocked = report.blocked
        batch.report.index_errors += len(report.failures) - len(blocked)
        if blocked:  # read-only indices: the service spools the posts refused (the others are written)
            raise WriteBlocked(f"{len(blocked)} of {len(batch.posts)} posts refused by {self.alias}",
                               tuple(f.doc_id for f in blocked))
        failed = {f.doc_id for f in report.failures}
        return batch.with_posts([p for p in batch.posts if p.doc_id not in failed])
