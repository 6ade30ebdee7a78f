"""Personal data masked before anything else sees a post (classifier, index, alert mails)."""

from __future__ import annotations

from dataclasses import dataclass

from ingest.batch import Batch
from ingest.privacy import Redactor


@dataclass
class Redact:
    redactor: Redactor
    name: str = "redact"

    def run(self, batch: Batch) -> Batch:
        return batch.with_posts([self.redactor.redact_post(p) for p in batch.posts])
