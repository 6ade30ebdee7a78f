"""Alert mails (pure apart from drawing the chart): Chinese subject, HTML with a plain-text alternative, the
event's trend chart as an inline image.

Structure of an event alert::

    multipart/alternative
      text/plain                      everything, readable without HTML
      multipart/related
        text/html                     <img src="cid:trend.<id>@<domain>">
        image/png                     Content-ID: <trend.<id>@<domain>>, inline

Every text that comes from users or the web (titles, summaries, reasons, rule names, URLs) is escaped in the
HTML; only http(s) URLs become links. The Message-ID is derived from the outbox entry id, so a retried or
re-sent mail carries the same one (receivers and clients can tell a repeat).
"""

from __future__ import annotations

import html
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage
from email.utils import format_datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from alerts.chart import event_trend_png
from alerts.content import (
    LEVEL_HEX,
    SENTIMENT_LABELS,
    AlertPayload,
    EventAlert,
    NoticeAlert,
    PostLink,
    level_label,
    safe_href,
)

SUBJECT_TITLE_MAX = 60
FOOTER = "文化舆情监测与回应平台（自动发送，请勿直接回复）"
_SPACE = re.compile(r"\s+")


def one_line(text: str) -> str:
    return _SPACE.sub(" ", text).strip()


def shorten(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _domain(sender: str) -> str:
    return sender.rpartition("@")[2] or "localhost"


def message_id_for(entry_id: str, sender: str) -> str:
    """The Message-ID of the outbox entry ``entry_id``: the same at every attempt. Short (the id's first 24
    characters), so that the header is not folded."""
    return f"<{entry_id[:24]}@{_domain(sender)}>"


@dataclass(frozen=True)
class Envelope:
    """Who, when and where: everything a mail needs besides its content."""

    sender: str
    recipients: tuple[str, ...]
    entry_id: str
    date: datetime
    dashboard_url: str
    tz: ZoneInfo
    font: Path | None = None

    @property
    def message_id(self) -> str:
        return message_id_for(self.entry_id, self.sender)


def _local(value: datetime | None, tz: ZoneInfo) -> str:
    if value is None:
        return "未知"
    return value.astimezone(tz).strftime("%Y-%m-%d %H:%M")


def _headers(msg: EmailMessage, env: Envelope, subject: str, rule: str) -> None:
    msg["Subject"] = subject
    msg["From"] = env.sender
    msg["To"] = ", ".join(env.recipients)
    msg["Date"] = format_datetime(env.date.astimezone(env.tz))
    msg["Message-ID"] = env.message_id
    msg["Auto-Submitted"] = "auto-generated"
    if rule:
        msg["X-Yuqing-Rule"] = one_line(rule)
    msg["X-Yuqing-Entry"] = env.entry_id


def _link(url: str | None, text: str) -> str:
    """``text`` (escaped) as a link to ``url`` when it is http(s), else plain."""
    href = safe_href(url)
    return f'<a href="{html.escape(href, quote=True)}">{html.escape(text)}</a>' if href else html.escape(text)


def _table(rows: Sequence[tuple[str, str]]) -> str:
    cells = "".join(
        f'<tr><th align="left" style="padding:2px 12px 2px 0;white-space:nowrap;color:#555">{html.escape(k)}</th>'
        f"<td>{html.escape(one_line(v))}</td></tr>"
        for k, v in rows
    )
    return f'<table style="border-collapse:collapse">{cells}</table>'


def _post_line(post: PostLink, tz: ZoneInfo) -> tuple[str, str]:
    """(plain, html) of one cited post."""
    bits = [b for b in (post.source, _local(post.published_at, tz) if post.published_at else "",
                        SENTIMENT_LABELS.get(post.sentiment or "", "")) if b]
    meta = " · ".join(bits)
    title = one_line(post.title) or post.url
    plain = f"{title}（{meta}）\n   {post.url}" if meta else f"{title}\n   {post.url}"
    html_line = _link(post.url, title) + (f' <span style="color:#777">{html.escape(meta)}</span>' if meta else "")
    return plain, html_line


def _page(head_colour: str, banner: str, body: str) -> str:
    return (
        '<!DOCTYPE html><html lang="zh-CN"><head><meta charset="utf-8"></head>'
        '<body style="font-family:\'Microsoft YaHei\',\'PingFang SC\',\'Noto Sans CJK SC\',sans-serif;'
        'font-size:14px;color:#222">'
        f'<div style="background:{head_colour};color:#fff;padding:6px 10px;font-weight:bold">'
        f"{html.escape(banner)}</div>{body}"
        f'<p style="color:#888;font-size:12px">—— {html.escape(FOOTER)}</p></body></html>'
    )


# ---- event alerts -----------------------------------------------------------------------------------------
def event_subject(alert: EventAlert) -> str:
    """``【舆情预警·Ⅱ级橙色】市图书馆突然闭馆引发读者不满``."""
    title = shorten(one_line(alert.title) or "（无标题事件）", SUBJECT_TITLE_MAX)
    return f"【舆情预警·{level_label(alert.level)}】{title}"


def _event_rows(alert: EventAlert, env: Envelope, rule: str, reason: str) -> list[tuple[str, str]]:
    rows = [("风险等级", level_label(alert.level)), ("热度", f"{alert.heat:.0f} / 100")]
    if alert.heat_6h is not None or alert.heat_24h is not None:
        parts = []
        if alert.heat_6h is not None:
            parts.append(f"6小时后 {alert.heat_6h:.0f}")
        if alert.heat_24h is not None:
            parts.append(f"24小时后 {alert.heat_24h:.0f}")
        rows.append(("热度预测", "；".join(parts)))
    rows.append(("信息量", f"{alert.count} 条（负面占 {alert.negative_share:.0%}）"))
    if alert.first_source or alert.started_at:
        rows.append(("首发", f"{alert.first_source or '未知'}，{_local(alert.started_at, env.tz)}"))
    if alert.topic:
        rows.append(("话题", alert.topic))
    if alert.unit:
        rows.append(("责任单位", alert.unit))
    if alert.own_posts is not None:  # 不失声: has the bureau spoken on the matter on its own channels?
        rows.append(("本局发布", f"已发布 {alert.own_posts} 条" if alert.own_posts else "本局渠道尚未就此发布信息"))
    if alert.keywords:
        rows.append(("关键词", "、".join(alert.keywords[:8])))
    if rule:
        rows.append(("预警规则", f"{rule}：{reason}" if reason else rule))
    return rows


def compose_event(alert: EventAlert, env: Envelope, *, rule: str = "", reason: str = "") -> EmailMessage:
    """The leaders' mail for one event (see the module docstring for its structure)."""
    rows = _event_rows(alert, env, rule, reason)
    page = alert.page(env.dashboard_url)
    posts = [_post_line(p, env.tz) for p in alert.top_posts]
    chart = event_trend_png(alert.timeline, env.tz, font=env.font)

    plain = ["【舆情预警】" + one_line(alert.title), ""]
    if alert.summary:
        plain += [one_line(alert.summary), ""]
    plain += [f"{k}：{one_line(v)}" for k, v in rows]
    if alert.reasons:
        plain += ["", "等级依据："] + [f"  · {one_line(r)}" for r in alert.reasons]
    if posts:
        plain += ["", "代表性信息："] + [f"  {i}. {p}" for i, (p, _) in enumerate(posts, 1)]
    if chart is not None:
        plain += ["", "（事件走势图见 HTML 版本）"]
    plain += ["", f"事件详情：{page}", "", f"—— {FOOTER}"]

    cid = f"trend.{env.entry_id}@{_domain(env.sender)}"
    body = [f'<h2 style="margin:12px 0 6px">{html.escape(one_line(alert.title))}</h2>']
    if alert.summary:
        body.append(f"<p>{html.escape(one_line(alert.summary))}</p>")
    body.append(_table(rows))
    if alert.reasons:
        items = "".join(f"<li>{html.escape(one_line(r))}</li>" for r in alert.reasons)
        body.append(f'<h3 style="margin:14px 0 4px">等级依据</h3><ul style="margin:0">{items}</ul>')
    if chart is not None:
        body.append(f'<h3 style="margin:14px 0 4px">事件走势</h3><img src="cid:{html.escape(cid)}" '
                    'alt="事件走势图" width="640" style="max-width:100%">')
    if posts:
        items = "".join(f"<li>{h}</li>" for _, h in posts)
        body.append(f'<h3 style="margin:14px 0 4px">代表性信息</h3><ol style="margin:0">{items}</ol>')
    body.append(f'<p style="margin-top:14px">{_link(page, "在舆情平台查看事件详情")}</p>')

    msg = EmailMessage()
    _headers(msg, env, event_subject(alert), rule)
    msg.set_content("\n".join(plain) + "\n")
    msg.add_alternative(_page(LEVEL_HEX[alert.level], f"舆情预警·{level_label(alert.level)}", "".join(body)),
                        subtype="html")
    if chart is not None:
        add_inline_image(msg, chart, cid, "trend.png")
    return msg


def add_inline_image(msg: EmailMessage, png: bytes, cid: str, filename: str) -> None:
    """Attach ``png`` to the HTML part (which becomes multipart/related) as ``Content-ID: <cid>``."""
    html_part = msg.get_body(preferencelist=("html",))
    if html_part is None:
        raise ValueError("the message has no HTML part to attach an inline image to")
    html_part.add_related(png, maintype="image", subtype="png", cid=f"<{cid}>", disposition="inline",
                          filename=filename)


# ---- other alerts -----------------------------------------------------------------------------------------
def notice_subject(alert: NoticeAlert) -> str:
    level = f"·{level_label(alert.level)}" if alert.level else ""
    return f"【{one_line(alert.category)}{level}】{shorten(one_line(alert.headline), SUBJECT_TITLE_MAX)}"


def compose_notice(alert: NoticeAlert, env: Envelope, *, rule: str = "", reason: str = "") -> EmailMessage:
    rows = list(alert.rows)
    if rule:
        rows.append(("提醒规则", f"{rule}：{reason}" if reason else rule))
    page = alert.page(env.dashboard_url)
    posts = [_post_line(p, env.tz) for p in alert.posts]
    plain = [f"【{alert.category}】{one_line(alert.headline)}", ""]
    if alert.summary:
        plain += [one_line(alert.summary), ""]
    plain += [f"{k}：{one_line(v)}" for k, v in rows]
    if posts:
        plain += ["", "相关信息："] + [f"  {i}. {p}" for i, (p, _) in enumerate(posts, 1)]
    plain += ["", f"在舆情平台查看：{page}", "", f"—— {FOOTER}"]
    body = [f'<h2 style="margin:12px 0 6px">{html.escape(one_line(alert.headline))}</h2>']
    if alert.summary:
        body.append(f"<p>{html.escape(one_line(alert.summary))}</p>")
    body.append(_table(rows))
    if posts:
        items = "".join(f"<li>{h}</li>" for _, h in posts)
        body.append(f'<h3 style="margin:14px 0 4px">相关信息</h3><ol style="margin:0">{items}</ol>')
    body.append(f'<p style="margin-top:14px">{_link(page, "在舆情平台查看")}</p>')
    colour = LEVEL_HEX[alert.level] if alert.level else "#455a64"
    banner = alert.category + (f"·{level_label(alert.level)}" if alert.level else "")
    msg = EmailMessage()
    _headers(msg, env, notice_subject(alert), rule)
    msg.set_content("\n".join(plain) + "\n")
    msg.add_alternative(_page(colour, banner, "".join(body)), subtype="html")
    return msg


def compose(payload: AlertPayload, env: Envelope, *, rule: str = "", reason: str = "") -> EmailMessage:
    if isinstance(payload, EventAlert):
        return compose_event(payload, env, rule=rule, reason=reason)
    return compose_notice(payload, env, rule=rule, reason=reason)


# ---- digests ----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class DigestItem:
    payload: AlertPayload
    reason: str
    decided_at: datetime


def _item_title(payload: AlertPayload) -> str:
    if isinstance(payload, EventAlert):
        return f"[{level_label(payload.level)}] {one_line(payload.title)}（热度 {payload.heat:.0f}）"
    level = f"[{level_label(payload.level)}] " if payload.level else ""
    return f"{level}[{payload.category}] {one_line(payload.headline)}"


def compose_digest(items: Sequence[DigestItem], env: Envelope, *, rule: str, quiet: bool) -> EmailMessage:
    """One mail listing every item (oldest first), each with its reason, time and page."""
    if not items:
        raise ValueError("a digest needs at least one item")
    ordered = sorted(items, key=lambda i: i.decided_at)
    first, last = ordered[0].decided_at, ordered[-1].decided_at
    start, end = first.astimezone(env.tz), last.astimezone(env.tz)
    # an overnight summary runs past midnight: the end then names its day too
    ends = f"{end:%m-%d %H:%M}" if end.date() != start.date() else f"{end:%H:%M}"
    span = f"{start:%m-%d %H:%M}–{ends}"
    kind = "夜间汇总" if quiet else "预警汇总"
    subject = f"【{kind}】{one_line(rule)}：{len(items)} 条提醒（{span}）"
    plain = [f"【{kind}】{one_line(rule)}", f"{span} 共 {len(items)} 条：", ""]
    lis = []
    for n, item in enumerate(ordered, 1):
        page = item.payload.page(env.dashboard_url)
        when = item.decided_at.astimezone(env.tz).strftime("%H:%M")
        title = _item_title(item.payload)
        plain += [f"{n}. {title}", f"   {when} {one_line(item.reason)}", f"   {page}"]
        lis.append(f"<li>{_link(page, title)}<br><span style=\"color:#777\">{html.escape(when)} "
                   f"{html.escape(one_line(item.reason))}</span></li>")
    plain += ["", f"—— {FOOTER}"]
    body = (f'<h2 style="margin:12px 0 6px">{html.escape(one_line(rule))}</h2>'
            f"<p>{html.escape(span)} 共 {len(items)} 条提醒：</p><ol>{''.join(lis)}</ol>")
    msg = EmailMessage()
    _headers(msg, env, subject, rule)
    msg.set_content("\n".join(plain) + "\n")
    msg.add_alternative(_page("#455a64", kind, body), subtype="html")
    return msg
