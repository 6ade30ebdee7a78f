"""The marked part of the suite (``-m cluster``): the essential integration tests against the local 3-node
secured cluster with one replica.

A fixture starts the cluster once (idempotently: a running one is reused). For the tests of this package the
cluster's connection settings are put into the environment (``YUQING_ELASTICSEARCH__HOSTS``, ``__USERNAME``,
``__PASSWORD``, ``__CA_CERTS``, ``__REPLICAS``), the way a deployment passes them, so that the settings the tests
build and every child process they start (``yuqing crawl``) use the ordinary settings path, unchanged. The
shared fixtures ``base_settings``, ``es_server``, ``es_client`` and ``shared_data`` are overridden here; the
per-test ``settings`` fixture of tests/conftest.py then sets up fresh indices on the cluster as the
application user.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from elasticsearch import Elasticsearch

from index.client import make_client
from index.es_cluster import LocalCluster
from index.es_security import ADMIN_USER, APP_USER
from yuqing.settings import PROJECT_ROOT, ElasticsearchSettings, Settings, load_settings

CLUSTER_NODES = 3


@pytest.fixture(scope="package")
def es_cluster() -> Iterator[LocalCluster]:
    """The local secured cluster, started once for this package unless it is running (its start time is
    printed with -s).

    A cluster started here is stopped after this package's tests (its data kept), so that the rest of the suite
    has the memory back, unless YUQING_TEST_KEEP_CLUSTER=1 keeps it running for the next session.
    """
    defaults = load_settings(PROJECT_ROOT / "config" / "yuqing.yaml")
    local = defaults.local_es.model_copy(update={"nodes": CLUSTER_NODES, "secure": True})
    cluster = LocalCluster(local, prefix=defaults.elasticsearch.index_prefix)
    t0 = time.monotonic()
    started = cluster.start()
    print(f"\nlocal cluster {'reused' if started.already_running else 'started'}: {started.health.status}, "
          f"{started.health.number_of_nodes} nodes in {time.monotonic() - t0:.1f}s")
    yield cluster
    if not started.already_running and os.environ.get("YUQING_TEST_KEEP_CLUSTER") != "1":
        cluster.stop()


def cluster_es_settings(cluster: LocalCluster, user: str, **update: object) -> ElasticsearchSettings:
    """Settings reaching ``cluster`` as ``user`` (password read from the cluster's secrets)."""
    return ElasticsearchSettings.model_validate({**cluster.client_settings(user), **update})


@pytest.fixture(scope="package")
def admin_client(es_cluster: LocalCluster) -> Iterator[Elasticsearch]:
    """The operator account (superuser): for what the application may not do (snapshots, other prefixes)."""
    client = make_client(cluster_es_settings(es_cluster, ADMIN_USER))
    yield client
    client.close()


@pytest.fixture(scope="package")
def cluster_env(es_cluster: LocalCluster) -> Iterator[dict[str, str]]:
    """The application's connection settings in the environment for this package's tests (then restored)."""
    app = cluster_es_settings(es_cluster, APP_USER)
    assert app.password is not None and app.ca_certs is not None
    env = {
        "YUQING_ELASTICSEARCH__HOSTS": json.dumps(app.hosts),
        "YUQING_ELASTICSEARCH__USERNAME": APP_USER,
        "YUQING_ELASTICSEARCH__PASSWORD": app.password.get_secret_value(),
        "YUQING_ELASTICSEARCH__CA_CERTS": str(app.ca_certs),
        "YUQING_ELASTICSEARCH__REPLICAS": "1",
    }
    with pytest.MonkeyPatch.context() as mp:
        for key, value in env.items():
            mp.setenv(key, value)
        yield env


@pytest.fixture(scope="package")
def base_settings(cluster_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Settings:
    prefix = f"yuqing-test-{uuid.uuid4().hex[:8]}"
    data_dir = tmp_path_factory.mktemp("data")
    return load_settings(
        PROJECT_ROOT / "config" / "yuqing.yaml",
        overrides={"elasticsearch": {"index_prefix": prefix}, "paths": {"data_dir": str(data_dir)}},
    )


@pytest.fixture(scope="package")
def shared_data(base_settings: Settings) -> Path:
    path = base_settings.paths.shared_data
    assert (path / "html" / "gne").is_dir(), f"shared data not found at {path}"
    return path


@pytest.fixture(scope="package")
def es_server(es_cluster: LocalCluster) -> LocalCluster:
    return es_cluster


@pytest.fixture(scope="package")
def es_client(base_settings: Settings, es_server: LocalCluster) -> Iterator[Elasticsearch]:
    """The application user's client; removes this package's indices and templates at the end."""
    es = base_settings.elasticsearch
    assert es.username == APP_USER and es.hosts[0].startswith("https://") and es.replicas == 1
    client = make_client(es)
    yield client
    client.indices.delete(index=f"{es.index_prefix}-*", ignore_unavailable=True)
    client.options(ignore_status=404).indices.delete_index_template(name=f"{es.index_prefix}-*")
    client.close()
