"""The local secured cluster: layout, TLS, least privilege, refused credentials and CAs, secrets kept out of
logs, and the CLI on it."""

from __future__ import annotations

import base64
import datetime as dt
import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from elasticsearch import AuthorizationException, Elasticsearch

from index.client import check_connection, make_client
from index.es_cluster import LocalCluster
from index.es_security import ANALYST_USER, APP_USER
from index.layout import CRAWL_STATE, POSTS, setup
from tests.cluster.conftest import CLUSTER_NODES, cluster_es_settings
from tests.conftest import MockServer, crawl_env
from yuqing.cli import main
from yuqing.errors import ConfigError
from yuqing.models import canonicalize_url, doc_id_for
from yuqing.settings import PROJECT_ROOT, ElasticsearchSettings, Settings

pytestmark = pytest.mark.cluster


def test_nodes_have_their_own_folders_ports_and_tls(es_cluster: LocalCluster, admin_client: Elasticsearch,
                                                     settings: Settings, es_client: Elasticsearch) -> None:
    nodes = admin_client.nodes.info(metric="settings,http,transport")["nodes"].values()
    assert len(nodes) == CLUSTER_NODES
    http_ports = sorted(int(n["http"]["publish_address"].rsplit(":", 1)[1]) for n in nodes)
    assert http_ports == [es_cluster.settings.cluster_http_port + i for i in range(CLUSTER_NODES)]
    data_dirs = {n["settings"]["path"]["data"][0] if isinstance(n["settings"]["path"]["data"], list)
                 else n["settings"]["path"]["data"] for n in nodes}
    assert len(data_dirs) == CLUSTER_NODES and all(d.startswith(str(es_cluster.home)) for d in data_dirs)
    for n in nodes:
        sec = n["settings"]["xpack"]["security"]
        assert sec["http"]["ssl"]["enabled"] == "true" and sec["transport"]["ssl"]["enabled"] == "true"
    # the application's indices carry one replica, on another node: green
    alias = POSTS.alias(settings.elasticsearch.index_prefix)
    index = next(iter(es_client.indices.get_alias(name=alias)))
    health = es_client.cluster.health(index=index, wait_for_status="green", timeout="60s")
    assert health["status"] == "green" and health["active_shards"] == 2
    # HTTP only over TLS
    with pytest.raises(ConfigError) as err:
        check_connection(cluster_es_settings(es_cluster, APP_USER, ca_certs=None))
    assert err.value.field == "elasticsearch.ca_certs"


def test_application_user_is_confined_to_its_prefix(es_cluster: LocalCluster, admin_client: Elasticsearch,
                                                    settings: Settings, es_client: Elasticsearch) -> None:
    other = f"other-{uuid.uuid4().hex[:8]}"
    admin_client.index(index=other, id="1", document={"t": "x"}, refresh=True)
    try:
        own = POSTS.alias(settings.elasticsearch.index_prefix)
        es_client.index(index=own, id="mine", document={"title": "本前缀"}, refresh=True)
        assert es_client.count(index=own)["count"] == 1
        attempts = {
            "read": lambda: es_client.search(index=other),
            "get": lambda: es_client.get(index=other, id="1"),
            "write": lambda: es_client.index(index=other, id="2", document={"t": "y"}),
            "create": lambda: es_client.indices.create(index=f"{other}-new"),
            "delete": lambda: es_client.indices.delete(index=other),
            "settings": lambda: es_client.indices.put_settings(index=other, settings={"number_of_replicas": 0}),
        }
        for what, attempt in attempts.items():
            with pytest.raises(AuthorizationException) as err:
                attempt()
            assert err.value.meta.status == 403, what
        assert admin_client.count(index=other)["count"] == 1  # untouched

        analyst = make_client(cluster_es_settings(es_cluster, ANALYST_USER))
        try:
            assert analyst.count(index=own)["count"] == 1
            with pytest.raises(AuthorizationException):
                analyst.index(index=own, id="x", document={"title": "不可写"})
            with pytest.raises(AuthorizationException):
                setup(analyst, settings.elasticsearch.model_copy(update={"index_prefix": f"{own}-analyst"}))
            with pytest.raises(AuthorizationException):
                analyst.search(index=other)
        finally:
            analyst.close()
    finally:
        admin_client.indices.delete(index=other)


def self_signed_ca(path: Path) -> Path:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Some other CA")])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now)
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return path


