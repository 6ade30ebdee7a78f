"""The Elasticsearch client from settings (one place for hosts, credentials and TLS), and what its errors mean.

    with es_client(settings.elasticsearch) as client:
        ...

Errors are told apart by :func:`unavailable`: a connection failure, a timeout, a 5xx answer, or a write block
(:func:`blocked`: indices made read-only by the flood-stage disk watermark — 429 ``cluster_block_exception`` —
or by an operator's ``index.blocks.*`` — 403) means "Elasticsearch cannot take this now" (worth spooling and
retrying later); any other 4xx (a mapping error, a missing index, bad credentials) is a refusal that the same
request will meet again. :func:`describe` says in one line what an error means and what to do.
"""

from __future__ import annotations

import builtins
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from elastic_transport import TlsError, TransportError
from elasticsearch import (
    ApiError,
    AuthenticationException,
    AuthorizationException,
    ConnectionError,
    ConnectionTimeout,
    Elasticsearch,
)

from yuqing.errors import ConfigError, YuqingError
from yuqing.settings import ElasticsearchSettings
from yuqing.text import display_host

log = logging.getLogger(__name__)


def make_client(settings: ElasticsearchSettings) -> Elasticsearch:
    """A new client; prefer :func:`es_client`, which closes it. For an owner that outlives one block (the
    dashboard's cached backend, a crawl's ingest session), which closes it itself."""
    kwargs: dict[str, Any] = {
        "hosts": settings.hosts,
        "request_timeout": settings.request_timeout_s,
        "retry_on_timeout": True,
        "max_retries": 3,
    }
    if settings.username is not None and settings.password is not None:
        kwargs["basic_auth"] = (settings.username, settings.password.get_secret_value())
    if settings.api_key is not None:
        kwargs["api_key"] = settings.api_key.get_secret_value()
    if settings.ca_certs is not None:
        kwargs["ca_certs"] = str(settings.ca_certs)
    if any(h.startswith("https") for h in settings.hosts):
        kwargs["verify_certs"] = settings.verify_certs
    return Elasticsearch(**kwargs)


@contextmanager
def es_client(settings: ElasticsearchSettings) -> Iterator[Elasticsearch]:
    """A client for the block, closed when it ends."""
    client = make_client(settings)
    try:
        yield client
    finally:
        client.close()


class Rejected(YuqingError):
    """Elasticsearch refused a request (4xx) in a way the client only sees inside a response (e.g. one search
    of an ``msearch``)."""

    def __init__(self, what: str, status: int | None, reason: str) -> None:
        super().__init__(f"{what}: elasticsearch refused ({status}): {reason}")
        self.status = status


def status_of(exc: BaseException) -> int | None:
    """The HTTP status of an Elasticsearch error (None: no answer at all)."""
    if isinstance(exc, Rejected):
        return exc.status
    if isinstance(exc, ApiError):
        return int(exc.meta.status)
    return None


CLUSTER_BLOCK = "cluster_block_exception"
# What a write block means and what to do: the one message of every log line about one.
BLOCK_ADVICE = ("the indices are read-only (the flood-stage disk watermark was exceeded, or an operator set an "
                "index.blocks.* setting): free disk space on the data nodes, and Elasticsearch lifts the "
                "flood-stage block itself once usage falls below the high watermark")


class WriteBlocked(YuqingError):
    """Elasticsearch refused writes because of a block (read-only indices); nothing written is lost: the caller
    spools what it could not write. ``unwritten``: the ids refused (empty when the whole request was)."""

    def __init__(self, what: str, unwritten: tuple[str, ...] = ()) -> None:
        super().__init__(f"{what}: {BLOCK_ADVICE}")
        self.unwritten = unwritten


def blocked_answer(status: int | None, error_type: str | None) -> bool:
    """Whether an answer (a response or one bulk item) is a write block: a ``cluster_block_exception`` (429 for
    the flood-stage block, 403 for ``index.blocks.read_only``/``write``) — pure."""
    return error_type == CLUSTER_BLOCK and status in (403, 429)


def blocked(exc: BaseException) -> bool:
    """Whether ``exc`` is a write block (see :func:`blocked_answer`)."""
    if isinstance(exc, WriteBlocked):
        return True
    return isinstance(exc, ApiError) and blocked_answer(int(exc.meta.status), _error_type(exc))


def _error_type(exc: ApiError) -> str | None:
    body = exc.body
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        return str(body["error"].get("type"))
    return None


def unavailable(exc: BaseException) -> bool:
    """Whether ``exc`` means Elasticsearch cannot take the request now: a connection error, a timeout, a 5xx or
    a write block (:func:`blocked`). Anything else (another 4xx, a bug) would fail again the same way."""
    if isinstance(exc, ConnectionError | ConnectionTimeout | builtins.ConnectionError | TimeoutError):
        return True
    if blocked(exc):
        return True
    status = status_of(exc)
    return status is not None and status >= 500


