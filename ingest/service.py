"""The ingest service: a batch of posts through an ordered list of stages, with a typed report.

Failures are told apart (``index.client``):
- Elasticsearch unavailable (connection error, timeout, 5xx): the batch, as far as it got, is spooled and
  replayed by the next session; nothing is lost. So are the documents of a bulk request it could not take now
  (a write block, a per-document 5xx or 429), the others being written.
- Elasticsearch refused (4xx, e.g. a mapping error or a missing index): logged as such with the posts' URLs
  and counted as index errors; not spooled (the same request would be refused again). The crawl state does
  not remember these pages (their HTTP validators are forgotten), so the next crawl fetches them again.
- Anything else (a bug): logged with its traceback; the batch is spooled, nothing is lost.
- A spool that cannot be written (a full disk): said in one line; the posts count as index errors (the next
  crawl fetches them again); a spool file being replayed stays as it is for the next replay.
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
from index.writer import NotWrittenNow
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


class _NotSpooled(Exception):
    """The posts could be neither indexed nor spooled (said where it happened)."""


class IngestService:
    """Runs ``stages`` in order on each batch; ``spool`` keeps what could not be indexed (under ``tag``).
    ``state``: the crawl state of the source, whose HTTP validators of a page that was neither indexed nor
    spooled are forgotten, so the next crawl fetches it in full again (not a 304)."""

    def __init__(self, stages: Sequence[Stage], spool: Spool, *, tag: str, state: CrawlState | None = None) -> None:
        self.stages = list(stages)
        self.spool = spool
        self.tag = tag.replace(":", "_").replace("/", "_")
        self.state = state

    def run(self, posts: list[Post]) -> IngestReport:
        """Ingest one batch; never raises for a failing stage (see the module docstring)."""
        return self._run(posts, replaying=None)[0]

    def _run(self, posts: list[Post], *, replaying: Path | None) -> tuple[IngestReport, bool]:
        """The batch's report, and False when some of its posts could be neither indexed nor spooled (when
        ``replaying`` that spool file, they are still in it)."""
        batch = Batch(list(posts))
        batch.report.received += len(posts)
        for stage in self.stages:
            try:
                batch = stage.run(batch)
            except Exception as exc:
                try:
                    self._failed(stage, batch, exc, replaying)
                except _NotSpooled:
                    return batch.report, False
                break
        return batch.report, True

    def _failed(self, stage: Stage, batch: Batch, exc: Exception, replaying: Path | None) -> None:
        posts = batch.posts
        if isinstance(exc, WriteBlocked) and exc.unwritten:  # the others were written
            refused = set(exc.unwritten)
            kept = batch.with_posts([p for p in posts if p.doc_id in refused])
            path = self._spool(kept, replaying, f"elasticsearch blocks writes (stage {stage.name}): {exc}")
            log.error("elasticsearch blocks writes (stage %s); %d posts spooled to %s, indexed by the next crawl "
                      "once writes are allowed again: %s", stage.name, len(refused), path, exc)
        elif isinstance(exc, NotWrittenNow):  # the others were written
            refused = set(exc.unwritten)
            kept = batch.with_posts([p for p in posts if p.doc_id in refused])
            path = self._spool(kept, replaying, f"elasticsearch could not take posts now (stage {stage.name}): {exc}")
            log.error("elasticsearch could not take posts now (stage %s); %d posts spooled to %s, indexed by the "
                      "next crawl: %s", stage.name, len(refused), path, exc)
        elif unavailable(exc):
            path = self._spool(batch, replaying, f"elasticsearch unavailable (stage {stage.name}): {describe(exc)}")
            log.error("elasticsearch unavailable (stage %s); %d posts spooled to %s, indexed by the next crawl: "
                      "%s", stage.name, len(posts), path, describe(exc))
        elif rejected(exc):
            self._not_indexed(batch, posts)
            log.error("elasticsearch refused the %s stage's request for %d posts (not spooled; a new crawl "
                      "retries them): %s; posts: %s", stage.name, len(posts), exc, _urls(posts))
        else:
            path = self._spool(batch, replaying, f"stage {stage.name} failed on a batch of {len(posts)} posts",
                               trace=exc)
            log.exception("stage %s failed on a batch of %d posts; spooled to %s", stage.name, len(posts), path)

    def _spool(self, batch: Batch, replaying: Path | None, why: str, *,
               trace: BaseException | None = None) -> Path | None:
        """Spool the batch (None: nothing to spool). A spool that cannot be written (a full disk) is said in one
        line, after ``why``, with ``trace``'s traceback, and raises :class:`_NotSpooled`: the posts count as
        index errors and the crawl state forgets their pages, so the next crawl fetches them again (when
        ``replaying`` a spool file they stay in it instead)."""
        if not batch.posts:
            return None
        try:
            path = self.spool.write(batch.posts, tag=self.tag)
        except OSError as exc:
            reason = exc.strerror or str(exc)
            if replaying is not None:
                log.error("%s; could not spool %d posts to %s again (%s); they stay in %s for the next replay",
                          why, len(batch.posts), self.spool.directory, reason, replaying, exc_info=trace)
            else:
                self._not_indexed(batch, batch.posts)
                log.error("%s; could not spool %d posts to %s (%s); not indexed — the next crawl fetches them "
                          "again: %s", why, len(batch.posts), self.spool.directory, reason, _urls(batch.posts),
                          exc_info=trace)
            raise _NotSpooled from exc
        batch.report.spooled += len(batch.posts)
        return path

    def _not_indexed(self, batch: Batch, posts: Sequence[Post]) -> None:
        """Posts neither indexed nor spooled: index errors, and pages the next crawl fetches again."""
        batch.report.index_errors += len(posts)
        if self.state is not None:
            for post in posts:
                self.state.forget_http(post.url)

    def replay_spool(self) -> IngestReport:
        """Ingest what earlier sessions spooled, through the same stages (what a post already has, such as its
        analysis, is not computed again); posts that fail again for want of Elasticsearch are spooled anew (a file
        whose posts cannot be spooled anew stays for the next replay).
        A file with unreadable lines, or with posts Elasticsearch refused, is kept as ``*.rejected`` for a person."""
        total = IngestReport()
        for path in self.spool.files():
            posts, bad_lines = self.spool.read(path)
            log.info("replaying %d spooled posts from %s", len(posts), path)
            report, kept = self._run(posts, replaying=path)
            report.replayed += len(posts)
            total.add(report)
            if kept:
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
    # Elasticsearch answers a document whose shard is not active before the client's request times out.
    stages.append(IndexPosts(client, alias, settings.elasticsearch.bulk_chunk_size,
                             timeout_s=settings.elasticsearch.request_timeout_s / 2, state=state))
    if state is not None:
        stages.append(RememberIndexed(state, version))
    return stages
