"""Loading, changing and saving 处置单 and 依申请公开 records: the one place that joins the pure rules
(``response.tickets`` / ``response.foia``) and the stores (``index.tickets`` / ``index.foia``).

A caller (the CLI, later the dashboard) loads a record, shows it, applies one pure change and saves it against
the version it loaded. When someone else saved in between, the save is refused with a Chinese message that
names who changed what (:class:`TicketConflict` / :class:`FoiaConflict`); nothing is overwritten. The audit
entry is part of the same document, so it is written in the same request as the change.
"""

from __future__ import annotations

import builtins
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from elasticsearch import Elasticsearch

from index.foia import FOIA, FOIA_SORT, FoiaRecord, foia_query, foia_store
from index.layout import IndexSpec, current_index, setup
from index.tickets import TICKET_SORT, TICKETS, TicketRecord, ticket_query, ticket_store
from index.versioned import ConcurrentUpdateError, RecordExistsError, Versioned
from response.audit import AuditEntry
from response.foia import FoiaError, FoiaRequest
from response.foia import check_append_only as check_foia_trail
from response.tickets import Ticket, TicketError, check_append_only
from yuqing.settings import ElasticsearchSettings

log = logging.getLogger(__name__)

RESPONSE_SPECS: tuple[IndexSpec, ...] = (TICKETS, FOIA)


def ensure_indices(client: Elasticsearch, es: ElasticsearchSettings) -> None:
    """Create the tickets and 依申请公开 indices when missing (``yuqing setup`` creates them with the others; this
    lets the CLI work on an installation set up before they existed; two cheap lookups when present)."""
    missing = [s for s in RESPONSE_SPECS if current_index(client, s.alias(es.index_prefix)) is None]
    if missing:
        setup(client, es, missing)


class TicketConflict(TicketError):
    """Someone else saved the ticket after it was loaded."""


class FoiaConflict(FoiaError):
    """Someone else saved the request after it was loaded."""


def _changes_since(before: tuple[AuditEntry, ...], now: tuple[AuditEntry, ...]) -> str:
    newer = now[len(before):] if now[: len(before)] == before else now[-1:]
    return "；".join(f"{e.by} 于 {e.at:%Y-%m-%d %H:%M} {e.action}" + (
        f"（{e.from_value or '—'} → {e.to_value or '—'}）" if e.from_value or e.to_value else "") for e in newer)


# ---- tickets ------------------------------------------------------------------------------------------------

def ticket_to_record(ticket: Ticket) -> TicketRecord:
    data = ticket.model_dump(mode="json")
    due, unmet = ticket.first_due_at, ticket.next_due_at
    data["first_due_at"] = due.isoformat() if due else None
    data["next_due_at"] = unmet.isoformat() if unmet else None
    data["instructions_pending"] = len(ticket.pending_instructions())
    data["awaiting_instruction"] = ticket.awaiting_instruction
    data["updated_at"] = ticket.audit[-1].at.isoformat() if ticket.audit else ticket.opened_at.isoformat()
    return TicketRecord.model_validate(data)


def refresh_ticket_source(source: dict[str, Any]) -> dict[str, Any]:
    """A stored ticket's ``_source`` with its derived fields recomputed (`yuqing migrate`: tickets v1 → v2 adds
    ``next_due_at``)."""
    return ticket_to_record(ticket_from_record(TicketRecord.model_validate(source))).as_source()


MIGRATIONS: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {"tickets": refresh_ticket_source}


def ticket_from_record(record: TicketRecord) -> Ticket:
    return Ticket.model_validate(record.model_dump(
        mode="json", exclude={"first_due_at", "next_due_at", "updated_at", "instructions_pending",
                              "awaiting_instruction"}))


@dataclass(frozen=True)
class LoadedTicket:
    ticket: Ticket
    version: Versioned[TicketRecord]


