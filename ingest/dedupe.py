"""Near-duplicate linking: reposts and copied articles point to the earliest item, marked 首发.

For each post: its content hash and SimHash (ingest.fingerprint); candidates are earlier-indexed posts that
share the content hash or one SimHash band (one `msearch` per batch), confirmed by Hamming distance. The
cluster's first publisher is the member with the earliest time (published_at, else fetched_at): it gets
``is_first=True``; every other member gets ``duplicate_of=<first id>``. When a newly crawled post turns out to
be earlier than the cluster's current first, the existing members are re-linked with partial updates
(plain `update` with `doc`; no scripts needed).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from elasticsearch import Elasticsearch, helpers

from index.client import Rejected
from index.records import fingerprint_bands
from ingest.fingerprint import near, post_content_hash, post_tokens, simhash, to_hex
from yuqing.models import Post

log = logging.getLogger(__name__)

_FIELDS = ["fingerprint", "content_hash", "published_at", "fetched_at", "duplicate_of", "is_first"]


@dataclass
class Member:
    id: str
    time: datetime
    fingerprint: int | None
    content_hash: str | None
    duplicate_of: str | None
    is_first: bool | None

    @classmethod
    def from_hit(cls, hit: dict[str, Any]) -> Member:
        s = hit["_source"]
        when = s.get("published_at") or s["fetched_at"]
        fp = s.get("fingerprint")
        return cls(hit["_id"], datetime.fromisoformat(when), int(fp, 16) if fp else None, s.get("content_hash"),
                   s.get("duplicate_of"), s.get("is_first"))

    @classmethod
    def from_post(cls, post: Post) -> Member:
        fp = int(post.fingerprint, 16) if post.fingerprint else None
        return cls(post.doc_id, post.published_at or post.fetched_at, fp, post.content_hash, post.duplicate_of,
                   post.is_first)


def fingerprinted(post: Post) -> Post:
    """``post`` with content_hash and fingerprint filled (pure)."""
    fp = simhash(post_tokens(post))
    return post.model_copy(update={"content_hash": post.content_hash or post_content_hash(post),
                                   "fingerprint": to_hex(fp) if fp is not None else None})


def candidate_query(post: Post) -> dict[str, Any]:
    should: list[dict[str, Any]] = [{"term": {"content_hash": post.content_hash}}]
    if post.fingerprint:
        should.append({"terms": {"fingerprint_bands": fingerprint_bands(int(post.fingerprint, 16))}})
    return {"bool": {"should": should, "minimum_should_match": 1, "must_not": [{"ids": {"values": [post.doc_id]}}]}}


def is_near(a: Member, b: Member) -> bool:
    if a.content_hash is not None and a.content_hash == b.content_hash:
        return True
    return a.fingerprint is not None and b.fingerprint is not None and near(a.fingerprint, b.fingerprint)


class Deduper:
    def __init__(self, client: Elasticsearch, alias: str) -> None:
        self.client = client
        self.alias = alias

    def _candidates(self, posts: list[Post]) -> list[list[Member]]:
        if not posts:
            return []
        searches: list[dict[str, Any]] = []
        for p in posts:
            searches.append({"index": self.alias})
            searches.append({"query": candidate_query(p), "size": 50, "_source": _FIELDS})
        resp = self.client.msearch(searches=searches)
        out = []
        for r in resp["responses"]:
            if "error" in r:
                error = r["error"]
                reason = error.get("reason", error) if isinstance(error, dict) else error
                raise Rejected("duplicate lookup", r.get("status"), str(reason))
            out.append([Member.from_hit(h) for h in r["hits"]["hits"]])
        return out

    def _members_of(self, root: str) -> list[str]:
        resp = self.client.search(index=self.alias, query={"term": {"duplicate_of": root}}, size=1000, source=False)
        return [h["_id"] for h in resp["hits"]["hits"]]

    def _fetch(self, ids: list[str]) -> dict[str, Member]:
        if not ids:
            return {}
        resp = self.client.mget(index=self.alias, ids=ids, source=_FIELDS)
        return {d["_id"]: Member.from_hit(d) for d in resp["docs"] if d.get("found")}

    def link(self, posts: list[Post]) -> list[Post]:
        """Fingerprint ``posts`` and link each to its cluster; re-links existing documents when needed."""
        posts = [fingerprinted(p) for p in posts]
        found = self._candidates(posts)
        updates: dict[str, dict[str, Any]] = {}
        batch: dict[str, Member] = {}
        result: list[Post] = []
        for post, candidates in zip(posts, found, strict=True):
            me = Member.from_post(post)
            others = [c for c in candidates if c.id not in batch and is_near(me, c)]
            others += [b for b in batch.values() if b.id != me.id and is_near(me, b)]
            known = {m.id: m for m in others}
            root_ids = {m.duplicate_of or m.id for m in others} - {me.id}
            pointing_at_me = any(m.duplicate_of == me.id for m in others)
            roots = {rid: known[rid] for rid in root_ids if rid in known}
            roots.update(self._fetch([rid for rid in root_ids if rid not in roots and rid not in batch]))
            roots.update({rid: batch[rid] for rid in root_ids if rid in batch})
            if not roots:
                update: dict[str, Any] = {"duplicate_of": None, "is_first": True if pointing_at_me else None}
            else:
                first = min(roots.values(), key=lambda m: (m.time, m.id))
                winner = me.id if me.time < first.time else first.id
                update = ({"duplicate_of": None, "is_first": True} if winner == me.id
                          else {"duplicate_of": winner, "is_first": False})
                for rid in roots:
                    if rid == winner:
                        if not roots[rid].is_first:
                            updates[rid] = {"duplicate_of": None, "is_first": True}
                            roots[rid].is_first = True
                        continue
                    in_batch = [b.id for b in batch.values() if b.duplicate_of == rid]
                    for member in [rid, *self._members_of(rid), *in_batch]:
                        updates[member] = {"duplicate_of": winner, "is_first": False}
                        if member in batch:
                            batch[member].duplicate_of, batch[member].is_first = winner, False
            post = post.model_copy(update=update)
            batch[post.doc_id] = Member.from_post(post)
            result.append(post)
        for i, p in enumerate(result):  # batch members re-linked by a later member of the same batch
            if p.doc_id in updates:
                result[i] = p.model_copy(update=updates.pop(p.doc_id))
        actions = [{"_op_type": "update", "_index": self.alias, "_id": i, "doc": d} for i, d in updates.items()]
        if actions:
            _ok, errors = helpers.bulk(self.client, actions, raise_on_error=False, stats_only=False)
            assert isinstance(errors, list)
            if errors:
                log.error("re-linking %d duplicates failed: %s", len(errors), errors[:2])
        return result
