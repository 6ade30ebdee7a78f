"""人工研判 at ingest: a post a person has judged keeps the person's relevance and topic when it is analysed
again (a changed page re-crawled, a new model version), instead of the classifier's."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from index.judgements import JudgementRecord
from ingest.batch import Batch
from ingest.judgements import apply_judgement

Lookup = Callable[[Sequence[str]], dict[str, JudgementRecord]]


@dataclass
class ApplyJudgements:
    """``lookup``: post ids -> their judgements (e.g. :func:`index.judgements.judgements_of`, one ``mget``)."""

    lookup: Lookup
    name: str = "judgements"

    def run(self, batch: Batch) -> Batch:
        if not batch.posts:
            return batch
        found = self.lookup([p.doc_id for p in batch.posts])
        if not found:
            return batch
        return batch.with_posts([apply_judgement(p, found[p.doc_id]) if p.doc_id in found else p
                                 for p in batch.posts])
