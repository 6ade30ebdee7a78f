"""处置单 (response tickets): the model, deadlines from the risk level, the status machine and the audit trail.

Every change is a pure function ``(ticket, …) -> new ticket`` that appends to the audit trail and refuses an
illegal move with a :class:`TicketError` (Chinese message for the user). Storage (compare-and-set in
Elasticsearch) is ``response.service`` + ``index.tickets``; the store refuses a write whose audit trail does not
start with the stored one (:func:`check_append_only`), so the trail can only grow.

Status machine::

    待研判 ──► 处置中 ──► 已回应 ──► 已办结
      │          │          │
      │          │          └──► 处置中 (回应不充分, 继续处置; note required)
      └──────────┴──► 不予处置 (reason required) ──► 待研判 (reopen; note required)

Deadlines are clock hours from the moment the 舆情 surfaced (the event's first post, else the opening time):
舆情 does not wait for working days.

领导批示: a leader's instruction on the matter (who, what, when, optionally by when to report back), recorded by
the leader on the dashboard or by an officer from the paper or OA instruction; the responsible unit reports back
how it was carried out (落实反馈, one or more entries). A ticket cannot be closed (已办结) while an instruction has
no report back: the loop 专报 → 批示 → 落实 → 反馈 is closed before the matter is.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta, tzinfo
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from response.audit import AuditEntry, local, required
from response.audit import check_append_only as _check_trail
from response.config import CHANNELS, RISK_LEVELS, Channel, ResponseConfig, RiskLevel
from response.secrecy import Finding, summarize
from yuqing.errors import YuqingError

TicketStatus = Literal["待研判", "处置中", "已回应", "已办结", "不予处置"]
STATUSES: tuple[TicketStatus, ...] = ("待研判", "处置中", "已回应", "已办结", "不予处置")
OPEN_STATUSES: tuple[TicketStatus, ...] = ("待研判", "处置中")
TRANSITIONS: dict[TicketStatus, tuple[TicketStatus, ...]] = {
    "待研判": ("处置中", "不予处置"),
    "处置中": ("已回应", "不予处置"),
    "已回应": ("已办结", "处置中"),
    "已办结": (),
    "不予处置": ("待研判",),
}
BRIEF_ACTION = "呈报专报"  # the audit action of a 舆情专报 submitted to the leaders
# Moves that must say why.
NOTE_REQUIRED: frozenset[tuple[TicketStatus, TicketStatus]] = frozenset(
    {("待研判", "不予处置"), ("处置中", "不予处置"), ("已回应", "处置中"), ("不予处置", "待研判")}
)

SubjectKind = Literal["event", "post"]
ResponseState = Literal["草稿", "已发布"]


class TicketError(YuqingError):
    """An illegal change to a ticket (the message is for the user, in Chinese)."""


class SecrecyBlocked(TicketError):
    """A draft with 保密审查 findings was to be published without an override."""

    def __init__(self, findings: Sequence[Finding]) -> None:
        self.findings = tuple(findings)
        lines = "\n".join("  " + f.describe() for f in findings)
        super().__init__(f"保密审查发现 {len(findings)} 处问题，不能发布；修改后重试，或说明理由后强制放行：\n{lines}")


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Subject(_Model):
    """What the ticket is about: an event (issue 8) or, until events land, a single post."""

    kind: SubjectKind
    id: str = Field(min_length=1)
    title: str = ""
    topic: str | None = None
    # When the 舆情 surfaced (the event's first post); deadlines count from here.
    started_at: datetime | None = None
    # Words an own-channel post must contain to count as the response (the 失声 check).
    keywords: tuple[str, ...] = ()


class Deadline(_Model):
    kind: str
    due_at: datetime
    basis: str
    channels: tuple[Channel, ...] = ()

    def met_by(self, response: ResponseRecord) -> bool:
        return (
            response.state == "已发布"
            and response.at <= self.due_at
            and (not self.channels or response.channel in self.channels)
        )


class ReviewSummary(_Model):
    """The 保密审查 of a published text: what was found and, when published anyway, why."""

    reviewed_at: datetime
    findings: int = 0
    summary: str = "无"
    override_reason: str | None = None


class ResponseRecord(_Model):
    no: int = Field(ge=1)
    channel: Channel
    text: str = ""
    link: str | None = None
    at: datetime  # when it was published (a draft: when it was written)
    state: ResponseState = "已发布"
    recorded_by: str
    recorded_at: datetime
    review: ReviewSummary | None = None
    # The own-channel post it was taken from (the 失声 check's proposal), if any.
    post_id: str | None = None


class Proposal(_Model):
    """An own-channel post or board reply the 失声 check found: the likely response, for a person to confirm."""

    channel: Channel
    at: datetime
    post_id: str
    url: str | None = None
    title: str = ""


class Feedback(_Model):
    """落实反馈: how an instruction was carried out, as the unit reported it."""

    text: str = Field(min_length=1)
    by: str
    at: datetime


InstructionState = Literal["已反馈", "待反馈", "逾期未反馈"]


class Instruction(_Model):
    """领导批示 on the ticket's matter, and the reports back on it."""

    no: int = Field(ge=1)
    leader: str = Field(min_length=1)
    text: str = Field(min_length=1)
    at: datetime  # when the leader instructed
    recorded_by: str
    recorded_at: datetime
    due_at: datetime | None = None  # 反馈时限: report back by then
    feedback: tuple[Feedback, ...] = ()

    def state(self, now: datetime) -> InstructionState:
        if self.feedback:
            return "已反馈"
        return "逾期未反馈" if self.due_at is not None and now > self.due_at else "待反馈"


