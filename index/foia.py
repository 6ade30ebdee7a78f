"""The 依申请公开 index: one document per request (the audit trail inside), compare-and-set writes.

Deadlines are not stored: they depend on today's date and the calendar, and are computed by
``response.foia.foia_clock``. ``received_on`` and ``replied`` are enough to list what is open.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from elasticsearch import Elasticsearch
from pydantic import ConfigDict, Field

from index.records import Record
from index.spec import IndexSpec
from index.tickets import AuditRecord
from index.versioned import VersionedStore

_KW = {"type": "keyword"}
_DAY = {"type": "date", "format": "strict_date"}
_DATE = {"type": "date"}
_STORED = {"type": "text", "index": False}

FOIA_MAPPING: dict[str, Any] = {
    "dynamic": "strict",
    "properties": {
        "id": _KW,
        "applicant": _KW,
        "contact": {"type": "keyword", "index": False},
        "content": {"type": "text", "analyzer": "standard"},
        "channel": _KW,
        "received_on": _DAY,
        "registered_by": _KW,
        "registered_at": _DATE,
        "correction": {
            "properties": {"notified_on": _DAY, "items": _STORED, "correction_due": _DAY, "corrected_on": _DAY}
        },
        "consultations": {"properties": {"third_party": _KW, "sent_on": _DAY, "answered_on": _DAY}},
        "extension": {
            "properties": {"approved_by": _KW, "approved_on": _DAY, "working_days": {"type": "integer"},
                           "reason": _STORED}
        },
        "reply": {
            "properties": {"type": _KW, "replied_on": _DAY, "text": _STORED, "by": _KW,
                           "late": {"type": "boolean"}}
        },
        "abandoned_on": _DAY,
        "audit": {
            "properties": {
                "at": _DATE, "by": _KW, "action": _KW, "from_value": _KW, "to_value": _KW, "note": _STORED,
            }
        },
        "closed": {"type": "boolean"},
        "updated_at": _DATE,
    },
}

FOIA = IndexSpec("foia", FOIA_MAPPING, version=1)


class _Record(Record):
    """A stored part of the document. Unknown fields are refused (not ignored as in the crawl-time records): the
    document is written from the domain model field for field, so a field this model lacks must fail, not vanish."""

    model_config = ConfigDict(extra="forbid")


class CorrectionRecord(_Record):
    notified_on: date
    items: str
    correction_due: date
    corrected_on: date | None = None


class ConsultationRecord(_Record):
    third_party: str
    sent_on: date
    answered_on: date | None = None


class ExtensionRecord(_Record):
    approved_by: str
    approved_on: date
    working_days: int
    reason: str


class ReplyRecord(_Record):
    type: str
    replied_on: date
    text: str
    by: str
    late: bool = False


class FoiaRecord(_Record):
    """The ``_source`` of a request (``model_dump(mode="json")``)."""

    id: str
    applicant: str
    contact: str | None = None
    content: str
    channel: str
    received_on: date
    registered_by: str
    registered_at: datetime
    correction: CorrectionRecord | None = None
    consultations: list[ConsultationRecord] = Field(default_factory=list)
    extension: ExtensionRecord | None = None
    reply: ReplyRecord | None = None
    abandoned_on: date | None = None
    audit: list[AuditRecord] = Field(default_factory=list)
    # Derived on write: replied or abandoned.
    closed: bool = False
    updated_at: datetime | None = None


def foia_query(*, open_only: bool = False, applicant: str | None = None, text: str | None = None) -> dict[str, Any]:
    """The query for a request list (pure)."""
    filters: list[dict[str, Any]] = []
    if open_only:
        filters.append({"term": {"closed": False}})
    if applicant:
        filters.append({"term": {"applicant": applicant}})
    must: list[dict[str, Any]] = []
    if text:
        must.append({"match": {"content": {"query": text, "operator": "and"}}})
    return {"bool": {"filter": filters, "must": must}} if (filters or must) else {"match_all": {}}


FOIA_SORT: list[dict[str, Any]] = [{"received_on": {"order": "asc"}}, {"registered_at": {"order": "asc"}}]


def foia_store(client: Elasticsearch, prefix: str) -> VersionedStore[FoiaRecord]:
    return VersionedStore(client, FOIA.alias(prefix), FoiaRecord)
