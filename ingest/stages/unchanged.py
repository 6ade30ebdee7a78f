"""Change detection against the crawl state: a page whose content (and analysing model) is what was indexed
last time is not processed again; what was indexed is remembered for the next run."""

from __future__ import annotations

from dataclasses import dataclass

from index.crawl_state import CrawlState
from ingest.batch import Batch
from ingest.fingerprint import content_hash, post_content_hash


def state_hash(digest: str, analysis_version: str) -> str:
    """What the crawl state remembers of an indexed page: its content and what analysed it, so a page analysed
    by an older model (or by none) is analysed again when it is next fetched."""
    return content_hash(digest, analysis_version)


@dataclass
class SkipUnchanged:
    """Fills ``content_hash``; drops (and counts) the posts the crawl state knows unchanged. Without a crawl
    state (no source, or Elasticsearch was down at the start) every post goes on."""

    state: CrawlState | None
    analysis_version: str
    name: str = "skip-unchanged"

    def run(self, batch: Batch) -> Batch:
        kept = []
        for post in batch.posts:
            digest = post.content_hash or post_content_hash(post)
            if self.state is not None and self.state.is_unchanged(post.url, state_hash(digest, self.analysis_version)):
                self.state.touch(post.url, post.fetched_at)
                batch.report.unchanged += 1
                continue
            kept.append(post if post.content_hash == digest else post.model_copy(update={"content_hash": digest}))
        return batch.with_posts(kept)


@dataclass
class RememberIndexed:
    """Records the content hash of every indexed post in the crawl state (after the index stage, which leaves
    only the posts Elasticsearch took)."""

    state: CrawlState
    analysis_version: str
    name: str = "remember-indexed"

    def run(self, batch: Batch) -> Batch:
        for post in batch.posts:
            if post.content_hash:
                self.state.record_content(post.url, state_hash(post.content_hash, self.analysis_version),
                                          post.fetched_at)
        return batch
