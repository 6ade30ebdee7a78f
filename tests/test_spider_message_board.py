"""`message_board` sources: a real Scrapy crawl of a generated 问政 board whose messages are REAL rows of the
shared government message data (messages with their official replies, and labelled messages without one),
indexed in the real Elasticsearch and compared field by field with those rows."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from html import escape
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pandas as pd
import pytest
from elasticsearch import Elasticsearch

from crawlers.runner import crawl_in_subprocess
from tests.conftest import MockServer, crawl_env
from tests.test_spider_listing import all_posts, html_page, write_sources
from yuqing.errors import ConfigError
from yuqing.models import Post
from yuqing.settings import Settings
from yuqing.sources import load_sources

ZONE = ZoneInfo("Asia/Shanghai")
UNIT = "A市人民政府办公厅"  # the data has no replying unit: the generated pages all name this one
PER_PAGE = 4


@dataclass
class Message:
    number: int
    user: str
    title: str
    time: datetime
    time_text: str
    content: str
    category: str | None = None
    reply: str | None = None
    reply_time: datetime | None = None
    reply_time_text: str | None = None


def _clean(value: Any) -> str:
    """A cell without the \\n\\t\\t padding the export left around (and inside) the text."""
    return "\n".join(line.strip() for line in str(value).strip().splitlines() if line.strip())


def _time(value: Any) -> tuple[datetime, str]:
    if isinstance(value, datetime):
        return value.replace(tzinfo=ZONE), value.strftime("%Y-%m-%d %H:%M:%S")
    text = str(value).strip()  # "2019/4/25 9:32:09"; one cell is a real date, read as "2019-04-08 08:37:20"
    layout = "%Y-%m-%d %H:%M:%S" if "-" in text else "%Y/%m/%d %H:%M:%S"
    return datetime.strptime(text, layout).replace(tzinfo=ZONE), text


def load_messages(shared_data: Path) -> list[Message]:
    """Eight rows with replies (spread over the file) and three labelled rows awaiting a reply."""
    folder = shared_data / "gov_messages"
    # nrows: only the rows used are read (the labelled file takes seconds to read in full).
    replied = pd.read_excel(folder / "messages_with_replies_2816.xlsx", dtype=str, nrows=2451)
    labelled = pd.read_excel(folder / "messages_labelled_495.xlsx", dtype=str, nrows=201)
    out: list[Message] = []
    for _, row in replied.iloc[::350].head(8).iterrows():
        when, when_text = _time(row["留言时间"])
        reply_when, reply_text = _time(row["答复时间"])
        out.append(Message(
            number=int(row["留言编号"]), user=_clean(row["留言用户"]), title=_clean(row["留言主题"]),
            time=when, time_text=when_text, content=_clean(row["留言详情"]),
            reply=_clean(row["答复意见"]), reply_time=reply_when, reply_time_text=reply_text,
        ))
    for _, row in labelled.iloc[[0, 150, 200]].iterrows():  # 城乡建设, 交通运输, 教育文体 (sorted by category)
        when, when_text = _time(row["留言时间"])
        out.append(Message(
            number=int(row["留言编号"]), user=_clean(row["留言用户"]), title=_clean(row["留言主题"]),
            time=when, time_text=when_text, content=_clean(row["留言详情"]), category=_clean(row["一级分类"]),
        ))
    return out


@pytest.fixture(scope="module")
def messages(shared_data: Path) -> list[Message]:
    return load_messages(shared_data)


def _paragraphs(text: str) -> str:
    return "".join(f"<p>{escape(line)}</p>" for line in text.split("\n"))


def message_page(m: Message) -> str:
    meta = (f"<span class='author'>留言用户：{escape(m.user)}</span>"
            f"<span class='time'>留言时间：{escape(m.time_text)}</span>"
            f"<span class='no'>编号：{m.number}</span>")
    if m.category:
        meta += f"<span class='cat'>分类：{escape(m.category)}</span>"
    reply = (
        "<div class='reply'><h3>答复意见</h3>"
        f"<div class='unit'>答复单位：{UNIT}</div>"
        f"<div class='reply-time'>答复时间：{escape(m.reply_time_text or '')}</div>"
        f"<div class='reply-content'>{_paragraphs(m.reply)}</div></div>"
        if m.reply else "<div class='reply-pending'>正在办理中</div>"
    )
    body = (f"<div class='crumb'><a href='/'>首页</a> &gt; <a href='/board/list-1.html'>问政</a> &gt; 留言详情</div>"
            f"<div class='message'><h1 class='title'>{escape(m.title)}</h1><div class='meta'>{meta}</div>"
            f"<div class='content'>{_paragraphs(m.content)}</div></div>{reply}")
    return html_page(body, title=f"{m.title}_问政")


def write_board(server: MockServer, messages: list[Message]) -> str:
    pages = [messages[i : i + PER_PAGE] for i in range(0, len(messages), PER_PAGE)]
    for n, chunk in enumerate(pages, start=1):
        rows = "".join(
            f"<tr><td><a class='title' href='/board/msg/{m.number}.html'>{escape(m.title)}</a></td>"
            f"<td>{escape(m.time_text)}</td><td>{'已回复' if m.reply else '办理中'}</td></tr>"
            for m in chunk
        )
        if n == 1:  # a message whose page is gone: counted as an error, the crawl goes on
            rows += "<tr><td><a class='title' href='/status/404'>已删除的留言</a></td></tr>"
        pager = f"<a class='next' href='list-{n + 1}.html'>下一页</a>" if n < len(pages) else ""
        server.write(f"board/list-{n}.html", html_page(f"<table class='list'>{rows}</table><div>{pager}</div>"))
    for m in messages:
        server.write(f"board/msg/{m.number}.html", message_page(m))
    return f"{server.url}/board/list-1.html"


BOARD_FIELDS = {
    "title": "div.message h1.title",
    "content": "div.message div.content",
    "author": {"selector": "div.meta span.author", "pattern": "留言用户[:：]\\s*(.+)"},
    "published_at": "div.meta span.time",
    "category": {"selector": "div.meta span.cat", "pattern": "分类[:：]\\s*(.+)"},
    "reply": "div.reply div.reply-content",
    "replied_at": "//div[@class='reply']/div[@class='reply-time']",
    "reply_unit": {"selector": "div.reply div.unit", "pattern": "答复单位[:：]\\s*(.+)"},
}


def squash(text: str | None) -> str:
    return "".join((text or "").split())


def test_message_board_crawl_indexes_each_message_with_its_reply(
    settings: Settings, es_client: Elasticsearch, mockserver: MockServer, config_dir: Path, messages: list[Message]
) -> None:
    assert len(messages) == 11
    start = write_board(mockserver, messages)
    write_sources(config_dir, [{
        "name": "市民留言板", "kind": "message_board", "site": "问政平台", "start_urls": [start],
        "selectors": {"item_links": "table.list a.title", "next_page": "a.next"},
        "message": BOARD_FIELDS, "max_pages": 5,
    }])
    env = crawl_env(settings, config_dir, YUQING_NLP__ENABLED="false", YUQING_CRAWL__RETRY_TIMES="0")

    report = crawl_in_subprocess(None, [], timeout_s=240, env=env)

    run = report.sources[0]
    assert (run.found, run.indexed, run.errors) == (len(messages) + 1, len(messages), 1)
    posts = {p.url.rsplit("/", 1)[-1]: p for p in all_posts(es_client, settings)}
    assert sorted(posts) == sorted(f"{m.number}.html" for m in messages)
    for m in messages:
        post = posts[f"{m.number}.html"]
        assert post.kind == "message" and post.source == "市民留言板" and post.site == "问政平台"
        assert (post.title, post.author, post.published_at) == (m.title, m.user, m.time)
        assert squash(post.content) == squash(m.content)
        assert post.category == m.category
        if m.reply is None:
            assert post.reply is None
        else:
            assert post.reply is not None
            assert squash(post.reply.text) == squash(m.reply)
            assert post.reply.replied_at == m.reply_time
            assert post.reply.unit == UNIT


def test_reply_arriving_later_is_picked_up_and_unset_fields_are_extracted(
    settings: Settings, es_client: Elasticsearch, mockserver: MockServer, config_dir: Path, messages: list[Message]
) -> None:
    """Only the reply is configured (title, text and time come from automatic extraction, which must not take
    the long reply for the message). The message is crawled while awaiting its reply, then again after the
    reply was published on its page while the list page stayed the same."""
    m = messages[0]
    assert m.reply is not None
    pending = replace(m, reply=None, reply_time=None, reply_time_text=None)
    start = write_board(mockserver, [pending])
    write_sources(config_dir, [{
        "name": "board", "kind": "message_board", "start_urls": [start],
        "selectors": {"item_links": "table.list a.title"},
        "message": {"reply": "div.reply div.reply-content", "replied_at": "div.reply div.reply-time"},
    }])
    env = crawl_env(settings, config_dir, YUQING_NLP__ENABLED="false", YUQING_CRAWL__RETRY_TIMES="0")

    def crawl_message() -> Post:
        report = crawl_in_subprocess(None, [], timeout_s=240, env=env)
        assert report.sources[0].errors == 1  # the deleted message's 404 on the list page
        (post,) = [p for p in all_posts(es_client, settings) if p.url.endswith(f"/{m.number}.html")]
        assert post.title == m.title and post.kind == "message"
        assert squash(post.content).startswith(squash(m.content)[:40])
        return post

    assert crawl_message().reply is None
    mockserver.write(f"board/msg/{m.number}.html", message_page(m))  # the reply is published
    post = crawl_message()
    assert post.reply is not None and squash(post.reply.text) == squash(m.reply)
    assert post.reply.replied_at == m.reply_time and post.reply.unit is None


def test_message_fields_are_checked(tmp_path: Path) -> None:
    base = {"name": "b", "kind": "message_board", "start_urls": ["http://x/l"], "selectors": {"item_links": "a"}}
    for message, problem in [({"titel": "h1"}, "titel"), ({"author": {"selector": "p", "pattern": "("}}, "regular")]:
        write_sources(tmp_path, [{**base, "message": message}])
        with pytest.raises(ConfigError, match=problem):
            load_sources(tmp_path / "sources.yaml")