class Ticket(_Model):
    id: str
    subject: Subject
    title: str
    unit: str
    handler: str | None = None
    risk_level: RiskLevel | None = None
    status: TicketStatus = "待研判"
    opened_at: datetime
    opened_by: str
    # The rule that opened it (e.g. "level>=II"), None when opened by hand.
    rule: str | None = None
    deadlines: tuple[Deadline, ...] = ()
    responses: tuple[ResponseRecord, ...] = ()
    proposals: tuple[Proposal, ...] = ()
    instructions: tuple[Instruction, ...] = ()
    # Set by the 失声 check: no response by the (first) deadline.
    silent: bool = False
    # Set by the 失声 check: a deadline passed unmet.
    overdue: bool = False
    audit: tuple[AuditEntry, ...] = ()

    @field_validator("opened_at")
    @classmethod
    def _aware(cls, value: datetime) -> datetime:
        _require_aware(value, "opened_at")
        return value

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATUSES

    @property
    def first_due_at(self) -> datetime | None:
        return min((d.due_at for d in self.deadlines), default=None)

    @property
    def next_due_at(self) -> datetime | None:
        """The earliest deadline no published response has met yet (None: all met, or none)."""
        published = self.published()
        return min((d.due_at for d in self.deadlines if not any(d.met_by(r) for r in published)), default=None)

    def published(self) -> list[ResponseRecord]:
        return [r for r in self.responses if r.state == "已发布"]

    def pending_instructions(self) -> list[Instruction]:
        """领导批示 not yet reported back on."""
        return [i for i in self.instructions if not i.feedback]

    def briefs(self) -> list[AuditEntry]:
        """The 舆情专报 submitted (呈报) on the ticket's matter, oldest first (:func:`record_brief`)."""
        return [e for e in self.audit if e.action == BRIEF_ACTION]

    @property
    def awaiting_instruction(self) -> bool:
        """A 专报 was submitted and no 领导批示 was recorded since, on a ticket still open (专报待批示)."""
        briefs = self.briefs()
        if not briefs or self.status in ("已办结", "不予处置"):
            return False
        last = briefs[-1].at
        return not any(i.recorded_at >= last for i in self.instructions)


def _require_aware(value: datetime, name: str) -> None:
    if value.tzinfo is None:
        raise TicketError(f"{name} 须带时区（例如 2026-09-28T10:00+08:00）")


