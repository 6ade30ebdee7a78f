"""Leaders' alert rules on signals (events, surges, 专题, tickets, 依申请公开, sources): models, checks, Chinese
explanations and the pure evaluation ``signals in → decisions out``.

The rules live beside today's post rules (``config/alerts.yaml``)
under two keys: ``people`` (the directory: name, email, unit, topics) and ``event_rules``. Every rule has

* ``recipients`` — by name, by unit, by topic (people who follow it), plain addresses, and/or the signal's
  own responsible unit / topic (``signal_unit`` / ``signal_topic``: 谁实施谁公开);
* ``quiet_hours`` — e.g. 22:00–07:00: what falls due then waits until the end and goes out as one summary;
* ``urgent_levels`` (default ``[I]``) — signals at these risk levels skip quiet hours, the digest and the
  cooldown;
* ``cooldown_minutes`` — at most one alert per subject (an event, a topic, a ticket …) within this time;
* ``digest_minutes`` — one mail per window of N minutes (aligned to local midnight) listing every match.

:func:`evaluate` is pure: the signals, the rules, the directory, the clock and the alert history (when each
rule last alerted each subject, read from the outbox) in; :class:`Decision` s and :class:`Skipped` out. A
decision's id is a hash of the rule, the subject and the occurrence (e.g. "the event reached level II"), so
deciding the same thing twice — after a restart, or on two machines — creates one outbox entry.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Annotated, Literal
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from alerts.content import LEVELS, RiskLevel, at_least, level_label, level_rank
from alerts.signals import (
    EventSignal,
    FoiaDueSignal,
    InstructionSignal,
    KeywordGroupSignal,
    PostSignal,
    Signal,
    SilentStatus,
    SourceSilentSignal,
    SurgeSignal,
    TicketDueSignal,
)
from yuqing.config_files import load_model
from yuqing.errors import ConfigError

_ADDRESS = re.compile(r"^[^@\s,;<>\"']+@[^@\s,;<>\"']+$")
# 已回应 is not closed: a deadline a published response did not meet (e.g. the 新闻发布会) is still reminded
# (response/reminders.py returns only unmet deadlines).
CLOSED_TICKET_STATUSES = frozenset({"已办结", "不予处置"})
# Rule kinds whose signals carry a risk level (urgent_levels can apply); the others never have one.
LEVELLED_KINDS = frozenset({"new_event", "level_raised", "ticket_due"})


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# ---- the directory ----------------------------------------------------------------------------------------
class Person(_Model):
    """Someone who receives alerts."""

    name: str = Field(min_length=1)
    email: str
    unit: str | None = None
    topics: tuple[str, ...] = ()
    role: str = ""

    @field_validator("email")
    @classmethod
    def _email(cls, value: str) -> str:
        value = value.strip()
        if not _ADDRESS.match(value):
            raise ValueError(f"“{value}”不是有效的邮箱地址")
        return value

    def label(self) -> str:
        return f"{self.name}（{self.unit}）" if self.unit and self.unit != self.name else self.name


class Recipients(_Model):
    """Who gets a rule's mails: the union of every list (each person once, in directory order)."""

    names: tuple[str, ...] = ()
    units: tuple[str, ...] = ()
    topics: tuple[str, ...] = ()
    emails: tuple[str, ...] = ()
    signal_unit: bool = False  # the people of the signal's responsible unit
    signal_topic: bool = False  # the people who follow the signal's topic

    @field_validator("emails")
    @classmethod
    def _emails(cls, values: tuple[str, ...]) -> tuple[str, ...]:
        for value in values:
            if not _ADDRESS.match(value.strip()):
                raise ValueError(f"“{value}”不是有效的邮箱地址")
        return tuple(v.strip() for v in values)

    @model_validator(mode="after")
    def _someone(self) -> Recipients:
        if not (self.names or self.units or self.topics or self.emails or self.signal_unit or self.signal_topic):
            raise ValueError("至少指定一类收件人：names、units、topics、emails、signal_unit 或 signal_topic")
        return self


