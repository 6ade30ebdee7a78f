"""`yuqing es start|stop|status`: the local single-node server, or the local cluster.

``--nodes N`` (N > 1) or ``--secure`` (or ``local_es.nodes`` / ``local_es.secure`` in the settings) select the
local cluster; ``--cluster`` selects it as it was last started (for ``stop`` and ``status``). Without them the
commands act on the single-node server, as before.
"""

from __future__ import annotations

import argparse
import json
from typing import TYPE_CHECKING

from yuqing.settings import LocalElasticsearchSettings, Settings

if TYPE_CHECKING:
    from index.es_cluster import ClusterStart, LocalCluster


def _local_settings(args: argparse.Namespace, settings: Settings) -> LocalElasticsearchSettings:
    updates: dict[str, object] = {}
    if args.nodes is not None:
        updates["nodes"] = args.nodes
    if args.secure:
        updates["secure"] = True
    return settings.local_es.model_copy(update=updates)


def _cluster(args: argparse.Namespace, settings: Settings, local: LocalElasticsearchSettings) -> LocalCluster:
    from index.es_cluster import LocalCluster

    cluster = LocalCluster(local, prefix=settings.elasticsearch.index_prefix)
    if args.action != "start" and args.nodes is None and not args.secure:
        state = cluster.read_state()  # stop/status: the cluster as it was started
        if state is not None:
            cluster = LocalCluster(local.model_copy(update={"nodes": state.nodes, "secure": state.secure}),
                                   prefix=settings.elasticsearch.index_prefix)
    return cluster


def _print_start(cluster: LocalCluster, started: ClusterStart) -> None:
    from index.es_security import USER_ROLES
    from yuqing.text import display_host

    h = started.health
    tls = "TLS, file-realm users" if cluster.secure else "no security"
    print(f"local cluster at {', '.join(display_host(u) for u in cluster.hosts)}: {h.status}, "
          f"{h.number_of_nodes} nodes ({tls})" + (" — already running" if started.already_running else ""))
    settings = cluster.client_settings()
    print("settings for the application (config elasticsearch: section, or the environment):")
    for key, value in settings.items():
        shown = f"'{json.dumps(value)}'" if isinstance(value, list) else value
        print(f"  YUQING_ELASTICSEARCH__{key.upper()}={shown}")
    if len(cluster.nodes) > 1:
        print("  YUQING_ELASTICSEARCH__REPLICAS=1")
    if started.new_credentials is not None:
        print(f"passwords, shown this once (kept in {cluster.security.credentials_file} and "
              f"{cluster.security.secrets_dir}/<user>.password, readable by their owner only):")
        for user, role in USER_ROLES.items():
            print(f"  {user:<16} {started.new_credentials.password(user)}   (role {role})")


def _cluster_status(cluster: LocalCluster, settings: Settings) -> int:
    from index.client import ClusterUnavailable, check_connection
    from yuqing.text import display_host

    health = cluster.health()
    tls = "TLS" if cluster.secure else "no security"
    print(f"local cluster ({len(cluster.nodes)} nodes, {tls}): {health.status if health else 'not running'}")
    for st in cluster.status():
        state = f"running (pid {st.pid})" if st.pid is not None else "stopped"
        print(f"  {st.node.name} {display_host(st.url)} {state}")
    if health is not None:
        es = settings.elasticsearch
        shown = ", ".join(display_host(h) for h in es.hosts)
        try:
            info = check_connection(es)
            print(f"elasticsearch.hosts {shown} as {info.user or 'anonymous'}: {info.status}, "
                  f"{info.number_of_nodes} nodes")
        except ClusterUnavailable as exc:
            print(f"elasticsearch.hosts {shown}: {exc}")
    return 0 if health else 3


def es_command(args: argparse.Namespace, settings: Settings) -> int:
    from index.es_server import LocalElasticsearch

    local = _local_settings(args, settings)
    if local.cluster or args.cluster:
        cluster = _cluster(args, settings, local)
        if args.action == "start":
            _print_start(cluster, cluster.start())
            return 0
        if args.action == "stop":
            stopped = cluster.stop(wipe=args.wipe)
            print(("stopped" if stopped else "not running") + (f"; removed {cluster.home}" if args.wipe else ""))
            return 0
        return _cluster_status(cluster, settings)
    if args.wipe:
        print("yuqing: --wipe applies to the local cluster only (add --cluster)")
        return 64
    server = LocalElasticsearch(local)
    if args.action == "start":
        health = server.start()
        print(f"elasticsearch {local.version} at {server.url}: {health.status}")
    elif args.action == "stop":
        print("stopped" if server.stop() else "not running")
    else:
        h = server.health()
        print(f"{server.url}: {h.status if h else 'not running'}")
        return 0 if h else 3
    return 0


def _node_count(text: str) -> int:
    n = int(text)
    if not 1 <= n <= 9:
        raise argparse.ArgumentTypeError("a local cluster has 1 to 9 nodes")
    return n


def add_subcommand(sub: argparse._SubParsersAction) -> None:
    es = sub.add_parser("es", help="the local Elasticsearch server or cluster")
    es.add_argument("action", choices=["start", "stop", "status"])
    es.add_argument("--nodes", type=_node_count, metavar="N",
                    help="a local cluster of N nodes (default: local_es.nodes)")
    es.add_argument("--secure", action="store_true",
                    help="TLS and file-realm users with generated passwords (default: local_es.secure)")
    es.add_argument("--cluster", action="store_true", help="stop/status: the local cluster as it was started")
    es.add_argument("--wipe", action="store_true", help="stop: also remove the local cluster's data and secrets")
    es.set_defaults(func=es_command)
