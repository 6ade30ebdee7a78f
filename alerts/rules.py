"""The alert rules file (``config/alerts.yaml``): typed models, the one loader and recipient resolution.

Sections: ``recipients`` maps a group name to a list of addresses; ``rules`` lists the post rules (a rule's
``recipients`` names groups or plain addresses; keywords match as exact substrings of the title or the body;
optional ``digest_minutes`` / ``quiet_hours``); ``people`` is the directory and ``event_rules`` the rules on
signals (events, surges, 专题, tickets, 依申请公开, sources; :mod:`alerts.event_rules`); ``reports`` names who gets
the 舆情日报 and 周报. :func:`load_alert_config` reads and checks all of it; every mistake raises
:class:`ConfigError` naming the file and the field (e.g. ``rules[2].recipients[0]``) so a press officer can fix
the file without reading code. Post rules and signal rules decide into one outbox (:mod:`alerts.outbox`).
"""

from __future__ import annotations

import re
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from alerts.event_rules import (
    EventRules,
    EventRulesFile,
    Person,
    PostRule,
    QuietHours,
    Recipients,
    RuleBase,
    SignalRule,
    check_rules,
)
from yuqing.config_files import load_model
from yuqing.errors import ConfigError
from yuqing.models import KIND_LABELS, SENTIMENT_LABELS, PostKind, Sentiment
from yuqing.settings import Settings

_ADDRESS = re.compile(r"^[^@\s,;<>\"']+@[^@\s,;<>\"']+$")


def is_address(value: str) -> bool:
    return bool(_ADDRESS.match(value))


def _check_keywords(values: list[str]) -> list[str]:
    out: list[str] = []
    for value in values:
        keyword = value.strip()
        if not keyword:
            raise ValueError("keywords must not be empty")
        if any(ch.isspace() for ch in keyword):
            raise ValueError(f"keyword {keyword!r} contains a space; list each keyword separately")
        out.append(keyword)
    return out


class RuleSpec(BaseModel):
    """One rule as written in the file."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    name: str = Field(min_length=1)
    description: str = ""
    enabled: bool = True
    any_of: list[str] = Field(default_factory=list, alias="any")
    all_of: list[str] = Field(default_factory=list, alias="all")
    exclude: list[str] = Field(default_factory=list)
    sources: list[str] = Field(default_factory=list)
    kinds: list[PostKind] = Field(default_factory=list)
    sentiments: list[Sentiment] = Field(default_factory=list)
    topics: list[str] = Field(default_factory=list)
    relevant_only: bool = False
    include_duplicates: bool = False
    recipients: list[str] = Field(min_length=1)
    digest_minutes: int | None = Field(None, ge=1, le=1440)
    quiet_hours: QuietHours | None = None

    @field_validator("name")
    @classmethod
    def _strip_name(cls, value: str) -> str:
        value = value.strip()
        if not value:
            raise ValueError("the rule name must not be empty")
        return value

    @field_validator("any_of", "all_of", "exclude")
    @classmethod
    def _keywords(cls, values: list[str]) -> list[str]:
        return _check_keywords(values)

    @field_validator("recipients")
    @classmethod
    def _strip_recipients(cls, values: list[str]) -> list[str]:
        return [v.strip() for v in values]

    @model_validator(mode="after")
    def _needs_a_condition(self) -> RuleSpec:
        if not (self.any_of or self.all_of or self.sentiments or self.topics or self.relevant_only):
            raise ValueError(
                "a rule needs a keyword under 'any' or 'all', or a classifier condition "
                "('sentiments', 'topics' or 'relevant_only')"
            )
        return self


class ReportRecipients(BaseModel):
    """Who receives the scheduled reports (people of the directory, by name, unit or topic, or addresses)."""

    model_config = ConfigDict(extra="forbid")

    daily: Recipients | None = None
    weekly: Recipients | None = None
    # who receives a 舆情专报 a press officer submits (呈报) from 事件详情 or `yuqing report event ID --send`
    brief: Recipients | None = None


class AlertRulesFile(BaseModel):
    """The whole file."""

    model_config = ConfigDict(extra="forbid")

    recipients: dict[str, list[str]] = Field(default_factory=dict)
    rules: list[RuleSpec] = Field(default_factory=list)
    people: list[Person] = Field(default_factory=list)
    event_rules: list[SignalRule] = Field(default_factory=list)
    reports: ReportRecipients = Field(default_factory=ReportRecipients)

    @field_validator("recipients")
    @classmethod
    def _groups(cls, groups: dict[str, list[str]]) -> dict[str, list[str]]:
        for name, addresses in groups.items():
            if not addresses:
                raise ValueError(f"收件人组“{name}”没有邮箱地址")
            for address in addresses:
                if not is_address(address.strip()):
                    raise ValueError(f"收件人组“{name}”：“{address}”不是有效的邮箱地址")
        return {name: [a.strip() for a in addresses] for name, addresses in groups.items()}


@dataclass(frozen=True)
class AlertRule:
    """A checked rule with its recipients resolved to addresses; what the rest of the package uses."""

    name: str
    any_of: tuple[str, ...] = ()
    all_of: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    sources: tuple[str, ...] = ()
    kinds: tuple[str, ...] = ()
    sentiments: tuple[str, ...] = ()
    topics: tuple[str, ...] = ()
    relevant_only: bool = False
    include_duplicates: bool = False
    recipients: tuple[str, ...] = ()
    description: str = ""
    digest_minutes: int | None = None
    quiet_hours: QuietHours | None = None

    def explain_condition(self) -> str:
        """The conditions in Chinese, e.g. ``标题或正文含“图书馆”；不含“招聘”；情感为负面``."""
        parts: list[str] = []
        if self.all_of:
            parts.append("标题或正文同时含" + "、".join(f"“{w}”" for w in self.all_of))
        if self.any_of:
            parts.append("标题或正文含" + "或".join(f"“{w}”" for w in self.any_of))
        if self.exclude:
            parts.append("不含" + "、".join(f"“{w}”" for w in self.exclude))
        if self.sentiments:
            parts.append("情感为" + "或".join(SENTIMENT_LABELS.get(s, s) for s in self.sentiments))
        if self.topics:
            parts.append("主题为" + "或".join(f"“{t}”" for t in self.topics))
        if self.relevant_only:
            parts.append("与本局公共文化工作相关")
        if self.sources:
            parts.append("限信源" + "、".join(self.sources))
        if self.kinds:
            parts.append("限类型" + "、".join(KIND_LABELS.get(k, k) for k in self.kinds))
        if self.include_duplicates:
            parts.append("转载也提醒")
        return "；".join(parts)

    def as_signal_rule(self) -> PostRule:
        """This rule on the outbox path (its matches arrive as PostSignals)."""
        return PostRule(kind="post", name=self.name, description=self.description,
                        recipients=Recipients(emails=self.recipients), digest_minutes=self.digest_minutes,
                        quiet_hours=self.quiet_hours, urgent_levels=(), summary=self.explain_condition())

    def summary(self) -> str:
        """The rule's conditions in one line, e.g. ``图书馆, 文化馆; 情感=negative; 仅相关``."""
        parts = [", ".join(self.keywords)] if self.keywords else []
        if self.sentiments:
            parts.append("情感=" + "/".join(self.sentiments))
        if self.topics:
            parts.append("主题=" + "/".join(self.topics))
        if self.relevant_only:
            parts.append("仅相关")
        return "; ".join(parts)

    @property
    def keywords(self) -> tuple[str, ...]:
        """The keywords a matching post contains (``all`` first, then ``any``)."""
        return self.all_of + self.any_of


