"""The project's own Scrapy signals."""

from __future__ import annotations

# Sent by the ingest pipeline once the source's crawl state is loaded (``state``: an
# index.crawl_state.CrawlState, or None when there is none); the conditional-request middleware listens.
crawl_state_loaded = object()

# Sent by a spider when a page it fetched gave no post because it could not be read (``url``): the
# conditional-request middleware forgets the validators the page answered with, so that the next crawl fetches it
# in full instead of taking a 304 for a page that was never indexed (once extraction rules are fixed, say).
page_unreadable = object()
