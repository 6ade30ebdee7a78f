"""Signals: what happened, as the leaders' alert rules see it (pure, typed; built by the producers in phase 2).

One class per source of alerts. Each signal names its subject (``subject_key``: what a cooldown is counted
per, e.g. one event or one ticket), the responsible unit and topic (for routing), its risk level when it has
one (for the level-I override of quiet hours), and the :data:`alerts.content.AlertPayload` a mail shows.

The producers (phase 2): the events engine after each clustering run (:class:`EventSignal`, with the level the
event had at the previous run), the posts index (:class:`SurgeSignal`, :func:`alerts.reports` style counts per
topic and window), 专题 matches on ingest (:class:`KeywordGroupSignal`), the response-tracking store
(:class:`TicketDueSignal`, :class:`InstructionSignal`, :class:`FoiaDueSignal`) and source health
(:class:`SourceSilentSignal`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta, tzinfo
from typing import Literal
from urllib.parse import quote, urlencode

from alerts.content import (
    FOIA_PAGE,
    POST_PAGE,
    SEARCH_PAGE,
    SENTIMENT_LABELS,
    SOURCES_PAGE,
    TICKET_PAGE,
    EventAlert,
    NoticeAlert,
    PostLink,
    RiskLevel,
    level_label,
)
from yuqing.models import KIND_LABELS

SilentStatus = Literal["silent", "failing"]


def _require_aware(value: datetime | None, what: str) -> None:
    if value is not None and value.tzinfo is None:
        raise ValueError(f"{what} must be timezone-aware")


def _hours(value: float) -> str:
    return f"{value:.0f}" if float(value).is_integer() else f"{value:.1f}"


def _post_page(post: PostLink) -> str:
    """The dashboard page of one post ("" when the link has no post id: the mail then links the dashboard)."""
    return POST_PAGE.format(id=quote(post.post_id, safe="")) if post.post_id else ""


def _local(value: datetime | None, tz: tzinfo) -> str:
    """A time as the office reads it (``tz``: settings.timezone); the signals hold aware times, often UTC."""
    return value.astimezone(tz).strftime("%Y-%m-%d %H:%M") if value is not None else "未知"


@dataclass(frozen=True)
class EventSignal:
    """An event as the events engine now sees it; ``previous_level``: its level at the previous run (None:
    the engine had not reported it before)."""

    event: EventAlert
    previous_level: RiskLevel | None = None
    keyword_groups: tuple[str, ...] = ()

    @property
    def subject_key(self) -> str:
        return f"event:{self.event.event_id}"

    @property
    def unit(self) -> str | None:
        return self.event.unit

    @property
    def topic(self) -> str | None:
        return self.event.topic

    @property
    def level(self) -> RiskLevel | None:
        return self.event.level

    @property
    def title(self) -> str:
        return self.event.title

    def payload(self, now: datetime, tz: tzinfo) -> EventAlert:
        return self.event


@dataclass(frozen=True)
class SurgeSignal:
    """Negative posts on one topic in a window (``window_end - window_minutes`` … ``window_end``) and in the
    window before it."""

    topic: str
    window_end: datetime
    window_minutes: int
    negative: int
    total: int
    prev_negative: int
    prev_total: int
    unit: str | None = None
    posts: tuple[PostLink, ...] = ()

    def __post_init__(self) -> None:
        _require_aware(self.window_end, "window_end")
        if min(self.negative, self.total, self.prev_negative, self.prev_total) < 0:
            raise ValueError("counts must be >= 0")
        if self.negative > self.total or self.prev_negative > self.prev_total:
            raise ValueError("negative posts cannot outnumber all posts")

    @property
    def share(self) -> float:
        return self.negative / self.total if self.total else 0.0

    @property
    def prev_share(self) -> float:
        return self.prev_negative / self.prev_total if self.prev_total else 0.0

    @property
    def subject_key(self) -> str:
        return f"topic:{self.topic}"

    @property
    def level(self) -> RiskLevel | None:
        return None

    @property
    def title(self) -> str:
        return f"“{self.topic}”负面信息激增"

    def payload(self, now: datetime, tz: tzinfo) -> NoticeAlert:
        rows = (
            ("话题", self.topic),
            ("统计窗口", f"截至 {_local(self.window_end, tz)} 的 {self.window_minutes} 分钟"),
            ("负面信息", f"{self.negative} 条（占 {self.share:.0%}，共 {self.total} 条）"),
            ("上一窗口", f"{self.prev_negative} 条（占 {self.prev_share:.0%}，共 {self.prev_total} 条）"),
        )
        start = self.window_end - timedelta(minutes=self.window_minutes)
        query = urlencode({"topic": self.topic, "sentiment": "negative",  # the window's days, local
                           "since": start.astimezone(tz).date().isoformat(),
                           "until": self.window_end.astimezone(tz).date().isoformat()})
        return NoticeAlert(
            category="负面激增", headline=self.title, rows=rows, posts=self.posts,
            summary=f"近{self.window_minutes}分钟“{self.topic}”话题负面信息 {self.negative} 条，"
                    f"上一窗口 {self.prev_negative} 条。",
            page_path=SEARCH_PAGE.format(query=query),
        )


@dataclass(frozen=True)
class KeywordGroupSignal:
    """A post matching a 专题 (keyword group)."""

    group: str
    post: PostLink
    unit: str | None = None
    topic: str | None = None
    event_id: str | None = None

    @property
    def subject_key(self) -> str:
        return f"group:{self.group}"

    @property
    def occurrence(self) -> str:
        return self.post.post_id or self.post.url

    @property
    def level(self) -> RiskLevel | None:
        return None

    @property
    def title(self) -> str:
        return self.post.title or self.post.url

    def payload(self, now: datetime, tz: tzinfo) -> NoticeAlert:
        rows = (("专题", self.group), ("来源", self.post.source or "未知"),
                ("发布时间", _local(self.post.published_at, tz)))
        return NoticeAlert(
            category=f"专题·{self.group}", headline=self.title, rows=rows, posts=(self.post,),
            page_path=_post_page(self.post),
            summary=f"专题“{self.group}”命中新信息。",
        )


@dataclass(frozen=True)
class TicketDueSignal:
    """One deadline of an open 处置单 (5 h 权威信息 / 24 h 新闻发布会 / 48 h 回应 …)."""

    ticket_id: str
    title: str
    unit: str
    deadline_kind: str
    deadline_basis: str
    due_at: datetime
    status: str = "处置中"
    level: RiskLevel | None = None
    topic: str | None = None
    handler: str | None = None

    def __post_init__(self) -> None:
        _require_aware(self.due_at, "due_at")

    @property
    def subject_key(self) -> str:
        return f"ticket:{self.ticket_id}"

    def remaining_hours(self, now: datetime) -> float:
        return (self.due_at - now).total_seconds() / 3600

    def payload(self, now: datetime, tz: tzinfo) -> NoticeAlert:
        remaining_hours = self.remaining_hours(now)
        when = f"已超期 {_hours(-remaining_hours)} 小时" if remaining_hours < 0 else \
            f"剩余 {_hours(remaining_hours)} 小时"
        rows: list[tuple[str, str]] = [
            ("处置单", self.ticket_id), ("事项", self.title), ("责任单位", self.unit),
            ("时限", f"{self.deadline_kind}（{self.deadline_basis}）"), ("截止时间", _local(self.due_at, tz)),
            ("状态", f"{self.status}，{when}"),
        ]
        if self.handler:
            rows.insert(3, ("承办人", self.handler))
        if self.level:
            rows.append(("风险等级", level_label(self.level)))
        verb = "已超期" if remaining_hours < 0 else "即将到期"
        return NoticeAlert(
            category="处置时限", headline=f"{self.deadline_kind}{verb}：{self.title}", level=self.level,
            rows=tuple(rows), summary=f"处置单 {self.ticket_id} 的{self.deadline_kind}时限{verb}（{when}）。",
            page_path=TICKET_PAGE.format(id=self.ticket_id),
        )

@dataclass(frozen=True)
class InstructionSignal:
    """A 领导批示 on a 处置单 that waits for its report back: the responsible unit is to carry it out (批示转办)."""

    ticket_id: str
    title: str
    unit: str
    no: int
    leader: str
    text: str
    at: datetime
    due_at: datetime | None = None
    status: str = "处置中"
    level: RiskLevel | None = None
    topic: str | None = None

    def __post_init__(self) -> None:
        _require_aware(self.at, "at")
        _require_aware(self.due_at, "due_at")

    @property
    def subject_key(self) -> str:
        return f"ticket:{self.ticket_id}"

    def payload(self, now: datetime, tz: tzinfo) -> NoticeAlert:
        rows: list[tuple[str, str]] = [
            ("处置单", self.ticket_id), ("事项", self.title), ("责任单位", self.unit), ("批示领导", self.leader),
            ("批示时间", _local(self.at, tz)), ("批示内容", self.text),
            ("反馈时限", _local(self.due_at, tz) if self.due_at is not None else "未设"), ("处置状态", self.status),
        ]
        due = f"，请于 {_local(self.due_at, tz)} 前反馈落实情况" if self.due_at is not None else "，请落实并反馈"
        return NoticeAlert(
            category="领导批示", headline=f"{self.leader}批示：{self.title}", level=self.level, rows=tuple(rows),
            summary=f"{self.leader}对处置单 {self.ticket_id} 作出批示{due}（处置跟踪页“反馈落实情况”）。",
            page_path=TICKET_PAGE.format(id=self.ticket_id),
        )


@dataclass(frozen=True)
class FoiaDueSignal:
    """A 依申请公开 request and its statutory clock (``remaining_working_days`` after today; negative: overdue)."""

    request_id: str
    summary: str
    received_on: date
    due: date
    remaining_working_days: int
    unit: str | None = None
    uncovered: bool = False  # the clock runs beyond the official calendar's data (日历未覆盖)

    @property
    def subject_key(self) -> str:
        return f"foia:{self.request_id}"

    @property
    def topic(self) -> str | None:
        return None

    @property
    def level(self) -> RiskLevel | None:
        return None

    @property
    def title(self) -> str:
        return self.summary

    def payload(self, now: datetime, tz: tzinfo) -> NoticeAlert:
        left = self.remaining_working_days
        when = f"已超期 {-left} 个工作日" if left < 0 else "今日到期" if left == 0 else f"剩余 {left} 个工作日"
        rows: list[tuple[str, str]] = [
            ("申请编号", self.request_id), ("申请内容", self.summary), ("收到日期", self.received_on.isoformat()),
            ("答复期限", f"{self.due.isoformat()}（{when}）"),
        ]
        if self.uncovered:
            rows.append(("提示", "日历未覆盖：期限按周一至周五推算，请人工核对"))
        return NoticeAlert(
            category="依申请公开", headline=f"答复期限{when}：{self.summary}", rows=tuple(rows),
            summary=f"依申请公开申请 {self.request_id} 的答复期限为 {self.due.isoformat()}（{when}）。",
            page_path=FOIA_PAGE.format(id=self.request_id),
        )


@dataclass(frozen=True)
class SourceSilentSignal:
    """A source that stopped delivering (``silent``: runs without output; ``failing``: the last run failed)."""

    source: str
    kind: str
    status: SilentStatus
    last_success: datetime | None
    consecutive_empty: int = 0
    last_error: str | None = None

    def __post_init__(self) -> None:
        _require_aware(self.last_success, "last_success")

    @property
    def subject_key(self) -> str:
        return f"source:{self.source}"

    @property
    def unit(self) -> str | None:
        return None

    @property
    def topic(self) -> str | None:
        return None

    @property
    def level(self) -> RiskLevel | None:
        return None

    @property
    def title(self) -> str:
        return f"信源“{self.source}”{'静默' if self.status == 'silent' else '抓取失败'}"

    def payload(self, now: datetime, tz: tzinfo) -> NoticeAlert:
        rows: list[tuple[str, str]] = [
            ("信源", f"{self.source}（{self.kind}）"),
            ("状态", "静默（连续无产出）" if self.status == "silent" else "失败"),
            ("最近一次成功", _local(self.last_success, tz)),
            ("连续无产出次数", str(self.consecutive_empty)),
        ]
        if self.last_error:
            rows.append(("最近错误", self.last_error))
        return NoticeAlert(
            category="信源异常", headline=self.title, rows=tuple(rows),
            summary=f"信源“{self.source}”可能失效，监测存在盲区，请检查。", page_path=SOURCES_PAGE,
        )


@dataclass(frozen=True)
class PostSignal:
    """A new post matching the post rule ``rule`` (config/alerts.yaml ``rules``; alerts.query builds the search)."""

    rule: str
    post: PostLink
    excerpt: str = ""
    keywords: tuple[str, ...] = ()
    kind: str = ""
    author: str | None = None
    topic: str | None = None
    unit: str | None = None
    fetched_at: datetime | None = None  # when the post was fetched (part of the stored payload)

    @property
    def subject_key(self) -> str:
        return f"post:{self.post.post_id or self.post.url}"

    @property
    def level(self) -> RiskLevel | None:
        return None

    @property
    def title(self) -> str:
        return self.post.title or self.excerpt or self.post.url

    def payload(self, now: datetime, tz: tzinfo) -> NoticeAlert:
        rows: list[tuple[str, str]] = [("来源", self.post.source or "未知")]
        if self.kind:
            rows.append(("类型", KIND_LABELS.get(self.kind, self.kind)))
        if self.author:
            rows.append(("作者", self.author))
        rows.append(("发布时间", _local(self.post.published_at, tz)))
        if self.post.sentiment:
            rows.append(("情感倾向", SENTIMENT_LABELS[self.post.sentiment]))
        if self.topic:
            rows.append(("主题", self.topic))
        if self.keywords:
            rows.append(("命中关键词", "、".join(self.keywords)))
        return NoticeAlert(
            category="舆情预警", headline=f"{self.rule}：{self.title}", rows=tuple(rows), posts=(self.post,),
            summary=self.excerpt, page_path=_post_page(self.post),
        )


Signal = (PostSignal | EventSignal | SurgeSignal | KeywordGroupSignal | TicketDueSignal | InstructionSignal
          | FoiaDueSignal | SourceSilentSignal)

