"""The Elasticsearch client from settings (one place for hosts, credentials and TLS), and what its errors mean.

    with es_client(settings.elasticsearch) as client:
        ...

Errors are told apart by :func:`unavailable`: only a connection failure, a timeout or a 5xx answer means
"Elasticsearch is unavailable" (worth spooling and retrying later); a 4xx (a mapping error, a missing index,
bad credentials) is a refusal that the same request will meet again.
"""

from __future__ import annotations

import builtins
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from elasticsearch import ApiError, ConnectionError, ConnectionTimeout, Elasticsearch

from yuqing.errors import YuqingError
from yuqing.settings import ElasticsearchSettings


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


def unavailable(exc: BaseException) -> bool:
    """Whether ``exc`` means Elasticsearch cannot be reached or cannot answer now: a connection error, a
    timeout or a 5xx. Anything else (a 4xx, a bug) would fail again the same way."""
    if isinstance(exc, ConnectionError | ConnectionTimeout | builtins.ConnectionError | TimeoutError):
        return True
    status = status_of(exc)
    return status is not None and status >= 500


def rejected(exc: BaseException) -> bool:
    """Whether ``exc`` is a 4xx answer of Elasticsearch."""
    status = status_of(exc)
    return status is not None and 400 <= status < 500
