"""The tickets index (处置单): mapping, record model, index spec, query builder and store.

One document per ticket, id = the ticket id; the audit trail, the responses and the deadlines are arrays in
the document, so a change and its audit entry are one write, made with compare-and-set
(:mod:`index.versioned`). ``first_due_at`` and ``updated_at`` are derived on write for sorting and filtering.
The domain model and its rules are ``response.tickets``; this module knows only the stored shape.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from elasticsearch import Elasticsearch
from pydantic import ConfigDict, Field

from index.records import Record
from index.spec import IndexSpec
from index.versioned import VersionedStore

_KW = {"type": "keyword"}
_DATE = {"type": "date"}
_STORED = {"type": "text", "index": False}
_TEXT = {"type": "text", "analyzer": "standard"}

_AUDIT = {
    "properties": {
        "at": _DATE, "by": _KW, "action": _KW, "from_value": _KW, "to_value": _KW, "note": _STORED,
    }
}

TICKETS_MAPPING: dict[str, Any] = {
    "dynamic": "strict",
    "properties": {
        "id": _KW,
        "subject": {
            "properties": {
                "kind": _KW, "id": _KW, "title": _TEXT, "topic": _KW, "started_at": _DATE, "keywords": _KW,
            }
        },
        "title": {**_TEXT, "fields": {"raw": {"type": "keyword", "ignore_above": 512}}},
        "unit": _KW,
        "handler": _KW,
        "risk_level": _KW,
        "status": _KW,
        "opened_at": _DATE,
        "opened_by": _KW,
        "rule": _KW,
        "deadlines": {"properties": {"kind": _KW, "due_at": _DATE, "basis": _KW, "channels": _KW}},
        "responses": {
            "properties": {
                "no": {"type": "integer"},
                "channel": _KW,
                "text": _TEXT,
                "link": {"type": "keyword", "index": False},
                "at": _DATE,
                "state": _KW,
                "recorded_by": _KW,
                "recorded_at": _DATE,
                "review": {
                    "properties": {
                        "reviewed_at": _DATE, "findings": {"type": "integer"}, "summary": _STORED,
                        "override_reason": _STORED,
                    }
                },
                "post_id": _KW,
            }
        },
        "proposals": {
            "properties": {
                "channel": _KW, "at": _DATE, "post_id": _KW, "url": {"type": "keyword", "index": False},
                "title": _STORED,
            }
        },
        "instructions": {
            "properties": {
                "no": {"type": "integer"}, "leader": _KW, "text": _TEXT, "at": _DATE, "recorded_by": _KW,
                "recorded_at": _DATE, "due_at": _DATE,
                "feedback": {"properties": {"text": _TEXT, "by": _KW, "at": _DATE}},
            }
        },
        "instructions_pending": {"type": "integer"},  # 领导批示 not yet reported back on (derived on write)
        "awaiting_instruction": {"type": "boolean"},  # 专报 submitted, no 批示 since (derived on write)
        "silent": {"type": "boolean"},
        "overdue": {"type": "boolean"},
        "audit": _AUDIT,
        "first_due_at": _DATE,
        "next_due_at": _DATE,  # the earliest deadline not yet met by a published response
        "updated_at": _DATE,
    },
}

# ``instructions``, ``instructions_pending`` and ``awaiting_instruction`` came later without a new version: ``yuqing
# setup`` adds them to the mapping of an existing index, and a document without them has none (0 pending, not
# awaiting: a ticket is rewritten, with the field, at its next change).
# v2: ``next_due_at`` (the earliest deadline not yet met), derived on write like ``first_due_at``; `yuqing migrate`
# fills it into v1 documents (through the response layer's transform, which knows when a deadline is met)
TICKETS = IndexSpec("tickets", TICKETS_MAPPING, version=2)


class _Record(Record):
    """A stored part of the document. Unknown fields are refused (not ignored as in the crawl-time records): the
    document is written from the domain model field for field, so a field this model lacks must fail, not vanish."""

    model_config = ConfigDict(extra="forbid")


class SubjectRecord(_Record):
    kind: str
    id: str
    title: str = ""
    topic: str | None = None
    started_at: datetime | None = None
    keywords: list[str] = Field(default_factory=list)


class DeadlineRecord(_Record):
    kind: str
    due_at: datetime
    basis: str
    channels: list[str] = Field(default_factory=list)


class ReviewRecord(_Record):
    reviewed_at: datetime
    findings: int = 0
    summary: str = "无"
    override_reason: str | None = None


class ResponseRecordDoc(_Record):
    no: int
    channel: str
    text: str = ""
    link: str | None = None
    at: datetime
    state: str
    recorded_by: str
    recorded_at: datetime
    review: ReviewRecord | None = None
    post_id: str | None = None


class ProposalRecord(_Record):
    channel: str
    at: datetime
    post_id: str
    url: str | None = None
    title: str = ""


class FeedbackRecord(_Record):
    text: str
    by: str
    at: datetime


class InstructionRecord(_Record):
    no: int
    leader: str
    text: str
    at: datetime
    recorded_by: str
    recorded_at: datetime
    due_at: datetime | None = None
    feedback: list[FeedbackRecord] = Field(default_factory=list)


class AuditRecord(_Record):
    at: datetime
    by: str
    action: str
    from_value: str | None = None
    to_value: str | None = None
    note: str | None = None


class TicketRecord(_Record):
    """The ``_source`` of a ticket (``model_dump(mode="json")``)."""

    id: str
    subject: SubjectRecord
    title: str
    unit: str
    handler: str | None = None
    risk_level: str | None = None
    status: str
    opened_at: datetime
    opened_by: str
    rule: str | None = None
    deadlines: list[DeadlineRecord] = Field(default_factory=list)
    responses: list[ResponseRecordDoc] = Field(default_factory=list)
    proposals: list[ProposalRecord] = Field(default_factory=list)
    instructions: list[InstructionRecord] = Field(default_factory=list)
    instructions_pending: int = 0
    awaiting_instruction: bool = False
    silent: bool = False
    overdue: bool = False
    audit: list[AuditRecord] = Field(default_factory=list)
    first_due_at: datetime | None = None
    next_due_at: datetime | None = None  # not stored by versions before it: read as "none"
    updated_at: datetime | None = None


def ticket_query(
    *,
    statuses: list[str] | None = None,
    unit: str | None = None,
    overdue_at: datetime | None = None,
    subject_id: str | None = None,
    text: str | None = None,
    instructions_pending: bool = False,
    awaiting_instruction: bool = False,
) -> dict[str, Any]:
    """The query for a ticket list (pure). ``overdue_at``: tickets flagged overdue (by the 失声 check), or still
    open (待研判 / 处置中) with a deadline not yet met that passed before that time. ``instructions_pending``:
    tickets with a 领导批示 not yet reported back on; ``awaiting_instruction``: a 专报 submitted, no 批示 since."""
    filters: list[dict[str, Any]] = []
    if instructions_pending:
        filters.append({"range": {"instructions_pending": {"gt": 0}}})
    if awaiting_instruction:
        filters.append({"term": {"awaiting_instruction": True}})
    if statuses:
        filters.append({"terms": {"status": statuses}})
    if unit:
        filters.append({"term": {"unit": unit}})
    if subject_id:
        filters.append({"term": {"subject.id": subject_id}})
    if overdue_at is not None:
        filters.append({"bool": {"should": [
            {"term": {"overdue": True}},
            {"bool": {"filter": [
                {"terms": {"status": ["待研判", "处置中"]}},
                {"range": {"next_due_at": {"lt": overdue_at.isoformat()}}},
            ]}},
        ], "minimum_should_match": 1}})
    must: list[dict[str, Any]] = []
    if text:
        must.append({"multi_match": {"query": text, "fields": ["title", "subject.title"], "operator": "and"}})
    return {"bool": {"filter": filters, "must": must}} if (filters or must) else {"match_all": {}}


# Soonest unmet deadline first (the countdown), then newest.
TICKET_SORT: list[dict[str, Any]] = [
    {"next_due_at": {"order": "asc", "missing": "_last"}},
    {"opened_at": {"order": "desc"}},
]


def ticket_store(client: Elasticsearch, prefix: str, *, refresh: str = "true") -> VersionedStore[TicketRecord]:
    """``refresh``: per write ("true", for people who list right after a change) or "false" (a batch job that
    refreshes once at its end)."""
    return VersionedStore(client, TICKETS.alias(prefix), TicketRecord, refresh=refresh)