class TicketService:
    def __init__(self, client: Elasticsearch, prefix: str, *, refresh_each_write: bool = True) -> None:
        """``refresh_each_write`` False: for a job writing many tickets; it calls :meth:`refresh` at its end."""
        self.store = ticket_store(client, prefix, refresh="true" if refresh_each_write else "false")

    def refresh(self) -> None:
        """Make the writes so far visible to searches (the lists)."""
        self.store.client.indices.refresh(index=self.store.alias)

    def _loaded(self, v: Versioned[TicketRecord]) -> LoadedTicket:
        return LoadedTicket(ticket_from_record(v.record), v)

    def create(self, ticket: Ticket) -> LoadedTicket:
        """Store a new ticket; a subject that already has one gets a TicketError naming it."""
        check_append_only(None, ticket)
        try:
            v = self.store.create(ticket.id, ticket_to_record(ticket))
        except RecordExistsError as exc:
            existing = self.load(ticket.id).ticket
            raise TicketError(
                f"该{'事件' if ticket.subject.kind == 'event' else '信息'}已有处置单 {existing.id}"
                f"（{existing.status}，{existing.unit}）"
            ) from exc
        log.info("ticket %s opened by %s for %s %s", ticket.id, ticket.opened_by, ticket.subject.kind,
                 ticket.subject.id)
        return self._loaded(v)

    def get(self, ticket_id: str) -> LoadedTicket | None:
        v = self.store.get(ticket_id)
        return self._loaded(v) if v is not None else None

    def load(self, ticket_id: str) -> LoadedTicket:
        loaded = self.get(ticket_id)
        if loaded is None:
            raise TicketError(f"没有处置单 {ticket_id}")
        return loaded

    def save(self, loaded: LoadedTicket, new: Ticket) -> LoadedTicket:
        """Write ``new`` over the version ``loaded`` was read at; refused when the ticket changed since."""
        if new.id != loaded.ticket.id:
            raise ValueError(f"saving ticket {new.id} over {loaded.ticket.id}")
        check_append_only(loaded.ticket, new)
        if new == loaded.ticket:
            return loaded
        try:
            v = self.store.replace(loaded.version, ticket_to_record(new))
        except ConcurrentUpdateError as exc:
            current = self.get(new.id)
            who = _changes_since(loaded.ticket.audit, current.ticket.audit) if current else "已被删除"
            raise TicketConflict(
                f"处置单 {new.id} 在您打开后已被他人修改（{who}）。您的修改未保存，请刷新后重新操作。"
            ) from exc
        added = new.audit[len(loaded.ticket.audit):]
        log.info("ticket %s: %s by %s", new.id, ", ".join(e.action for e in added), added[-1].by)
        return self._loaded(v)

    def update(self, ticket_id: str, change: Callable[[Ticket], Ticket]) -> LoadedTicket:
        """Load, apply ``change`` and save (one attempt: a concurrent change is reported, not retried)."""
        loaded = self.load(ticket_id)
        return self.save(loaded, change(loaded.ticket))

    def list(self, *, statuses: list[str] | None = None, unit: str | None = None,
             overdue_at: datetime | None = None, text: str | None = None, size: int = 100,
             offset: int = 0, newest_first: bool = False,
             instructions_pending: bool = False, awaiting_instruction: bool = False) -> tuple[int, list[Ticket]]:
        """One page of tickets: the soonest deadline first, or (``newest_first``) the last opened first;
        ``instructions_pending``: only those with a 领导批示 not yet reported back on; ``awaiting_instruction``:
        only those whose 专报 has no 批示 since."""
        total, rows = self.store.search(
            ticket_query(statuses=statuses, unit=unit, overdue_at=overdue_at, text=text,
                         instructions_pending=instructions_pending, awaiting_instruction=awaiting_instruction),
            sort=[{"opened_at": "desc"}, {"id": "asc"}] if newest_first else TICKET_SORT, size=size, offset=offset,
        )
        return total, [ticket_from_record(v.record) for v in rows]

    def for_events(self, event_ids: Sequence[str]) -> dict[str, Ticket]:
        """The tickets of these events, by event id (events without one are left out)."""
        if not event_ids:
            return {}
        _total, rows = self.store.search({"bool": {"filter": [{"term": {"subject.kind": "event"}},
                                                              {"terms": {"subject.id": list(event_ids)}}]}},
                                         size=len(event_ids))
        tickets = [ticket_from_record(v.record) for v in rows]
        return {t.subject.id: t for t in tickets}

    def count_by_status(self) -> dict[str, int]:
        """How many tickets are in each status (all of them, not one page)."""
        resp = self.store.client.search(index=self.store.alias, size=0,
                                        aggs={"s": {"terms": {"field": "status", "size": 20}}})
        return {b["key"]: int(b["doc_count"]) for b in resp["aggregations"]["s"]["buckets"]}

    def all_loaded(self, *, statuses: Sequence[str] | None = None, page: int = 500) -> builtins.list[LoadedTicket]:
        """Every ticket (of ``statuses``) with the version it was read at, oldest first (for the post-crawl jobs
        that change tickets and must not overwrite a person's change)."""
        out: builtins.list[LoadedTicket] = []
        while True:
            query = ticket_query(statuses=[*statuses] if statuses else None)
            total, rows = self.store.search(query, sort=[{"opened_at": "asc"}, {"id": "asc"}], size=page,
                                            offset=len(out))
            out.extend(self._loaded(v) for v in rows)
            if not rows or len(out) >= total:
                return out


