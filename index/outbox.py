"""The alert outbox (``<prefix>-outbox``): one document per alert mail to send, and its delivery state.

Mapping, record model (:class:`OutboxEntry`; ``as_source()`` is the ``_source``), index spec, pure query
builders and the store functions. The delivery protocol is :mod:`alerts.outbox`; this module only knows the
stored shape and how to read and write it:

* an entry's id is chosen by the caller and deterministic; :func:`create` uses ``op_type=create``, so a
  second create of the same id is refused (returns False) and nothing is overwritten;
* every later change is a compare-and-set (:func:`replace`: ``if_seq_no``/``if_primary_term`` of the version
  read); a concurrent change makes it return None instead of overwriting;
* reads by id are real-time (``get``/``mget``); searches see what was refreshed.

Statuses: ``held`` (waits for its digest or the end of quiet hours; no message yet) → ``digested`` (folded
into a digest entry) — or ``pending`` (message composed, due at ``next_attempt_at``) → ``sending`` (claimed by
a sender at ``claimed_at``) → ``sent`` | ``pending`` again (retry with backoff) | ``failed`` (gave up).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any, Literal

from elasticsearch import ConflictError, Elasticsearch
from pydantic import ConfigDict, Field, PrivateAttr

from index.records import Record
from index.spec import IndexSpec

log = logging.getLogger(__name__)

_KW = {"type": "keyword"}
_DATE = {"type": "date"}
_STORED = {"type": "text", "index": False}

OUTBOX_MAPPING: dict[str, Any] = {
    "dynamic": "strict",
    "properties": {
        "id": _KW,
        "rule": _KW,
        "rule_kind": _KW,
        "subject_key": _KW,
        "occurrence": _KW,
        "cooldown_key": _KW,
        "title": {"type": "text", "analyzer": "standard"},
        "reason": _STORED,
        "level": _KW,
        "status": _KW,
        "recipients": _KW,
        "decided_at": _DATE,
        "deliver_at": _DATE,
        "next_attempt_at": _DATE,
        "hold": _KW,
        "digest_key": _KW,
        "digest_id": _KW,
        "items": _KW,
        "payload": {"type": "object", "enabled": False},
        "message_id": _KW,
        "subject": _STORED,
        "mime": {"type": "binary"},
        "attempts": {"type": "integer"},
        "claimed_by": _KW,
        "claimed_at": _DATE,
        "sent_at": _DATE,
        "last_error": _STORED,
        "refused": _KW,
        "updated_at": _DATE,
    },
}

OUTBOX = IndexSpec("outbox", OUTBOX_MAPPING, version=1)

OutboxStatus = Literal["held", "pending", "sending", "sent", "failed", "digested"]
STATUSES: tuple[OutboxStatus, ...] = ("held", "pending", "sending", "sent", "failed", "digested")
Hold = Literal["now", "digest", "quiet"]


def cooldown_key(rule: str, subject_key: str) -> str:
    return f"{rule}\x00{subject_key}"


class OutboxEntry(Record):
    """One outbox document. ``seq_no``/``primary_term`` are the version as read (for compare-and-set), not
    part of the document."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    id: str = Field(min_length=1)
    rule: str
    rule_kind: str = ""
    subject_key: str
    occurrence: str
    cooldown_key: str
    title: str = ""
    reason: str = ""
    level: str | None = None
    status: OutboxStatus
    recipients: tuple[str, ...] = ()
    decided_at: datetime
    deliver_at: datetime
    next_attempt_at: datetime | None = None
    hold: Hold = "now"
    digest_key: str | None = None
    digest_id: str | None = None
    items: tuple[str, ...] = ()
    payload: dict[str, Any] | None = None
    message_id: str | None = None
    subject: str | None = None
    mime: str | None = None  # base64 of the message's bytes, exactly as sent
    attempts: int = Field(0, ge=0)
    claimed_by: str | None = None
    claimed_at: datetime | None = None
    sent_at: datetime | None = None
    last_error: str | None = None
    refused: tuple[str, ...] = ()
    updated_at: datetime
    _seq_no: int | None = PrivateAttr(None)
    _primary_term: int | None = PrivateAttr(None)

    @classmethod
    def from_hit(cls, hit: dict[str, Any]) -> OutboxEntry:
        entry = cls.model_validate(hit["_source"])
        entry._seq_no = hit.get("_seq_no")
        entry._primary_term = hit.get("_primary_term")
        return entry

    def versioned(self, seq_no: int, primary_term: int) -> OutboxEntry:
        """This entry as written at version (seq_no, primary_term)."""
        out = self.model_copy()
        out._seq_no, out._primary_term = seq_no, primary_term
        return out

    @property
    def seq_no(self) -> int | None:
        return self._seq_no

    @property
    def primary_term(self) -> int | None:
        return self._primary_term


