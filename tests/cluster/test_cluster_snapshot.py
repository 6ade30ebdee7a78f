"""Backup and restore: a snapshot of the application's indices in an ``fs`` repository brings back every post
after the indices are lost, and can be restored a second time under new names."""

from __future__ import annotations

import shutil
import uuid

import pytest
from elasticsearch import Elasticsearch, helpers

from index.es_cluster import LocalCluster
from index.layout import ALL_SPECS, POSTS, current_index, setup
from index.snapshots import create_snapshot, register_fs_repository, restore_snapshot
from index.writer import index_posts
from tests.test_index import post
from yuqing.settings import Settings

pytestmark = pytest.mark.cluster


def post_ids(client: Elasticsearch, index: str) -> set[str]:
    return {hit["_id"] for hit in helpers.scan(client, index=index, query={"query": {"match_all": {}}})}


def test_snapshot_restores_every_post(es_cluster: LocalCluster, admin_client: Elasticsearch, settings: Settings,
                                      es_client: Elasticsearch) -> None:
    prefix = settings.elasticsearch.index_prefix
    setup(es_client, settings.elasticsearch)  # every index of the application, as `yuqing setup` makes them
    alias = POSTS.alias(prefix)
    posts = [post(f"https://www.example.gov.cn/liuyan/{i}.html", f"留言{i}", f"第{i}条留言的正文") for i in range(120)]
    index_posts(es_client, alias, posts, refresh=True)
    expected = {p.doc_id for p in posts}
    assert post_ids(es_client, alias) == expected
    concrete = {current_index(es_client, spec.alias(prefix)) for spec in ALL_SPECS}

    repo = f"yuqing-test-{uuid.uuid4().hex[:8]}"
    location = es_cluster.snapshot_dir / repo
    register_fs_repository(admin_client, repo, str(location))
    try:
        info = create_snapshot(admin_client, repo, "nightly-1", f"{prefix}-*")
        assert set(info.indices) == concrete and info.shards_failed == 0

        # the indices are lost (deleted by the application itself: it may only touch its own prefix)
        es_client.indices.delete(index=f"{prefix}-*")
        assert not es_client.indices.exists_alias(name=alias)

        restored = restore_snapshot(admin_client, repo, "nightly-1", f"{prefix}-*")
        assert set(restored) == concrete
        health = admin_client.cluster.health(index=",".join(restored), wait_for_status="green", timeout="60s")
        assert health["status"] == "green"
        assert post_ids(es_client, alias) == expected  # through the alias, as the application

        # a second copy beside the live indices, under new names and without the aliases
        copies = restore_snapshot(admin_client, repo, "nightly-1", f"{alias}-v*",
                                  rename_pattern=f"{prefix}-(.+)", rename_replacement=f"{prefix}-restored-$1")
        assert copies == [POSTS.index_name(f"{prefix}-restored")]
        assert post_ids(es_client, copies[0]) == expected
        assert current_index(es_client, alias) == POSTS.index_name(prefix)
    finally:
        admin_client.snapshot.delete(repository=repo, snapshot="nightly-1")
        admin_client.snapshot.delete_repository(name=repo)
        shutil.rmtree(location, ignore_errors=True)