def ticket_id_for(kind: SubjectKind, subject_id: str) -> str:
    """The one ticket id for a subject: opening twice (by hand and by rule) finds the existing ticket."""
    digest = hashlib.sha1(f"{kind}:{subject_id}".encode()).hexdigest()[:10]
    return f"CZ-{digest}"


def unit_for_topic(topic: str | None, topic_units: Mapping[str, str], default: str) -> str:
    """The responsible unit of a taxonomy topic (谁实施谁公开), else the configured default."""
    return topic_units.get(topic or "", default) if topic else default


def auto_open_rule(config: ResponseConfig, level: RiskLevel | None) -> str | None:
    """The rule that opens a ticket for an event at ``level`` (e.g. "等级≥II"), or None when none applies."""
    threshold = config.auto_open_min_level
    if threshold is None or level is None or RISK_LEVELS.index(level) > RISK_LEVELS.index(threshold):
        return None
    return f"等级≥{threshold}"


def compute_deadlines(config: ResponseConfig, level: RiskLevel | None, start: datetime) -> tuple[Deadline, ...]:
    rule = config.deadlines.rule_for(level)
    return tuple(
        Deadline(kind=i.kind, due_at=start + timedelta(hours=i.within_hours), basis=i.basis,
                 channels=tuple(i.channels))
        for i in rule.items
    )


def _required(value: str | None, what: str) -> str:
    return required(value, what, TicketError)


def _append(ticket: Ticket, *entries: AuditEntry, **changes: object) -> Ticket:
    return ticket.model_copy(update={**changes, "audit": ticket.audit + entries})


def open_ticket(
    subject: Subject,
    *,
    unit: str,
    by: str,
    now: datetime,
    config: ResponseConfig,
    risk_level: RiskLevel | None = None,
    title: str | None = None,
    rule: str | None = None,
    note: str | None = None,
) -> Ticket:
    """A new ticket in 待研判, deadlines from the risk level counted from when the 舆情 surfaced."""
    _require_aware(now, "now")
    by = _required(by, "操作人")
    start = subject.started_at or now
    _require_aware(start, "subject.started_at")
    ticket = Ticket(
        id=ticket_id_for(subject.kind, subject.id),
        subject=subject,
        title=(title or subject.title).strip() or subject.id,
        unit=_required(unit, "责任单位"),
        risk_level=risk_level,
        opened_at=now,
        opened_by=by,
        rule=rule,
        deadlines=compute_deadlines(config, risk_level, start),
    )
    how = f"按规则 {rule} 自动创建" if rule else "人工创建"
    return _append(ticket, AuditEntry(at=now, by=by, action="创建", to_value="待研判",
                                      note="；".join(x for x in (how, note) if x)))


def change_status(ticket: Ticket, to: TicketStatus, *, by: str, now: datetime, note: str | None = None) -> Ticket:
    """Move along the status machine; an illegal move or a missing reason raises TicketError."""
    by = _required(by, "操作人")
    if to not in STATUSES:
        raise TicketError(f"未知状态“{to}”，可选：{'、'.join(STATUSES)}")
    allowed = TRANSITIONS[ticket.status]
    if to not in allowed:
        options = "、".join(allowed) if allowed else "无（已是终态）"
        raise TicketError(f"处置单 {ticket.id} 不能从“{ticket.status}”变为“{to}”；可变为：{options}")
    if (ticket.status, to) in NOTE_REQUIRED:
        note = _required(note, f"“{ticket.status} → {to}”的理由")
    if to == "已回应" and not ticket.published():
        raise TicketError(f"处置单 {ticket.id} 尚无已发布的回应，不能标记为“已回应”；请先记录回应")
    pending = ticket.pending_instructions()
    if to == "已办结" and pending:
        names = "、".join(f"#{i.no} {i.leader}" for i in pending)
        raise TicketError(f"处置单 {ticket.id} 有领导批示尚未反馈落实情况（{names}），反馈后才能办结")
    return _append(ticket, AuditEntry(at=now, by=by, action="状态变更", from_value=ticket.status, to_value=to,
                                      note=note or None), status=to)


