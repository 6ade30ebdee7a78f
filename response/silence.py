"""失声 check (pure): did the bureau respond before each deadline?

Evidence, earliest first, for each of a ticket's deadlines:

- a published response recorded on the ticket;
- a post on one of the bureau's own channels (sources marked ``own: true`` in config/sources.yaml) that
  matches the ticket (contains at least ``silence.min_keyword_hits`` of its keywords, all of them when it has
  fewer: a routine notice that only names the library is no response to its closure), published after the
  舆情 surfaced: the first one is *proposed* as the response, for a person to confirm;
- an official reply to a board message of the event (留言答复): the message counts as answered, its reply time
  measured against the deadline.

A deadline restricted to channels (a press conference) is met only by evidence on those channels.
Outcomes: 按时回应 (evidence at or before the deadline), 超期回应 (first evidence after it), 失声 (none, deadline
passed), 未到期 (none yet, deadline ahead). The ticket is flagged 失声 when its first deadline passed without a
response (also when one came later: the public heard nothing in time) and overdue when any deadline did.

The caller gathers candidates (phase 2: an Elasticsearch query over own sources after each crawl); this module
only decides.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, tzinfo
from typing import Literal

from response.audit import SYSTEM_USER, AuditEntry, local
from response.config import Channel, OwnChannels, ResponseConfig
from response.tickets import Deadline, Proposal, Ticket, format_span

Outcome = Literal["按时回应", "超期回应", "失声", "未到期"]


@dataclass(frozen=True)
class ChannelPost:
    """A post on one of the bureau's own channels."""

    id: str
    source: str
    channel: Channel
    published_at: datetime
    title: str = ""
    text: str = ""
    url: str | None = None


@dataclass(frozen=True)
class BoardMessage:
    """A message-board post of the event with its official reply (``replied_at`` None: not answered)."""

    id: str
    title: str
    replied_at: datetime | None
    reply_text: str = ""
    url: str | None = None


@dataclass(frozen=True)
class Evidence:
    at: datetime
    channel: Channel
    what: str  # 已记录回应 / 本机关发布 / 留言答复
    ref: str  # response number or post id
    title: str = ""
    url: str | None = None


@dataclass(frozen=True)
class DeadlineOutcome:
    deadline: Deadline
    outcome: Outcome
    evidence: Evidence | None = None

    def line(self, tz: tzinfo) -> str:
        """The outcome as one line, its times in ``tz``."""
        d = self.deadline
        head = f"{d.kind}（{local(d.due_at, tz):%Y-%m-%d %H:%M} 前，{d.basis}）"
        if self.evidence is None:
            return f"{head}：{self.outcome}"
        e = self.evidence
        late = f"，超期 {format_span(e.at - d.due_at)}" if self.outcome == "超期回应" else ""
        return f"{head}：{self.outcome} — {e.what} {e.channel} {local(e.at, tz):%m-%d %H:%M}{late}"


@dataclass(frozen=True)
class SilenceResult:
    ticket_id: str
    checked_at: datetime
    outcomes: tuple[DeadlineOutcome, ...]
    proposals: tuple[Proposal, ...] = field(default_factory=tuple)

    @property
    def silent(self) -> bool:
        first = min(self.outcomes, key=lambda o: o.deadline.due_at, default=None)
        return first is not None and first.outcome in ("失声", "超期回应")

    @property
    def overdue(self) -> bool:
        return any(o.outcome in ("失声", "超期回应") for o in self.outcomes)

    def summary(self, tz: tzinfo) -> str:
        flags = [f for f, on in (("失声", self.silent), ("超期", self.overdue)) if on]
        return "；".join([o.line(tz) for o in self.outcomes] + ([f"标记：{'、'.join(flags)}"] if flags else []))


def keyword_hits(text: str, keywords: Sequence[str]) -> int:
    """How many distinct keywords occur in ``text``."""
    return sum(1 for k in dict.fromkeys(keywords) if k and k in text)


