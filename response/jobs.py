"""The response-tracking post-crawl jobs (run by the scheduler after each crawl, after the events update):

- :func:`auto_open_tickets` — the rule of config/response.yaml ``auto_open_min_level``: a ticket for each open
  event at or above the level without one, the ticket's level raised when its event's level rose
  (:mod:`response.event_tickets`); audited as 系统.
- :func:`check_silences` — the 失声 check of every ticket not closed: the posts of the bureau's own channels
  (sources with ``own: true``) published since the 舆情 surfaced, and the event's board messages with their
  official replies, decide each deadline (:mod:`response.silence`); the ticket is flagged 失声 / overdue and the
  first matching own post proposed as the response. An audit entry only when something changed.

Both save with compare-and-set: a ticket a person changed meanwhile is left for the next run (logged), never
overwritten. Each returns a small report (counts) and logs one line.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Any
from zoneinfo import ZoneInfo

from elasticsearch import Elasticsearch, helpers

from index.events import EVENTS, EventRecord, get_events, surviving_events
from index.hits import read_hit
from index.layout import POSTS
from response.config import RISK_LEVELS, Channel, ResponseConfig
from response.event_tickets import apply_rule, ticket_id_for_event
from response.service import LoadedTicket, TicketConflict, TicketService
from response.silence import BoardMessage, ChannelPost, apply_silence, check_silence
from response.tickets import Ticket, TicketError
from yuqing.models import Post
from yuqing.settings import Settings

log = logging.getLogger(__name__)

# Tickets the jobs look at: every one not closed.
ACTIVE_STATUSES = ["待研判", "处置中", "已回应"]
_EXCLUDED = ["title_seg", "content_seg"]  # the jieba tokens are not needed here


# ---- auto-open ----------------------------------------------------------------------------------------------
def events_at_or_above_query(levels: Sequence[str]) -> dict[str, Any]:
    """Open, unmerged events at one of ``levels`` (pure)."""
    return {"bool": {"filter": [{"term": {"status": "open"}}, {"terms": {"risk_level": list(levels)}}]}}


@dataclass(frozen=True)
class AutoOpenReport:
    opened: tuple[str, ...] = ()
    raised: tuple[str, ...] = ()
    skipped: int = 0  # changed by someone meanwhile, or opened by hand meanwhile: next run


def auto_open_tickets(client: Elasticsearch, prefix: str, config: ResponseConfig, topic_units: Mapping[str, str],
                      now: datetime) -> AutoOpenReport:
    service = TicketService(client, prefix, refresh_each_write=False)
    tickets = {lt.ticket.id: lt for lt in service.all_loaded()}
    events_alias = EVENTS.alias(prefix)
    client.indices.refresh(index=events_alias)  # the events update just wrote: search what it wrote
    events: dict[str, EventRecord] = {}
    if config.auto_open_min_level is not None:
        levels = RISK_LEVELS[: RISK_LEVELS.index(config.auto_open_min_level) + 1]
        for hit in helpers.scan(client, index=events_alias, query={"query": events_at_or_above_query(levels)},
                                size=500):
            record = EventRecord.model_validate(hit["_source"])
            events[record.event_id] = record
    # The ticket of each event: its own, or that of an event merged into it (the events update merges events
    # that turn out to be one 舆情; its ticket goes on, and no second one is opened for the same 舆情).
    subjects = [lt.ticket.subject.id for lt in tickets.values() if lt.ticket.subject.kind == "event"]
    survivor = surviving_events(client, events_alias, subjects)
    by_event: dict[str, LoadedTicket] = {}
    for lt in sorted(tickets.values(), key=lambda lt: (not lt.ticket.is_open, lt.ticket.opened_at)):  # open first
        if lt.ticket.subject.kind == "event":
            by_event.setdefault(survivor[lt.ticket.subject.id], lt)
    # Events of open tickets below the level: their level may have risen too.
    linked = sorted({survivor[e] for e in subjects} - set(events))
    events.update(get_events(client, events_alias, linked))

    opened: list[str] = []
    raised: list[str] = []
    skipped = 0
    for event in sorted(events.values(), key=lambda e: e.event_id):
        loaded = tickets.get(ticket_id_for_event(event.event_id)) or by_event.get(event.event_id)
        change = apply_rule(event, loaded.ticket if loaded else None, config=config, topic_units=topic_units,
                            now=now)
        if change is None:
            continue
        try:
            if loaded is None:
                service.create(change.ticket)
                opened.append(change.ticket.id)
            else:
                service.save(loaded, change.ticket)
                raised.append(change.ticket.id)
        except TicketError as exc:  # a person opened or changed it meanwhile: the next run sees their version
            log.info("auto-open: event %s left for the next run: %s", event.event_id, exc)
            skipped += 1
    report = AutoOpenReport(tuple(opened), tuple(raised), skipped)
    if opened or raised:
        service.refresh()
    if opened or raised or skipped:
        log.info("auto-open: %d tickets opened, %d levels raised, %d left for the next run (rule 等级≥%s)",
                 len(opened), len(raised), skipped, config.auto_open_min_level)
    return report


# ---- 失声 ---------------------------------------------------------------------------------------------------
def own_posts_query(sources: Sequence[str], since: datetime, until: datetime) -> dict[str, Any]:
    """Posts of the own channels published in [since, until] (pure)."""
    return {"bool": {"filter": [
        {"terms": {"source": list(sources)}},
        {"range": {"published_at": {"gte": since.isoformat(), "lte": until.isoformat()}}},
    ]}}


def board_messages_query(event_ids: Sequence[str], post_ids: Sequence[str]) -> dict[str, Any]:
    """Board messages of the events (or the posts themselves) that carry an official reply (pure)."""
    return {"bool": {
        "filter": [{"term": {"kind": "message"}}, {"exists": {"field": "reply.replied_at"}}],
        "should": [{"terms": {"event_id": list(event_ids)}}, {"ids": {"values": list(post_ids)}}],
        "minimum_should_match": 1,
    }}


def _posts(client: Elasticsearch, alias: str, query: dict[str, Any]) -> list[tuple[str, Post, str | None]]:
    """Every matching post (all of them: dropping some would change a ticket's outcome from run to run)."""
    out: list[tuple[str, Post, str | None]] = []
    for hit in helpers.scan(client, index=alias, query={"query": query, "_source": {"excludes": _EXCLUDED}},
                            size=1000):
        read = read_hit(hit)  # an unreadable document is logged with its id and skipped
        if read is not None:
            out.append((read.id, read.post, hit["_source"].get("event_id")))
    return out


def channel_post(doc_id: str, post: Post, channel: Channel) -> ChannelPost:
    assert post.published_at is not None
    return ChannelPost(id=doc_id, source=post.source, channel=channel, published_at=post.published_at,
                       title=post.title, text=post.content, url=post.url)


def board_message(doc_id: str, post: Post) -> BoardMessage:
    reply = post.reply
    return BoardMessage(id=doc_id, title=post.title, replied_at=reply.replied_at if reply else None,
                        reply_text=reply.text if reply else "", url=post.url)


class OwnPostIndex:
    """The own-channel posts by the keywords they contain, so that each ticket looks only at the posts sharing
    enough of its keywords (``check_silence`` then decides on those few)."""

    def __init__(self, posts: Sequence[ChannelPost]) -> None:
        self.posts = list(posts)
        self._texts = [f"{p.title}\n{p.text}" for p in self.posts]
        self._with: dict[str, list[int]] = {}

    def _containing(self, word: str) -> list[int]:
        found = self._with.get(word)
        if found is None:
            found = self._with[word] = [i for i, text in enumerate(self._texts) if word in text]
        return found

    def matching(self, keywords: Sequence[str], config: ResponseConfig) -> list[ChannelPost]:
        words = list(dict.fromkeys(k for k in keywords if k))
        needed = min(config.silence.min_keyword_hits, len(words))
        if not needed:
            return []
        hits: Counter[int] = Counter(i for w in words for i in self._containing(w))
        return [self.posts[i] for i, n in sorted(hits.items()) if n >= needed]


@dataclass(frozen=True)
class SilenceReport:
    checked: int = 0
    changed: tuple[str, ...] = ()
    silent: tuple[str, ...] = ()  # flagged 失声 (all of them, not only the newly flagged)
    skipped: int = 0


def _since(ticket: Ticket, config: ResponseConfig) -> datetime:
    return ticket.subject.started_at or ticket.opened_at - timedelta(hours=config.silence.lookback_hours)


def check_silences(client: Elasticsearch, prefix: str, config: ResponseConfig, own_channels: Mapping[str, Channel],
                   now: datetime, tz: tzinfo) -> SilenceReport:
    """The 失声 check of every ticket not closed; ``own_channels``: own source name → response channel; ``tz``:
    the office's time zone, for the times in the audit notes."""
    service = TicketService(client, prefix, refresh_each_write=False)
    loaded = service.all_loaded(statuses=ACTIVE_STATUSES)
    if not loaded:
        return SilenceReport()
    alias = POSTS.alias(prefix)
    client.indices.refresh(index=alias)  # the posts' event_id the events update just set
    own: list[ChannelPost] = []
    if own_channels:
        since = min(_since(lt.ticket, config) for lt in loaded)
        for doc_id, post, _ in _posts(client, alias, own_posts_query(sorted(own_channels), since, now)):
            if post.published_at is not None and post.source in own_channels:
                own.append(channel_post(doc_id, post, own_channels[post.source]))
    events = [lt.ticket.subject.id for lt in loaded if lt.ticket.subject.kind == "event"]
    posts = [lt.ticket.subject.id for lt in loaded if lt.ticket.subject.kind == "post"]
    # a ticket's event may have been merged into another since: its board messages now carry the other's id
    survivor = surviving_events(client, EVENTS.alias(prefix), events) if events else {}
    board: dict[str, list[BoardMessage]] = {}
    for doc_id, post, event_id in _posts(client, alias, board_messages_query(sorted(set(survivor.values())), posts)):
        message = board_message(doc_id, post)
        for key in {event_id, doc_id} - {None}:
            board.setdefault(str(key), []).append(message)

    candidates = OwnPostIndex(own)
    changed: list[str] = []
    silent: list[str] = []
    skipped = 0
    for lt in loaded:
        ticket = lt.ticket
        result = check_silence(ticket, own_posts=candidates.matching(ticket.subject.keywords, config),
                               board_messages=board.get(survivor.get(ticket.subject.id, ticket.subject.id), ()),
                               now=now, config=config)
        new = apply_silence(ticket, result, now=now, tz=tz)
        if new.silent:
            silent.append(ticket.id)
        if new == ticket:
            continue
        try:
            service.save(lt, new)
        except TicketConflict as exc:
            log.info("失声 check: ticket %s left for the next run: %s", ticket.id, exc)
            skipped += 1
            continue
        changed.append(ticket.id)
    if changed:
        service.refresh()
    if changed or skipped:
        log.info("失声 check: %d tickets checked, %d updated (%s), %d 失声, %d left for the next run", len(loaded),
                 len(changed), ", ".join(changed), len(silent), skipped)
    return SilenceReport(len(loaded), tuple(changed), tuple(silent), skipped)


# ---- wiring -------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ResponseJobs:
    """The two jobs with their configuration, read once at start-up (a bad file stops the service there)."""

    prefix: str
    config: ResponseConfig
    topic_units: Mapping[str, str]
    own_channels: Mapping[str, Channel]
    tz: tzinfo  # the office's (settings.timezone): times written into audit notes

    @classmethod
    def from_settings(cls, settings: Settings) -> ResponseJobs:
        from nlp.taxonomy import load_taxonomy
        from response.config import load_response_config
        from response.silence import own_channel_map
        from yuqing.sources import load_sources

        config = load_response_config(settings.config_file("response.yaml"))
        taxonomy = load_taxonomy(settings.config_file("taxonomy.yaml"))
        sources = load_sources(settings.config_file("sources.yaml")).enabled()
        own = own_channel_map([(s.name, s.kind, s.own) for s in sources], config.own_channels)
        return cls(settings.elasticsearch.index_prefix, config, {c.name: c.unit for c in taxonomy.categories}, own,
                   ZoneInfo(settings.timezone))

    def auto_open(self, client: Elasticsearch, now: datetime | None = None) -> AutoOpenReport:
        return auto_open_tickets(client, self.prefix, self.config, self.topic_units, now or datetime.now(UTC))

    def silence(self, client: Elasticsearch, now: datetime | None = None) -> SilenceReport:
        return check_silences(client, self.prefix, self.config, self.own_channels, now or datetime.now(UTC),
                              self.tz)