def assign(ticket: Ticket, unit: str, *, reason: str, by: str, now: datetime, handler: str | None = None) -> Ticket:
    """Change the responsible unit (and optionally the handler); the reason is required and kept."""
    by = _required(by, "操作人")
    unit = _required(unit, "责任单位")
    reason = _required(reason, "改派理由")
    if ticket.status in ("已办结", "不予处置"):
        raise TicketError(f"处置单 {ticket.id} 已{ticket.status}，不能改派")
    if unit == ticket.unit and (handler is None or handler == ticket.handler):
        raise TicketError(f"处置单 {ticket.id} 的责任单位已是“{unit}”")
    changes: dict[str, object] = {"unit": unit}
    entry_note = reason
    if handler is not None:
        changes["handler"] = handler.strip() or None
        entry_note = f"{reason}（承办人：{handler.strip() or '—'}）"
    return _append(ticket, AuditEntry(at=now, by=by, action="改派", from_value=ticket.unit, to_value=unit,
                                      note=entry_note), **changes)


def change_level(ticket: Ticket, level: RiskLevel | None, *, config: ResponseConfig, by: str, now: datetime,
                 reason: str) -> Ticket:
    """A new risk level (the event was re-assessed): deadlines recomputed from when the 舆情 surfaced."""
    by = _required(by, "操作人")
    reason = _required(reason, "调整理由")
    if ticket.status in ("已办结", "不予处置"):
        raise TicketError(f"处置单 {ticket.id} 已{ticket.status}，不能调整等级")
    if level == ticket.risk_level:
        raise TicketError(f"处置单 {ticket.id} 的风险等级已是 {level or '未定级'}")
    start = ticket.subject.started_at or ticket.opened_at
    return _append(
        ticket,
        AuditEntry(at=now, by=by, action="调整等级", from_value=ticket.risk_level or "未定级",
                   to_value=level or "未定级", note=reason),
        risk_level=level, deadlines=compute_deadlines(config, level, start),
    )


def _review(findings: Sequence[Finding], override_reason: str | None, now: datetime) -> ReviewSummary:
    if findings and not (override_reason and override_reason.strip()):
        raise SecrecyBlocked(findings)
    return ReviewSummary(
        reviewed_at=now, findings=len(findings), summary=summarize(findings),
        override_reason=override_reason.strip() if findings and override_reason else None,
    )


def _publish_entries(no: int, channel: Channel, review: ReviewSummary, by: str, now: datetime,
                     findings: Sequence[Finding]) -> list[AuditEntry]:
    entries = []
    if review.override_reason:
        entries.append(AuditEntry(at=now, by=by, action="保密审查放行", note=(
            f"回应#{no} 有 {len(findings)} 处未解决的审查发现（{review.summary}），理由：{review.override_reason}")))
    entries.append(AuditEntry(at=now, by=by, action="发布回应", to_value=channel,
                              note=f"回应#{no}，保密审查：{review.summary}"))
    return entries


def _advance_to_answered(ticket: Ticket, by: str, now: datetime) -> tuple[TicketStatus, list[AuditEntry]]:
    """After a publication: 待研判/处置中 move on to 已回应 (each step in the audit)."""
    path: dict[TicketStatus, tuple[TicketStatus, ...]] = {"待研判": ("处置中", "已回应"), "处置中": ("已回应",)}
    entries = []
    status = ticket.status
    for step in path.get(status, ()):
        entries.append(AuditEntry(at=now, by=by, action="状态变更", from_value=status, to_value=step,
                                  note="已发布回应"))
        status = step
    return status, entries