def resolve_rules(spec: AlertRulesFile, file: Path | str) -> list[AlertRule]:
    """The enabled rules with recipients resolved; unknown groups and repeated names raise ConfigError."""
    seen: set[str] = set()
    rules: list[AlertRule] = []
    for i, rule in enumerate(spec.rules):
        if rule.name in seen:
            raise ConfigError(
                f"规则名“{rule.name}”重复", file=file, field=f"rules[{i}].name"
            )
        seen.add(rule.name)
        addresses: list[str] = []
        for j, entry in enumerate(rule.recipients):
            if entry in spec.recipients:
                found = spec.recipients[entry]
            elif is_address(entry):
                found = [entry]
            else:
                known = ", ".join(sorted(spec.recipients)) or "none defined"
                raise ConfigError(
                    f"unknown recipient group {entry!r} (known groups: {known}; or write an email address)",
                    file=file,
                    field=f"rules[{i}].recipients[{j}]",
                )
            addresses.extend(a for a in found if a not in addresses)
        if not rule.enabled:
            continue
        rules.append(
            AlertRule(
                name=rule.name,
                description=rule.description,
                any_of=tuple(rule.any_of),
                all_of=tuple(rule.all_of),
                exclude=tuple(rule.exclude),
                sources=tuple(rule.sources),
                kinds=tuple(rule.kinds),
                sentiments=tuple(rule.sentiments),
                topics=tuple(rule.topics),
                relevant_only=rule.relevant_only,
                include_duplicates=rule.include_duplicates,
                recipients=tuple(addresses),
                digest_minutes=rule.digest_minutes,
                quiet_hours=rule.quiet_hours,
            )
        )
    return rules


def load_rules(path: Path) -> list[AlertRule]:
    """Read and check the rules file at ``path`` (its post rules)."""
    return load_alert_config(path).post_rules


