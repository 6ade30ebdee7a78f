"""The local cluster's plan, node configuration, roles and the secret settings (pure; no server needed).
The cluster itself is exercised by the marked tests in tests/cluster/."""

from __future__ import annotations

from pathlib import Path

import pytest

from index.client import shown_hosts
from index.es_cluster import allocation_reason, node_config, node_jvm_options, plan_nodes
from index.es_security import ANALYST_ROLE, APP_ROLE, Credentials, roles, write_private
from yuqing.cli import build_parser
from yuqing.errors import ConfigError
from yuqing.settings import ElasticsearchSettings, LocalElasticsearchSettings, load_settings


def local(**kw: object) -> LocalElasticsearchSettings:
    return LocalElasticsearchSettings.model_validate({"cluster_home": "/srv/c", **kw})


def test_single_node_unless_more_nodes_or_secure() -> None:
    assert not local().cluster
    assert local(nodes=3).cluster and local(secure=True).cluster


def test_nodes_get_their_own_ports_and_folders_clear_of_the_single_node() -> None:
    nodes = plan_nodes(local(nodes=3))
    assert [(n.name, n.http_port, n.transport_port) for n in nodes] == [
        ("node-1", 9210, 9310), ("node-2", 9211, 9311), ("node-3", 9212, 9312)]
    assert len({n.data_dir for n in nodes} | {n.config_dir for n in nodes} | {n.logs_dir for n in nodes}) == 9
    assert all(n.dir.parent == Path("/srv/c") for n in nodes)
    assert not {9200, 9300} & {p for n in nodes for p in (n.http_port, n.transport_port)}


def test_node_config_bootstraps_once_and_secures_both_layers() -> None:
    nodes = plan_nodes(local(nodes=3))
    first = node_config(nodes[1], nodes, secure=True, bootstrap=True, repo=Path("/srv/c/snapshots"))
    assert first["discovery.seed_hosts"] == ["127.0.0.1:9310", "127.0.0.1:9311", "127.0.0.1:9312"]
    assert first["cluster.initial_master_nodes"] == ["node-1", "node-2", "node-3"]
    assert (first["http.port"], first["transport.port"]) == (9211, 9311)
    assert first["path.repo"] == ["/srv/c/snapshots"] and first["path.data"] == "/srv/c/node-2/data"
    for layer in ("http", "transport"):
        assert first[f"xpack.security.{layer}.ssl.enabled"] is True
        assert first[f"xpack.security.{layer}.ssl.certificate"] == "certs/node-2.crt"
        assert first[f"xpack.security.{layer}.ssl.key"] == "certs/node-2.key"
    assert first["xpack.security.transport.ssl.verification_mode"] == "full"
    assert first["xpack.security.authc.realms.file.file1.order"] == 0  # the file realm's users only
    assert first["xpack.security.authc.realms.native.native1.enabled"] is False
    assert first["xpack.security.authc.reserved_realm.enabled"] is False
    later = node_config(nodes[1], nodes, secure=False, bootstrap=False, repo=Path("/r"))
    assert "cluster.initial_master_nodes" not in later and later["xpack.security.enabled"] is False
    assert not any(k.startswith("xpack.security.http") for k in later)


def test_node_jvm_options_write_into_the_nodes_own_folders() -> None:
    node = plan_nodes(local(nodes=2))[1]
    dist = "-XX:HeapDumpPath=data\n-XX:ErrorFile=logs/hs_err_pid%p.log\n-Xlog:gc*:file=logs/gc.log:utctime\n"
    out = node_jvm_options(dist, node)
    assert "=data\n" not in out and "=logs/" not in out
    assert f"file={node.logs_dir}/gc.log" in out and f"-XX:HeapDumpPath={node.data_dir}" in out


def test_roles_confine_the_application_to_its_prefix_and_the_analyst_to_reading() -> None:
    r = roles("yuqing")
    app, analyst = r[APP_ROLE], r[ANALYST_ROLE]
    assert app["cluster"] == ["monitor", "manage_index_templates"]
    assert [i["names"] for i in app["indices"]] == [["yuqing-*"]]
    assert "all" not in app["indices"][0]["privileges"] and "write" in app["indices"][0]["privileges"]
    assert analyst["cluster"] == ["monitor"]
    assert analyst["indices"] == [{"names": ["yuqing-*"], "privileges": ["read", "view_index_metadata"]}]


