"""The alert rules file (``config/alerts.yaml``): typed models, loading and recipient resolution.

The file has two sections. ``recipients`` maps a group name to a list of addresses; ``rules`` lists the rules.
A rule's ``recipients`` names groups or plain addresses. Keywords match as exact substrings of the title or
the body. Every mistake raises :class:`ConfigError` naming the file and the field (e.g.
``rules[2].recipients[0]``) so a press officer can fix the file without reading code.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from yuqing.config_files import load_model
from yuqing.errors import ConfigError
from yuqing.models import PostKind, Sentiment
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


class AlertRulesFile(BaseModel):
    """The whole file."""

    model_config = ConfigDict(extra="forbid")

    recipients: dict[str, list[str]] = Field(default_factory=dict)
    rules: list[RuleSpec] = Field(default_factory=list)

    @field_validator("recipients")
    @classmethod
    def _groups(cls, groups: dict[str, list[str]]) -> dict[str, list[str]]:
        for name, addresses in groups.items():
            if not addresses:
                raise ValueError(f"recipient group {name!r} has no addresses")
            for address in addresses:
                if not is_address(address.strip()):
                    raise ValueError(f"recipient group {name!r}: {address!r} is not an email address")
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
                f"the rule name {rule.name!r} is used twice", file=file, field=f"rules[{i}].name"
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
            )
        )
    return rules


def load_rules(path: Path) -> list[AlertRule]:
    """Read and check the rules file at ``path``."""
    return resolve_rules(load_model(path, AlertRulesFile), path)


def rules_path(settings: Settings) -> Path:
    """The rules file named by ``alerts.rules_file`` (relative to ``paths.config_dir``)."""
    path = settings.alerts.rules_file
    return path if path.is_absolute() else settings.paths.config_dir / path


def search_keywords(settings: Settings) -> list[str]:
    """What search sources that name no keywords search for: the ``any`` keywords of the enabled rules (in file
    order, once each), so what the office is alerted on is also what it searches for."""
    return list(dict.fromkeys(w for rule in load_rules(rules_path(settings)) for w in rule.any_of))
