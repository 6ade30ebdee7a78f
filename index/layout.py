"""Index layout: for each logical index an index template, a versioned concrete index and an alias.

Readers and writers use only the alias. :func:`setup` is idempotent: it (re)puts the templates, creates the
first versioned index behind each alias when the alias is missing and adds new fields to an existing one.
:func:`migrate` builds the next version from the current one (scroll + bulk in Python, since the minimal
distribution has no reindex module) and swaps the alias atomically. The mappings of the crawl-time indices are
here with their record models in :mod:`index.records`; later components' indices keep mapping, record model
and store together in their own module (:mod:`index.tickets`, …) and are listed in :data:`ALL_SPECS`. Every
record model is checked against its mapping in both directions by ``tests/test_records.py``.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterator
from typing import Any

from elasticsearch import BadRequestError, Elasticsearch, NotFoundError, helpers

from index.events import EVENT_STATE, EVENTS
from index.foia import FOIA
from index.judgements import JUDGEMENTS
from index.outbox import OUTBOX
from index.spec import IndexSpec
from index.tickets import TICKETS
from yuqing.settings import ElasticsearchSettings

log = logging.getLogger(__name__)

# ---- mappings -------------------------------------------------------------------------------------------
_KW = {"type": "keyword"}
_DATE = {"type": "date"}
_SEG = {"type": "text", "analyzer": "whitespace"}

POSTS_MAPPING: dict[str, Any] = {
    "dynamic": "strict",
    "properties": {
        "url": {"type": "keyword", "index": False},
        "canonical_url": _KW,
        "title": {"type": "text", "analyzer": "standard", "fields": {"raw": {"type": "keyword", "ignore_above": 512}}},
        "title_seg": _SEG,
        "content": {"type": "text", "analyzer": "standard"},
        "content_seg": _SEG,  # no fielddata: hot words aggregate the hot_terms keyword field (doc values)
        # Global ordinals built when a segment is refreshed, not by the first hot-words query after it.
        "hot_terms": {"type": "keyword", "eager_global_ordinals": True},
        "source": _KW,
        "site": _KW,
        "kind": _KW,
        "author": _KW,
        "published_at": _DATE,
        "fetched_at": _DATE,
        # When the post was last written to the index (index.writer): the window the post alert rules read, so a
        # post indexed late (replayed from the spool after an outage) is still evaluated. Added to existing indices
        # by setup; a post written before it existed has none (the rules fall back to fetched_at).
        "indexed_at": _DATE,
        "engagement": {
            "properties": {k: {"type": "long"} for k in ("reposts", "comments", "likes", "views")}
        },
        "category": _KW,
        "reply": {
            "properties": {
                "text": {"type": "text", "analyzer": "standard"},
                "replied_at": _DATE,
                "unit": _KW,
            }
        },
        "repost_of": _KW,
        "fingerprint": _KW,
        "fingerprint_bands": _KW,
        "content_hash": _KW,
        "duplicate_of": _KW,
        "is_first": {"type": "boolean"},
        "event_id": _KW,  # the event the post belongs to (events.engine, issue 8)
        "judgement": {  # 人工研判 (ingest.judgements): the human values, also written into analysis
            "properties": {
                "relevant": {"type": "boolean"},
                "topic": _KW,
                "by": _KW,
                "at": _DATE,
                "model_relevant": {"type": "boolean"},
                "model_topic": _KW,
            }
        },
        "keyword_groups": _KW,  # the 专题 keyword groups it matches (config/keyword_groups.yaml)
        "analysis": {
            "properties": {
                "sentiment": _KW,
                "sentiment_score": {"type": "float"},
                "sentiment_probs": {"type": "object", "enabled": False},
                "relevant": {"type": "boolean"},
                "relevance_prob": {"type": "float"},
                "topic": _KW,
                "topic_score": {"type": "float"},
                "topic_probs": {"type": "object", "enabled": False},
                "keywords": _KW,
                "places": _KW,
                "orgs": _KW,
                "model_version": _KW,
            }
        },
    },
}


CRAWL_STATE_MAPPING: dict[str, Any] = {
    "dynamic": "strict",
    "properties": {
        "url": _KW,
        "source": _KW,
        "etag": {"type": "keyword", "index": False},
        "last_modified": {"type": "keyword", "index": False},
        "content_hash": _KW,
        "first_seen_at": _DATE,
        "last_seen_at": _DATE,
        "last_changed_at": _DATE,
    },
}

SOURCE_HEALTH_MAPPING: dict[str, Any] = {
    "dynamic": "strict",
    "properties": {
        "source": _KW,
        "kind": _KW,
        "started_at": _DATE,
        "finished_at": _DATE,
        "found": {"type": "integer"},
        "new": {"type": "integer"},
        "indexed": {"type": "integer"},
        "unchanged": {"type": "integer"},
        "duplicates": {"type": "integer"},
        "errors": {"type": "integer"},
        "spooled": {"type": "integer"},
        "ok": {"type": "boolean"},
        "error": {"type": "text", "index": False},
        "finish_reason": _KW,
    },
}


# v2: hot_terms (keyword, filled at ingest) replaced fielddata over content_seg; `yuqing migrate` fills it for the
# posts of a v1 index.
POSTS = IndexSpec("posts", POSTS_MAPPING, version=2)
CRAWL_STATE = IndexSpec("crawl-state", CRAWL_STATE_MAPPING, version=1)
SOURCE_HEALTH = IndexSpec("source-health", SOURCE_HEALTH_MAPPING, version=1)
# Every index `yuqing setup` creates. The indices of later components define their spec beside their record
# model and store functions (index/tickets.py, …) and are listed here.
ALL_SPECS: tuple[IndexSpec, ...] = (POSTS, CRAWL_STATE, SOURCE_HEALTH, TICKETS, FOIA, EVENTS, EVENT_STATE,
                                   OUTBOX, JUDGEMENTS)


def template_body(spec: IndexSpec, es: ElasticsearchSettings) -> dict[str, Any]:
    return {
        "index_patterns": [spec.pattern(es.index_prefix)],
        "priority": 100,
        "template": {
            "settings": {
                "number_of_shards": es.shards,
                "number_of_replicas": es.replicas,
                "refresh_interval": es.refresh_interval,
                **spec.extra_settings,
            },
            "mappings": spec.mappings,
        },
        "_meta": {"managed_by": "yuqing", "version": spec.version},
    }


def current_index(client: Elasticsearch, alias: str) -> str | None:
    """The concrete index behind ``alias`` (the write index when there are several)."""
    try:
        resp = client.indices.get_alias(name=alias)
    except NotFoundError:
        return None
    names = list(resp.body.keys())
    for name in names:
        if resp.body[name]["aliases"][alias].get("is_write_index"):
            return name
    return sorted(names)[-1] if names else None


def index_version(alias: str, index: str) -> int | None:
    """The layout version in a concrete index's name (``<alias>-v<version>[-<n>]``; pure), None for another name."""
    m = re.fullmatch(re.escape(alias) + r"-v(\d+)(?:-\d+)?", index)
    return int(m.group(1)) if m else None