def own_channel_map(sources: Sequence[tuple[str, str, bool]], channels: OwnChannels) -> dict[str, Channel]:
    """Source name -> response channel, for the sources marked own (``(name, kind, own)`` triples)."""
    return {name: channels.channel_of(name, kind) for name, kind, own in sources if own}


def check_silence(
    ticket: Ticket,
    *,
    own_posts: Sequence[ChannelPost],
    board_messages: Sequence[BoardMessage] = (),
    now: datetime,
    config: ResponseConfig,
) -> SilenceResult:
    """Each deadline's outcome and the own-channel posts proposed as responses."""
    since = ticket.subject.started_at or ticket.opened_at - timedelta(hours=config.silence.lookback_hours)
    keywords = ticket.subject.keywords
    needed = min(config.silence.min_keyword_hits, len(set(k for k in keywords if k)))
    matching = sorted(
        (
            p for p in own_posts
            if p.published_at >= since and p.published_at <= now
            and needed and keyword_hits(f"{p.title}\n{p.text}", keywords) >= needed
        ),
        key=lambda p: p.published_at,
    )
    evidence: list[Evidence] = [
        Evidence(r.at, r.channel, "已记录回应", f"#{r.no}", url=r.link) for r in ticket.published()
    ]
    evidence += [Evidence(p.published_at, p.channel, "本机关发布", p.id, p.title, p.url) for p in matching]
    evidence += [
        Evidence(m.replied_at, "留言答复", "留言答复", m.id, m.title, m.url)
        for m in board_messages if m.replied_at is not None and m.replied_at <= now
    ]
    evidence.sort(key=lambda e: e.at)

    outcomes = []
    for d in sorted(ticket.deadlines, key=lambda d: d.due_at):
        first = next((e for e in evidence if not d.channels or e.channel in d.channels), None)
        outcome: Outcome
        if first is not None:
            outcome = "按时回应" if first.at <= d.due_at else "超期回应"
        else:
            outcome = "失声" if now > d.due_at else "未到期"
        outcomes.append(DeadlineOutcome(d, outcome, first))

    known = {p.post_id for p in ticket.proposals} | {r.post_id for r in ticket.responses if r.post_id}
    proposals = []
    first_post = next(iter(matching), None)
    if first_post is not None and first_post.id not in known:
        proposals.append(Proposal(channel=first_post.channel, at=first_post.published_at, post_id=first_post.id,
                                  url=first_post.url, title=first_post.title))
    return SilenceResult(ticket.id, now, tuple(outcomes), tuple(proposals))


def apply_silence(ticket: Ticket, result: SilenceResult, *, now: datetime, tz: tzinfo,
                  by: str = SYSTEM_USER) -> Ticket:
    """The ticket with the check's flags and proposals; an audit entry (its times in ``tz``, the office's) only
    when something changed (the check runs after every crawl)."""
    if result.ticket_id != ticket.id:
        raise ValueError(f"result for {result.ticket_id} applied to {ticket.id}")
    if ticket.status in ("已办结", "不予处置"):
        return ticket
    silent, overdue = result.silent, result.overdue
    if silent == ticket.silent and overdue == ticket.overdue and not result.proposals:
        return ticket
    flags = "、".join(f for f, on in (("失声", silent), ("超期", overdue)) if on) or "无"
    before = "、".join(f for f, on in (("失声", ticket.silent), ("超期", ticket.overdue)) if on) or "无"
    note = result.summary(tz)
    if result.proposals:
        p = result.proposals[0]
        note += f"；建议确认本机关发布为回应：{p.channel}「{p.title}」{local(p.at, tz):%m-%d %H:%M}"
    entry = AuditEntry(at=now, by=by, action="失声检查", from_value=before, to_value=flags, note=note)
    return ticket.model_copy(update={
        "silent": silent, "overdue": overdue, "proposals": ticket.proposals + result.proposals,
        "audit": (*ticket.audit, entry),
    })