def test_private_files_and_credentials_never_show_a_password(tmp_path: Path) -> None:
    path = tmp_path / "secrets" / "pw"
    write_private(path, "s3cret-value\n")
    assert path.stat().st_mode & 0o777 == 0o600
    creds = Credentials({"yuqing_app": "s3cret-value"})
    assert "s3cret-value" not in repr(creds) and "s3cret-value" not in str(creds)


def test_password_file_is_read_and_must_be_private(tmp_path: Path) -> None:
    pw = tmp_path / "app.password"
    pw.write_text("from-the-file\n")
    pw.chmod(0o600)
    s = ElasticsearchSettings(username="yuqing_app", password_file=pw)
    assert s.password is not None and s.password.get_secret_value() == "from-the-file"
    assert "from-the-file" not in repr(s)
    pw.chmod(0o644)
    cfg = tmp_path / "yuqing.yaml"
    cfg.write_text(f"elasticsearch:\n  username: yuqing_app\n  password_file: {pw}\n")
    with pytest.raises(ConfigError) as err:
        load_settings(cfg)
    assert err.value.field == "elasticsearch.password_file" and "chmod 600" in str(err.value)
    pw.chmod(0o600)
    cfg.write_text(f"elasticsearch:\n  username: u\n  password: p\n  password_file: {pw}\n")
    with pytest.raises(ConfigError, match="either password or password_file"):
        load_settings(cfg)


def test_password_from_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    cfg = tmp_path / "yuqing.yaml"
    cfg.write_text("elasticsearch:\n  username: yuqing_app\n")
    monkeypatch.setenv("YUQING_ELASTICSEARCH__PASSWORD", "env-secret")
    s = load_settings(cfg)
    assert s.elasticsearch.password is not None and s.elasticsearch.password.get_secret_value() == "env-secret"


def test_hosts_shown_without_credentials() -> None:
    s = ElasticsearchSettings(hosts=["https://app:pw@es1.example.gov.cn:9200", "https://es2:9200"])
    assert shown_hosts(s) == ("https://es1.example.gov.cn:9200", "https://es2:9200")


def test_es_command_options() -> None:
    parser = build_parser()
    args = parser.parse_args(["es", "start", "--nodes", "3", "--secure"])
    assert (args.nodes, args.secure) == (3, True)
    with pytest.raises(SystemExit):
        parser.parse_args(["es", "start", "--nodes", "12"])


def test_roles_file_has_no_yaml_aliases() -> None:
    from index.es_security import roles_yaml

    text = roles_yaml("yuqing")
    assert "&" not in text and "*id" not in text and text.count("yuqing-*") == 2


def test_allocation_reason_names_the_shard_and_the_decider_that_said_no() -> None:
    explain = {  # the shape of Elasticsearch 8's _cluster/allocation/explain for a replica held back by disk
        "index": "yuqing-posts-v3", "shard": 0, "primary": False, "current_state": "unassigned",
        "unassigned_info": {"reason": "INDEX_CREATED"},
        "allocate_explanation": "Elasticsearch isn't allowed to allocate this shard to any of the nodes in the "
                                "cluster.",
        "node_allocation_decisions": [
            {"node_name": "node-1", "deciders": [
                {"decider": "same_shard", "decision": "YES", "explanation": "ok"}]},
            {"node_name": "node-2", "deciders": [
                {"decider": "disk_threshold", "decision": "NO",
                 "explanation": "the node is above the low watermark cluster setting "
                                "[cluster.routing.allocation.disk.watermark.low=1%]"}]},
        ],
    }
    reason = allocation_reason(explain)
    assert reason.startswith("[yuqing-posts-v3][0] replica — Elasticsearch isn't allowed to allocate")
    assert reason.endswith("disk_threshold: the node is above the low watermark cluster setting "
                           "[cluster.routing.allocation.disk.watermark.low=1%]")
    assert allocation_reason({"index": "i", "shard": 1, "primary": True,
                              "unassigned_info": {"reason": "NODE_LEFT"}}) == "[i][1] primary — NODE_LEFT"