# ---- writes -----------------------------------------------------------------------------------------------
def create(client: Elasticsearch, alias: str, entry: OutboxEntry, *, refresh: bool = False) -> OutboxEntry | None:
    """Write a new entry; None when an entry with its id exists already (nothing is changed then)."""
    try:
        resp = client.create(index=alias, id=entry.id, document=entry.as_source(),
                             refresh="wait_for" if refresh else None)
    except ConflictError:
        return None
    return entry.versioned(resp["_seq_no"], resp["_primary_term"])


def replace(client: Elasticsearch, alias: str, entry: OutboxEntry, *, expected: OutboxEntry) -> OutboxEntry | None:
    """Write ``entry`` over ``expected`` when the stored version is still the one ``expected`` was read at;
    None when it changed meanwhile (another sender)."""
    if expected.seq_no is None or expected.primary_term is None:
        raise ValueError(f"outbox entry {expected.id}: no version to compare against (read it with get/search)")
    try:
        resp = client.index(index=alias, id=entry.id, document=entry.as_source(),
                            if_seq_no=expected.seq_no, if_primary_term=expected.primary_term)
    except ConflictError:
        return None
    return entry.versioned(resp["_seq_no"], resp["_primary_term"])


# ---- reads ------------------------------------------------------------------------------------------------
def get_many(client: Elasticsearch, alias: str, ids: Sequence[str]) -> dict[str, OutboxEntry]:
    """The entries of ``ids`` that exist (real-time)."""
    if not ids:
        return {}
    resp = client.mget(index=alias, ids=list(ids))
    out: dict[str, OutboxEntry] = {}
    for doc in resp["docs"]:
        if "error" in doc:
            raise RuntimeError(f"reading outbox entry {doc.get('_id')} from {alias}: {doc['error']}")
        if doc.get("found"):
            out[doc["_id"]] = OutboxEntry.from_hit(doc)
    return out


def get(client: Elasticsearch, alias: str, entry_id: str) -> OutboxEntry | None:
    return get_many(client, alias, [entry_id]).get(entry_id)


def due_query(now: datetime, lease: timedelta) -> dict[str, Any]:
    """Entries to send at ``now``: pending and due, or claimed longer than ``lease`` ago (a sender that died
    or hung while sending). Oldest due first (pure)."""
    stale = (now - lease).isoformat()
    return {
        "query": {
            "bool": {
                "should": [
                    {"bool": {"filter": [{"term": {"status": "pending"}},
                                         {"range": {"next_attempt_at": {"lte": now.isoformat()}}}]}},
                    {"bool": {"filter": [{"term": {"status": "sending"}},
                                         {"range": {"claimed_at": {"lte": stale}}}]}},
                ],
                "minimum_should_match": 1,
            }
        },
        "sort": [{"next_attempt_at": {"order": "asc", "missing": "_first"}}, {"id": "asc"}],
    }


