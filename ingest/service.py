"""The ingest service: a batch of posts through an ordered list of stages, with a typed report.

Failures are told apart (``index.client``):
- Elasticsearch unavailable (connection error, timeout, 5xx): the batch, as far as it got, is spooled and
  replayed by the next session; nothing is lost.
- Elasticsearch refused (4xx, e.g. a mapping error or a missing index): logged as such with the posts' URLs
  and counted as index errors; not spooled (the same request would be refused again). The crawl state does
  not remember these pages, so the next crawl tries them again.
- Anything else (a bug): logged with its traceback; the batch is spooled, nothing is lost.
Per-document refusals inside a bulk request are reported by the index stage, each with its URL.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

from elasticsearch import Elasticsearch

from events.keyword_groups import GroupMatcher, load_keyword_groups
from index.client import WriteBlocked, describe, rejected, unavailable
from index.crawl_state import CrawlState
from index.hotwords import load_hot_words
from index.judgements import judgements_of
from index.layout import POSTS
from ingest.batch import Batch, IngestReport, Stage
from ingest.dedupe import Deduper
from ingest.privacy import Redactor
from ingest.spool import Spool
from ingest.stages import (
    Analyse,
    ApplyJudgements,
    IndexPosts,
    LinkDuplicates,
    MatchGroups,
    Redact,
    RememberIndexed,
    Segment,
    SkipUnchanged,
)
from ingest.stages.analyse import NO_ANALYSIS, TextAnalyzer
from ingest.stages.segment import Segmenter
from yuqing.models import Post
from yuqing.settings import Settings

log = logging.getLogger(__name__)

_URLS_IN_A_LINE = 10


def _urls(posts: Sequence[Post]) -> str:
    shown = ", ".join(p.url for p in posts[:_URLS_IN_A_LINE])
    return shown + (f" (+{len(posts) - _URLS_IN_A_LINE} more)" if len(posts) > _URLS_IN_A_LINE else "")


class IngestService:
    """Runs ``stages`` in order on each batch; ``spool`` keeps what could not be indexed (under ``tag``)."""

    def __init__(self, stages: Sequence[Stage], spool: Spool, *, tag: str) -> None:
        self.stages = list(stages)
        self.spool = spool
        self.tag = tag.replace(":", "_").replace("/", "_")

    def run(self, posts: list[Post]) -> IngestReport:
        """Ingest one batch; never raises for a failing stage (see the module docstring)."""
        batch = Batch(list(posts))
        batch.report.received += len(posts)
        for stage in self.stages:
            try:
                batch = stage.run(batch)
            except Exception as exc:
                self._failed(stage, batch, exc)
                break
        return batch.report

    def _failed(self, stage: Stage, batch: Batch, exc: Exception) -> None:
        posts = batch.posts
        if isinstance(exc, WriteBlocked) and exc.unwritten:  # the others were written
            refused = set(exc.unwritten)
            path = self._spool(batch.with_posts([p for p in posts if p.doc_id in refused]))
            log.error("elasticsearch blocks writes (stage %s); %d posts spooled to %s, indexed by the next crawl "
                      "once writes are allowed again: %s", stage.name, len(refused), path, exc)
        elif unavailable(exc):
            path = self._spool(batch)
            log.error("elasticsearch unavailable (stage %s); %d posts spooled to %s, indexed by the next crawl: "
                      "%s", stage.name, len(posts), path, describe(exc))
        elif rejected(exc):
            batch.report.index_errors += len(posts)
            log.error("elasticsearch refused the %s stage's request for %d posts (not spooled; a new crawl "
                      "retries them): %s; posts: %s", stage.name, len(posts), exc, _urls(posts))
        else:
            path = self._spool(batch)
            log.exception("stage %s failed on a batch of %d posts; spooled to %s", stage.name, len(posts), path)

    def _spool(self, batch: Batch) -> Path | None:
        if not batch.posts:
            return None
        batch.report.spooled += len(batch.posts)
        return self.spool.write(batch.posts, tag=self.tag)

    def replay_spool(self) -> IngestReport:
        """Ingest what earlier sessions spooled, through the same stages (what a post already has, such as its
        analysis, is not computed again); posts that fail again for want of Elasticsearch are spooled anew.
        A file with unreadable lines, or with posts Elasticsearch refused, is kept as ``*.rejected`` for a person."""
        total = IngestReport()
        for path in self.spool.files():
            posts, bad_lines = self.spool.read(path)
            log.info("replaying %d spooled posts from %s", len(posts), path)
            report = self.run(posts)
            report.replayed += len(posts)
            total.add(report)
            self.spool.done(path, bad_lines=bad_lines, refused=report.index_errors)
        return total


def load_analyzer(settings: Settings) -> TextAnalyzer | None:
    """The classifier of these settings (loaded once per process), or None when ``nlp.enabled`` is off."""
    if not settings.nlp.enabled:
        return None
    from nlp.analyzer import get_analyzer

    return get_analyzer(settings.nlp, settings.config_file("taxonomy.yaml"))


def load_groups(settings: Settings) -> GroupMatcher:
    """The 专题 keyword groups of ``keyword_groups.yaml``; a bad expression raises a ConfigError naming the file
    and the group."""
    return GroupMatcher(load_keyword_groups(settings.config_file("keyword_groups.yaml")).groups)


def standard_stages(
    settings: Settings,
    client: Elasticsearch,
    *,
    state: CrawlState | None = None,
    analyzer: TextAnalyzer | None = None,
    segmenter: Segmenter | None = None,
    redactor: Redactor | None = None,
    groups: GroupMatcher | None = None,
) -> list[Stage]:
    """redact → skip unchanged → analyse → segment → link near-duplicates → 专题 groups → 人工研判 → index →
    remember what was indexed.

    ``analyzer`` None: no classifier (``nlp.enabled: false``); ``state`` None: nothing is skipped or
    remembered; ``segmenter``: e.g. a :class:`~ingest.stages.PooledSegmenter` (default: in this process);
    ``redactor`` defaults to the patterns of ``privacy.yaml``, ``groups`` to those of ``keyword_groups.yaml``."""
    version = analyzer.version if analyzer is not None else NO_ANALYSIS
    alias = POSTS.alias(settings.elasticsearch.index_prefix)
    stages: list[Stage] = [
        Redact(redactor if redactor is not None else Redactor.from_file(settings.config_file("privacy.yaml"))),
        SkipUnchanged(state, version),
    ]
    if analyzer is not None:
        stages.append(Analyse(analyzer))
    hot_words = load_hot_words(settings.config_file("hotwords.yaml"))
    stages.append(Segment(segmenter, hot_words) if segmenter is not None else Segment(hot_words=hot_words))
    if settings.crawl.dedupe:
        stages.append(LinkDuplicates(Deduper(client, alias)))
    stages.append(MatchGroups(groups if groups is not None else load_groups(settings)))
    prefix = settings.elasticsearch.index_prefix
    stages.append(ApplyJudgements(lambda ids: judgements_of(client, prefix, ids)))
    stages.append(IndexPosts(client, alias, settings.elasticsearch.bulk_chunk_size))
    if state is not None:
        stages.append(RememberIndexed(state, version))
    return stages
