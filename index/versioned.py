"""Records written with optimistic concurrency: every write names the version it replaces.

A record is read together with its ``_seq_no`` / ``_primary_term``; a replacement is sent with
``if_seq_no`` / ``if_primary_term``, so when someone else wrote in between Elasticsearch refuses it (409) and
:class:`ConcurrentUpdateError` is raised: never a lost update. Reads are real-time ``get`` requests (no refresh
needed). Used for 处置单 and 依申请公开 records, whose audit trail lives in the same document and is therefore
written in the same request as the change it records.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from elasticsearch import ConflictError, Elasticsearch, NotFoundError
from pydantic import BaseModel

from yuqing.errors import YuqingError

log = logging.getLogger(__name__)

R = TypeVar("R", bound=BaseModel)


class ConcurrentUpdateError(YuqingError):
    """The record changed since it was read (the write was refused; nothing was overwritten)."""

    def __init__(self, message: str, doc_id: str) -> None:
        self.doc_id = doc_id
        super().__init__(message)


class RecordExistsError(YuqingError):
    def __init__(self, message: str, doc_id: str) -> None:
        self.doc_id = doc_id
        super().__init__(message)


@dataclass(frozen=True)
class Versioned(Generic[R]):
    """A record and the version it was read at."""

    id: str
    record: R
    seq_no: int
    primary_term: int


class VersionedStore(Generic[R]):
    """Create, read, compare-and-set replace and search records of one pydantic model behind an alias."""

    def __init__(self, client: Elasticsearch, alias: str, model: type[R], *, refresh: str = "true") -> None:
        self.client = client
        self.alias = alias
        self.model = model
        # Each write refreshes the shard so that a list right after a change shows it: these records are few and
        # written by people, so the cost is nothing (``wait_for`` would add up to refresh_interval per write).
        self.refresh = refresh

    def _versioned(self, hit: dict[str, Any]) -> Versioned[R]:
        return Versioned(hit["_id"], self.model.model_validate(hit["_source"]), hit["_seq_no"], hit["_primary_term"])

    def create(self, doc_id: str, record: R) -> Versioned[R]:
        try:
            resp = self.client.create(index=self.alias, id=doc_id, document=record.model_dump(mode="json"),
                                      refresh=self.refresh)
        except ConflictError as exc:
            raise RecordExistsError(f"{doc_id} already exists in {self.alias}", doc_id) from exc
        return Versioned(doc_id, record, resp["_seq_no"], resp["_primary_term"])

    def get(self, doc_id: str) -> Versioned[R] | None:
        try:
            hit = self.client.get(index=self.alias, id=doc_id)
        except NotFoundError:
            return None
        return self._versioned(hit.body)

    def replace(self, expected: Versioned[R], record: R) -> Versioned[R]:
        """Write ``record`` over the version ``expected``; refused when the stored version is another."""
        try:
            resp = self.client.index(
                index=self.alias, id=expected.id, document=record.model_dump(mode="json"),
                if_seq_no=expected.seq_no, if_primary_term=expected.primary_term, refresh=self.refresh,
            )
        except ConflictError as exc:
            log.info("concurrent update of %s in %s refused (read at seq_no %d)", expected.id, self.alias,
                     expected.seq_no)
            raise ConcurrentUpdateError(
                f"{expected.id} in {self.alias} changed since it was read", expected.id
            ) from exc
        return Versioned(expected.id, record, resp["_seq_no"], resp["_primary_term"])

    def search(self, query: dict[str, Any], *, sort: list[dict[str, Any]] | None = None, size: int = 100,
               offset: int = 0) -> tuple[int, list[Versioned[R]]]:
        """(total, records) of one page."""
        resp = self.client.search(index=self.alias, query=query, sort=sort, size=size, from_=offset,
                                  seq_no_primary_term=True, track_total_hits=True)
        hits = resp["hits"]
        return int(hits["total"]["value"]), [self._versioned(h) for h in hits["hits"]]
