"""Elasticsearch access for the dashboard: settings and client cached per process, queries cached with a TTL.

Settings come from :func:`yuqing.settings.load_settings` (``config/yuqing.yaml`` or ``$YUQING_CONFIG``, then
``YUQING_*`` environment variables) the first time a page needs them; they are cached per distinct
``YUQING_*`` environment, so a process never mixes two configurations. Query results are cached with
``st.cache_data`` for ``dashboard.cache_ttl_s`` seconds. Every Elasticsearch failure surfaces as a
:class:`DashboardError` with a Chinese message for the page to show.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import os
import threading
import uuid
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import ParamSpec, TypeVar

import streamlit as st
from elasticsearch import ApiError, ConnectionTimeout, Elasticsearch, NotFoundError, TransportError
from elasticsearch import ConnectionError as TransportConnectionError

from dashboard.auth import Viewer
from events.keyword_groups import load_keyword_groups
from index import outbox as outbox_store
from index import overview
from index.client import ClusterUnavailable, check_connection, make_client
from index.events import EVENTS, EventRecord
from index.hits import read_hits
from index.hotwords import load_hot_words
from index.layout import POSTS
from index.outbox import OUTBOX, OutboxEntry
from index.search import PostQuery, SearchResult, build_search, count_by, hot_terms
from index.source_health import SourceStatus, source_statuses
from index.tickets import TICKETS
from ingest.judgements import JudgementService
from ingest.privacy import Redactor
from nlp.segment import segment
from nlp.taxonomy import Taxonomy, load_taxonomy
from yuqing.errors import ConfigError, YuqingError
from yuqing.logs import setup_logging
from yuqing.settings import Settings, load_settings
from yuqing.sources import load_sources
from yuqing.text import display_host

log = logging.getLogger(__name__)
P = ParamSpec("P")
R = TypeVar("R")

# Time windows of the overview page (None: all posts, those without a publish time included).
OVERVIEW_WINDOWS: dict[str, timedelta | None] = {
    "近24小时": timedelta(days=1),
    "近7天": timedelta(days=7),
    "近30天": timedelta(days=30),
    "全部": None,
}
TICKETS_DUE_SOON = timedelta(hours=24)  # 总览 counts tickets whose first deadline falls within this


class DashboardError(YuqingError):
    """A failure to show to the press officer as it is (a Chinese message, no traceback)."""


@dataclass(frozen=True, eq=False)
class Backend:
    """The settings and Elasticsearch client of one configuration; ``key`` identifies the configuration."""

    key: str
    settings: Settings
    client: Elasticsearch
    stopwords: tuple[str, ...] = ()
    hot_sample_docs: int = 0  # hot words over a sample above twice this many posts (config/hotwords.yaml)
    redactor: Redactor = field(default_factory=Redactor)

    @property
    def posts_alias(self) -> str:
        return POSTS.alias(self.settings.elasticsearch.index_prefix)

    @property
    def hosts(self) -> str:
        """The cluster addresses for messages (credentials in a URL are not shown)."""
        return "、".join(display_host(h) for h in self.settings.elasticsearch.hosts)


def environment_key(environ: dict[str, str] | None = None) -> str:
    """A digest of the ``YUQING_*`` variables (including ``YUQING_CONFIG``) that determine the settings."""
    env = os.environ if environ is None else environ
    items = sorted((k, v) for k, v in env.items() if k.startswith("YUQING_"))
    return hashlib.sha256(repr(items).encode("utf-8")).hexdigest()


@st.cache_resource(show_spinner=False)
def _backend(key: str) -> Backend:
    # `key` only selects the cache entry: the settings are read from the same environment it digests.
    settings = load_settings()
    setup_logging(settings, "dashboard")
    # The config files first: a malformed one raises before any client exists (a failed build is not cached, so
    # each page run tries again, and must not leave a client behind each time).
    hot = load_hot_words(settings.config_file("hotwords.yaml"))
    redactor = Redactor.from_file(settings.config_file("privacy.yaml"))
    # The client lives as long as this process's cached backend (every page run reuses it).
    client = make_client(settings.elasticsearch)
    try:  # wrong credentials or CA: ConfigError naming the setting (not cached: the next page run checks again)
        check_connection(settings.elasticsearch, client)
    except ClusterUnavailable as exc:  # down: each page says so when it queries
        log.warning("%s", exc)
    except ConfigError:
        client.close()
        raise
    return Backend(key=key, settings=settings, client=client, stopwords=tuple(hot.stopwords),
                   hot_sample_docs=hot.sample_docs, redactor=redactor)


def get_backend() -> Backend:
    """Settings and client for the current environment (built once per process and configuration).

    Raises :class:`yuqing.errors.ConfigError` when the configuration is invalid.
    """
    return _backend(environment_key())


@contextmanager
def es_errors(backend: Backend) -> Iterator[None]:
    """Turn Elasticsearch failures into :class:`DashboardError` messages that name the cluster."""
    try:
        yield
    except (TransportConnectionError, ConnectionTimeout) as exc:
        raise DashboardError(
            f"无法连接舆情数据库（Elasticsearch：{backend.hosts}）。请确认服务已启动、网络可达后刷新页面。"
        ) from exc
    except NotFoundError as exc:
        missing = _missing_index(exc) or backend.posts_alias
        log.warning("dashboard query: index not found: %s", exc)
        raise DashboardError(
            f"舆情数据库（{backend.hosts}）中没有索引 {missing}。请先运行 `yuqing setup` 并采集数据。"
        ) from exc
    except (ApiError, TransportError) as exc:  # the technical detail goes to the log, under a reference
        ref = uuid.uuid4().hex[:8]
        log.error("dashboard query failed (%s) on %s: %s", ref, backend.hosts, exc)
        raise DashboardError(f"查询舆情数据库（{backend.hosts}）失败，请稍后重试；如反复出现，请联系管理员"
                             f"（错误编号 {ref}）。") from exc


def _missing_index(exc: NotFoundError) -> str | None:
    """The index an ``index_not_found_exception`` names, if it names one."""
    info = exc.info if isinstance(exc.info, dict) else {}
    error = info.get("error") if isinstance(info.get("error"), dict) else {}
    index = error.get("index") if isinstance(error, dict) else None
    return str(index) if index else None


def _backend_hash(backend: Backend) -> str:
    return backend.key


def _ttl_cached(func: Callable[P, R]) -> Callable[[int], Callable[P, R]]:
    """``func`` wrapped in ``st.cache_data`` with a TTL chosen at run time (settings are not read at import).

    ``Backend`` arguments are hashed by their configuration key, so results never leak between clusters or
    index prefixes.
    """

    @functools.cache
    def with_ttl(ttl_s: int) -> Callable[P, R]:
        cached = st.cache_data(ttl=ttl_s, show_spinner=False, hash_funcs={Backend: _backend_hash})(func)
        return cached

    return with_ttl


@st.cache_resource(show_spinner=False, ttl=300)
def taxonomy(path: Path) -> Taxonomy:
    """The topic taxonomy and its keyword rules (config/taxonomy.yaml), read again after five minutes so an edit
    shows without a restart."""
    return load_taxonomy(path)


@st.cache_resource(show_spinner=False, hash_funcs={Backend: _backend_hash})
def _judgement_service(backend: Backend) -> JudgementService:
    topics = load_taxonomy(backend.settings.config_file("taxonomy.yaml")).names
    return JudgementService.ready(backend.client, backend.settings.elasticsearch, topics)


def judgement_service(backend: Backend) -> JudgementService:
    """The 人工研判 service of this backend, its index created when missing (once per process and configuration;
    a failure is not cached: the next page run tries again)."""
    with es_errors(backend):
        return _judgement_service(backend)


def clear_cached_queries() -> None:
    """Forget every cached query result: after a person changed what they show (a judgement, say), the next
    page run reads Elasticsearch again."""
    st.cache_data.clear()


@dataclass(frozen=True)
class PageResult(SearchResult):
    """A search result whose unreadable documents were skipped (counted here, logged with their ids)."""

    unreadable: int = 0


def _search(backend: Backend, query: PostQuery) -> PageResult:
    with es_errors(backend):
        resp = backend.client.search(index=backend.posts_alias, **build_search(query, segment))
    read = read_hits(resp["hits"]["hits"])
    return PageResult(total=int(resp["hits"]["total"]["value"]), hits=read.hits, unreadable=len(read.unreadable))


def _counts(backend: Backend, query: PostQuery, field_name: str, size: int) -> dict[str, int]:
    with es_errors(backend):
        return count_by(backend.client, backend.posts_alias, query, field_name, size)


def _hot_words(backend: Backend, query: PostQuery, size: int) -> list[tuple[str, int]]:
    with es_errors(backend):
        return hot_terms(backend.client, backend.posts_alias, query, size, exclude=backend.stopwords,
                         sample_docs=backend.hot_sample_docs)


def _source_health(backend: Backend) -> list[SourceStatus]:
    with es_errors(backend):
        names = [s.name for s in load_sources(backend.settings.config_file("sources.yaml")).enabled()]
        return source_statuses(backend.client, backend.settings.elasticsearch.index_prefix, names,
                               backend.settings.crawl.silent_after_runs)


_search_cached = _ttl_cached(_search)
_source_health_cached = _ttl_cached(_source_health)
_counts_cached = _ttl_cached(_counts)
_hot_words_cached = _ttl_cached(_hot_words)


def search(backend: Backend, query: PostQuery) -> PageResult:
    """Posts matching ``query`` (cached for ``dashboard.cache_ttl_s``); unreadable documents skipped, counted."""
    return _search_cached(backend.settings.dashboard.cache_ttl_s)(backend, query)


def counts(backend: Backend, query: PostQuery, field_name: str, size: int = 50) -> dict[str, int]:
    """Posts per value of ``field_name`` under ``query`` (cached), largest first."""
    return _counts_cached(backend.settings.dashboard.cache_ttl_s)(backend, query, field_name, size)


def hot_words(backend: Backend, query: PostQuery, size: int = 30) -> list[tuple[str, int]]:
    """The most frequent words of the posts matching ``query`` (cached)."""
    return _hot_words_cached(backend.settings.dashboard.cache_ttl_s)(backend, query, size)


def source_health(backend: Backend) -> list[SourceStatus]:
    """The status of every enabled source (cached)."""
    return _source_health_cached(backend.settings.dashboard.cache_ttl_s)(backend)


def total(backend: Backend, query: PostQuery) -> int:
    """How many posts match ``query`` (cached)."""
    return search(backend, replace(query, size=0, offset=0)).total


PREFETCH_WORKERS = 8


def prefetch(*calls: Callable[[], R]) -> list[Future[R]]:
    """Start ``calls`` at once, each in its own thread, and return their futures without waiting for them.

    A page starts its independent (cached) queries here, then makes the same calls panel by panel: a panel finds
    its answer in Streamlit's cache, or waits for the computation already under way (``st.cache_data`` computes a
    key once), so the page waits for its slowest query instead of for the sum of them, and each panel reaches the
    browser as soon as its own answer is in. A call that raised is not cached: the panel's own call meets the
    error again and shows it (the future holds it too). The threads carry the page run's context, so
    ``st.cache_data`` inside them behaves as in the page.
    """
    if not calls:
        return []
    from streamlit.runtime.scriptrunner import add_script_run_ctx, get_script_run_ctx

    ctx = get_script_run_ctx(suppress_warning=True)

    def attach() -> None:
        if ctx is not None:
            add_script_run_ctx(threading.current_thread(), ctx)

    pool = ThreadPoolExecutor(max_workers=min(PREFETCH_WORKERS, len(calls)), thread_name_prefix="dashboard-query",
                              initializer=attach)
    try:
        return [pool.submit(call) for call in calls]
    finally:
        pool.shutdown(wait=False)  # the threads end when their call is done


def window_start(now: datetime, window: timedelta) -> datetime:
    """The start of a window ending at ``now``, rounded down to the minute so cached queries are reused."""
    return (now - window).replace(second=0, microsecond=0)


# ---- 总览 and 检索 ------------------------------------------------------------------------------------------
def _optional_index(backend: Backend, func: Callable[[], R]) -> R | None:
    """``func()`` on an index another component creates; None when that index does not exist (yet)."""
    try:
        with es_errors(backend):
            return func()
    except DashboardError as exc:
        if isinstance(exc.__cause__, NotFoundError):
            return None
        raise


def _data_span(backend: Backend, now: datetime) -> overview.DataSpan:
    windows = {k: v for k, v in OVERVIEW_WINDOWS.items() if v is not None}
    with es_errors(backend):
        return overview.data_span(backend.client, backend.posts_alias, now, windows)


def _volume(backend: Backend, query: PostQuery, interval: overview.Interval) -> list[overview.VolumePoint]:
    with es_errors(backend):
        return overview.volume(backend.client, backend.posts_alias, query, interval, backend.settings.timezone)


def _post_summary(backend: Backend, query: PostQuery, interval: overview.Interval) -> overview.PostSummary:
    with es_errors(backend):
        return overview.post_summary(backend.client, backend.posts_alias, query, interval, backend.settings.timezone)


def _facets(backend: Backend, query: PostQuery) -> overview.Facets:
    with es_errors(backend):
        return overview.facets(backend.client, backend.posts_alias, query, backend.settings.timezone)


def _prefix(backend: Backend) -> str:
    return backend.settings.elasticsearch.index_prefix


def _top_events(backend: Backend, since: datetime | None, size: int) -> overview.Records[EventRecord] | None:
    return _optional_index(backend, lambda: overview.top_events(backend.client, EVENTS.alias(_prefix(backend)),
                                                                since, size))


def _event_ids(backend: Backend, risk_levels: tuple[str, ...]) -> tuple[str, ...]:
    found = _optional_index(backend, lambda: overview.event_ids_of_risk(
        backend.client, EVENTS.alias(_prefix(backend)), risk_levels))
    return found or ()


def _tickets(backend: Backend, now: datetime) -> overview.TicketSummary | None:
    return _optional_index(backend, lambda: overview.ticket_summary(
        backend.client, TICKETS.alias(_prefix(backend)), now, TICKETS_DUE_SOON))


def _alerts(backend: Backend, since: datetime | None) -> overview.AlertSummary | None:
    return _optional_index(backend, lambda: overview.alert_summary(
        backend.client, OUTBOX.alias(_prefix(backend)), since))


_data_span_cached = _ttl_cached(_data_span)
_volume_cached = _ttl_cached(_volume)
_post_summary_cached = _ttl_cached(_post_summary)
_facets_cached = _ttl_cached(_facets)
_top_events_cached = _ttl_cached(_top_events)
_event_ids_cached = _ttl_cached(_event_ids)
_tickets_cached = _ttl_cached(_tickets)
_alerts_cached = _ttl_cached(_alerts)


def _ttl(backend: Backend) -> int:
    return backend.settings.dashboard.cache_ttl_s


def data_span(backend: Backend, now: datetime) -> overview.DataSpan:
    """Posts per overview window ending ``now`` (round it to the minute) and the publish-time range (cached)."""
    return _data_span_cached(_ttl(backend))(backend, now)


def volume(backend: Backend, query: PostQuery, interval: overview.Interval) -> list[overview.VolumePoint]:
    """Posts per interval and sentiment (cached)."""
    return _volume_cached(_ttl(backend))(backend, query, interval)


def post_summary(backend: Backend, query: PostQuery, interval: overview.Interval) -> overview.PostSummary:
    """Total, sentiment and source counts and volume of ``query`` in one request (cached)."""
    return _post_summary_cached(_ttl(backend))(backend, query, interval)


def facets(backend: Backend, query: PostQuery) -> overview.Facets:
    """Counts of a result by source, topic and day (cached)."""
    return _facets_cached(_ttl(backend))(backend, query)


def top_events(backend: Backend, since: datetime | None, size: int = 10) -> overview.Records[EventRecord] | None:
    """The hottest open events active since ``since`` (cached); None when there is no events index."""
    return _top_events_cached(_ttl(backend))(backend, since, size)


def event_ids_of_risk(backend: Backend, risk_levels: tuple[str, ...]) -> tuple[str, ...]:
    """The events of these risk levels (cached); () when there is no events index."""
    return _event_ids_cached(_ttl(backend))(backend, risk_levels)


def tickets(backend: Backend, now: datetime) -> overview.TicketSummary | None:
    """Open, overdue and due-soon 处置单 (cached); None when there is no tickets index."""
    return _tickets_cached(_ttl(backend))(backend, now)


def alerts(backend: Backend, since: datetime | None) -> overview.AlertSummary | None:
    """Outbox counts and the active or recently sent alerts (cached); None when there is no outbox index."""
    return _alerts_cached(_ttl(backend))(backend, since)


@st.cache_data(ttl=60, show_spinner=False)
def _keyword_group_names(path: str, mtime: float) -> list[str]:
    return [g.name for g in load_keyword_groups(Path(path)).groups]


def keyword_group_names(backend: Backend) -> list[str]:
    """The 专题 groups of ``keyword_groups.yaml`` (re-read when the file changes)."""
    path = backend.settings.config_file("keyword_groups.yaml")
    mtime = path.stat().st_mtime if path.exists() else 0.0
    return _keyword_group_names(str(path), mtime)


# ---- alert delivery (预警投递) -------------------------------------------------------------------------------
@dataclass(frozen=True)
class DeliveryRow:
    """One outbox entry as the 预警投递 page lists it."""

    entry_id: str
    rule: str
    subject: str
    recipients: tuple[str, ...]
    status: str
    attempts: int
    decided_at: datetime
    next_attempt_at: datetime | None
    last_error: str | None
    refused: tuple[str, ...] = ()  # sent, but the mail server refused these recipients


@dataclass(frozen=True)
class DeliveryView:
    """The outbox at a glance: entries per status, the failed ones (given up) and those being retried."""

    counts: dict[str, int]
    failed: tuple[DeliveryRow, ...]
    retrying: tuple[DeliveryRow, ...]
    partly: tuple[DeliveryRow, ...] = ()  # sent to some recipients, refused for others


def _delivery_row(e: OutboxEntry) -> DeliveryRow:
    return DeliveryRow(entry_id=e.id, rule=e.rule, subject=e.subject or e.title, recipients=e.recipients,
                       status=e.status, attempts=e.attempts, decided_at=e.decided_at,
                       next_attempt_at=e.next_attempt_at, last_error=e.last_error, refused=e.refused)


def requeue_failed_mails(backend: Backend, ids: Sequence[str], viewer: Viewer) -> list[str]:
    """Queue the failed mails ``ids`` for a new round of attempts (the sender of `yuqing run` sends them at its next
    poll); returns those queued (one changed meanwhile is left). Raises :class:`PermissionError` for a viewer
    who reads only (checked here, not only by the page that draws the button)."""
    if not viewer.acts:
        raise PermissionError(f"{viewer.role} may not resend alert mails")
    alias = OUTBOX.alias(backend.settings.elasticsearch.index_prefix)
    with es_errors(backend):
        done = outbox_store.requeue_failed(backend.client, alias, datetime.now(UTC), ids=ids)
    log.info("预警投递: %s queued %d failed mails again: %s", viewer.audit_name, len(done), ", ".join(done))
    return done


def alert_delivery(backend: Backend, limit: int = 50) -> DeliveryView:
    """What the alert outbox holds (not cached: a failure must show at once): counts per status, the entries
    given up on (newest first) and the pending ones that failed at least once (retried with backoff)."""
    alias = OUTBOX.alias(backend.settings.elasticsearch.index_prefix)
    with es_errors(backend):
        if not backend.client.indices.exists_alias(name=alias):
            raise DashboardError(
                f"舆情数据库（{backend.hosts}）中没有预警发件箱 {alias}。请先运行 `yuqing setup`。")
        counts = outbox_store.counts_by_status(backend.client, alias)
        failed = outbox_store.failed_entries(backend.client, alias, limit=limit)
        retrying = outbox_store.search(backend.client, alias, {
            "query": {"bool": {"filter": [{"term": {"status": "pending"}}, {"range": {"attempts": {"gte": 1}}}]}},
            "sort": [{"updated_at": "desc"}, {"id": "asc"}]}, size=limit)
        partly = outbox_store.search(backend.client, alias, {
            "query": {"bool": {"filter": [{"term": {"status": "sent"}}, {"exists": {"field": "refused"}}]}},
            "sort": [{"updated_at": "desc"}, {"id": "asc"}]}, size=limit)
    return DeliveryView(counts=counts, failed=tuple(_delivery_row(e) for e in failed),
                        retrying=tuple(_delivery_row(e) for e in retrying),
                        partly=tuple(_delivery_row(e) for e in partly))
