"""Elasticsearch reads of the 热点事件 and 事件详情 pages, cached like :mod:`dashboard.data` (``cache_ttl_s``); a
missing events index reads as "no events yet" (None), any other failure as a :class:`dashboard.data.DashboardError`."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from dashboard import data
from dashboard.data import Backend
from index.events import (
    EVENTS,
    EventFilter,
    EventRecord,
    HotEvents,
    event_facets,
    event_posts_query,
    get_events,
    hot_events,
)
from index.hits import read_hits
from index.search import PostHit
from response.tickets import Ticket


@dataclass(frozen=True)
class EventPosts:
    total: int
    hits: list[PostHit]
    unreadable: int = 0


def _alias(backend: Backend) -> str:
    return EVENTS.alias(backend.settings.elasticsearch.index_prefix)


def _events(backend: Backend, f: EventFilter) -> HotEvents | None:
    return data._optional_index(backend, lambda: hot_events(backend.client, _alias(backend), f))


def _facets(backend: Backend) -> dict[str, list[str]] | None:
    return data._optional_index(backend, lambda: event_facets(backend.client, _alias(backend)))


def _event(backend: Backend, event_id: str) -> EventRecord | None:
    found = data._optional_index(backend, lambda: get_events(backend.client, _alias(backend), [event_id]))
    return (found or {}).get(event_id)


def _posts(backend: Backend, event_id: str, size: int) -> EventPosts:
    with data.es_errors(backend):
        resp = backend.client.search(index=backend.posts_alias, **event_posts_query(event_id, size))
    read = read_hits(resp["hits"]["hits"])
    return EventPosts(int(resp["hits"]["total"]["value"]), read.hits, len(read.unreadable))


_events_cached = data._ttl_cached(_events)
_facets_cached = data._ttl_cached(_facets)
_event_cached = data._ttl_cached(_event)
_posts_cached = data._ttl_cached(_posts)


def ticket(backend: Backend, event_id: str) -> Ticket | None:
    """The event's 处置单 (None: none opened, or no tickets index yet); not cached: an officer who just opened or
    changed it comes back to this page."""
    from response.service import TicketService
    from response.tickets import ticket_id_for

    def get() -> Ticket | None:
        loaded = TicketService(backend.client, backend.settings.elasticsearch.index_prefix).get(
            ticket_id_for("event", event_id))
        return loaded.ticket if loaded is not None else None

    return data._optional_index(backend, get)


def tickets_of(backend: Backend, event_ids: Sequence[str]) -> dict[str, Ticket]:
    """The 处置单 of these events, by event id (none yet: empty)."""
    from response.service import TicketService

    found = data._optional_index(backend, lambda: TicketService(
        backend.client, backend.settings.elasticsearch.index_prefix).for_events(event_ids))
    return found or {}


def events(backend: Backend, f: EventFilter) -> HotEvents | None:
    """The hottest events of ``f`` and how many match; None when there is no events index yet."""
    return _events_cached(data._ttl(backend))(backend, f)


def facets(backend: Backend) -> dict[str, list[str]]:
    """The topics and units events have (for the filters)."""
    return _facets_cached(data._ttl(backend))(backend) or {"topic": [], "unit": []}


def event(backend: Backend, event_id: str) -> EventRecord | None:
    """One event's record (None: no such event, or no events index)."""
    return _event_cached(data._ttl(backend))(backend, event_id)


def posts(backend: Backend, event_id: str, size: int) -> EventPosts:
    """The first ``size`` posts of an event in time order, and how many it has."""
    return _posts_cached(data._ttl(backend))(backend, event_id, size)