def rejected(exc: BaseException) -> bool:
    """Whether ``exc`` is a 4xx answer of Elasticsearch that the same request would meet again (not a block)."""
    status = status_of(exc)
    return status is not None and 400 <= status < 500 and not blocked(exc)


def describe(exc: BaseException) -> str:
    """One line on what an Elasticsearch failure means (for a log line; no traceback, no secret)."""
    if isinstance(exc, WriteBlocked):
        return str(exc)
    if blocked(exc):
        return f"writes blocked ({status_of(exc)} {CLUSTER_BLOCK}): {BLOCK_ADVICE}"
    if isinstance(exc, ConnectionError | ConnectionTimeout):
        return f"no node answered ({_reason(exc)})"
    return str(exc)[:500]


class ClusterUnavailable(YuqingError):
    """No node of ``elasticsearch.hosts`` answered."""


@dataclass(frozen=True)
class ConnectionInfo:
    """What :func:`check_connection` found: the cluster's health as seen by the configured user."""

    hosts: tuple[str, ...]  # without any credentials: fit for a log line or a screen
    user: str | None
    status: str
    number_of_nodes: int


def shown_hosts(settings: ElasticsearchSettings) -> tuple[str, ...]:
    """``elasticsearch.hosts`` with any ``user:password@`` part removed (pure)."""
    return tuple(display_host(url) for url in settings.hosts)


def check_connection(settings: ElasticsearchSettings, client: Elasticsearch | None = None) -> ConnectionInfo:
    """Reach the cluster with these settings before a component starts its work.

    Wrong credentials, a user without the needed privileges or a certificate the configured CA does not
    verify raise :class:`ConfigError` naming the setting to fix; no answer at all raises
    :class:`ClusterUnavailable`. Nothing in a message comes from a secret.
    """
    hosts = shown_hosts(settings)
    where = ", ".join(hosts)
    if settings.ca_certs is not None and not settings.ca_certs.is_file():
        raise ConfigError(f"the CA certificate file {settings.ca_certs} does not exist",
                          field="elasticsearch.ca_certs")
    own = client is None
    es = make_client(settings) if client is None else client
    try:
        try:  # one node first, no retries: a TLS or credentials error is the same on every node
            health = es.options(max_retries=0).cluster.health()
        except TransportError as exc:
            if isinstance(exc, TlsError):
                raise
            health = es.cluster.health()  # that node is down: the client tries the others
    except AuthenticationException as exc:
        if settings.api_key is not None:
            field, what = "elasticsearch.api_key", "the API key"
        elif settings.username is not None:
            field = "elasticsearch.password_file" if settings.password_file is not None else "elasticsearch.password"
            what = f"the password of user {settings.username!r}"
        else:
            raise ConfigError(f"the cluster at {where} requires authentication: set elasticsearch.username and "
                              "elasticsearch.password (YUQING_ELASTICSEARCH__PASSWORD) or password_file",
                              field="elasticsearch.username") from exc
        raise ConfigError(f"the cluster at {where} rejected {what} (HTTP {exc.meta.status}): check it",
                          field=field) from exc
    except AuthorizationException as exc:
        raise ConfigError(f"user {settings.username!r} may not read the health of the cluster at {where}: give its "
                          "role the cluster privilege 'monitor'", field="elasticsearch.username") from exc
    except TlsError as exc:
        ca = str(settings.ca_certs) if settings.ca_certs is not None else "the system's CA certificates"
        raise ConfigError(f"the TLS certificate of the cluster at {where} is not trusted by {ca}: set "
                          f"elasticsearch.ca_certs to the CA that signed it ({_reason(exc)})",
                          field="elasticsearch.ca_certs") from exc
    except TransportError as exc:
        raise ClusterUnavailable(f"no node of elasticsearch.hosts ({where}) answered: {_reason(exc)}") from exc
    finally:
        if own:
            es.close()
    info = ConnectionInfo(hosts=hosts, user=settings.username, status=str(health["status"]),
                          number_of_nodes=int(health["number_of_nodes"]))
    log.debug("elasticsearch at %s as %s: %s, %d nodes", where, info.user or "anonymous", info.status,
             info.number_of_nodes)
    return info


def _reason(exc: TransportError) -> str:
    """The innermost message of a transport error (e.g. the SSL verification failure), kept short."""
    inner: BaseException = exc
    while isinstance(inner, TransportError) and isinstance(inner.errors, tuple) and inner.errors:
        inner = inner.errors[-1]
    return str(inner.message if isinstance(inner, TransportError) else inner)[:300]
