"""The response configuration (config/response.yaml) and the shared vocabulary: risk levels, channels.

Deadlines per risk level, the channels of the bureau's own sources, the 依申请公开 periods and reply texts
are data; the defaults here mirror the shipped file (国办发〔2016〕61号 / 80号, 政府信息公开条例 2019).
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from yuqing.config_files import load_model

RiskLevel = Literal["I", "II", "III", "IV"]
RISK_LEVELS: tuple[RiskLevel, ...] = ("I", "II", "III", "IV")
RISK_LABELS: dict[str, str] = {
    "I": "I级(特别重大·红)", "II": "II级(重大·橙)", "III": "III级(较大·黄)", "IV": "IV级(一般·蓝)",
}

Channel = Literal["官网", "微信公众号", "微博", "新闻发布会", "媒体采访", "留言答复"]
CHANNELS: tuple[Channel, ...] = ("官网", "微信公众号", "微博", "新闻发布会", "媒体采访", "留言答复")


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class DeadlineItem(_Model):
    """One statutory deadline, counted in clock hours from the moment the 舆情 surfaced."""

    kind: str = Field(min_length=1, description="e.g. 权威信息发布, 新闻发布会, 回应")
    within_hours: float = Field(gt=0)
    basis: str = Field(min_length=1, description="the norm it comes from, e.g. 国办发〔2016〕80号")
    # Only responses on these channels meet it (e.g. a press conference); empty: any channel.
    channels: list[Channel] = Field(default_factory=list)


class DeadlineRule(_Model):
    label: str = Field(min_length=1)
    levels: list[RiskLevel] = Field(default_factory=list)
    items: list[DeadlineItem] = Field(min_length=1)


def _major() -> DeadlineRule:
    return DeadlineRule(
        label="特别重大、重大政务舆情",
        levels=["I", "II"],
        items=[
            DeadlineItem(kind="权威信息发布", within_hours=5, basis="国办发〔2016〕80号"),
            DeadlineItem(kind="新闻发布会", within_hours=24, basis="国办发〔2016〕61号", channels=["新闻发布会"]),
        ],
    )


def _other() -> DeadlineRule:
    return DeadlineRule(
        label="其他政务舆情", items=[DeadlineItem(kind="回应", within_hours=48, basis="国办发〔2016〕61号")]
    )


class Deadlines(_Model):
    by_level: list[DeadlineRule] = Field(default_factory=lambda: [_major()])
    default: DeadlineRule = Field(default_factory=_other)

    @field_validator("by_level")
    @classmethod
    def _levels_once(cls, rules: list[DeadlineRule]) -> list[DeadlineRule]:
        seen: set[str] = set()
        for rule in rules:
            if not rule.levels:
                raise ValueError(f"rule {rule.label!r} names no levels (use `default` for the rest)")
            twice = seen.intersection(rule.levels)
            if twice:
                raise ValueError(f"level {sorted(twice)[0]} appears in more than one rule")
            seen.update(rule.levels)
        return rules

    def rule_for(self, level: RiskLevel | None) -> DeadlineRule:
        for rule in self.by_level:
            if level is not None and level in rule.levels:
                return rule
        return self.default


def _channels_by_kind() -> dict[str, Channel]:
    return {"feed": "官网", "list": "官网", "search": "官网", "social": "微博", "message_board": "留言答复"}


class OwnChannels(_Model):
    """Which response channel a post on one of the bureau's own sources (``own: true``) counts as."""

    by_kind: dict[str, Channel] = Field(default_factory=_channels_by_kind)
    by_source: dict[str, Channel] = Field(default_factory=dict)

    def channel_of(self, source: str, kind: str) -> Channel:
        return self.by_source.get(source) or self.by_kind.get(kind, "官网")


class SilenceSettings(_Model):
    # An own-channel post matches a ticket when it contains at least this many of the ticket's keywords (all of
    # them when the ticket has fewer).
    min_keyword_hits: int = Field(2, ge=1)
    # Own-channel posts published up to this long before the ticket was opened still count as a response.
    lookback_hours: float = Field(24.0, ge=0)


class ReminderSettings(_Model):
    # A 处置单 deadline is reminded this many hours before it is due (and after, while unmet).
    ticket_before_hours: float = Field(2.0, ge=0)


class Remedy(_Model):
    """救济途径 every reply must state (政府信息公开条例 第五十一条)."""

    review_days: int = Field(60, ge=1, description="行政复议法: 60 days from knowing of the act")
    litigation_months: int = Field(6, ge=1, description="行政诉讼法 第四十六条: 6 months")
    review_body: str = Field("本级人民政府", min_length=1)
    court: str = Field("有管辖权的人民法院", min_length=1)


class FoiaSettings(_Model):
    answer_working_days: int = Field(20, ge=1, description="条例 第三十三条")
    extension_working_days: int = Field(20, ge=1, description="条例 第三十三条: at most 20, once")
    correction_notice_working_days: int = Field(7, ge=1, description="条例 第三十条")
    correction_period_working_days: int = Field(
        15, ge=1, description="the reasonable period given to the applicant to correct (补正期限)")
    third_party_working_days: int = Field(15, ge=1, description="条例 第三十二条")
    remind_within_working_days: int = Field(3, ge=0)
    agency: str = Field("本机关", min_length=1, description="the answering agency's name in reply texts")
    remedy: Remedy = Field(default_factory=Remedy)


class ResponseConfig(_Model):
    version: int = 1
    deadlines: Deadlines = Field(default_factory=Deadlines)
    # The responsible unit when the topic has none in the taxonomy.
    default_unit: str = Field("办公室", min_length=1)
    # Events at this risk level or higher get a ticket by rule (None: tickets are opened by hand only).
    auto_open_min_level: RiskLevel | None = "II"
    own_channels: OwnChannels = Field(default_factory=OwnChannels)
    silence: SilenceSettings = Field(default_factory=SilenceSettings)
    reminders: ReminderSettings = Field(default_factory=ReminderSettings)
    foia: FoiaSettings = Field(default_factory=FoiaSettings)

    @model_validator(mode="after")
    def _version(self) -> ResponseConfig:
        if self.version != 1:
            raise ValueError(f"unsupported version {self.version} (this yuqing reads version 1)")
        return self


def load_response_config(path: Path) -> ResponseConfig:
    """The response configuration; an absent file gives the defaults, a malformed one raises ConfigError."""
    if not path.exists():
        return ResponseConfig()
    return load_model(path, ResponseConfig)
