"""人工研判: a person's relevance and topic for a post, which take precedence over the classifier's.

An officer judges a post (相关 / 不相关, with a topic when relevant). The judgement is stored in its own index
(:mod:`index.judgements`, with its history) and written into the indexed post at once: ``analysis.relevant``
and ``analysis.topic`` then hold the human values, so search filters, 专题, events, alerts and reports all
follow the person; ``judgement`` on the post says who decided and keeps what the classifier had said. A
re-crawl that analyses the post again meets the judgement in the ingest stage
(:class:`ingest.stages.ApplyJudgements`), so it survives. ``export_rows`` turns the judgements into labelled
texts for the next training round.

Pure rules first (:func:`apply_judgement`, :func:`next_record`), then :class:`JudgementService` on
Elasticsearch.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from elasticsearch import ApiError, Elasticsearch, NotFoundError, TransportError, helpers

from index.judgements import (
    JUDGEMENT_SORT,
    JUDGEMENTS,
    JudgementEntry,
    JudgementRecord,
    judgement_query,
    judgement_store,
    judgements_of,
)
from index.layout import POSTS, setup
from index.records import PostRecord
from index.versioned import Versioned
from yuqing.errors import YuqingError
from yuqing.models import JudgementMark, Post
from yuqing.settings import ElasticsearchSettings

log = logging.getLogger(__name__)

NOTE_MAX_CHARS = 500


class JudgementError(YuqingError):
    """A judgement that cannot be made as asked (unknown post or topic, a topic on a 不相关 post)."""


class PostNotUpdatedError(YuqingError):
    """The judgement is stored, but writing it into the indexed post failed: the post-crawl job ``judgements``
    (:meth:`JudgementService.reconcile`) writes it at its next run, or ``yuqing judgements reapply``."""

    def __init__(self, record: JudgementRecord, cause: Exception) -> None:
        super().__init__(f"the judgement of {record.post_id} is stored, but writing it into the post failed "
                         f"({type(cause).__name__}: {cause}); the next run of the post-crawl jobs writes it "
                         "(or `yuqing judgements reapply`)")
        self.record = record


def mark_of(record: JudgementRecord) -> JudgementMark:
    """What the post carries of its judgement (pure)."""
    return JudgementMark(relevant=record.relevant, topic=record.topic, by=record.judged_by, at=record.judged_at,
                         model_relevant=record.model_relevant, model_topic=record.model_topic)


def model_values(post: Post) -> tuple[bool | None, str | None]:
    """What the classifier said of ``post``: its analysis, or, where a judgement already replaced those values,
    what the judgement kept of them (pure)."""
    if post.judgement is not None:
        return post.judgement.model_relevant, post.judgement.model_topic
    if post.analysis is not None:
        return post.analysis.relevant, post.analysis.topic
    return None, None


def apply_judgement(post: Post, record: JudgementRecord) -> Post:
    """``post`` with the person's relevance and topic in its analysis and the judgement mark set (pure). The
    mark keeps the classifier's values of this analysis (a fresh one after a re-crawl). A post without an
    analysis (classifier off) gets the mark only: there is no analysis to correct."""
    model_relevant, model_topic = model_values(post)
    mark = mark_of(record).model_copy(update={"model_relevant": model_relevant, "model_topic": model_topic})
    update: dict[str, Any] = {"judgement": mark}
    if post.analysis is not None:
        update["analysis"] = post.analysis.model_copy(update={"relevant": record.relevant, "topic": record.topic})
    return post.model_copy(update=update)


def check_judgement(relevant: bool, topic: str | None, topics: Sequence[str]) -> str | None:
    """The topic to store (pure): None for a 不相关 post; a relevant post's topic must be one of ``topics``
    (the taxonomy's) or None (relevant, topic left open). Raises :class:`JudgementError` otherwise."""
    topic = (topic or "").strip() or None
    if not relevant:
        if topic is not None:
            raise JudgementError(f"a post judged not relevant has no topic (got {topic!r})")
        return None
    if topic is not None and topic not in topics:
        raise JudgementError(f"unknown topic {topic!r}; one of: {', '.join(topics)}")
    return topic


def next_record(previous: JudgementRecord | None, post: Post, *, relevant: bool, topic: str | None, by: str,
                at: datetime, note: str | None) -> JudgementRecord:
    """The judgement record after this judgement (pure): the latest values on top, the history extended, the
    classifier's values as the post shows them (those of the first judgement's time are kept while the post
    carries them in its mark)."""
    note = (note or "").strip()[:NOTE_MAX_CHARS] or None
    model_relevant, model_topic = model_values(post)
    entry = JudgementEntry(at=at, by=by, relevant=relevant, topic=topic, note=note)
    history = [*previous.history, entry] if previous is not None else [entry]
    a = post.analysis
    return JudgementRecord(
        post_id=post.doc_id, relevant=relevant, topic=topic, judged_by=by, judged_at=at, note=note,
        model_relevant=model_relevant, model_topic=model_topic,
        relevance_prob=a.relevance_prob if a is not None else None,
        model_version=a.model_version if a is not None else None,
        title=post.title, url=post.url, source=post.source, history=history,
    )


def shows_judgement(post: Post, record: JudgementRecord) -> bool:
    """Whether the indexed ``post`` already carries ``record`` (pure): its mark is this judgement's and its
    analysis (where it has one) holds the person's values. False after a post write that failed, or a re-crawl
    that indexed the post while it was being judged."""
    mark = post.judgement
    if mark is None or (mark.relevant, mark.topic, mark.by, mark.at) != (
            record.relevant, record.topic, record.judged_by, record.judged_at):
        return False
    return post.analysis is None or (post.analysis.relevant, post.analysis.topic) == (record.relevant, record.topic)


def post_update(record: JudgementRecord, post: Post) -> dict[str, Any]:
    """The partial update that writes a judgement into an indexed post (pure). ``event_id`` is cleared, so the
    events job reads the post again (as a member it knows) and counts the person's values in its event."""
    judged = apply_judgement(post, record)
    assert judged.judgement is not None
    doc: dict[str, Any] = {"judgement": judged.judgement.model_dump(mode="json"),  # nulls overwrite
                           "event_id": None}
    if judged.analysis is not None:
        doc["analysis"] = {"relevant": record.relevant, "topic": record.topic}
    return doc


@dataclass(frozen=True)
class TrainingRow:
    """One judged text as the next training round reads it (``yuqing judgements export``)."""

    post_id: str
    text: str
    relevant: bool
    topic: str | None
    source: str
    judged_by: str
    judged_at: datetime
    model_relevant: bool | None

    def as_json(self) -> dict[str, Any]:
        return {"post_id": self.post_id, "text": self.text, "relevant": self.relevant, "topic": self.topic,
                "source": self.source, "judged_by": self.judged_by, "judged_at": self.judged_at.isoformat(),
                "model_relevant": self.model_relevant}


class JudgementService:
    """Judgements on the indices behind ``es.index_prefix``; ``topics``: the taxonomy's topic names."""

    def __init__(self, client: Elasticsearch, es: ElasticsearchSettings, topics: Sequence[str]) -> None:
        self.client = client
        self.prefix = es.index_prefix
        self.topics = tuple(topics)
        self.posts_alias = POSTS.alias(self.prefix)
        self.store = judgement_store(client, self.prefix)

    @classmethod
    def ready(cls, client: Elasticsearch, es: ElasticsearchSettings, topics: Sequence[str]) -> JudgementService:
        """The service with its index created when missing (idempotent)."""
        setup(client, es, [POSTS, JUDGEMENTS])
        return cls(client, es, topics)

    def post(self, post_id: str) -> Post:
        try:
            hit = self.client.get(index=self.posts_alias, id=post_id)
        except NotFoundError as exc:
            raise JudgementError(f"no post with id {post_id!r} in {self.posts_alias}") from exc
        return PostRecord.model_validate(hit["_source"]).to_post()

    def judge(self, post_id: str, *, relevant: bool, topic: str | None, by: str, at: datetime,
              note: str | None = None, expected: Versioned[JudgementRecord] | None = None) -> JudgementRecord:
        """Record the judgement and write it into the indexed post. ``expected``: the judgement the person saw
        (None: they saw none); a judgement made by someone else meanwhile raises
        :class:`index.versioned.ConcurrentUpdateError` and changes nothing."""
        topic = check_judgement(relevant, topic, self.topics)
        post = self.post(post_id)
        current = self.store.get(post_id) if expected is None else expected
        record = next_record(current.record if current is not None else None, post, relevant=relevant,
                             topic=topic, by=by, at=at, note=note)
        if current is None:
            self.store.create(post_id, record)
        else:
            self.store.replace(current, record)
        try:
            self.client.update(index=self.posts_alias, id=post_id, doc=post_update(record, post), refresh=True)
        except (ApiError, TransportError) as exc:
            log.warning("人工研判: %s judged %s; stored, but the post was not updated (%s): the next post-crawl "
                        "run writes it", by, post_id, exc)
            raise PostNotUpdatedError(record, exc) from exc
        log.info("人工研判: %s judged %s %s%s (classifier: %s)", by, post_id,
                 "相关" if relevant else "不相关", f" / {topic}" if topic else "",
                 {True: "相关", False: "不相关", None: "未分析"}[record.model_relevant])
        return record

    def get(self, post_id: str) -> Versioned[JudgementRecord] | None:
        return self.store.get(post_id)

    def of_posts(self, post_ids: Sequence[str]) -> dict[str, JudgementRecord]:
        return judgements_of(self.client, self.prefix, post_ids)

    def latest(self, query: dict[str, Any] | None = None, *, size: int = 50,
               offset: int = 0) -> tuple[int, list[JudgementRecord]]:
        total, found = self.store.search(query or judgement_query(), sort=JUDGEMENT_SORT, size=size, offset=offset)
        return total, [v.record for v in found]

    def scan(self, query: dict[str, Any] | None = None) -> Iterator[JudgementRecord]:
        """Every judgement matching ``query``, newest first within each page (a scroll)."""
        for hit in helpers.scan(self.client, index=self.store.alias, query={"query": query or judgement_query()},
                                size=500):
            yield JudgementRecord.model_validate(hit["_source"])

    def everything(self, query: dict[str, Any] | None = None, limit: int = 50_000) -> list[JudgementRecord]:
        """Every judgement matching ``query`` (at most ``limit``), newest first."""
        records = list(itertools.islice(self.scan(query), limit))
        return sorted(records, key=lambda r: (r.judged_at, r.post_id), reverse=True)

    def export_rows(self, query: dict[str, Any] | None = None) -> Iterator[TrainingRow]:
        """The judged texts (title and body, as the classifier reads them, already redacted at ingest) with the
        human labels; a judgement whose post is gone from the index is skipped with a warning."""
        from ingest.stages.analyse import analysis_text

        batch: list[JudgementRecord] = []

        def flush() -> Iterator[TrainingRow]:
            resp = self.client.mget(index=self.posts_alias, ids=[r.post_id for r in batch])
            found = {d["_id"]: d["_source"] for d in resp["docs"] if d.get("found")}
            for r in batch:
                source = found.get(r.post_id)
                if source is None:
                    log.warning("judgement of %s (%s) left out of the export: the post is no longer indexed",
                                r.post_id, r.url)
                    continue
                post = PostRecord.model_validate(source).to_post()
                yield TrainingRow(r.post_id, analysis_text(post), r.relevant, r.topic, r.source or post.source,
                                  r.judged_by, r.judged_at, r.model_relevant)
            batch.clear()

        for record in self.scan(query):
            batch.append(record)
            if len(batch) >= 200:
                yield from flush()
        if batch:
            yield from flush()

    def reapply(self) -> int:
        """Write every judgement into its indexed post again (after a migration, or a crawl that re-indexed a
        post while it was being judged); returns how many posts were updated. Idempotent."""
        return self._write(self.scan(), stale_only=False)

    def reconcile(self, since: datetime | None = None) -> int:
        """Write the judgements made since ``since`` (None: all) into those of their posts that do not show them
        (:func:`shows_judgement`): a judgement whose post write failed, or raced a re-crawl, reaches its post
        at the next run of the jobs. Returns how many posts were updated; posts that show their judgement are
        not touched (their ``event_id`` stays)."""
        if not self.client.indices.exists_alias(name=self.store.alias):
            return 0  # nobody has judged anything yet
        updated = self._write(self.scan(judgement_query(since=since)), stale_only=True)
        if updated:
            log.warning("人工研判: %d judged post(s) did not show their judgement; written again", updated)
        return updated

    def _write(self, records: Iterator[JudgementRecord], *, stale_only: bool) -> int:
        updated = 0
        while chunk := list(itertools.islice(records, 200)):
            resp = self.client.mget(index=self.posts_alias, ids=[r.post_id for r in chunk])
            found = {d["_id"]: PostRecord.model_validate(d["_source"]).to_post() for d in resp["docs"]
                     if d.get("found")}
            actions = [{"_op_type": "update", "_index": self.posts_alias, "_id": r.post_id,
                        "doc": post_update(r, found[r.post_id])} for r in chunk
                       if r.post_id in found and not (stale_only and shows_judgement(found[r.post_id], r))]
            if actions:
                ok, errors = helpers.bulk(self.client, actions, raise_on_error=False, refresh=True)
                assert isinstance(errors, list)
                if errors:
                    raise RuntimeError(f"writing judgements into their posts: {len(errors)} posts refused: "
                                       f"{errors[:3]}")
                updated += ok
        return updated