def add_response(
    ticket: Ticket,
    *,
    channel: Channel,
    text: str,
    at: datetime,
    by: str,
    now: datetime,
    findings: Sequence[Finding] = (),
    link: str | None = None,
    draft: bool = False,
    override_reason: str | None = None,
    post_id: str | None = None,
) -> Ticket:
    """Record a response. Published (not ``draft``): ``findings`` is the 保密审查 of ``text``; any finding needs
    ``override_reason``; the ticket moves to 已回应."""
    by = _required(by, "操作人")
    _require_aware(at, "回应时间")
    if channel not in CHANNELS:
        raise TicketError(f"未知回应渠道“{channel}”，可选：{'、'.join(CHANNELS)}")
    if ticket.status in ("已办结", "不予处置"):
        raise TicketError(f"处置单 {ticket.id} 已{ticket.status}，不能再记录回应")
    if at > now + timedelta(minutes=5):
        raise TicketError(f"回应时间 {at:%Y-%m-%d %H:%M} 晚于当前时间")
    if not draft and not text.strip() and not link:
        raise TicketError("已发布的回应须有正文或链接")
    no = len(ticket.responses) + 1
    review = None if draft else _review(findings, override_reason, now)
    record = ResponseRecord(no=no, channel=channel, text=text, link=link, at=at, state="草稿" if draft else "已发布",
                            recorded_by=by, recorded_at=now, review=review, post_id=post_id)
    entries = [AuditEntry(at=now, by=by, action="记录回应", to_value=channel,
                          note=f"回应#{no}（{'草稿' if draft else '已发布'}）")]
    status = ticket.status
    if review is not None:
        entries.extend(_publish_entries(no, channel, review, by, now, findings))
        status, steps = _advance_to_answered(ticket, by, now)
        entries.extend(steps)
    return _append(ticket, *entries, responses=(*ticket.responses, record), status=status)


def publish_response(
    ticket: Ticket,
    no: int,
    *,
    findings: Sequence[Finding],
    by: str,
    now: datetime,
    at: datetime | None = None,
    link: str | None = None,
    override_reason: str | None = None,
) -> Ticket:
    """Publish draft ``no`` after its 保密审查 (``findings`` of its text); findings need ``override_reason``."""
    by = _required(by, "操作人")
    matches = [r for r in ticket.responses if r.no == no]
    if not matches:
        raise TicketError(f"处置单 {ticket.id} 没有回应#{no}")
    draft = matches[0]
    if draft.state != "草稿":
        raise TicketError(f"回应#{no} 已发布")
    if ticket.status in ("已办结", "不予处置"):
        raise TicketError(f"处置单 {ticket.id} 已{ticket.status}，不能发布回应")
    review = _review(findings, override_reason, now)
    published = draft.model_copy(update={
        "state": "已发布", "at": at or now, "link": link or draft.link, "review": review,
    })
    responses = tuple(published if r.no == no else r for r in ticket.responses)
    entries = _publish_entries(no, draft.channel, review, by, now, findings)
    status, steps = _advance_to_answered(ticket, by, now)
    return _append(ticket, *entries, *steps, responses=responses, status=status)


def add_instruction(
    ticket: Ticket,
    *,
    leader: str,
    text: str,
    at: datetime,
    by: str,
    now: datetime,
    due_at: datetime | None = None,
) -> Ticket:
    """Record 领导批示 ``text`` of ``leader`` given at ``at`` (``by``: who records it, the leader or an officer);
    ``due_at``: the time by which the unit reports back. Not on a closed (已办结) ticket."""
    by = _required(by, "操作人")
    leader = _required(leader, "批示领导")
    text = _required(text, "批示内容")
    _require_aware(at, "批示时间")
    if ticket.status == "已办结":
        raise TicketError(f"处置单 {ticket.id} 已办结，不能再记录批示；如需继续处置，请新建处置单")
    if at > now + timedelta(minutes=5):
        raise TicketError(f"批示时间 {at:%Y-%m-%d %H:%M} 晚于当前时间")
    if due_at is not None:
        _require_aware(due_at, "反馈时限")
        if due_at <= at:
            raise TicketError("反馈时限须晚于批示时间")
    no = len(ticket.instructions) + 1
    record = Instruction(no=no, leader=leader, text=text, at=at, recorded_by=by, recorded_at=now, due_at=due_at)
    due = f"，反馈时限 {due_at:%Y-%m-%d %H:%M}" if due_at is not None else ""
    return _append(ticket, AuditEntry(at=now, by=by, action="记录批示", to_value=leader,
                                      note=f"批示#{no}{due}：{text}"),
                   instructions=(*ticket.instructions, record))


