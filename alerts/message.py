"""The alert email for one post (pure: no network, no clock except the values passed in).

The text a leader reads is Chinese; both a plain-text and an HTML body are built from the same fields.
"""

from __future__ import annotations

import html
from datetime import datetime
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from zoneinfo import ZoneInfo

from alerts.rules import AlertRule
from yuqing.models import SENTIMENT_LABELS, Post
from yuqing.text import Excerpt, excerpt, http_url, one_line

SUBJECT_PREFIX = "【舆情预警】"
SUBJECT_TITLE_MAX = 60
EXCERPT_RADIUS = 80  # characters of context either side of the matched keyword

KIND_LABELS = {"article": "文章", "message": "留言", "social": "社交媒体", "search": "搜索结果"}


def shorten(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def keyword_excerpt(text: str, keywords: tuple[str, ...]) -> Excerpt:
    """The first occurrence of any keyword in ``text`` with ``EXCERPT_RADIUS`` characters either side (the
    start of the text when the keyword was only in the title)."""
    return excerpt(text, keywords, before=EXCERPT_RADIUS, after=EXCERPT_RADIUS)


def local_time(value: datetime | None, tz: ZoneInfo) -> str:
    if value is None:
        return "未知"
    zone = "北京时间" if tz.key == "Asia/Shanghai" else tz.key
    return value.astimezone(tz).strftime("%Y-%m-%d %H:%M") + f"（{zone}）"


def subject_for(rule: AlertRule, post: Post, excerpt: Excerpt) -> str:
    title = one_line(post.title) or one_line(excerpt.text) or "（无标题）"
    return f"{SUBJECT_PREFIX}{one_line(rule.name)}：{shorten(title, SUBJECT_TITLE_MAX)}"


def _fields(rule: AlertRule, post: Post, tz: ZoneInfo) -> list[tuple[str, str]]:
    source = post.source + (f"（{post.site}）" if post.site and post.site != post.source else "")
    rows = [
        ("预警规则", rule.name),
        ("标题", one_line(post.title) or "（无标题）"),
        ("来源", source),
        ("类型", KIND_LABELS.get(post.kind, post.kind)),
        ("作者", post.author or "未知"),
        ("发布时间", local_time(post.published_at, tz)),
        ("抓取时间", local_time(post.fetched_at, tz)),
    ]
    if post.analysis is not None:
        a = post.analysis
        rows.append(("情感倾向", SENTIMENT_LABELS.get(a.sentiment, a.sentiment)))
        if a.topic:
            rows.append(("话题", a.topic))
    rows.append(("命中关键词", "、".join(rule.keywords)))
    return [(label, one_line(value)) for label, value in rows]


def _plain_body(rows: list[tuple[str, str]], post: Post, excerpt: Excerpt, dashboard_url: str) -> str:
    lines = ["您好：", "", "舆情监测平台发现一条符合预警规则的新信息。", ""]
    lines += [f"{label}：{value}" for label, value in rows]
    lines += ["", f"原文链接：{post.url}", "", "内容摘录：", excerpt.text or "（无正文）", ""]
    lines += [f"在舆情平台查看：{dashboard_url}", "", "—— 文化舆情监测与回应平台（自动发送，请勿直接回复）"]
    return "\n".join(lines) + "\n"


def _html_body(rows: list[tuple[str, str]], post: Post, excerpt: Excerpt, dashboard_url: str) -> str:
    esc = html.escape
    cells = "".join(
        f'<tr><th align="left" style="padding:2px 12px 2px 0;white-space:nowrap">{esc(label)}</th>'
        f"<td>{esc(value)}</td></tr>"
        for label, value in rows
    )
    href = http_url(post.url)
    link = f'<a href="{esc(href)}">{esc(post.url)}</a>' if href else esc(post.url)
    if excerpt.text:
        quote = esc(excerpt.before) + (f"<mark>{esc(excerpt.match)}</mark>" if excerpt.match else "") + esc(
            excerpt.after
        )
    else:
        quote = "（无正文）"
    dash = http_url(dashboard_url)
    dash_link = f'<a href="{esc(dash)}">在舆情平台查看</a>' if dash else esc(dashboard_url)
    return (
        '<!DOCTYPE html><html lang="zh-CN"><head><meta charset="utf-8"></head><body>'
        "<p>您好：</p><p>舆情监测平台发现一条符合预警规则的新信息。</p>"
        f"<table>{cells}</table>"
        f"<p>原文链接：{link}</p>"
        "<p>内容摘录：</p>"
        f'<blockquote style="border-left:3px solid #c00;padding-left:8px">{quote}</blockquote>'
        f"<p>{dash_link}</p>"
        "<p style=\"color:#888\">—— 文化舆情监测与回应平台（自动发送，请勿直接回复）</p>"
        "</body></html>"
    )


def build_message(
    *,
    rule: AlertRule,
    post: Post,
    post_id: str,
    sender: str,
    dashboard_url: str,
    timezone: str,
    now: datetime,
) -> EmailMessage:
    """The alert email for ``post`` under ``rule``, addressed to the rule's recipients."""
    tz = ZoneInfo(timezone)
    excerpt = keyword_excerpt(post.content, rule.keywords)
    if not excerpt.match:
        title_excerpt = keyword_excerpt(post.title, rule.keywords)
        if title_excerpt.match and not post.content.strip():
            excerpt = title_excerpt
    rows = _fields(rule, post, tz)
    msg = EmailMessage()
    msg["Subject"] = subject_for(rule, post, excerpt)
    msg["From"] = sender
    msg["To"] = ", ".join(rule.recipients)
    msg["Date"] = format_datetime(now.astimezone(tz))
    domain = sender.rpartition("@")[2] or None
    msg["Message-ID"] = make_msgid(idstring=post_id[:16], domain=domain)
    msg["X-Yuqing-Rule"] = one_line(rule.name)
    msg["X-Yuqing-Post"] = post_id
    msg.set_content(_plain_body(rows, post, excerpt, dashboard_url))
    msg.add_alternative(_html_body(rows, post, excerpt, dashboard_url), subtype="html")
    return msg