@dataclass(frozen=True)
class AlertConfig:
    """The checked rules file: post rules, signal rules with the directory, and the report recipients."""

    path: Path
    post_rules: list[AlertRule]
    signal_rules: EventRules
    daily_recipients: tuple[Person, ...] = ()
    weekly_recipients: tuple[Person, ...] = ()
    brief_recipients: tuple[Person, ...] = ()

    @property
    def outbox_rules(self) -> EventRules:
        """Every enabled rule, post rules included, as the outbox evaluates them."""
        posts: tuple[RuleBase, ...] = tuple(r.as_signal_rule() for r in self.post_rules)
        return EventRules(rules=posts + self.signal_rules.rules, directory=self.signal_rules.directory)

    def explain(self) -> list[str]:
        """Every rule in Chinese (``yuqing alert --check``), the reports last."""
        lines = [r.as_signal_rule().explain(self.signal_rules.directory) for r in self.post_rules]
        lines += self.signal_rules.explain()
        for label, people in (("舆情日报", self.daily_recipients), ("舆情周报", self.weekly_recipients),
                              ("舆情专报", self.brief_recipients)):
            who = "、".join(p.label() for p in people)
            lines.append(f"【{label}】发送给：{who}。" if people else f"【{label}】未配置收件人，不发送。")
        return lines


def _check_topics(spec: AlertRulesFile, path: Path, topics: Collection[str]) -> None:
    """Every topic the file names (a person's, a post rule's, an event rule's) is one of ``topics``: a misspelt
    one would match nothing, silently (a person who never hears of the topic they follow)."""
    places: list[tuple[str, Sequence[str]]] = [
        *((f"people[{i}].topics", p.topics) for i, p in enumerate(spec.people)),
        *((f"rules[{i}].topics", r.topics) for i, r in enumerate(spec.rules)),
        *((f"event_rules[{i}].topics", getattr(r, "topics", ())) for i, r in enumerate(spec.event_rules)),
        *((f"event_rules[{i}].recipients.topics", r.recipients.topics) for i, r in enumerate(spec.event_rules)),
    ]
    for field, named in places:
        for j, topic in enumerate(named):
            if topic not in topics:
                raise ConfigError(f"“{topic}”不是主题分类（taxonomy.yaml）中的主题；可选：{'、'.join(topics)}",
                                  file=path, field=f"{field}[{j}]")


def load_alert_config(path: Path, topics: Collection[str] | None = None) -> AlertConfig:
    """Read and check the whole rules file at ``path`` (ConfigError naming the file and field otherwise);
    with ``topics`` (the taxonomy's), every topic it names must be one of them."""
    spec = load_model(path, AlertRulesFile)
    if topics is not None:
        _check_topics(spec, path, topics)
    post_rules = resolve_rules(spec, path)
    signal_rules = check_rules(EventRulesFile(people=spec.people, event_rules=spec.event_rules), path)
    names = {r.name for r in spec.rules}
    for i, rule in enumerate(spec.event_rules):
        if rule.name in names:
            raise ConfigError(f"the rule name {rule.name!r} is used by a post rule too", file=path,
                              field=f"event_rules[{i}].name")
    directory = signal_rules.directory
    known = {p.name for p in spec.people}
    units = {p.unit for p in spec.people if p.unit}
    topics = {t for p in spec.people for t in p.topics}
    chosen: dict[str, tuple[Person, ...]] = {}
    for which in ("daily", "weekly", "brief"):
        r: Recipients | None = getattr(spec.reports, which)
        if r is None:
            chosen[which] = ()
            continue
        for key, values, pool in (("names", r.names, known), ("units", r.units, units), ("topics", r.topics, topics)):
            for j, value in enumerate(values):
                if value not in pool:
                    raise ConfigError(f"“{value}”不在人员名录（people）中", file=path,
                                      field=f"reports.{which}.{key}[{j}]")
        chosen[which] = directory.resolve(r, unit=None, topic=None)
    return AlertConfig(path=path, post_rules=post_rules, signal_rules=signal_rules,
                       daily_recipients=chosen["daily"], weekly_recipients=chosen["weekly"],
                       brief_recipients=chosen["brief"])


def alert_config(settings: Settings) -> AlertConfig:
    """The rules file of ``settings``, its topics checked against the taxonomy (:func:`load_alert_config`)."""
    from nlp.taxonomy import load_taxonomy

    topics = load_taxonomy(settings.config_file("taxonomy.yaml")).names
    return load_alert_config(rules_path(settings), topics)


def rules_path(settings: Settings) -> Path:
    """The rules file named by ``alerts.rules_file`` (relative to ``paths.config_dir``)."""
    path = settings.alerts.rules_file
    return path if path.is_absolute() else settings.paths.config_dir / path


def search_keywords(settings: Settings) -> list[str]:
    """What search sources that name no keywords search for: the ``any`` keywords of the enabled rules (in file
    order, once each), so what the office is alerted on is also what it searches for."""
    return list(dict.fromkeys(w for rule in load_rules(rules_path(settings)) for w in rule.any_of))
