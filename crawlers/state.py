"""What the crawler remembers between runs, in Elasticsearch: per page URL its HTTP validators (ETag,
Last-Modified) and the hash of the content last indexed.

Loaded once per source at the start of a crawl (one scroll), updated in memory, written back in one bulk
request at the end, so the reactor thread is never blocked per request.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from elasticsearch import Elasticsearch, helpers

from index.documents import canonicalize_url, doc_id_for

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PageState:
    url: str
    source: str
    etag: str | None = None
    last_modified: str | None = None
    content_hash: str | None = None
    first_seen_at: datetime | None = None
    last_seen_at: datetime | None = None
    last_changed_at: datetime | None = None

    def to_source(self) -> dict[str, Any]:
        out: dict[str, Any] = {"url": self.url, "source": self.source}
        for key in ("etag", "last_modified", "content_hash"):
            if getattr(self, key):
                out[key] = getattr(self, key)
        for key in ("first_seen_at", "last_seen_at", "last_changed_at"):
            value = getattr(self, key)
            if value is not None:
                out[key] = value.isoformat()
        return out

    @classmethod
    def from_source(cls, src: dict[str, Any]) -> PageState:
        dates = {k: datetime.fromisoformat(src[k]) for k in ("first_seen_at", "last_seen_at", "last_changed_at")
                 if src.get(k)}
        return cls(url=src["url"], source=src["source"], etag=src.get("etag"),
                   last_modified=src.get("last_modified"), content_hash=src.get("content_hash"), **dates)


class CrawlState:
    def __init__(self, client: Elasticsearch, alias: str, source: str) -> None:
        self.client = client
        self.alias = alias
        self.source = source
        self.pages: dict[str, PageState] = {}
        self.dirty: set[str] = set()
        self.loaded = False

    def load(self) -> None:
        if self.loaded:
            return
        for hit in helpers.scan(self.client, index=self.alias, query={"query": {"term": {"source": self.source}}},
                                size=1000):
            page = PageState.from_source(hit["_source"])
            self.pages[page.url] = page
        self.loaded = True
        log.info("crawl state of %s: %d known pages", self.source, len(self.pages))

    def get(self, url: str) -> PageState | None:
        return self.pages.get(canonicalize_url(url))

    def _put(self, page: PageState) -> None:
        self.pages[page.url] = page
        self.dirty.add(page.url)

    def record_http(self, url: str, *, etag: str | None, last_modified: str | None, now: datetime) -> None:
        key = canonicalize_url(url)
        old = self.pages.get(key) or PageState(url=key, source=self.source, first_seen_at=now)
        self._put(replace(old, etag=etag or old.etag, last_modified=last_modified or old.last_modified,
                          last_seen_at=now))

    def touch(self, url: str, now: datetime) -> None:
        key = canonicalize_url(url)
        old = self.pages.get(key)
        if old is not None:
            self._put(replace(old, last_seen_at=now))

    def is_unchanged(self, url: str, content_hash: str) -> bool:
        page = self.get(url)
        return page is not None and page.content_hash == content_hash

    def record_content(self, url: str, content_hash: str, now: datetime) -> None:
        key = canonicalize_url(url)
        old = self.pages.get(key) or PageState(url=key, source=self.source, first_seen_at=now)
        self._put(replace(old, content_hash=content_hash, last_seen_at=now, last_changed_at=now))

    def flush(self) -> int:
        """Write changed entries back; returns how many. Per-document failures raise."""
        if not self.dirty:
            return 0
        actions = [
            {"_op_type": "index", "_index": self.alias, "_id": doc_id_for(url), "_source": self.pages[url].to_source()}
            for url in sorted(self.dirty)
        ]
        ok, errors = helpers.bulk(self.client, actions, raise_on_error=False, stats_only=False)
        assert isinstance(errors, list)
        if errors:
            raise RuntimeError(f"crawl state of {self.source}: {len(errors)} entries failed: {errors[:2]}")
        self.dirty.clear()
        return int(ok)
