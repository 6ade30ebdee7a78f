"""The demo site: every channel of the demo corpus in the format its spider reads (pure: a path in, a page out).

Routes (``{page}`` from 1; a post not yet published on the demo clock is 404 and absent from every list):

- ``/news/feed.xml``                 青川日报 RSS feed (news ``channel: feed``; with the shared data, the real
                                     saved pages too), newest first; ``/news/a/<id>.html`` the article pages
- ``/news/culture/list_{page}.html`` 青川新闻网 culture column (news ``channel: column``), 10 links a page
- ``/board/list_{page}.html``        市民留言板, 20 messages a page; ``/board/msg/<id>.html`` a message with its
                                     official reply once that is published (else 办理中)
- ``/api/weibo?page={page}``         Weibo-style JSON (``data.cards[].mblog``), 20 posts a page, engagement
                                     growing after publication, reposts embedding their original
- ``/search?q={keyword}&page={page}`` forum search, 10 results a page; ``/bbs/thread/<id>.html`` a thread
- ``/gov/tzgg/list_{page}.html``     the bureau's website (官网) 通知公告; ``/gov/tzgg/<id>.html`` a notice
- ``/wechat/feed.xml``               the bureau's 微信公众号 as RSS; ``/wechat/s/<id>.html`` an article
- ``/shared/gne/<path>``             a saved real page (when the shared data joined)
- ``/``                              an index of the channels, for people
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from email.utils import format_datetime
from html import escape
from urllib.parse import parse_qs, quote, unquote, urlsplit
from zoneinfo import ZoneInfo

from crawlers.feeds import FeedEntry, rss_document
from yuqing.demo.corpus import DemoPost
from yuqing.demo.replay import DemoClock, engagement, reply_out, visible
from yuqing.demo.shared import SharedData

NEWS_PER_PAGE = 10
BOARD_PER_PAGE = 20
WEIBO_PER_PAGE = 20
SEARCH_PER_PAGE = 10
NOTICES_PER_PAGE = 15
FEED_MAX = 100

PAPER = "青川日报"
COLUMN_SITE = "青川新闻网"
BUREAU = "青川市文化广电旅游局"
WECHAT = "青川文旅"
_WEIBO_TIME = "%a %b %d %H:%M:%S %z %Y"
_TOPIC = re.compile(r"#([^#\n]{1,30})#")
_LIST = re.compile(r"^/(?P<what>news/culture|board|gov/tzgg)/list_(?P<page>\d+)\.html$")
_ITEM = re.compile(
    r"^/(?P<what>news/a|board/msg|bbs/thread|gov/tzgg|wechat/s|weibo/detail)/(?P<id>[a-z0-9-]+)(?:\.html)?$")


@dataclass(frozen=True)
class Page:
    status: int
    body: bytes
    content_type: str = "text/html; charset=utf-8"
    modified: float | None = None  # epoch seconds of the last change (Last-Modified)


def not_found() -> Page:
    return Page(404, "<html><body><h1>404 页面不存在</h1></body></html>".encode(), modified=None)


def _paragraphs(text: str) -> str:
    return "\n".join(f"<p>{escape(line.strip())}</p>" for line in text.split("\n") if line.strip())


def _html(title: str, body: str, head: str = "") -> bytes:
    return (
        "<!DOCTYPE html>\n<html lang=\"zh-CN\"><head><meta charset=\"utf-8\">"
        f"<title>{escape(title)}</title>{head}</head>\n<body>\n{body}\n</body></html>\n"
    ).encode()


def _pager(what: str, page: int, more: bool) -> str:
    links = []
    if page > 1:
        links.append(f"<a class=\"prev\" href=\"/{what}/list_{page - 1}.html\">上一页</a>")
    links.append(f"<span class=\"current\">第{page}页</span>")
    if more:
        links.append(f"<a class=\"next\" href=\"/{what}/list_{page + 1}.html\">下一页</a>")
    return f"<div class=\"pagination\">{' '.join(links)}</div>"


class DemoSite:
    """The demo site over ``posts`` (and ``shared``), on ``clock``, with times shown in ``zone``."""

    def __init__(self, posts: list[DemoPost], clock: DemoClock, zone: ZoneInfo,
                 shared: SharedData | None = None) -> None:
        self.clock = clock
        self.zone = zone
        self.shared = shared
        self.posts = [*posts, *(shared.messages if shared else [])]
        self.by_id = {p.id: p for p in self.posts}
        self.pages_by_path = {p.path: p for p in shared.pages} if shared else {}

    # -- helpers ------------------------------------------------------------------------------------------
    def _out(self, kind: str, now: float, pred: Callable[[DemoPost], bool] | None = None) -> list[DemoPost]:
        return [p for p in visible(self.posts, self.clock, now) if p.kind == kind and (pred is None or pred(p))]

    def when(self, at: float) -> datetime:
        return self.clock.datetime_of(at, self.zone)

    def stamp(self, at: float) -> str:
        return self.when(at).strftime("%Y-%m-%d %H:%M")

    def modified(self, post: DemoPost, now: float) -> float:
        times = [self.clock.time_of(post.at)]
        if post.reply is not None and reply_out(post, self.clock, now):
            times.append(self.clock.time_of(post.reply.at))
        return max(times)

    # -- dispatch -----------------------------------------------------------------------------------------
    def respond(self, target: str, now: float, base_url: str) -> Page:
        """The page for request target ``target`` (path and query) at epoch ``now``."""
        parts = urlsplit(target)
        path = unquote(parts.path)
        query = parse_qs(parts.query)
        page = _int(query.get("page", ["1"])[0])
        if path in ("/", "/index.html"):
            return self.index_page()
        if path == "/robots.txt":
            return Page(200, b"User-agent: *\nAllow: /\n", "text/plain; charset=utf-8")
        if path == "/news/feed.xml":
            return self.news_feed(now, base_url)
        if path == "/wechat/feed.xml":
            return self.wechat_feed(now, base_url)
        if path == "/api/weibo":
            return self.weibo_api(now, page)
        if path == "/search":
            return self.search(query.get("q", [""])[0].strip(), page, now)
        if path.startswith("/shared/gne/"):
            return self.shared_page(path.removeprefix("/shared/gne/"), now)
        match = _LIST.match(path)
        if match:
            n = int(match["page"])
            lists = {"news/culture": self.news_column, "board": self.board_list, "gov/tzgg": self.notice_list}
            return lists[match["what"]](n, now)
        match = _ITEM.match(path)
        if match:
            post = self.by_id.get(match["id"])
            if post is None or not self.clock.is_out(post.at, now):
                return not_found()
            render = {
                "news/a": ("news", self.article_page), "board/msg": ("message", self.message_page),
                "bbs/thread": ("search", self.thread_page), "gov/tzgg": ("notice", self.notice_page),
                "wechat/s": ("wechat", self.wechat_page), "weibo/detail": ("social", self.weibo_page),
            }
            kind, fn = render[match["what"]]
            if post.kind != kind:
                return not_found()
            return fn(post, now)
        return not_found()

    # -- people's index -----------------------------------------------------------------------------------
    def index_page(self) -> Page:
        links = [
            ("/news/feed.xml", f"{PAPER} RSS（新闻）"),
            ("/news/culture/list_1.html", f"{COLUMN_SITE}·文化频道（新闻列表）"),
            ("/board/list_1.html", "青川市民留言板（留言与官方答复）"),
            ("/api/weibo?page=1", "微博（JSON 接口）"),
            ("/search?q=图书馆&page=1", "青川论坛搜索（关键词搜索）"),
            ("/gov/tzgg/list_1.html", f"{BUREAU}官网·通知公告（本局渠道）"),
            ("/wechat/feed.xml", f"“{WECHAT}”微信公众号（本局渠道）"),
        ]
        items = "".join(f"<li><a href=\"{escape(u)}\">{escape(t)}</a></li>" for u, t in links)
        body = (f"<h1>yuqing 演示站点</h1><p>虚构的青川市的新闻、留言、微博、论坛和{BUREAU}自有渠道，"
                "按演示时钟陆续发布。</p><ul>" + items + "</ul>")
        return Page(200, _html("yuqing 演示站点", body))

    # -- news ---------------------------------------------------------------------------------------------
    def news_feed(self, now: float, base_url: str) -> Page:
        posts = self._out("news", now, lambda p: p.channel == "feed")
        entries = [(p.at, FeedEntry(link=f"{base_url}/news/a/{p.id}.html", title=p.title,
                                    published=format_datetime(self.when(p.at)), author=p.author or None,
                                    summary=_summary(p.text)))
                   for p in posts]
        if self.shared is not None:
            entries += [(sp.at, FeedEntry(link=f"{base_url}/shared/gne/{quote(sp.path)}", title=sp.title,
                                          published=format_datetime(self.when(sp.at))))
                        for sp in self.shared.pages if self.clock.is_out(sp.at, now)]
        entries.sort(key=lambda e: e[0], reverse=True)
        entries = entries[:FEED_MAX]
        modified = self.clock.time_of(entries[0][0]) if entries else None
        doc = rss_document(PAPER, base_url, [e for _, e in entries], built=self.when(entries[0][0] if entries else 0))
        return Page(200, doc, "application/rss+xml; charset=utf-8", modified)

    def news_column(self, page: int, now: float) -> Page:
        posts = self._out("news", now, lambda p: p.channel == "column")
        chunk = posts[(page - 1) * NEWS_PER_PAGE: page * NEWS_PER_PAGE]
        if page < 1 or (page > 1 and not chunk):
            return not_found()
        rows = "\n".join(
            f"<li><a href=\"/news/a/{p.id}.html\" title=\"{escape(p.title)}\">{escape(p.title)}</a>"
            f"<span class=\"date\">{self.stamp(p.at)}</span></li>" for p in chunk)
        body = (f"<div class=\"header\"><a href=\"/\">{COLUMN_SITE}</a> | 首页 | 时政 | 社会 | 文化 | 体育</div>"
                f"<div class=\"crumbs\">当前位置：首页 &gt; 文化频道</div>"
                f"<div class=\"news-list\"><h2>文化频道</h2><ul class=\"list\">\n{rows}\n</ul></div>"
                + _pager("news/culture", page, len(posts) > page * NEWS_PER_PAGE))
        return Page(200, _html(f"文化频道_{COLUMN_SITE}", body), modified=_newest(self.clock, chunk))

    def article_page(self, post: DemoPost, now: float) -> Page:
        site = PAPER if post.channel == "feed" else COLUMN_SITE
        column = "青川要闻" if post.channel == "feed" else "文化频道"
        author = f"<span class=\"author\">作者：{escape(post.author)}</span>" if post.author else ""
        when = self.when(post.at)
        body = (
            f"<div class=\"nav\"><a href=\"/\">首页</a> <a href=\"#\">时政</a> <a href=\"#\">社会</a> "
            f"<a href=\"/news/culture/list_1.html\">文化</a> <a href=\"#\">体育</a> <a href=\"#\">专题</a></div>\n"
            f"<div class=\"crumbs\">当前位置：<a href=\"/\">{site}</a> &gt; {column} &gt; 正文</div>\n"
            f"<div class=\"article-head\">\n<h1>{escape(post.title)}</h1>\n"
            f"<div class=\"info\"><span class=\"time\">发布时间：{when:%Y-%m-%d %H:%M}</span> "
            f"<span class=\"source\">来源：{escape(post.outlet or site)}</span> {author}</div>\n</div>\n"
            f"<div class=\"article-body\">\n<div class=\"content\">\n{_paragraphs(post.text)}\n</div>\n"
            f"<div class=\"editor\">（责任编辑：{'周敏' if post.channel == 'feed' else '陈可'}）</div>\n</div>\n"
            f"<div class=\"share\">分享到：微信 微博 QQ空间</div>\n"
            f"<div class=\"footer\">{site} 版权所有 未经授权禁止转载 青ICP备00000000号</div>"
        )
        head = f"<meta name=\"publishdate\" content=\"{when.isoformat(timespec='seconds')}\">"
        return Page(200, _html(f"{post.title}_{site}", body, head), modified=self.modified(post, now))

    def shared_page(self, rel: str, now: float) -> Page:
        if self.shared is None:
            return not_found()
        sp = self.pages_by_path.get(rel)
        if sp is None or not self.clock.is_out(sp.at, now):
            return not_found()
        return Page(200, (self.shared.gne_dir / sp.path).read_bytes(), modified=self.clock.time_of(sp.at))

    # -- message board ------------------------------------------------------------------------------------
    def board_list(self, page: int, now: float) -> Page:
        posts = self._out("message", now)
        chunk = posts[(page - 1) * BOARD_PER_PAGE: page * BOARD_PER_PAGE]
        if page < 1 or (page > 1 and not chunk):
            return not_found()
        rows = "\n".join(
            f"<li><a class=\"title\" href=\"/board/msg/{p.id}.html\">{escape(p.title)}</a>"
            f"<span class=\"date\">{self.stamp(p.at)}</span>"
            f"<span class=\"state\">{'已答复' if reply_out(p, self.clock, now) else '办理中'}</span></li>"
            for p in chunk)
        body = ("<div class=\"header\">青川市民留言板 · 市长信箱 · 部门留言</div>"
                f"<div class=\"board\"><h2>留言列表</h2><ul class=\"message-list\">\n{rows}\n</ul></div>"
                + _pager("board", page, len(posts) > page * BOARD_PER_PAGE))
        return Page(200, _html("留言列表_青川市民留言板", body), modified=_newest(self.clock, chunk))

    def message_page(self, post: DemoPost, now: float) -> Page:
        meta = (f"<span class=\"author\">留言用户：{escape(post.author or '匿名网友')}</span>"
                f"<span class=\"time\">{self.stamp(post.at)}</span>")
        if post.category:
            meta += f"<span class=\"category\">{escape(post.category)}</span>"
        if post.reply is not None and reply_out(post, self.clock, now):
            unit = f"<span class=\"reply-unit\">{escape(post.reply.unit)}</span>" if post.reply.unit else ""
            reply = (f"<div class=\"reply\"><h3>答复意见</h3><div class=\"reply-meta\">{unit}"
                     f"<span class=\"reply-time\">{self.stamp(post.reply.at)}</span></div>"
                     f"<div class=\"reply-content\">{_paragraphs(post.reply.text)}</div></div>")
        else:
            reply = "<div class=\"pending\">该留言正在办理中，请耐心等待答复。</div>"
        body = ("<div class=\"header\"><a href=\"/board/list_1.html\">青川市民留言板</a> &gt; 留言详情</div>"
                f"<div class=\"message\"><h1 class=\"message-title\">{escape(post.title)}</h1>"
                f"<div class=\"message-meta\">{meta}</div>"
                f"<div class=\"message-content\">{_paragraphs(post.text)}</div></div>{reply}")
        return Page(200, _html(f"{post.title}_青川市民留言板", body), modified=self.modified(post, now))

    # -- Weibo-style JSON ---------------------------------------------------------------------------------
    def mblog(self, post: DemoPost, now: float) -> dict[str, object]:
        """A post as Weibo's JSON has it; a repost embeds its original (and that one's, down the chain)."""
        reposts, comments, likes = engagement(post, self.clock, now)
        text = _TOPIC.sub(lambda m: f"<a href=\"/search?q={quote(m[1])}\">#{escape(m[1])}#</a>", escape(post.text))
        out: dict[str, object] = {
            "id": post.id, "mid": post.id,
            "created_at": self.when(post.at).strftime(_WEIBO_TIME),
            "text": text.replace("\n", "<br />"),
            "source": "微博 weibo.com",
            "user": {"screen_name": post.author or "微博用户"},
            "reposts_count": reposts, "comments_count": comments, "attitudes_count": likes,
        }
        original = self.by_id.get(post.repost_of or "")
        if original is not None:
            out["retweeted_status"] = self.mblog(original, now)
        return out

    def weibo_api(self, now: float, page: int) -> Page:
        posts = self._out("social", now)
        chunk = posts[(page - 1) * WEIBO_PER_PAGE: page * WEIBO_PER_PAGE] if page >= 1 else []
        doc: dict[str, object]
        if not chunk:
            doc = {"ok": 0, "msg": "这里还没有内容", "data": {"cards": []}}
        else:
            doc = {"ok": 1, "data": {"cardlistInfo": {"page": page, "total": len(posts)},
                                     "cards": [{"card_type": 9, "mblog": self.mblog(p, now)} for p in chunk]}}
        body = json.dumps(doc, ensure_ascii=False).encode()
        return Page(200, body, "application/json; charset=utf-8", _newest(self.clock, chunk))

    def weibo_page(self, post: DemoPost, now: float) -> Page:
        reposts, comments, likes = engagement(post, self.clock, now)
        body = (f"<div class=\"weibo\"><div class=\"user\">{escape(post.author or '微博用户')}</div>"
                f"<div class=\"time\">{self.stamp(post.at)}</div><div class=\"text\">{_paragraphs(post.text)}</div>"
                f"<div class=\"counts\">转发 {reposts} 评论 {comments} 赞 {likes}</div></div>")
        return Page(200, _html(f"{post.author}的微博", body), modified=self.modified(post, now))

    # -- forum search -------------------------------------------------------------------------------------
    def search(self, keyword: str, page: int, now: float) -> Page:
        hits = self._out("search", now, lambda p: bool(keyword) and (keyword in p.title or keyword in p.text))
        chunk = hits[(page - 1) * SEARCH_PER_PAGE: page * SEARCH_PER_PAGE] if page >= 1 else []
        rows = "\n".join(
            f"<div class=\"result\"><h3><a href=\"/bbs/thread/{p.id}.html\">{escape(p.title)}</a></h3>"
            f"<p class=\"abstract\">{escape(_summary(p.text, 80))}</p>"
            f"<span class=\"meta\">{escape(p.outlet or '青川论坛')} {self.stamp(p.at)}</span></div>" for p in chunk)
        if not chunk:
            rows = f"<div class=\"empty\">没有找到与“{escape(keyword)}”相关的结果。</div>"
        body = (f"<div class=\"search-box\">搜索：{escape(keyword)}</div>"
                f"<div class=\"stat\">共找到 {len(hits)} 条结果，第 {page} 页</div><div class=\"results\">{rows}</div>")
        return Page(200, _html(f"{keyword} - 青川论坛搜索", body), modified=_newest(self.clock, chunk))

    def thread_page(self, post: DemoPost, now: float) -> Page:
        forum = post.outlet or "青川论坛"
        body = (f"<div class=\"nav\"><a href=\"/\">{escape(forum)}</a> &gt; 青川杂谈</div>"
                f"<div id=\"postlist\"><h1 class=\"ts\">{escape(post.title)}</h1>"
                f"<div class=\"authi\">作者：{escape(post.author or '游客')}　发表时间：{self.stamp(post.at)}</div>"
                f"<div class=\"t_f\">{_paragraphs(post.text)}</div></div>"
                f"<div class=\"footer\">{escape(forum)} Powered by Discuz!</div>")
        return Page(200, _html(f"{post.title} - {forum}", body), modified=self.modified(post, now))

    # -- the bureau's own channels ------------------------------------------------------------------------
    def notice_list(self, page: int, now: float) -> Page:
        posts = self._out("notice", now)
        chunk = posts[(page - 1) * NOTICES_PER_PAGE: page * NOTICES_PER_PAGE]
        if page < 1 or (page > 1 and not chunk):
            return not_found()
        rows = "\n".join(
            f"<li><a href=\"/gov/tzgg/{p.id}.html\" target=\"_blank\">{escape(p.title)}</a>"
            f"<span>{self.when(p.at):%Y-%m-%d}</span></li>" for p in chunk)
        body = (f"<div class=\"top\">{BUREAU}</div>"
                "<div class=\"position\">您当前的位置：首页 &gt; 政务公开 &gt; 通知公告</div>"
                f"<div class=\"list-box\"><ul class=\"notice-list\">\n{rows}\n</ul></div>"
                + _pager("gov/tzgg", page, len(posts) > page * NOTICES_PER_PAGE))
        return Page(200, _html(f"通知公告-{BUREAU}", body), modified=_newest(self.clock, chunk))

    def notice_page(self, post: DemoPost, now: float) -> Page:
        body = (f"<div class=\"top\">{BUREAU}</div>"
                f"<div class=\"position\">您当前的位置：首页 &gt; 政务公开 &gt; 通知公告</div>"
                f"<div class=\"detail\"><h1>{escape(post.title)}</h1>"
                f"<div class=\"property\">发布日期：{self.stamp(post.at)}　来源：{escape(post.author or BUREAU)}</div>"
                f"<div class=\"TRS_Editor\">{_paragraphs(post.text)}</div></div>"
                f"<div class=\"footer\">主办：{BUREAU}　版权所有</div>")
        return Page(200, _html(f"{post.title}_{BUREAU}", body), modified=self.modified(post, now))

    def wechat_feed(self, now: float, base_url: str) -> Page:
        posts = self._out("wechat", now)
        entries = [FeedEntry(link=f"{base_url}/wechat/s/{p.id}.html", title=p.title,
                             published=format_datetime(self.when(p.at)), author=WECHAT, summary=_summary(p.text))
                   for p in posts[:FEED_MAX]]
        built = self.when(posts[0].at if posts else 0)
        return Page(200, rss_document(f"{WECHAT}（微信公众号）", base_url, entries, built=built),
                    "application/rss+xml; charset=utf-8", _newest(self.clock, posts[:1]))

    def wechat_page(self, post: DemoPost, now: float) -> Page:
        when = self.when(post.at)
        body = (f"<div id=\"js_article\" class=\"rich_media\"><h1 class=\"rich_media_title\" id=\"activity-name\">"
                f"{escape(post.title)}</h1><div class=\"rich_media_meta_list\">"
                f"<span class=\"rich_media_meta rich_media_meta_text\">{escape(post.author or WECHAT)}</span>"
                f"<a id=\"js_name\">{WECHAT}</a><em id=\"publish_time\">{when:%Y-%m-%d %H:%M}</em></div>"
                f"<div class=\"rich_media_content\" id=\"js_content\">{_paragraphs(post.text)}</div></div>"
                f"<script>var ct = \"{int(when.timestamp())}\";</script>")
        head = f"<meta property=\"og:title\" content=\"{escape(post.title)}\">"
        return Page(200, _html(post.title, body, head), modified=self.modified(post, now))


def _int(value: str) -> int:
    try:
        return int(value)
    except ValueError:
        return 0


def _summary(text: str, chars: int = 60) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= chars else flat[:chars] + "…"


def _newest(clock: DemoClock, posts: list[DemoPost]) -> float | None:
    return max((clock.time_of(p.at) for p in posts), default=None)
