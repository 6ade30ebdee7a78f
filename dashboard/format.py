"""Pure formatting helpers for the dashboard: labels, times, safe Markdown, excerpts (no Streamlit here)."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from datetime import datetime
from urllib.parse import quote
from zoneinfo import ZoneInfo

from yuqing.errors import ConfigError
from yuqing.models import SENTIMENT_LABELS, Post
from yuqing.text import display_title as text_display_title
from yuqing.text import excerpt as text_excerpt
from yuqing.text import http_url, one_line

SENTIMENT_COLORS: dict[str, str] = {"negative": "red", "neutral": "gray", "positive": "green"}
# Source health (index.source_health) as the 信源状态 page and `yuqing sources` name it.
STATUS_LABELS: dict[str, str] = {
    "ok": "正常", "calm": "平静(无新内容)", "silent": "静默(无任何产出)", "failing": "失败", "unknown": "未运行",
}
UNANALYSED_LABEL = "未分析"
UNKNOWN_TIME = "时间未知"
NO_TITLE = "（无标题）"
TIME_FORMAT = "%Y-%m-%d %H:%M"

# Every ASCII punctuation character may be backslash-escaped in CommonMark; escaping them all keeps
# Markdown, LaTeX ($), Streamlit directives (:red[...]) and HTML out of untrusted text.
_ASCII_PUNCT = re.compile(r"""([!"#$%&'()*+,\-./:;<=>?@\[\\\]^_`{|}~])""")


def sentiment_label(sentiment: str | None) -> str:
    """负面/中性/正面 for a sentiment value; 未分析 when the post has no analysis."""
    if sentiment is None:
        return UNANALYSED_LABEL
    return SENTIMENT_LABELS.get(sentiment, sentiment)


def sentiment_value(label: str) -> str:
    """The stored sentiment value for a Chinese label (inverse of :func:`sentiment_label`)."""
    for value, text in SENTIMENT_LABELS.items():
        if text == label:
            return value
    raise ValueError(f"unknown sentiment label {label!r}")


def _escape_punct(text: str) -> str:
    return _ASCII_PUNCT.sub(r"\\\1", text)


def md_escape(text: str) -> str:
    """``text`` as literal Markdown on one line: punctuation escaped, whitespace runs collapsed."""
    return _escape_punct(one_line(text))


def badge(text: str, color: str) -> str:
    """A Streamlit Markdown badge with literal ``text``."""
    return f":{color}-badge[{md_escape(text)}]"


def sentiment_badge(sentiment: str | None) -> str:
    """The sentiment badge of a post; empty when the post was not analysed."""
    if sentiment is None:
        return ""
    return badge(sentiment_label(sentiment), SENTIMENT_COLORS.get(sentiment, "gray"))


def safe_url(url: str) -> str | None:
    """``url`` usable as a Markdown link target, or None when it is not an http(s) URL."""
    target = http_url(url)
    if target is None:
        return None
    # Keep every URL character except those that end or break a Markdown link destination.
    return quote(target, safe="!#$%&'*+,-./:;=?@[]^_`{|}~")


def title_link(title: str, url: str) -> str:
    """Markdown for a post title linking to its URL (plain text when the URL is not http(s))."""
    text = md_escape(title) or NO_TITLE
    target = safe_url(url)
    return f"[{text}]({target})" if target else text


def format_time(value: datetime | None, tz: str) -> str:
    """``value`` in zone ``tz`` as ``2026-11-27 14:05``; 时间未知 when missing."""
    if value is None:
        return UNKNOWN_TIME
    return value.astimezone(ZoneInfo(tz)).strftime(TIME_FORMAT)


def meta_line(post: Post, tz: str) -> str:
    """来源 · 站点 · 作者 · 发布时间 of a post as escaped Markdown."""
    parts = [f"来源：{md_escape(post.source)}"]
    if post.site and post.site != post.source:
        parts.append(md_escape(post.site))
    if post.author:
        parts.append(f"作者：{md_escape(post.author)}")
    if post.published_at is not None:
        parts.append(f"发布于 {format_time(post.published_at, tz)}")
    else:
        parts.append(f"发布时间未知（抓取于 {format_time(post.fetched_at, tz)}）")
    return " · ".join(parts)


def badges_line(post: Post) -> str:
    """Sentiment and topic badges, and 人工研判 when a person set relevance and topic (empty when the post has no
    analysis)."""
    a = post.analysis
    if a is None:
        return ""
    items = [sentiment_badge(a.sentiment)]
    if a.topic:
        items.append(badge(a.topic, "blue"))
    if not a.relevant:
        items.append(badge("非相关", "gray"))
    if post.judgement is not None:  # relevance and topic above are a person's (人工研判), not the model's
        items.append(badge("人工研判", "violet"))
    return " ".join(items)


def _find_spans(text: str, terms: Iterable[str]) -> list[tuple[int, int]]:
    """Merged, sorted (start, end) spans where any term occurs in ``text`` (case-insensitive)."""
    words = sorted({t for t in terms if t}, key=len, reverse=True)
    if not words:
        return []
    pattern = re.compile("|".join(re.escape(w) for w in words), re.IGNORECASE)
    spans: list[tuple[int, int]] = []
    for m in pattern.finditer(text):
        if spans and m.start() <= spans[-1][1]:
            spans[-1] = (spans[-1][0], max(spans[-1][1], m.end()))
        else:
            spans.append((m.start(), m.end()))
    return spans


def excerpt(content: str, terms: Sequence[str] = (), width: int = 140) -> str:
    """About ``width`` characters of ``content`` on one line, a third of them before the first search term."""
    return text_excerpt(content, terms, before=width // 3, after=width - width // 3).text


def highlight(text: str, terms: Sequence[str]) -> str:
    """``text`` as escaped one-line Markdown with the search terms in bold.

    Only terms that begin and end with a letter, digit or Han character are emphasised: CommonMark does not
    render ``**`` next to punctuation reliably, and a stray ``**`` would be worse than no emphasis.
    """
    text = one_line(text)
    usable = [t for t in terms if t and t[0].isalnum() and t[-1].isalnum()]
    out: list[str] = []
    pos = 0
    for start, end in _find_spans(text, usable):
        out.append(_escape_punct(text[pos:start]))
        out.append(f"**{_escape_punct(text[start:end])}**")
        pos = end
    out.append(_escape_punct(text[pos:]))
    return "".join(out)


def count_line(total: int, shown: int, *, newest_first: bool = True) -> str:
    """The result count: 共 N 条, saying how many are shown when that is fewer (the newest, or the first in the
    order shown)."""
    if shown < total:
        return f"共 {total} 条，显示{'最新' if newest_first else '前'} {shown} 条"
    return f"共 {total} 条"


def display_title(post: Post) -> str:
    """The post's title, or the start of its text when it has none (:func:`yuqing.text.display_title`)."""
    return text_display_title(post.title, post.content)


def card_markdown(post: Post, tz: str, terms: Sequence[str] = ()) -> str:
    """A post card's text as one Markdown block: the linked title with its badges, the 来源 · 作者 · 时间 line
    (small, grey, as a caption) and an excerpt around the search terms, one paragraph each.

    One element per card rather than three: a page of cards is mostly these, and the browser's work grows with
    the number of elements (总览 lists ten, 检索 up to fifty). Every piece of post text is escaped (inert).
    """
    head = f"**{title_link(display_title(post), post.url)}**"
    badges = badges_line(post)
    parts = [f"{head} {badges}" if badges else head, f":gray[:small[{meta_line(post, tz)}]]"]
    if post.content.strip():
        parts.append(highlight(excerpt(post.content, terms), terms))
    return "\n\n".join(parts)


# pydantic's error types (yuqing.errors.ConfigError.error_type) as a person reads them; {name}: the error's context
_CONFIG_REASONS: dict[str, str] = {
    "missing": "缺少此项",
    "extra_forbidden": "不认识的设置项（拼写有误？）",
    "greater_than": "须大于 {gt}",
    "greater_than_equal": "须不小于 {ge}",
    "less_than": "须小于 {lt}",
    "less_than_equal": "须不大于 {le}",
    "string_too_short": "至少 {min_length} 个字符",
    "string_too_long": "最多 {max_length} 个字符",
    "string_pattern_mismatch": "格式不符合要求（须匹配 {pattern}）",
    "too_short": "至少需要 {min_length} 项",
    "too_long": "最多 {max_length} 项",
    "int_parsing": "须为整数", "int_type": "须为整数", "int_from_float": "须为整数",
    "float_parsing": "须为数字", "float_type": "须为数字",
    "bool_parsing": "须为 true 或 false", "bool_type": "须为 true 或 false",
    "string_type": "须为文本",
    "list_type": "须为列表",
    "dict_type": "须为“键: 值”映射", "model_type": "须为“键: 值”映射",
    "literal_error": "须为以下之一：{expected}", "enum": "须为以下之一：{expected}",
    "url_parsing": "不是有效的网址", "url_scheme": "网址须以 {expected_schemes} 开头",
    "time_parsing": "须为时间（如 07:30）", "datetime_parsing": "须为日期时间",
}


def config_error_text(exc: ConfigError) -> str:
    """A configuration error in Chinese for the settings page: the file, the field and what is wrong (pydantic's
    common errors said in Chinese; a project validator's own message as it is)."""
    template = _CONFIG_REASONS.get(exc.error_type or "")
    reason = exc.detail
    if template is not None:
        try:
            reason = template.format(**exc.error_ctx)
        except (KeyError, IndexError):  # a context without the expected value: the type alone still says enough
            reason = template.split("{")[0].rstrip("：: ") or exc.detail
    elif exc.error_type == "value_error":
        reason = reason.removeprefix("Value error, ")
    where = "".join(part for part in (f"{exc.file.rsplit('/', 1)[-1]} " if exc.file else "",
                                      f"中的 {exc.field}" if exc.field else "") if part).strip()
    return f"{where}：{reason}" if where else reason


def error_text(exc: BaseException) -> str:
    """What a page shows of a refused action: a configuration error said as :func:`config_error_text` does, any
    other error's own message (the project's Chinese ones)."""
    return config_error_text(exc) if isinstance(exc, ConfigError) else str(exc)


# What went wrong with a mail (alerts.mailer's errors, English for the log), said for a press officer; the
# technical text stays beside it for whoever fixes the mail server.
_MAIL_ERRORS: tuple[tuple[str, str], ...] = (
    ("failed at login", "邮件服务器登录失败：请检查 smtp.username / 密码"),
    ("failed at STARTTLS", "与邮件服务器建立加密连接（STARTTLS）失败：请检查 TLS 设置和证书"),
    ("failed at connect", "无法连接邮件服务器：请确认其地址、端口和网络"),
    ("failed at EHLO", "邮件服务器没有正常应答"),
    ("failed while sending", "发送中与邮件服务器的连接中断，将自动重试"),
    ("SMTPRecipientsRefused", "邮件服务器拒收了全部收件人：请核对收件地址"),
    ("SMTPSenderRefused", "邮件服务器拒绝了发件人地址：请检查 smtp.sender"),
    ("SMTPDataError", "邮件服务器拒收了这封邮件"),
    ("recipients refused", "部分收件人被邮件服务器拒收"),
    ("not connected", "未连接邮件服务器"),
)


def mail_error_text(error: str | None) -> str:
    """A Chinese summary of an outbox entry's ``last_error`` ("" when there is none)."""
    if not error:
        return ""
    for needle, text in _MAIL_ERRORS:
        if needle in error:
            return text
    return "发送失败（见技术信息）"