def held_due_query(now: datetime) -> dict[str, Any]:
    """Held entries whose digest or quiet period is over at ``now``, grouped by digest key (pure)."""
    return {
        "query": {"bool": {"filter": [{"term": {"status": "held"}},
                                      {"range": {"deliver_at": {"lte": now.isoformat()}}}]}},
        "sort": [{"digest_key": "asc"}, {"decided_at": "asc"}, {"id": "asc"}],
    }


def status_query(statuses: Iterable[str]) -> dict[str, Any]:
    """Entries in ``statuses``, the most recently changed first (pure)."""
    return {"query": {"terms": {"status": list(statuses)}}, "sort": [{"updated_at": "desc"}, {"id": "asc"}]}


def last_decided_query(keys: Sequence[str]) -> dict[str, Any]:
    """The latest ``decided_at`` per cooldown key among ``keys`` (pure)."""
    return {
        "size": 0,
        "query": {"terms": {"cooldown_key": list(keys)}},
        "aggs": {"keys": {"terms": {"field": "cooldown_key", "size": max(1, len(keys))},
                          "aggs": {"last": {"max": {"field": "decided_at"}}}}},
    }


def search(client: Elasticsearch, alias: str, body: dict[str, Any], *, size: int = 100) -> list[OutboxEntry]:
    resp = client.search(index=alias, size=size, seq_no_primary_term=True, **body)
    return [OutboxEntry.from_hit(h) for h in resp["hits"]["hits"]]


def last_decided(
    client: Elasticsearch, alias: str, pairs: Iterable[tuple[str, str]]
) -> dict[tuple[str, str], datetime]:
    """When each (rule, subject_key) in ``pairs`` was last decided (absent: never). Sees refreshed entries."""
    wanted = {cooldown_key(r, s): (r, s) for r, s in pairs}
    if not wanted:
        return {}
    resp = client.search(index=alias, **last_decided_query(sorted(wanted)))
    out: dict[tuple[str, str], datetime] = {}
    for bucket in resp["aggregations"]["keys"]["buckets"]:
        value = bucket["last"].get("value_as_string")
        if value and bucket["key"] in wanted:
            out[wanted[bucket["key"]]] = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return out


def counts_by_status(client: Elasticsearch, alias: str) -> dict[str, int]:
    """How many entries are in each status (every status present, 0 when none): for the dashboard."""
    resp = client.search(index=alias, size=0, aggs={"s": {"terms": {"field": "status", "size": len(STATUSES)}}})
    counts: dict[str, int] = dict.fromkeys(STATUSES, 0)
    for bucket in resp["aggregations"]["s"]["buckets"]:
        counts[bucket["key"]] = bucket["doc_count"]
    return counts


def failed_entries(client: Elasticsearch, alias: str, *, limit: int = 50) -> list[OutboxEntry]:
    """Entries given up on, newest first: what the dashboard must show."""
    return search(client, alias, status_query(["failed"]), size=limit)


def requeue_failed(client: Elasticsearch, alias: str, now: datetime, *, ids: Sequence[str] | None = None,
                   page: int = 500) -> list[str]:
    """Give the entries given up on (those of ``ids``, else all) a new round of attempts from ``now`` — after the
    mail server or an address was fixed: pending again, attempts from 0, the last error kept until the next
    outcome. Compare-and-set: an entry changed meanwhile is left as it is. Returns the ids requeued."""

    def requeue(entry: OutboxEntry) -> bool:
        again = entry.model_copy(update={"status": "pending", "attempts": 0, "next_attempt_at": now,
                                         "claimed_by": None, "claimed_at": None, "updated_at": now})
        return replace(client, alias, again, expected=entry) is not None

    if ids is not None:
        return [e.id for e in get_many(client, alias, ids).values() if e.status == "failed" and requeue(e)]
    done: list[str] = []
    seen: set[str] = set()
    while True:
        batch = [e for e in search(client, alias, status_query(["failed"]), size=page) if e.id not in seen]
        if not batch:
            return done
        seen.update(e.id for e in batch)
        done += [e.id for e in batch if requeue(e)]
        client.indices.refresh(index=alias)  # the requeued ones leave the failed list before the next page