def needs_migration(client: Elasticsearch, spec: IndexSpec, es: ElasticsearchSettings) -> str | None:
    """The concrete index behind the alias when it was made by an older layout version than ``spec``'s."""
    alias = spec.alias(es.index_prefix)
    index = current_index(client, alias)
    if index is None:
        return None
    version = index_version(alias, index)
    return index if version is not None and version < spec.version else None


def setup_spec(client: Elasticsearch, spec: IndexSpec, es: ElasticsearchSettings) -> str:
    alias = spec.alias(es.index_prefix)
    client.indices.put_index_template(name=spec.template_name(es.index_prefix), **template_body(spec, es))
    existing = current_index(client, alias)
    if existing is not None:
        # Fields added to the mapping since the index was created reach it too (a changed field raises:
        # that needs migrate()).
        client.indices.put_mapping(index=existing, properties=spec.mappings["properties"])
        version = index_version(alias, existing)
        if version is not None and version < spec.version:
            log.warning("%s is layout v%d, this version writes v%d: run `yuqing migrate` to bring its documents "
                        "up to date", existing, version, spec.version)
        return existing
    index = spec.index_name(es.index_prefix)
    if client.indices.exists(index=index):
        client.indices.update_aliases(actions=[{"add": {"index": index, "alias": alias, "is_write_index": True}}])
    else:  # index and alias in one cluster-state change (each costs a noticeable fraction of a second)
        try:
            client.indices.create(index=index, aliases={alias: {"is_write_index": True}})
        except BadRequestError as exc:
            if exc.error != "resource_already_exists_exception":
                raise
            # Another process (a second crawl worker starting at the same moment) created it first: with
            # the alias, in the same request.
            log.debug("%s was created by another process meanwhile", index)
            return index
    log.info("created %s behind alias %s", index, alias)
    return index


def setup(
    client: Elasticsearch, es: ElasticsearchSettings, specs: tuple[IndexSpec, ...] | list[IndexSpec] | None = None
) -> dict[str, str]:
    """Idempotently create templates, indices and aliases; returns alias -> concrete index."""
    return {s.alias(es.index_prefix): setup_spec(client, s, es) for s in (specs or ALL_SPECS)}


# What a migration does to each document's ``_source`` on its way to the new index (pure).
Transform = Callable[[dict[str, Any]], dict[str, Any]]


def _copy_actions(client: Elasticsearch, source: str, target: str,
                  transform: Transform | None = None) -> Iterator[dict[str, Any]]:
    for hit in helpers.scan(client, index=source, query={"query": {"match_all": {}}}, size=500):
        doc = hit["_source"] if transform is None else transform(hit["_source"])
        yield {"_index": target, "_id": hit["_id"], "_source": doc}


def _next_index(client: Elasticsearch, spec: IndexSpec, prefix: str) -> str:
    """The first free name of this layout version: ``<alias>-v<version>``, then ``-1``, ``-2`` …"""
    name = spec.index_name(prefix)
    generation = 0
    while client.indices.exists(index=name):
        generation += 1
        name = spec.index_name(prefix, generation)
    return name


def migrate(client: Elasticsearch, spec: IndexSpec, es: ElasticsearchSettings,
            transform: Transform | None = None) -> str:
    """Copy the current index into a new one made by the current template (each ``_source`` through
    ``transform``) and swap the alias atomically; the old index is kept (delete it once satisfied). Writers
    should be stopped meanwhile: what they write to the old index during the copy is not carried over."""
    alias = spec.alias(es.index_prefix)
    client.indices.put_index_template(name=spec.template_name(es.index_prefix), **template_body(spec, es))
    old = current_index(client, alias)
    new = _next_index(client, spec, es.index_prefix)
    client.indices.create(index=new)
    if old is not None:
        ok, errors = helpers.bulk(client, _copy_actions(client, old, new, transform), raise_on_error=False,
                                  stats_only=False)
        assert isinstance(errors, list)
        if errors:
            raise RuntimeError(f"migration {old} -> {new}: {len(errors)} documents failed: {errors[:3]}")
        log.info("copied %d documents %s -> %s", ok, old, new)
    actions: list[dict[str, Any]] = [{"add": {"index": new, "alias": alias, "is_write_index": True}}]
    if old is not None:
        actions.insert(0, {"remove": {"index": old, "alias": alias}})
    client.indices.update_aliases(actions=actions)
    client.indices.refresh(index=new)
    return new