@dataclass(frozen=True)
class Directory:
    people: tuple[Person, ...] = ()

    def resolve(self, spec: Recipients, *, unit: str | None, topic: str | None) -> tuple[Person, ...]:
        """The people ``spec`` names for a signal of ``unit`` and ``topic`` (directory order, then addresses)."""
        units = set(spec.units) | ({unit} if spec.signal_unit and unit else set())
        topics = set(spec.topics) | ({topic} if spec.signal_topic and topic else set())
        chosen = [
            p for p in self.people
            if p.name in spec.names or (p.unit is not None and p.unit in units) or topics.intersection(p.topics)
        ]
        known = {p.email for p in chosen}
        extra = [Person(name=e, email=e) for e in spec.emails if e not in known]
        return tuple(chosen + extra)

    def describe(self, spec: Recipients) -> str:
        """The recipients in Chinese, e.g. ``王局长；办公室全体；关注“文物保护”的人；事项责任单位``."""
        parts = [*spec.names]
        parts += [f"{u}全体" for u in spec.units]
        parts += [f"关注“{t}”的人" for t in spec.topics]
        parts += list(spec.emails)
        if spec.signal_unit:
            parts.append("事项的责任单位")
        if spec.signal_topic:
            parts.append("关注该话题的人")
        return "、".join(parts)


# ---- time windows -----------------------------------------------------------------------------------------
class QuietHours(_Model):
    """A daily quiet period in local time (``end`` before ``start`` wraps over midnight)."""

    start: time
    end: time

    @model_validator(mode="after")
    def _not_empty(self) -> QuietHours:
        if self.start == self.end:
            raise ValueError("安静时段的开始和结束时间不能相同")
        return self

    def contains(self, t: time) -> bool:
        if self.start < self.end:
            return self.start <= t < self.end
        return t >= self.start or t < self.end

    def end_after(self, at: datetime) -> datetime | None:
        """When the quiet period that ``at`` (aware, local) falls in ends; None outside quiet hours."""
        t = at.timetz().replace(tzinfo=None)
        if not self.contains(t):
            return None
        day: date = at.date()
        if self.start > self.end and t >= self.start:
            day += timedelta(days=1)
        return datetime.combine(day, self.end, tzinfo=at.tzinfo)

    def describe(self) -> str:
        return f"{self.start:%H:%M}–{self.end:%H:%M}"


