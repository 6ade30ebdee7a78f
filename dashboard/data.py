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
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import ParamSpec, TypeVar

import streamlit as st
from elasticsearch import ApiError, ConnectionTimeout, Elasticsearch, NotFoundError, TransportError
from elasticsearch import ConnectionError as TransportConnectionError

from index.client import make_client
from index.hits import read_hits
from index.hotwords import load_stopwords
from index.layout import POSTS
from index.search import PostQuery, SearchResult, build_search, count_by, hot_terms
from index.source_health import SourceStatus, source_statuses
from ingest.privacy import Redactor
from nlp.segment import segment
from yuqing.errors import YuqingError
from yuqing.logs import setup_logging
from yuqing.settings import Settings, load_settings
from yuqing.sources import load_sources
from yuqing.text import display_host

P = ParamSpec("P")
R = TypeVar("R")

# Time windows of the overview page (None: all posts, those without a publish time included).
OVERVIEW_WINDOWS: dict[str, timedelta | None] = {
    "近24小时": timedelta(days=1),
    "近7天": timedelta(days=7),
    "近30天": timedelta(days=30),
    "全部": None,
}


class DashboardError(YuqingError):
    """A failure to show to the press officer as it is (a Chinese message, no traceback)."""


@dataclass(frozen=True, eq=False)
class Backend:
    """The settings and Elasticsearch client of one configuration; ``key`` identifies the configuration."""

    key: str
    settings: Settings
    client: Elasticsearch
    stopwords: tuple[str, ...] = ()
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
    # The client lives as long as this process's cached backend (every page run reuses it).
    return Backend(key=key, settings=settings, client=make_client(settings.elasticsearch),
                   stopwords=load_stopwords(settings.config_file("hotwords.yaml")),
                   redactor=Redactor.from_file(settings.config_file("privacy.yaml")))


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
        raise DashboardError(
            f"舆情数据库（{backend.hosts}）中没有索引 {backend.posts_alias}。"
            "请先运行 `yuqing setup` 并采集数据。"
        ) from exc
    except (ApiError, TransportError) as exc:
        raise DashboardError(f"查询舆情数据库（{backend.hosts}）失败：{exc}") from exc


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
        return hot_terms(backend.client, backend.posts_alias, query, size, exclude=backend.stopwords)


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


def window_start(now: datetime, window: timedelta) -> datetime:
    """The start of a window ending at ``now``, rounded down to the minute so cached queries are reused."""
    return (now - window).replace(second=0, microsecond=0)
