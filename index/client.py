"""Building the Elasticsearch client from settings (one place for hosts, credentials and TLS)."""

from __future__ import annotations

from typing import Any

from elasticsearch import Elasticsearch

from yuqing.settings import ElasticsearchSettings


def make_client(settings: ElasticsearchSettings) -> Elasticsearch:
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