def digest_window(at: datetime, minutes: int) -> tuple[datetime, datetime]:
    """The window of ``minutes`` (aligned to local midnight) that ``at`` (aware, local) falls in."""
    midnight = datetime.combine(at.date(), time(0), tzinfo=at.tzinfo)
    k = int((at - midnight).total_seconds() // (minutes * 60))
    start = midnight + timedelta(minutes=k * minutes)
    return start, min(start + timedelta(minutes=minutes), midnight + timedelta(days=1))


# ---- rules ------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Match:
    """A rule fired: ``occurrence`` names what happened (with the subject, the outbox entry's identity)."""

    occurrence: str
    reason: str


def _levels(levels: Iterable[RiskLevel]) -> str:
    return "、".join(level_label(lv) for lv in sorted(levels, key=level_rank))


def _num(value: float) -> str:
    return f"{value:.0f}" if float(value).is_integer() else f"{value:g}"


class RuleBase(_Model):
    kind: str
    name: str = Field(min_length=1)
    description: str = ""
    enabled: bool = True
    recipients: Recipients
    quiet_hours: QuietHours | None = None
    urgent_levels: tuple[RiskLevel, ...] = ("I",)
    cooldown_minutes: int = Field(0, ge=0)
    digest_minutes: int | None = Field(None, ge=1, le=1440)

    @field_validator("name")
    @classmethod
    def _strip(cls, value: str) -> str:
        value = value.strip()
        if not value:
            raise ValueError("the rule name must not be empty")
        return value

    def match(self, signal: Signal, now: datetime) -> Match | None:  # pragma: no cover - overridden
        raise NotImplementedError

    def condition(self) -> str:  # pragma: no cover - overridden
        raise NotImplementedError

    def explain(self, directory: Directory) -> str:
        """The rule in Chinese, for ``yuqing alert --check``."""
        parts = [f"【{self.name}】{self.condition()}，发送给：{directory.describe(self.recipients)}。"]
        if self.digest_minutes:
            parts.append(f"每 {self.digest_minutes} 分钟汇总为一封邮件。")
        if self.quiet_hours:
            parts.append(f"安静时段 {self.quiet_hours.describe()} 内暂缓，时段结束后汇总发送。")
        limits = [n for n, on in (("汇总", self.digest_minutes), ("安静时段", self.quiet_hours),
                                  ("冷却", self.cooldown_minutes)) if on]
        if self.urgent_levels and limits and self.kind in LEVELLED_KINDS:
            parts.append(f"{_levels(self.urgent_levels)}预警不受{'、'.join(limits)}限制，立即发送。")
        if self.cooldown_minutes:
            parts.append(f"同一对象 {self.cooldown_minutes} 分钟内只提醒一次。")
        if self.description:
            parts.append(f"（{self.description}）")
        return "".join(parts)


class NewEventRule(RuleBase):
    """An event reaches ``min_level`` or more severe (once per event)."""

    kind: Literal["new_event"]
    min_level: RiskLevel = "II"
    topics: tuple[str, ...] = ()

    def match(self, signal: Signal, now: datetime) -> Match | None:
        if not isinstance(signal, EventSignal) or not at_least(signal.level, self.min_level):
            return None
        if self.topics and signal.topic not in self.topics:
            return None
        return Match(f"reached:{self.min_level}",
                     f"事件风险等级为{level_label(signal.event.level)}（规则：{self.min_level}级及以上）")

    def condition(self) -> str:
        where = f"（限话题：{'、'.join(self.topics)}）" if self.topics else ""
        return f"事件风险等级达到{level_label(self.min_level)}或更高时{where}（每个事件提醒一次）"


class LevelRaisedRule(RuleBase):
    """An event's level rose since the previous run, to ``min_level`` or more severe."""

    kind: Literal["level_raised"]
    min_level: RiskLevel = "IV"

    def match(self, signal: Signal, now: datetime) -> Match | None:
        if not isinstance(signal, EventSignal) or signal.previous_level is None:
            return None
        new, old = signal.event.level, signal.previous_level
        if level_rank(new) >= level_rank(old) or not at_least(new, self.min_level):
            return None
        return Match(f"raised-to:{new}", f"风险等级由{level_label(old)}升至{level_label(new)}")

    def condition(self) -> str:
        floor = f"（升至{level_label(self.min_level)}或更高）" if self.min_level != "IV" else ""
        return f"事件风险等级上升时{floor}（每升到一个新等级提醒一次）"


class NegativeSurgeRule(RuleBase):
    """Negative posts on a topic surge: in the last window at least ``min_count`` and ``min_share`` of all,
    ``growth`` times the previous window's count and a share ``min_share_rise`` above the previous share."""

    kind: Literal["negative_surge"]
    topics: tuple[str, ...] = ()
    window_minutes: int = Field(60, ge=5, le=1440)
    min_count: int = Field(5, ge=1)
    min_share: float = Field(0.3, ge=0, le=1)
    growth: float = Field(2.0, ge=1)
    min_share_rise: float = Field(0.0, ge=0, le=1)

    def match(self, signal: Signal, now: datetime) -> Match | None:
        if not isinstance(signal, SurgeSignal) or signal.window_minutes != self.window_minutes:
            return None
        if self.topics and signal.topic not in self.topics:
            return None
        s = signal
        if s.negative < self.min_count or s.share < self.min_share:
            return None
        if s.negative < self.growth * max(s.prev_negative, 1) or s.share - s.prev_share < self.min_share_rise:
            return None
        # One alert per topic and window length at most, however often the producer looks (every run, with the
        # window ending then): the occurrence is the window-sized slot the look fell in.
        step = self.window_minutes * 60
        slot = datetime.fromtimestamp(s.window_end.timestamp() // step * step, s.window_end.tzinfo)
        return Match(
            f"window:{slot.isoformat()}",
            f"近{s.window_minutes}分钟负面 {s.negative} 条（{s.share:.0%}），上一窗口 {s.prev_negative} 条"
            f"（{s.prev_share:.0%}）",
        )

    def condition(self) -> str:
        where = f"话题“{'、'.join(self.topics)}”" if self.topics else "任一话题"
        rise = f"、占比上升至少 {self.min_share_rise:.0%}" if self.min_share_rise else ""
        return (
            f"{where}近 {self.window_minutes} 分钟负面信息不少于 {self.min_count} 条、占比不低于 "
            f"{self.min_share:.0%}，且达到上一窗口的 {_num(self.growth)} 倍{rise}时"
        )


class KeywordGroupRule(RuleBase):
    """A new post matches a 专题 (keyword group); empty ``groups``: any group."""

    kind: Literal["keyword_group"]
    groups: tuple[str, ...] = ()

    def match(self, signal: Signal, now: datetime) -> Match | None:
        if not isinstance(signal, KeywordGroupSignal) or (self.groups and signal.group not in self.groups):
            return None
        return Match(f"post:{signal.occurrence}", f"命中专题“{signal.group}”")

    def condition(self) -> str:
        return f"专题{'“' + '”“'.join(self.groups) + '”' if self.groups else '（任一）'}命中新信息时"


class TicketDueRule(RuleBase):
    """An open ticket's deadline is within ``within_hours`` and/or has passed (``overdue``)."""

    kind: Literal["ticket_due"]
    within_hours: float | None = Field(None, gt=0)
    overdue: bool = False
    deadline_kinds: tuple[str, ...] = ()

    @model_validator(mode="after")
    def _something(self) -> TicketDueRule:
        if self.within_hours is None and not self.overdue:
            raise ValueError("a ticket_due rule needs within_hours, overdue: true, or both")
        return self

    def match(self, signal: Signal, now: datetime) -> Match | None:
        if not isinstance(signal, TicketDueSignal) or signal.status in CLOSED_TICKET_STATUSES:
            return None
        if self.deadline_kinds and signal.deadline_kind not in self.deadline_kinds:
            return None
        left = signal.remaining_hours(now)
        if left < 0:
            if self.overdue:
                return Match(f"{signal.deadline_kind}:overdue", f"{signal.deadline_kind}时限已过")
            return None
        if self.within_hours is not None and left <= self.within_hours:
            return Match(f"{signal.deadline_kind}:within{_num(self.within_hours)}h",
                         f"{signal.deadline_kind}时限不足 {_num(self.within_hours)} 小时")
        return None

    def condition(self) -> str:
        which = f"（{'、'.join(self.deadline_kinds)}）" if self.deadline_kinds else ""
        parts = []
        if self.within_hours is not None:
            parts.append(f"距截止不足 {_num(self.within_hours)} 小时")
        if self.overdue:
            parts.append("已超期")
        return f"处置单时限{which}{'或'.join(parts)}时"


class InstructionRule(RuleBase):
    """A 领导批示 on a 处置单 waits for its report back: sent once per instruction (批示转办 to the unit)."""

    kind: Literal["instruction"]

    def match(self, signal: Signal, now: datetime) -> Match | None:
        if not isinstance(signal, InstructionSignal):
            return None
        return Match(f"instruction:{signal.no}", f"{signal.leader}作出批示")

    def condition(self) -> str:
        return "处置单有领导批示待落实时（每条批示提醒一次）"


class FoiaDueRule(RuleBase):
    """A 依申请公开 request is due within ``within_working_days`` working days (and/or overdue)."""

    kind: Literal["foia_due"]
    within_working_days: int = Field(3, ge=0)
    overdue: bool = True

    def match(self, signal: Signal, now: datetime) -> Match | None:
        if not isinstance(signal, FoiaDueSignal):
            return None
        left = signal.remaining_working_days
        if left < 0:
            return Match(f"due:{signal.due.isoformat()}:overdue", "答复期限已过") if self.overdue else None
        if left <= self.within_working_days:
            return Match(f"due:{signal.due.isoformat()}:within{self.within_working_days}",
                         f"距答复期限不足 {self.within_working_days} 个工作日（剩 {left} 个）")
        return None

    def condition(self) -> str:
        tail = "，超期时再提醒" if self.overdue else ""
        return f"依申请公开申请距答复期限 {self.within_working_days} 个工作日以内时{tail}"


class SourceSilentRule(RuleBase):
    """A source went silent or failing, for at least ``min_hours`` since its last success."""

    kind: Literal["source_silent"]
    statuses: tuple[SilentStatus, ...] = ("silent", "failing")
    min_hours: float = Field(0.0, ge=0)

    def match(self, signal: Signal, now: datetime) -> Match | None:
        if not isinstance(signal, SourceSilentSignal) or signal.status not in self.statuses:
            return None
        last = signal.last_success
        if self.min_hours and last is not None and (now - last) < timedelta(hours=self.min_hours):
            return None
        since = last.isoformat() if last is not None else "never"
        label = "静默" if signal.status == "silent" else "失败"
        return Match(f"{signal.status}:{since}", f"信源{label}")

    def condition(self) -> str:
        labels = "、".join({"silent": "静默", "failing": "失败"}[s] for s in self.statuses)
        hours = f"且距上次成功超过 {_num(self.min_hours)} 小时" if self.min_hours else ""
        return f"信源{labels}{hours}时（每次失效提醒一次）"


class PostRule(RuleBase):
    """A post rule of the file's ``rules`` section on the outbox path: its matches are found by a search
    (alerts.query) and arrive as :class:`PostSignal` s named after the rule; each post is decided once."""

    kind: Literal["post"]
    summary: str = ""

    def match(self, signal: Signal, now: datetime) -> Match | None:
        if not isinstance(signal, PostSignal) or signal.rule != self.name:
            return None
        words = f"（命中：{'、'.join(signal.keywords)}）" if signal.keywords else ""
        return Match("matched", f"新信息符合规则{words}")

    def condition(self) -> str:
        return f"新抓取的信息符合条件（{self.summary}）时（每条信息提醒一次）"


SignalRule = Annotated[
    NewEventRule | LevelRaisedRule | NegativeSurgeRule | KeywordGroupRule | TicketDueRule | InstructionRule
    | FoiaDueRule | SourceSilentRule,
    Field(discriminator="kind"),
]


class EventRulesFile(BaseModel):
    """The part of the rules file this module reads (other keys, e.g. today's post rules, are ignored)."""

    model_config = ConfigDict(extra="ignore")

    people: list[Person] = Field(default_factory=list)
    event_rules: list[SignalRule] = Field(default_factory=list)


@dataclass(frozen=True)
class EventRules:
    """The checked rules (enabled ones only) and the directory."""

    rules: tuple[RuleBase, ...]
    directory: Directory

    def explain(self) -> list[str]:
        return [rule.explain(self.directory) for rule in self.rules]


def check_rules(spec: EventRulesFile, file: Path | str) -> EventRules:
    """Names unique; every name, unit and topic a rule routes to exists in the directory (ConfigError naming
    the file and the field otherwise)."""
    people = spec.people
    seen: set[str] = set()
    for i, person in enumerate(people):
        if person.name in seen:
            raise ConfigError(f"姓名“{person.name}”重复", file=file, field=f"people[{i}].name")
        seen.add(person.name)
    units = {p.unit for p in people if p.unit}
    topics = {t for p in people for t in p.topics}
    rule_names: set[str] = set()
    for i, rule in enumerate(spec.event_rules):
        where = f"event_rules[{i}]"
        if rule.name in rule_names:
            raise ConfigError(f"规则名“{rule.name}”重复", file=file, field=f"{where}.name")
        rule_names.add(rule.name)
        r = rule.recipients
        for key, values, known in (("names", r.names, seen), ("units", r.units, units), ("topics", r.topics, topics)):
            for j, value in enumerate(values):
                if value not in known:
                    listed = "、".join(sorted(known)) or "无"
                    raise ConfigError(
                        f"“{value}”不在人员名录（people）中（已有 {key}：{listed}）",
                        file=file, field=f"{where}.recipients.{key}[{j}]",
                    )
    return EventRules(rules=tuple(r for r in spec.event_rules if r.enabled), directory=Directory(tuple(people)))


def load_event_rules(path: Path) -> EventRules:
    """Read and check the ``people`` and ``event_rules`` of the rules file at ``path``."""
    return check_rules(load_model(path, EventRulesFile), path)


# ---- evaluation -------------------------------------------------------------------------------------------
Hold = Literal["now", "digest", "quiet"]


def decision_id(rule: str, subject_key: str, occurrence: str) -> str:
    """The outbox entry id of a decision: deciding the same occurrence again finds the same entry."""
    return hashlib.sha1(f"{rule}\x00{subject_key}\x00{occurrence}".encode()).hexdigest()


@dataclass(frozen=True)
class Decision:
    """Mail ``signal`` under ``rule`` to ``recipients``: now, or (``digest_key`` set) at ``deliver_at``
    together with everything else under the same key."""

    rule: str
    rule_kind: str
    subject_key: str
    occurrence: str
    title: str
    reason: str
    level: RiskLevel | None
    recipients: tuple[Person, ...]
    decided_at: datetime
    deliver_at: datetime
    hold: Hold
    digest_key: str | None
    signal: Signal = field(repr=False)

    @property
    def id(self) -> str:
        return decision_id(self.rule, self.subject_key, self.occurrence)

    @property
    def addresses(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(p.email for p in self.recipients))


@dataclass(frozen=True)
class Skipped:
    rule: str
    subject_key: str
    reason: str


@dataclass
class Evaluation:
    decisions: list[Decision] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)


def _recipients_key(addresses: Sequence[str]) -> str:
    return hashlib.sha1("\x00".join(sorted(addresses)).encode()).hexdigest()[:10]


def schedule(rule: RuleBase, level: RiskLevel | None, addresses: Sequence[str], now: datetime) -> tuple[
    datetime, Hold, str | None
]:
    """(deliver_at, hold, digest_key) of a match at ``now`` (aware, local time).

    Urgent levels go now. A digest rule waits for the end of its window. Nothing goes out in quiet hours
    (``[start, end)``): what would, waits for their end and goes out then as one summary per rule and set of
    recipients (a digest window ending at the start of quiet hours too).
    """
    if level is not None and level in rule.urgent_levels:
        return now, "now", None
    who = _recipients_key(addresses)
    deliver_at: datetime = now
    hold: Hold = "now"
    key: str | None = None
    if rule.digest_minutes:
        start, deliver_at = digest_window(now, rule.digest_minutes)
        hold, key = "digest", f"{rule.name}|digest|{start.isoformat()}|{who}"
    if rule.quiet_hours is not None:
        end = rule.quiet_hours.end_after(deliver_at)
        if end is not None:
            deliver_at, hold, key = end, "quiet", f"{rule.name}|quiet|{end.isoformat()}|{who}"
    return deliver_at, hold, key


def evaluate(
    rules: Sequence[RuleBase],
    directory: Directory,
    signals: Sequence[Signal],
    *,
    now: datetime,
    tz: ZoneInfo,
    history: Mapping[tuple[str, str], datetime] | None = None,
) -> Evaluation:
    """The decisions for ``signals`` at ``now`` (pure).

    ``history``: when each (rule, subject_key) was last decided (the outbox's record); a match within the
    rule's cooldown of it is skipped. Matches in this call count too (two signals about one subject: one mail).
    """
    if now.tzinfo is None:
        raise ValueError("evaluate: now must be timezone-aware")
    local_now = now.astimezone(tz)
    last: dict[tuple[str, str], datetime] = dict(history or {})
    out = Evaluation()
    for signal in signals:
        for rule in rules:
            if not rule.enabled:
                continue
            found = rule.match(signal, now)
            if found is None:
                continue
            key = signal.subject_key
            people = directory.resolve(rule.recipients, unit=signal.unit, topic=signal.topic)
            if not people:
                who = f"责任单位“{signal.unit}”" if rule.recipients.signal_unit and signal.unit else "规则"
                out.skipped.append(Skipped(rule.name, key, f"无收件人：{who}在通讯录中没有对应人员"))
                continue
            previous = last.get((rule.name, key))
            urgent = signal.level is not None and signal.level in rule.urgent_levels
            if rule.cooldown_minutes and not urgent and previous is not None and now - previous < timedelta(
                minutes=rule.cooldown_minutes
            ):
                out.skipped.append(Skipped(
                    rule.name, key,
                    f"冷却中：上次提醒于 {previous.astimezone(tz):%H:%M}，冷却 {rule.cooldown_minutes} 分钟",
                ))
                continue
            addresses = tuple(dict.fromkeys(p.email for p in people))
            deliver_at, hold, digest_key = schedule(rule, signal.level, addresses, local_now)
            out.decisions.append(Decision(
                rule=rule.name, rule_kind=rule.kind,
                subject_key=key, occurrence=found.occurrence, title=signal.title, reason=found.reason,
                level=signal.level, recipients=people, decided_at=now, deliver_at=deliver_at, hold=hold,
                digest_key=digest_key, signal=signal,
            ))
            last[(rule.name, key)] = now
    return out


__all__ = [
    "LEVELS",
    "Decision",
    "Directory",
    "Evaluation",
    "EventRules",
    "EventRulesFile",
    "Person",
    "PostRule",
    "QuietHours",
    "Recipients",
    "RuleBase",
    "SignalRule",
    "Skipped",
    "decision_id",
    "digest_window",
    "evaluate",
    "load_event_rules",
]