def record_brief(ticket: Ticket, *, to: Sequence[str], by: str, now: datetime) -> Ticket:
    """Note in the audit trail that a 舆情专报 on the ticket's matter was submitted (呈报) to ``to`` (the loop
    专报 → 批示 → 落实 → 反馈 starts here)."""
    by = _required(by, "操作人")
    return _append(ticket, AuditEntry(at=now, by=by, action=BRIEF_ACTION, note="发送给 " + "、".join(to)))


def add_feedback(ticket: Ticket, no: int, *, text: str, by: str, now: datetime) -> Ticket:
    """Report back (落实反馈) on instruction ``no``; more reports may follow (进展, then 办结)."""
    by = _required(by, "操作人")
    text = _required(text, "落实情况")
    match = next((i for i in ticket.instructions if i.no == no), None)
    if match is None:
        raise TicketError(f"处置单 {ticket.id} 没有批示#{no}")
    updated = match.model_copy(update={"feedback": (*match.feedback, Feedback(text=text, by=by, at=now))})
    instructions = tuple(updated if i.no == no else i for i in ticket.instructions)
    late = ""
    if match.due_at is not None and now > match.due_at and not match.feedback:
        late = f"（超过反馈时限 {format_span(now - match.due_at)}）"
    return _append(ticket, AuditEntry(at=now, by=by, action="反馈落实情况", to_value=match.leader,
                                      note=f"批示#{no}{late}：{text}"),
                   instructions=instructions)


def instruction_lines(ticket: Ticket, now: datetime, tz: tzinfo) -> list[str]:
    """One line per 领导批示 for a person in ``tz``: who, when, what, its state; then its reports back."""
    out = []
    for i in ticket.instructions:
        due = f"，反馈时限 {local(i.due_at, tz):%m-%d %H:%M}" if i.due_at is not None else ""
        out.append(f"#{i.no} {i.leader} {local(i.at, tz):%Y-%m-%d %H:%M} 批示（{i.state(now)}{due}）：{i.text}")
        out.extend(f"    {local(f.at, tz):%Y-%m-%d %H:%M} {f.by} 反馈：{f.text}" for f in i.feedback)
    return out


def check_append_only(before: Ticket | None, after: Ticket) -> None:
    """Refuse a new version whose audit trail does not extend the stored one (entries edited or removed), or
    that changed the ticket without an entry."""
    _check_trail(f"处置单 {after.id}", before.audit if before else (), after.audit,
                 changed=before is not None and after != before)


def deadline_lines(ticket: Ticket, now: datetime, tz: tzinfo) -> list[str]:
    """One line per deadline for a person in ``tz``: met (by which response), remaining time, or overdue."""
    out = []
    for d in ticket.deadlines:
        met = next((r for r in ticket.published() if d.met_by(r)), None)
        if met is not None:
            state = f"已按时回应（#{met.no} {met.channel} {local(met.at, tz):%m-%d %H:%M}）"
        elif now > d.due_at:
            state = f"已超期 {format_span(now - d.due_at)}"
        else:
            state = f"剩余 {format_span(d.due_at - now)}"
        out.append(f"{d.kind}：{local(d.due_at, tz):%Y-%m-%d %H:%M} 前（{d.basis}）— {state}")
    return out


def is_overdue(ticket: Ticket, now: datetime) -> bool:
    """Some deadline has passed without a response that meets it (closed tickets are never overdue)."""
    if ticket.status in ("已办结", "不予处置"):
        return False
    published = ticket.published()
    return any(now > d.due_at and not any(d.met_by(r) for r in published) for d in ticket.deadlines)


def format_span(delta: timedelta) -> str:
    minutes = int(delta.total_seconds() // 60)
    days, rest = divmod(minutes, 24 * 60)
    hours, mins = divmod(rest, 60)
    if days:
        return f"{days}天{hours}小时"
    if hours:
        return f"{hours}小时{mins}分"
    return f"{mins}分钟"