def test_wrong_password_or_untrusted_ca_refused_naming_the_setting(
    es_cluster: LocalCluster, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    good = cluster_es_settings(es_cluster, APP_USER)
    assert check_connection(good).number_of_nodes == CLUSTER_NODES

    base = good.model_dump(exclude={"password", "password_file"})
    with pytest.raises(ConfigError) as err:
        check_connection(ElasticsearchSettings.model_validate({**base, "password": "not-the-password"}))
    assert err.value.field == "elasticsearch.password" and "yuqing_app" in str(err.value)
    assert "not-the-password" not in str(err.value)

    bad_file = tmp_path / "pw"
    bad_file.write_text("also-wrong\n")
    bad_file.chmod(0o600)
    with pytest.raises(ConfigError) as err:
        check_connection(ElasticsearchSettings.model_validate({**base, "password_file": bad_file}))
    assert err.value.field == "elasticsearch.password_file"

    other_ca = self_signed_ca(tmp_path / "other-ca.crt")
    with pytest.raises(ConfigError) as err:
        check_connection(good.model_copy(update={"ca_certs": other_ca}))
    assert err.value.field == "elasticsearch.ca_certs" and str(other_ca) in str(err.value)

    # the same through `yuqing setup`: exit 2, the setting named, the wrong password not echoed
    monkeypatch.setenv("YUQING_ELASTICSEARCH__PASSWORD", "not-the-password")
    assert main(["setup"]) == 2
    stderr = capsys.readouterr().err
    assert "elasticsearch.password" in stderr and "not-the-password" not in stderr
    monkeypatch.setenv("YUQING_ELASTICSEARCH__PASSWORD", good.password.get_secret_value() if good.password else "")
    monkeypatch.setenv("YUQING_ELASTICSEARCH__CA_CERTS", str(other_ca))
    assert main(["setup"]) == 2
    assert "elasticsearch.ca_certs" in capsys.readouterr().err


def test_cli_setup_and_es_status_on_the_cluster(settings: Settings, es_cluster: LocalCluster,
                                                capsys: pytest.CaptureFixture[str],
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    prefix = f"{settings.elasticsearch.index_prefix}-cli"
    monkeypatch.setenv("YUQING_ELASTICSEARCH__INDEX_PREFIX", prefix)
    assert main(["setup"]) == 0
    assert f"{prefix}-posts -> {prefix}-posts-v2" in capsys.readouterr().out
    assert main(["setup"]) == 0  # idempotent
    capsys.readouterr()

    assert main(["es", "status", "--cluster"]) == 0
    out = capsys.readouterr().out
    assert f"local cluster ({CLUSTER_NODES} nodes, TLS): green" in out
    for i in range(CLUSTER_NODES):
        assert f"node-{i + 1} https://127.0.0.1:{es_cluster.settings.cluster_http_port + i} running (pid " in out
    assert f"as {APP_USER}: green, {CLUSTER_NODES} nodes" in out

    # credentials written into a host URL are never shown
    password = settings.elasticsearch.password.get_secret_value() if settings.elasticsearch.password else ""
    monkeypatch.setenv("YUQING_ELASTICSEARCH__HOSTS", json.dumps(
        [h.replace("https://", f"https://{APP_USER}:{password}@") for h in es_cluster.hosts]))
    monkeypatch.delenv("YUQING_ELASTICSEARCH__USERNAME")
    monkeypatch.delenv("YUQING_ELASTICSEARCH__PASSWORD")
    assert main(["es", "status", "--cluster"]) == 0
    out = capsys.readouterr().out
    assert f"elasticsearch.hosts {es_cluster.hosts[0]}," in out and password not in out


def test_secrets_never_reach_a_log(settings: Settings, es_client: Elasticsearch, es_cluster: LocalCluster,
                                   mockserver: MockServer, config_dir: Path) -> None:
    """Components run with the password in the environment, at debug level; no output, log file or node log
    holds the password (or its basic-auth token)."""
    es = settings.elasticsearch
    assert es.password is not None
    password = es.password.get_secret_value()
    token = base64.b64encode(f"{APP_USER}:{password}".encode()).decode()
    feed = mockserver.write("feed.xml", _feed(mockserver))
    (config_dir / "sources.yaml").write_text(f"sources:\n  - {{name: s, kind: feed, start_urls: ['{feed}']}}\n",
                                             encoding="utf-8")
    env = crawl_env(settings, config_dir, YUQING_NLP__ENABLED="false", YUQING_LOGGING__LEVEL="DEBUG")
    assert env["YUQING_ELASTICSEARCH__PASSWORD"] == password  # the secret comes from the environment
    node_logs = {p: p.stat().st_size for n in es_cluster.nodes for p in n.logs_dir.glob("*") if p.is_file()}
    outputs = []
    for argv in (["setup"], ["es", "status", "--cluster"], ["crawl"], ["sources"]):
        proc = subprocess.run([sys.executable, "-m", "yuqing.cli", "-v", *argv], cwd=PROJECT_ROOT, env=env,
                              capture_output=True, text=True, timeout=300, check=False)
        assert proc.returncode in (0, 1), f"{argv}: {proc.stderr[-2000:]}"
        outputs.append(proc.stdout + proc.stderr)
    assert f"as {APP_USER}" in outputs[0]  # the connection was logged (without its secret)
    assert "DEBUG" in outputs[2] and "found=1 indexed=1" in outputs[2]  # the crawl ran, at debug level
    page = f"{mockserver.url}/pages/tests/sina/1.html"
    state = es_client.get(index=CRAWL_STATE.alias(es.index_prefix), id=doc_id_for(canonicalize_url(page)))
    assert state["_source"]["content_hash"]  # the crawl state went to the cluster through the child's settings
    files = [p for p in settings.paths.data_dir.rglob("*") if p.is_file()]
    texts = outputs + [p.read_text(errors="replace") for p in files]
    for path, size in node_logs.items():  # what the nodes logged meanwhile (audit, server, deprecation)
        with path.open("rb") as fh:
            fh.seek(size if path.stat().st_size >= size else 0)
            texts.append(fh.read().decode(errors="replace"))
    for text in texts:
        assert password not in text and token not in text
    assert os.stat(es_cluster.security.credentials_file).st_mode & 0o077 == 0


def _feed(mockserver: MockServer) -> bytes:
    from crawlers.feeds import FeedEntry, rss_document

    page = f"{mockserver.url}/pages/tests/sina/1.html"
    return rss_document("t", mockserver.url, [FeedEntry(link=page, title="t")],
                        built=dt.datetime(2026, 11, 27, tzinfo=dt.UTC))
