"""舆情专报: the special report on one event that the press office puts before the bureau's leaders — the first
step of the loop 专报 → 批示 → 落实 → 反馈 (rendering: :mod:`alerts.brief_render`).

What it says is read from the indexed data, never typed in: the event record (level and its reasons, heat and
forecast, sources, sentiment, level history), its posts (the most spread, the representative negative ones, the
bureau's own), its 处置单 (deadlines and how they stand, published responses, 领导批示 and their reports back)
or, without one, the deadlines ``response.yaml`` sets for its level counted from when it surfaced. The 处置建议
follow from those facts only (:func:`suggestions`); no threshold of their own.

A 专报 circulates on paper: every text in it goes through the privacy mask (``privacy.yaml``) whoever asks.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from elasticsearch import Elasticsearch

from alerts.compose import one_line, shorten
from alerts.content import EVENT_PAGE, SENTIMENT_LABELS, page_url
from alerts.reports import ReportPost
from index.events import EVENTS, EventRecord, get_events
from index.layout import POSTS
from index.search import post_from_source
from response.audit import local
from response.config import RISK_LABELS, ResponseConfig
from response.ledger import CLOSED
from response.tickets import (
    Deadline,
    Ticket,
    compute_deadlines,
    deadline_lines,
    format_span,
    instruction_lines,
)
from yuqing.errors import YuqingError
from yuqing.models import KIND_LABELS
from yuqing.settings import Settings

POSTS_PER_LIST = 5
EXCERPT_CHARS = 120
SECTION_SITUATION = "一、舆情概况"
SECTION_SPREAD = "二、传播态势"
SECTION_POSTS = "三、主要信息"
SECTION_JUDGEMENT = "四、研判"
SECTION_RESPONSE = "五、处置情况"
SECTION_ADVICE = "六、处置建议"


class BriefError(YuqingError):
    """No 专报 for this event (unknown id, or merged into another), or nobody to submit it to."""


@dataclass(frozen=True)
class BriefPost(ReportPost):
    """A post as the 专报 cites it (a report's post, title masked) with its spread and a masked excerpt."""

    spread: int = 0  # reposts + comments + likes
    excerpt: str = ""

    @property
    def more_text(self) -> str:
        """The excerpt where it says more than the title (a social post's title is the start of its text)."""
        prefix = self.title[:30].rstrip("…")
        return "" if not self.excerpt or self.excerpt.startswith(prefix) else self.excerpt

    @property
    def sentiment_label(self) -> str:
        return SENTIMENT_LABELS.get(self.sentiment or "", "—")


@dataclass(frozen=True)
class SinceLast:
    """What was published on the matter since the last 专报 was submitted (near-duplicates left out)."""

    posts: int
    negative: int


@dataclass(frozen=True)
class EventBrief:
    event: EventRecord
    generated_at: datetime
    tz: ZoneInfo
    dashboard_url: str
    spread: tuple[BriefPost, ...]  # the most reposted / commented / liked posts of the public
    negative: tuple[BriefPost, ...]  # the public's negative posts, the most spread first
    own: tuple[BriefPost, ...]  # the bureau's own channels on the matter (本局发布), oldest first
    ticket: Ticket | None
    # Without a ticket: the deadlines response.yaml sets at the event's level, from when it surfaced.
    expected_deadlines: tuple[Deadline, ...] = ()
    title: str = ""  # the event's title, masked
    # A 续报: the posts (all, negative) published since the ticket's last 专报 was submitted; None for a 首报.
    since_last: SinceLast | None = None

    @property
    def previous_brief(self) -> datetime | None:
        """When the last 专报 on the matter was submitted (None: this is the first, 首报)."""
        briefs = self.ticket.briefs() if self.ticket is not None else []
        return briefs[-1].at if briefs else None

    @property
    def heading(self) -> str:
        return f"关于“{self.title}”的舆情专报" + ("（续报）" if self.previous_brief is not None else "")

    @property
    def spoken(self) -> bool:
        """Whether the bureau has spoken on the matter: its own channels' posts, or a response the 处置单 records."""
        return bool(self.own or self.event.own_posts or (self.ticket is not None and self.ticket.published()))

    @property
    def event_url(self) -> str:
        return page_url(self.dashboard_url, EVENT_PAGE, id=self.event.event_id)

    def local(self, value: datetime | None, pattern: str = "%Y-%m-%d %H:%M") -> str:
        return local(value, self.tz).strftime(pattern) if value is not None else "—"


@dataclass(frozen=True)
class BriefContext:
    """What a 专报 needs besides the indexed data: the bureau's own channels (``sources.yaml``), the deadlines
    (``response.yaml``), the privacy mask, the dashboard's address and the time zone."""

    own_sources: frozenset[str]
    response: ResponseConfig
    mask: Callable[[str], str]
    dashboard_url: str
    tz: ZoneInfo

    @classmethod
    def load(cls, settings: Settings) -> BriefContext:
        """From the configuration files; a malformed one raises ``ConfigError`` naming the file and field."""
        from ingest.privacy import Redactor
        from response.config import load_response_config
        from yuqing.sources import load_sources

        sources = load_sources(settings.config_file("sources.yaml")).sources
        return cls(frozenset(s.name for s in sources if s.own),
                   load_response_config(settings.config_file("response.yaml")),
                   Redactor.from_file(settings.config_file("privacy.yaml")).redact,
                   settings.alerts.dashboard_url, ZoneInfo(settings.timezone))


# ---- queries (pure) ---------------------------------------------------------------------------------------
SPREAD_SORT: list[dict[str, Any]] = [
    {"engagement.reposts": {"order": "desc", "missing": "_last"}},
    {"engagement.comments": {"order": "desc", "missing": "_last"}},
    {"engagement.likes": {"order": "desc", "missing": "_last"}},
    {"published_at": {"order": "asc", "missing": "_last"}},
]


def brief_posts_query(event_id: str, *, own_sources: Sequence[str], own: bool, size: int = POSTS_PER_LIST,
                      sentiment: str | None = None) -> dict[str, Any]:
    """The event's posts for one list of the 专报: the bureau's own (``own``: oldest first) or the public's (the
    most spread first, near-duplicates left out), optionally of one sentiment."""
    filters: list[dict[str, Any]] = [{"term": {"event_id": event_id}}]
    must_not: list[dict[str, Any]] = [{"exists": {"field": "duplicate_of"}}]
    if own:
        filters.append({"terms": {"source": list(own_sources)}})
        sort: list[dict[str, Any]] = [{"published_at": {"order": "asc", "missing": "_last"}}]
    else:
        if own_sources:
            must_not.append({"terms": {"source": list(own_sources)}})
        sort = SPREAD_SORT
    if sentiment is not None:
        filters.append({"term": {"analysis.sentiment": sentiment}})
    return {"query": {"bool": {"filter": filters, "must_not": must_not}}, "sort": sort, "size": size,
            "_source": {"excludes": ["title_seg", "content_seg", "hot_terms"]}}


def since_query(event_id: str, since: datetime) -> dict[str, Any]:
    """How many of the event's posts were published since ``since``, and how many of them negative (pure)."""
    return {"size": 0, "track_total_hits": True,
            "query": {"bool": {"filter": [{"term": {"event_id": event_id}},
                                          {"range": {"published_at": {"gte": since.isoformat()}}}],
                               "must_not": [{"exists": {"field": "duplicate_of"}}]}},
            "aggs": {"negative": {"filter": {"term": {"analysis.sentiment": "negative"}}}}}


def brief_post(hit: Mapping[str, Any], mask: Callable[[str], str]) -> BriefPost:
    post = post_from_source(hit["_source"])
    e = post.engagement
    sentiment = post.analysis.sentiment if post.analysis is not None else None
    return BriefPost(
        post_id=hit["_id"], title=mask(one_line(post.title)), url=post.url, source=post.source, kind=post.kind,
        published_at=post.published_at or post.fetched_at, sentiment=sentiment,
        spread=e.reposts + e.comments + e.likes, excerpt=mask(shorten(one_line(post.content), EXCERPT_CHARS)),
    )


# ---- building ---------------------------------------------------------------------------------------------
def _posts(client: Elasticsearch, posts_alias: str, ctx: BriefContext, event_id: str, *, own: bool,
           sentiment: str | None = None) -> tuple[BriefPost, ...]:
    if own and not ctx.own_sources:
        return ()
    resp = client.search(index=posts_alias, **brief_posts_query(
        event_id, own_sources=sorted(ctx.own_sources), own=own, sentiment=sentiment))
    return tuple(brief_post(h, ctx.mask) for h in resp["hits"]["hits"])


def build_brief(client: Elasticsearch, posts_alias: str, record: EventRecord, ticket: Ticket | None,
                ctx: BriefContext, now: datetime) -> EventBrief:
    """The 专报 of ``record`` (with its ``ticket``, if one was opened) as of ``now``."""
    expected = () if ticket is not None else compute_deadlines(ctx.response, record.risk_level, record.started_at)
    briefs = ticket.briefs() if ticket is not None else []
    since_last = None
    if briefs:  # a 续报: what came since the last one
        resp = client.search(index=posts_alias, **since_query(record.event_id, briefs[-1].at))
        since_last = SinceLast(int(resp["hits"]["total"]["value"]), int(resp["aggregations"]["negative"]["doc_count"]))
    return EventBrief(
        event=record, generated_at=now, tz=ctx.tz, dashboard_url=ctx.dashboard_url,
        spread=_posts(client, posts_alias, ctx, record.event_id, own=False),
        negative=_posts(client, posts_alias, ctx, record.event_id, own=False, sentiment="negative"),
        own=_posts(client, posts_alias, ctx, record.event_id, own=True),
        ticket=ticket, expected_deadlines=expected, title=ctx.mask(one_line(record.title)), since_last=since_last,
    )


def load_brief(client: Elasticsearch, index_prefix: str, event_id: str, ctx: BriefContext,
               now: datetime) -> EventBrief:
    """Read the event and its 处置单 and build the 专报; :class:`BriefError` for an unknown or merged event."""
    from response.service import TicketService
    from response.tickets import ticket_id_for

    record = get_events(client, EVENTS.alias(index_prefix), [event_id]).get(event_id)
    if record is None:
        raise BriefError(f"没有事件 {event_id}（或尚未生成事件索引）")
    if record.status == "merged":
        raise BriefError(f"事件 {event_id} 已并入事件 {record.merged_into}：请为合并后的事件生成专报")
    loaded = TicketService(client, index_prefix).get(ticket_id_for("event", event_id))
    return build_brief(client, POSTS.alias(index_prefix), record, loaded.ticket if loaded else None, ctx, now)


# ---- what it says (pure) ----------------------------------------------------------------------------------
def situation_sentences(b: EventBrief) -> list[str]:
    """一、舆情概况: when and where it started, how much has been said, by whom, in what tone."""
    e, first = b.event, b.event.first_post
    s = e.sentiment
    public = max(e.count - e.own_posts, 0)
    lines = [
        f"{b.local(e.started_at)}，{first.source}首发“{b.title if first.title == e.title else first.title}”。"
        f"截至{b.local(b.generated_at)}，共监测到相关信息 {e.count} 条"
        + (f"（其中本局渠道发布 {e.own_posts} 条）" if e.own_posts else "")
        + f"，最近一条发布于{b.local(e.last_post_at)}。",
    ]
    if public:
        lines.append(f"公众信息中负面 {s.negative} 条、中性 {s.neutral} 条、正面 {s.positive} 条，负面占 "
                     f"{e.negative_share:.0%}。")
    if e.sources:
        top = "、".join(f"{x.name}（{x.count} 条）" for x in e.sources[:5])
        lines.append(f"信息来自 {len(e.sources)} 个来源，主要为{top}"
                     + (f"；渠道：{'，'.join(f'{KIND_LABELS.get(k.name, k.name)} {k.count} 条' for k in e.kinds)}"
                        if e.kinds else "") + "。")
    if b.since_last is not None and b.previous_brief is not None:
        lines.append(f"自上次呈报（{b.local(b.previous_brief)}）以来，新增信息 {b.since_last.posts} 条，其中负面 "
                     f"{b.since_last.negative} 条。")
    g = e.engagement
    if g.likes or g.comments or g.reposts:
        lines.append(f"累计点赞 {g.likes}、评论 {g.comments}、转发 {g.reposts}。")
    details = [f"主题：{e.topic}" if e.topic else "", f"责任单位：{e.unit}" if e.unit else "",
               f"关键词：{'、'.join(e.keywords[:8])}" if e.keywords else "",
               f"话题：{'、'.join(f'#{t}#' for t in e.hashtags[:5])}" if e.hashtags else ""]
    if any(details):
        lines.append("；".join(d for d in details if d) + "。")
    return lines


def trend_words(b: EventBrief) -> str:
    e = b.event
    if e.heat_24h > e.heat:
        return "预计继续升温"
    if e.heat_24h < e.heat:
        return "预计逐步回落"
    return "预计保持平稳"


def spread_sentences(b: EventBrief) -> list[str]:
    """二、传播态势: heat now and forecast, the level's history."""
    e = b.event
    lines = [f"当前热度 {e.heat:.1f}（满分 100），模型预测 6 小时后 {e.heat_6h:.1f}、24 小时后 {e.heat_24h:.1f}，"
             f"{trend_words(b)}。"]
    if len(e.level_history) > 1:
        steps = " → ".join(f"{h.level}级（{b.local(h.at, '%m-%d %H:%M')}）" for h in e.level_history)
        lines.append(f"预警等级变化：{steps}。")
    return lines


def judgement_lines(b: EventBrief) -> list[str]:
    """四、研判: the level and why, sensitive words, whether the bureau has spoken."""
    e = b.event
    lines = [f"预警等级：{RISK_LABELS[e.risk_level]}。"]
    lines += [f"依据：{r}" for r in e.risk_reasons]
    if e.sensitive_words:
        lines.append(f"涉及敏感词：{'、'.join(e.sensitive_words)}。")
    if b.own or e.own_posts:
        lines.append(f"本局渠道已发布 {len(b.own) or e.own_posts} 条信息。")
    elif b.spoken:
        lines.append("本局已发布回应（见“处置情况”）。")
    else:
        lines.append("本局渠道尚未就此发布信息。")
    return lines


def response_lines(b: EventBrief) -> list[str]:
    """五、处置情况: the 处置单 as it stands, or that there is none yet."""
    t = b.ticket
    if t is None:
        return ["尚未建立处置单。"]
    lines = [f"处置单 {t.id}：{t.status}；责任单位 {t.unit}" + (f"，承办人 {t.handler}" if t.handler else "")
             + f"；{b.local(t.opened_at)} 由 {t.opened_by} 建立。"]
    lines += [f"时限　{line}" for line in deadline_lines(t, b.generated_at, b.tz)]
    lines += [f"呈报　{b.local(e.at)} {e.by} 呈报舆情专报（{e.note}）" for e in t.briefs()]
    for r in t.published():
        lines.append(f"已发布回应 #{r.no}（{r.channel}，{b.local(r.at)}）：{shorten(one_line(r.text), 200)}")
    if t.silent:
        lines.append("失声：首个时限内未见本局回应。")
    lines += [f"批示　{line}" for line in instruction_lines(t, b.generated_at, b.tz)]
    return lines


def suggestions(b: EventBrief) -> list[str]:
    """六、处置建议, each drawn from a fact of the 专报: the deadlines not yet met (from the ticket, or those
    ``response.yaml`` sets at this level), whether the bureau has spoken, the forecast, the negative posts, the
    sensitive words, the 领导批示 waiting for a report back."""
    e, t, now = b.event, b.ticket, b.generated_at
    unit = (t.unit if t is not None else e.unit) or "责任单位"
    out: list[str] = []
    if t is None:
        out.append(f"建议由{unit}牵头建立处置单，明确回应口径和时限（谁实施谁公开、谁制作谁公开）。")
        deadlines: Sequence[Deadline] = b.expected_deadlines
        published: list[Any] = []
    else:
        deadlines, published = t.deadlines, t.published()
    for d in deadlines:
        if any(d.met_by(r) for r in published) or (t is not None and t.status in CLOSED):
            continue
        when = b.local(d.due_at)
        if now > d.due_at:
            out.append(f"{d.kind}时限（{when}，{d.basis}）已过 {format_span(now - d.due_at)}，应尽快发布权威信息、"
                       "说明情况，避免失声。")
        else:
            out.append(f"应于 {when} 前完成{d.kind}（{d.basis}），剩余 {format_span(d.due_at - now)}。")
    if not b.spoken:
        out.append("本局渠道尚未就此发声：建议通过官网、政务新媒体发布权威信息，回应社会关切，做到不失声、不缺位。")
    else:
        out.append("本局已发布信息：建议跟踪发布后的舆论反应，对新出现的疑问及时补充说明。")
    if e.heat_24h > e.heat:
        out.append(f"热度预计上升（24 小时预测 {e.heat_24h:.1f}，现为 {e.heat:.1f}）："
                   "建议加强监测，必要时提升处置等级。")
    if b.negative:
        out.append("针对负面信息反映的问题（见“主要信息”），建议责任单位核实情况、有针对性地回应。")
    if e.sensitive_words:
        out.append(f"涉及敏感词（{'、'.join(e.sensitive_words)}）：对外发布前须经保密审查，注意保护个人隐私。")
    if t is not None:
        for i in t.pending_instructions():
            due = f"于 {b.local(i.due_at)} 前" if i.due_at is not None else "及时"
            out.append(f"{i.leader}批示（{b.local(i.at)}）尚待反馈：请{t.unit}{due}反馈落实情况。")
    return out


POST_HEADER = ("标题", "来源", "发布时间", "情感", "互动量")


def post_row(p: BriefPost, b: EventBrief) -> tuple[str, ...]:
    return (p.title or p.excerpt or p.url, p.source, b.local(p.published_at, "%m-%d %H:%M"), p.sentiment_label,
            str(p.spread))


def post_lists(b: EventBrief) -> list[tuple[str, tuple[BriefPost, ...], str]]:
    """三、主要信息: (heading, posts, what to say when there are none)."""
    return [("传播较广的信息", b.spread, "暂无公众信息。"),
            ("代表性负面信息", b.negative, "暂无负面信息。"),
            ("本局发布", b.own, "本局渠道尚未发布。")]
