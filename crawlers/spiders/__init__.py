"""One spider class per source kind; :data:`SPIDERS` maps a kind to its class."""

from __future__ import annotations

from crawlers.spiders.base import SourceSpider
from crawlers.spiders.feed import FeedSpider

SPIDERS: dict[str, type[SourceSpider]] = {"feed": FeedSpider}

__all__ = ["SPIDERS", "FeedSpider", "SourceSpider"]
