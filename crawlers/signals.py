"""The project's own Scrapy signals."""

from __future__ import annotations

# Sent by the ingest pipeline once the source's crawl state is loaded (``state``: an
# index.crawl_state.CrawlState, or None when there is none); the conditional-request middleware listens.
crawl_state_loaded = object()
