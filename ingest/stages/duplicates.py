"""Near-duplicate linking (:class:`ingest.dedupe.Deduper`): copies point to the earliest item, marked 首发."""

from __future__ import annotations

from dataclasses import dataclass

from ingest.batch import Batch
from ingest.dedupe import Deduper


@dataclass
class LinkDuplicates:
    deduper: Deduper
    name: str = "link-duplicates"

    def run(self, batch: Batch) -> Batch:
        posts = self.deduper.link(batch.posts)
        batch.report.duplicates += sum(1 for p in posts if p.duplicate_of)
        return batch.with_posts(posts)
