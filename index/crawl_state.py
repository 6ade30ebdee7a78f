"""What the crawler remembers between runs, in Elasticsearch (``<prefix>-crawl-state``): per page URL its HTTP
validators (ETag, Last-Modified) and the hash of the content last indexed (records: :class:`PageState`).

Loaded once per source at the start of a crawl (one scroll), updated in memory (from the reactor thread and
the ingest thread, under a lock), written back in one bulk request at the end, so no request waits on
Elasticsearch.
"""

from __future__ import annotations

import logging
import threading
from datetime import datetime

from elasticsearch import Elasticsearch, helpers

from index.client import WriteBlocked, blocked_answer
from index.records import PageState
from yuqing.models import canonicalize_url, doc_id_for

log = logging.getLogger(__name__)


class CrawlState:
    def __init__(self, client: Elasticsearch, alias: str, source: str) -> None:
        self.client = client
        self.alias = alias
        self.source = source
        self.pages: dict[str, PageState] = {}
        self.dirty: set[str] = set()
        self.loaded = False
        self._lock = threading.Lock()

    def load(self) -> None:
        if self.loaded:
            return
        for hit in helpers.scan(self.client, index=self.alias, query={"query": {"term": {"source": self.source}}},
                                size=1000):
            page = PageState.model_validate(hit["_source"])
            self.pages[page.url] = page
        self.loaded = True
        log.debug("crawl state of %s: %d known pages", self.source, len(self.pages))

    def get(self, url: str) -> PageState | None:
        return self.pages.get(canonicalize_url(url))

    def _put(self, page: PageState) -> None:  # under the lock
        self.pages[page.url] = page
        self.dirty.add(page.url)

    def _known_or_new(self, key: str, now: datetime) -> PageState:  # under the lock
        return self.pages.get(key) or PageState(url=key, source=self.source, first_seen_at=now)

    def record_http(self, url: str, *, etag: str | None, last_modified: str | None, now: datetime) -> None:
        key = canonicalize_url(url)
        with self._lock:
            old = self._known_or_new(key, now)
            self._put(old.model_copy(update={"etag": etag or old.etag, "last_seen_at": now,
                                             "last_modified": last_modified or old.last_modified}))

    def forget_http(self, url: str) -> None:
        """Drop the page's validators (it was fetched but could not be read): the next request goes out in full."""
        key = canonicalize_url(url)
        with self._lock:
            old = self.pages.get(key)
            if old is not None and (old.etag or old.last_modified):
                self._put(old.model_copy(update={"etag": None, "last_modified": None}))

    def touch(self, url: str, now: datetime) -> None:
        key = canonicalize_url(url)
        with self._lock:
            old = self.pages.get(key)
            if old is not None:
                self._put(old.model_copy(update={"last_seen_at": now}))

    def is_unchanged(self, url: str, content_hash: str) -> bool:
        page = self.get(url)
        return page is not None and page.content_hash == content_hash

    def record_content(self, url: str, content_hash: str, now: datetime) -> None:
        key = canonicalize_url(url)
        with self._lock:
            old = self._known_or_new(key, now)
            self._put(old.model_copy(update={"content_hash": content_hash, "last_seen_at": now,
                                             "last_changed_at": now}))

    def flush(self) -> int:
        """Write changed entries back; returns how many. Per-document failures raise. Returns once the entries
        are searchable (``refresh="wait_for"``): the next run, possibly a new process a moment later, loads them
        with a search."""
        with self._lock:
            urls = sorted(self.dirty)
            actions = [{"_op_type": "index", "_index": self.alias, "_id": doc_id_for(url),
                        "_source": self.pages[url].as_source()} for url in urls]
        if not actions:
            return 0
        ok, errors = helpers.bulk(self.client, actions, raise_on_error=False, stats_only=False,
                                   refresh="wait_for")
        assert isinstance(errors, list)
        if errors:
            items = [next(iter(e.values())) for e in errors]
            if all(blocked_answer(i.get("status"), (i.get("error") or {}).get("type")) for i in items):
                raise WriteBlocked(f"crawl state of {self.source}: {len(errors)} entries not saved")
            raise RuntimeError(f"crawl state of {self.source}: {len(errors)} entries failed: {errors[:2]}")
        with self._lock:
            self.dirty.difference_update(urls)
        return int(ok)
