"""Writing the batch to the posts index; what Elasticsearch refuses is reported with its URL and left out of
the batch the later stages see."""

from __future__ import annotations

from dataclasses import dataclass

from elasticsearch import Elasticsearch

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
        batch.report.index_errors += len(report.failures)
        failed = {f.doc_id for f in report.failures}
        return batch.with_posts([p for p in batch.posts if p.doc_id not in failed])
