"""Backup and restore with a snapshot repository of type ``fs``.

The repository's location must lie under ``path.repo`` of every node and, on a real cluster, be one shared
filesystem mounted on every node (NFS or similar); the local cluster sets ``path.repo`` to
``<cluster_home>/snapshots``. These calls need an operator account (cluster privilege ``manage``; the
application's role has none of them).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from elasticsearch import Elasticsearch

from yuqing.errors import YuqingError

log = logging.getLogger(__name__)


class SnapshotError(YuqingError):
    """A snapshot or a restore did not complete for every shard."""


@dataclass(frozen=True)
class SnapshotInfo:
    repository: str
    name: str
    indices: tuple[str, ...]
    shards_total: int
    shards_failed: int


def register_fs_repository(client: Elasticsearch, repository: str, location: str) -> None:
    """Create (or update) an ``fs`` repository at ``location`` (a folder under every node's ``path.repo``)."""
    client.snapshot.create_repository(name=repository, repository={"type": "fs", "settings": {"location": location}},
                                      verify=True)


def create_snapshot(client: Elasticsearch, repository: str, snapshot: str, indices: str) -> SnapshotInfo:
    """Snapshot ``indices`` (a name, pattern or comma-separated list) with their aliases; waits for the end."""
    resp = client.snapshot.create(repository=repository, snapshot=snapshot, indices=indices,
                                  include_global_state=False, wait_for_completion=True)
    snap = resp["snapshot"]
    info = SnapshotInfo(repository, snapshot, tuple(sorted(snap["indices"])), int(snap["shards"]["total"]),
                        int(snap["shards"]["failed"]))
    if snap["state"] != "SUCCESS" or info.shards_failed:
        raise SnapshotError(f"snapshot {repository}/{snapshot} ended {snap['state']} with {info.shards_failed} of "
                            f"{info.shards_total} shards failed: {snap.get('failures')}")
    log.info("snapshot %s/%s: %d indices, %d shards", repository, snapshot, len(info.indices), info.shards_total)
    return info


def restore_snapshot(client: Elasticsearch, repository: str, snapshot: str, indices: str, *,
                     rename_pattern: str | None = None, rename_replacement: str | None = None) -> list[str]:
    """Restore ``indices`` of a snapshot (with their aliases unless renamed); returns the restored indices.

    The indices must not exist (delete or close them first), or be restored under new names with
    ``rename_pattern``/``rename_replacement`` (then without aliases, so the live ones stay untouched).
    """
    resp = client.snapshot.restore(repository=repository, snapshot=snapshot, indices=indices,
                                   include_aliases=rename_pattern is None, rename_pattern=rename_pattern,
                                   rename_replacement=rename_replacement, wait_for_completion=True)
    shards = resp["snapshot"]["shards"]
    if shards["failed"]:
        raise SnapshotError(f"restore of {repository}/{snapshot}: {shards['failed']} of {shards['total']} shards "
                            "failed")
    restored = sorted(resp["snapshot"]["indices"])
    log.info("restored %s from %s/%s", ", ".join(restored), repository, snapshot)
    return restored