# ---- 依申请公开 ------------------------------------------------------------------------------------------------

def foia_to_record(req: FoiaRequest) -> FoiaRecord:
    data = req.model_dump(mode="json")
    data["closed"] = req.reply is not None or req.abandoned_on is not None
    data["updated_at"] = req.audit[-1].at.isoformat() if req.audit else req.registered_at.isoformat()
    return FoiaRecord.model_validate(data)


def foia_from_record(record: FoiaRecord) -> FoiaRequest:
    return FoiaRequest.model_validate(record.model_dump(mode="json", exclude={"closed", "updated_at"}))


@dataclass(frozen=True)
class LoadedRequest:
    request: FoiaRequest
    version: Versioned[FoiaRecord]


class FoiaService:
    def __init__(self, client: Elasticsearch, prefix: str) -> None:
        self.store = foia_store(client, prefix)

    def _loaded(self, v: Versioned[FoiaRecord]) -> LoadedRequest:
        return LoadedRequest(foia_from_record(v.record), v)

    def create(self, req: FoiaRequest) -> LoadedRequest:
        check_foia_trail(None, req)
        try:
            v = self.store.create(req.id, foia_to_record(req))
        except RecordExistsError as exc:
            raise FoiaError(f"申请 {req.id} 已登记") from exc
        log.info("foia request %s registered by %s (received %s)", req.id, req.registered_by, req.received_on)
        return self._loaded(v)

    def load(self, request_id: str) -> LoadedRequest:
        v = self.store.get(request_id)
        if v is None:
            raise FoiaError(f"没有申请 {request_id}")
        return self._loaded(v)

    def save(self, loaded: LoadedRequest, new: FoiaRequest) -> LoadedRequest:
        if new.id != loaded.request.id:
            raise ValueError(f"saving request {new.id} over {loaded.request.id}")
        check_foia_trail(loaded.request, new)
        if new == loaded.request:
            return loaded
        try:
            v = self.store.replace(loaded.version, foia_to_record(new))
        except ConcurrentUpdateError as exc:
            current = self.store.get(new.id)
            who = "已被删除"
            if current is not None:
                who = _changes_since(loaded.request.audit, foia_from_record(current.record).audit)
            raise FoiaConflict(
                f"申请 {new.id} 在您打开后已被他人修改（{who}）。您的修改未保存，请刷新后重新操作。"
            ) from exc
        added = new.audit[len(loaded.request.audit):]
        log.info("foia request %s: %s by %s", new.id, ", ".join(e.action for e in added), added[-1].by)
        return self._loaded(v)

    def update(self, request_id: str, change: Callable[[FoiaRequest], FoiaRequest]) -> LoadedRequest:
        loaded = self.load(request_id)
        return self.save(loaded, change(loaded.request))

    def list(self, *, open_only: bool = False, applicant: str | None = None, text: str | None = None,
             size: int = 200, offset: int = 0) -> tuple[int, list[FoiaRequest]]:
        total, rows = self.store.search(foia_query(open_only=open_only, applicant=applicant, text=text),
                                        sort=FOIA_SORT, size=size, offset=offset)
        return total, [foia_from_record(v.record) for v in rows]
