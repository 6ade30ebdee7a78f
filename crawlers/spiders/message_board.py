"""Government message boards (政府留言板 / 问政): one document per message, with the official reply.

List pages and paging work as for ``list`` sources (``selectors.item_links`` / ``next_page`` / ``{page}``);
each message page is read with the source's ``message`` field selectors (title, content, author, published_at,
category, reply, replied_at, reply_unit). Title, content, author and time fall back to automatic extraction
when no selector is configured; a message without reply text gets no ``reply`` (still awaiting one).
"""

from __future__ import annotations

import copy
from collections.abc import Iterator

from lxml import html as lxml_html
from scrapy.http import Response

from crawlers.dates import parse_datetime
from crawlers.extract import extract_article
from crawlers.extract.dom import HtmlElement, select_any
from crawlers.spiders.base import response_text
from crawlers.spiders.listing import ListSpider, html_root, read_field
from yuqing.models import Post, Reply
from yuqing.sources import FieldRule, MessageFields


class MessageBoardSpider(ListSpider):
    name = "message_board"

    def parse_item(self, response: Response) -> Iterator[Post]:
        fields = self.source.message or MessageFields()
        root = html_root(response_text(response))
        if root is None:
            self.unreadable(response, "message page is not an HTML page: %s", response.url)
            return
        now = self.now()
        try:
            blocks = self.blocks
            title = read_field(root, fields.title, blocks)
            content = read_field(root, fields.content, blocks, multiline=True)
            author = read_field(root, fields.author, blocks)
            published_text = read_field(root, fields.published_at, blocks)
            category = read_field(root, fields.category, blocks)
            reply_text = read_field(root, fields.reply, blocks, multiline=True)
            replied_text = read_field(root, fields.replied_at, blocks)
            unit = read_field(root, fields.reply_unit, blocks)
        except ValueError as exc:
            self.unreadable(response, "message page %s: %s", response.url, exc)
            return
        published = parse_datetime(published_text, now=now, tz=self.zone) if published_text else None
        site = None
        if not (fields.title and fields.content and fields.author and fields.published_at):
            # Some field has no selector: automatic extraction fills it, from the page without the reply
            # (often the longest text on the page, it would be taken for the message).
            article = extract_article(self.without_reply(root, fields), response.url, rules=self.rules, now=now)
            title = title if fields.title else article.title
            content = content if fields.content else article.content
            author = author if fields.author else (article.author or "")
            published = published if fields.published_at else article.published_at
            site = article.site
        if not (title or content):
            self.count("errors")
            self.logger.error("no message text on message page %s", response.url)
            return
        reply = None
        if reply_text:
            reply = Reply(
                text=reply_text,
                replied_at=parse_datetime(replied_text, now=now, tz=self.zone) if replied_text else None,
                unit=unit or None,
            )
        yield Post(
            url=response.url,
            title=title,
            content=content,
            source=self.source.name,
            site=self.site_of(response.url, site),
            kind="message",
            author=author or None,
            published_at=published,
            fetched_at=now,
            category=category or None,
            reply=reply,
        )

    @staticmethod
    def without_reply(root: HtmlElement, fields: MessageFields) -> str:
        """The page's HTML with the elements the reply fields select removed."""
        page = copy.deepcopy(root)
        for spec in (fields.reply, fields.replied_at, fields.reply_unit):
            if spec is None:
                continue
            selector = spec.selector if isinstance(spec, FieldRule) else spec
            for found in select_any(page, selector):
                if isinstance(found, HtmlElement) and found.getparent() is not None:
                    found.drop_tree()
        return lxml_html.tostring(page, encoding="unicode")
