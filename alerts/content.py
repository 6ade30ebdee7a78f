"""What an alert mail says, as typed values (pure; no network, no clock).

An :class:`EventAlert` is one 舆情事件 at a risk level (the events engine's record, reduced to what a leader
reads); a :class:`NoticeAlert` is every other kind (a ticket deadline, a 依申请公开 reminder, a silent source, a
negative surge, a 专题 hit): a headline, a summary and labelled rows. Both are stored in the outbox as JSON
(``model_dump(mode="json")``) and rendered by :mod:`alerts.compose`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal
from urllib.parse import quote, urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator

RiskLevel = Literal["I", "II", "III", "IV"]
# Most severe first: 特别重大 (I, 红) … 一般 (IV, 蓝).
LEVELS: tuple[RiskLevel, ...] = ("I", "II", "III", "IV")
LEVEL_NUMERALS: dict[str, str] = {"I": "Ⅰ", "II": "Ⅱ", "III": "Ⅲ", "IV": "Ⅳ"}
LEVEL_COLOURS: dict[str, str] = {"I": "红色", "II": "橙色", "III": "黄色", "IV": "蓝色"}
LEVEL_HEX: dict[str, str] = {"I": "#c62828", "II": "#ef6c00", "III": "#f9a825", "IV": "#1565c0"}
Sentiment = Literal["negative", "neutral", "positive"]
SENTIMENT_LABELS: dict[str, str] = {"negative": "负面", "neutral": "中性", "positive": "正面"}

# The dashboard pages an alert links to (relative to ``alerts.dashboard_url``): Streamlit serves views/<name>.py
# at /<name> (处置跟踪 and 依申请公开 open the record of ``?id=``; 事件详情 is views/event.py).
EVENT_PAGE = "/event?id={id}"
TICKET_PAGE = "/tickets?id={id}"
FOIA_PAGE = "/foia?id={id}"
SOURCES_PAGE = "/sources"
SEARCH_PAGE = "/search?{query}"
POST_PAGE = "/judge?post={id}"  # one post with its analysis (人工研判: read-only for leaders and analysts)


def level_label(level: RiskLevel) -> str:
    """``Ⅱ级橙色`` for ``II``."""
    return f"{LEVEL_NUMERALS[level]}级{LEVEL_COLOURS[level]}"


def level_rank(level: RiskLevel) -> int:
    """0 for the most severe (I) … 3 for IV."""
    return LEVELS.index(level)


def at_least(level: RiskLevel | None, threshold: RiskLevel) -> bool:
    """Whether ``level`` is ``threshold`` or more severe (I is the most severe)."""
    return level is not None and level_rank(level) <= level_rank(threshold)


def page_url(base: str, path: str, **ids: str) -> str:
    """``base`` + ``path`` with ``ids`` URL-quoted into its placeholders."""
    return base.rstrip("/") + path.format(**{k: quote(v, safe="") for k, v in ids.items()})


def safe_href(url: str | None) -> str | None:
    """``url`` when it may become a link in HTML (http/https only), else None."""
    if not url:
        return None
    return url if urlsplit(url).scheme.lower() in ("http", "https") else None


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _aware(value: datetime | None, name: str) -> datetime | None:
    if value is not None and value.tzinfo is None:
        raise ValueError(f"{name} must be timezone-aware")
    return value


class PostLink(_Model):
    """One post as an alert or a report cites it."""

    title: str
    url: str
    source: str = ""
    published_at: datetime | None = None
    sentiment: Sentiment | None = None
    post_id: str | None = None

    @field_validator("published_at")
    @classmethod
    def _tz(cls, value: datetime | None) -> datetime | None:
        return _aware(value, "published_at")


class TimelinePoint(_Model):
    """Posts of an event in one hour (``at``: the hour's start)."""

    at: datetime
    posts: int = Field(ge=0)
    negative: int = Field(0, ge=0)

    @field_validator("at")
    @classmethod
    def _tz(cls, value: datetime) -> datetime:
        _aware(value, "at")
        return value


class EventAlert(_Model):
    """A 舆情事件 as the leaders' mail shows it."""

    kind: Literal["event"] = "event"
    event_id: str = Field(min_length=1)
    title: str
    level: RiskLevel
    reasons: tuple[str, ...] = ()
    heat: float = Field(ge=0, le=100)
    heat_6h: float | None = Field(None, ge=0, le=100)
    heat_24h: float | None = Field(None, ge=0, le=100)
    summary: str = ""
    count: int = Field(0, ge=0)
    negative_share: float = Field(0.0, ge=0, le=1)
    first_source: str | None = None
    started_at: datetime | None = None
    unit: str | None = None
    topic: str | None = None
    keywords: tuple[str, ...] = ()
    timeline: tuple[TimelinePoint, ...] = ()
    top_posts: tuple[PostLink, ...] = ()
    # posts of the bureau's own channels in the event (本局发布); None: not known (an alert decided before the
    # events carried the count)
    own_posts: int | None = Field(None, ge=0)

    @field_validator("started_at")
    @classmethod
    def _tz(cls, value: datetime | None) -> datetime | None:
        return _aware(value, "started_at")

    def page(self, dashboard_url: str) -> str:
        return page_url(dashboard_url, EVENT_PAGE, id=self.event_id)


class NoticeAlert(_Model):
    """Any other alert: a headline (the subject's tail), a summary, labelled rows, cited posts and a page."""

    kind: Literal["notice"] = "notice"
    category: str = Field(min_length=1)  # shown in the subject, e.g. 处置时限, 依申请公开, 信源异常
    headline: str = Field(min_length=1)
    level: RiskLevel | None = None
    summary: str = ""
    rows: tuple[tuple[str, str], ...] = ()
    posts: tuple[PostLink, ...] = ()
    page_path: str = ""  # relative to the dashboard's URL, already quoted

    def page(self, dashboard_url: str) -> str:
        return dashboard_url.rstrip("/") + self.page_path if self.page_path else dashboard_url


AlertPayload = Annotated[EventAlert | NoticeAlert, Field(discriminator="kind")]


class PayloadBox(_Model):
    """Wrapper to validate an :data:`AlertPayload` read back from storage."""

    payload: AlertPayload
