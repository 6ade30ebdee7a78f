"""One spider class per source kind; :data:`SPIDERS` maps a kind to its class."""

from __future__ import annotations

from crawlers.spiders.base import SourceSpider
from crawlers.spiders.feed import FeedSpider
from crawlers.spiders.listing import ListSpider
from crawlers.spiders.message_board import MessageBoardSpider
from crawlers.spiders.search import SearchSpider
from crawlers.spiders.social import SocialSpider

SPIDERS: dict[str, type[SourceSpider]] = {
    "feed": FeedSpider,
    "list": ListSpider,
    "message_board": MessageBoardSpider,
    "social": SocialSpider,
    "search": SearchSpider,
}

__all__ = [
    "SPIDERS",
    "FeedSpider",
    "ListSpider",
    "MessageBoardSpider",
    "SearchSpider",
    "SocialSpider",
    "SourceSpider",
]
