"""The events tunables (``config/events.yaml``): one pydantic model, defaults here and nowhere else.

Every section forbids unknown keys (a typo must not silently fall back to a default); errors name the file
and the field (:func:`yuqing.config_files.load_model`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from yuqing.config_files import load_model

Features = Literal["words", "bigrams", "words+bigrams"]
RiskLevel = Literal["I", "II", "III", "IV"]
LEVELS: tuple[RiskLevel, ...] = ("I", "II", "III", "IV")
LEVEL_COLOURS: dict[str, str] = {"I": "红", "II": "橙", "III": "黄", "IV": "蓝"}
LEVEL_LABELS: dict[str, str] = {lv: f"{lv}级（{LEVEL_COLOURS[lv]}）" for lv in LEVELS}  # I级（红）, shown to users

# The metrics a risk rule may test (lower bounds), with their Chinese labels for the reasons shown to users.
METRIC_LABELS: dict[str, str] = {
    "heat": "热度",
    "heat_6h": "6小时预测热度",
    "heat_24h": "24小时预测热度",
    "growth": "增长倍数",
    "count": "信息总量",
    "recent_count": "近期信息量",
    "board_reports": "近期留言反映次数",
    "negative_share": "负面占比",
    "sensitive": "敏感词数",
    "relevance_share": "业务相关占比",
    "media_count": "媒体报道数",
    "official_count": "官方/权威来源数",
    "engagement": "互动量",
}


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class PerKind(_Section):
    """A duration in hours with per-kind overrides (message boards move in days, social media in hours)."""

    default: float = Field(gt=0)
    kinds: dict[str, float] = Field(default_factory=dict)

    @field_validator("kinds")
    @classmethod
    def _positive(cls, value: dict[str, float]) -> dict[str, float]:
        for kind, hours in value.items():
            if hours <= 0:
                raise ValueError(f"{kind}: hours must be > 0")
        return value

    def of(self, kind: str) -> float:
        return self.kinds.get(kind, self.default)

    @property
    def longest(self) -> float:
        return max([self.default, *self.kinds.values()])


class TextConfig(_Section):
    """How a post becomes a TF-IDF vector."""

    features: Features = "words"
    title_weight: int = Field(2, ge=0, description="the title's tokens count this many times")
    max_chars: int = Field(600, ge=1, description="only the head of the body is read")
    max_post_terms: int = Field(40, ge=1, description="a post vector keeps its highest-weighted terms")
    max_vocabulary: int = Field(
        200_000, ge=100,
        description="document frequencies kept in the clustering state: past this many terms the rarest are dropped")
    stopwords: list[str] = Field(default_factory=list)


class ClusteringConfig(_Section):
    """Single-pass clustering: thresholds, time window and decay, candidate retrieval."""

    threshold: float = Field(0.3, gt=0, le=1, description="effective similarity needed to join an event")
    merge_threshold: float = Field(0.5, gt=0, le=1, description="centroid similarity at which two events merge")
    window_hours: PerKind = Field(
        default_factory=lambda: PerKind(default=72.0, kinds={"message": 720.0}),
        description="an event takes no post more than this after its last post (by the new post's kind)",
    )
    decay_hours: PerKind = Field(
        default_factory=lambda: PerKind(default=96.0, kinds={"message": 2160.0}),
        description="similarity x 2^(-gap/decay): the time constant of the time decay",
    )
    centroid_terms: int = Field(60, ge=1, description="an event's centroid keeps this many terms")
    index_terms: int = Field(20, ge=1, description="centroid terms entered in the inverted index")
    query_terms: int = Field(12, ge=1, description="a post's terms looked up in the inverted index")
    max_candidates: int = Field(25, ge=1, description="events scored exactly per post")
    place_veto: bool = Field(True, description="events naming other county-level places than the post never take it")
    hashtag_bonus: float = Field(
        0.0, ge=0, le=1, description="added to the similarity of an event sharing a 话题 (#…#) with the post; 0: off")
    hashtag_min_chars: int = Field(4, ge=1, description="shorter 话题 (#青川#: too general) link nothing")
    hashtag_ignore: list[str] = Field(
        default_factory=list, description="话题 that link nothing, without the #: an account's standing tags")
    briefs: int = Field(20, ge=1, description="member titles kept per event for the representative title")
    members_kept: int = Field(200, ge=1, description="member ids kept on the event record (all are in the state)")
    state_retention_days: float = Field(
        30.0, gt=0, description="a closed event leaves the engine's state this long after it closed (its record stays)")

    @model_validator(mode="after")
    def _index_within_centroid(self) -> ClusteringConfig:
        if self.index_terms > self.centroid_terms:
            raise ValueError("index_terms must not exceed centroid_terms")
        return self


class AuthorityConfig(_Section):
    """Source authority weights: a post counts ``sources[source]`` or else ``kinds[kind]`` or ``default``."""

    default: float = Field(1.0, gt=0)
    kinds: dict[str, float] = Field(default_factory=dict)
    sources: dict[str, float] = Field(default_factory=dict)

    def weight(self, source: str, kind: str) -> float:
        if source in self.sources:
            return self.sources[source]
        return self.kinds.get(kind, self.default)


class EngagementWeights(_Section):
    likes: float = Field(1.0, ge=0)
    dislikes: float = Field(1.0, ge=0)
    comments: float = Field(2.0, ge=0)
    reposts: float = Field(3.0, ge=0)


class HeatWeights(_Section):
    volume: float = Field(0.12, ge=0)
    engagement: float = Field(0.05, ge=0)
    negative: float = Field(0.08, ge=0)
    growth: float = Field(0.10, ge=0)


class HeatConfig(_Section):
    half_life_hours: float = Field(24.0, gt=0, description="recency decay of each post's contribution")
    window_hours: float = Field(6.0, gt=0, description="growth compares the last window with the one before")
    weights: HeatWeights = Field(default_factory=HeatWeights)
    engagement: EngagementWeights = Field(default_factory=EngagementWeights)
    authority: AuthorityConfig = Field(default_factory=AuthorityConfig)


class ForecastConfig(_Section):
    """Damped Holt smoothing of the hourly post counts (see events.forecast)."""

    alpha: float = Field(0.5, gt=0, le=1)
    beta: float = Field(0.2, ge=0, le=1)
    phi: float = Field(0.8, gt=0, le=1)
    history_hours: int = Field(72, ge=2, description="hours of the timeline the smoother reads")


class RiskRule(_Section):
    """A rule fires when every condition holds (each is a lower bound on a metric of the event)."""

    level: RiskLevel
    reason: str = Field(min_length=1, description="shown to the user (Chinese)")
    when: dict[str, float] = Field(min_length=1)

    @field_validator("when")
    @classmethod
    def _known_metrics(cls, value: dict[str, float]) -> dict[str, float]:
        unknown = sorted(set(value) - set(METRIC_LABELS))
        if unknown:
            raise ValueError(f"unknown metric(s) {unknown}; known: {sorted(METRIC_LABELS)}")
        return value


class RiskConfig(_Section):
    recent_hours: float = Field(72.0, gt=0, description="window of the recent_count metric")
    rules: list[RiskRule] = Field(default_factory=list)
    default_reason: str = "热度较低，常规关注"
    sensitive_words: list[str] = Field(default_factory=list)
    media_kinds: list[str] = Field(default_factory=lambda: ["article"])
    board_kinds: list[str] = Field(default_factory=lambda: ["message"], description="message-board post kinds")
    board_hours: float = Field(2160.0, gt=0, description="window of board_reports (信访 handling: 60+30 days)")
    official_sources: list[str] = Field(default_factory=list)
    # 与本局业务无关: an event fewer than this share of whose posts concern the bureau's work (relevance known for
    # at least one) stays at level IV whatever its heat: it is not the bureau's to answer, so it must not raise
    # an alert, a 处置单 or a place among the hot events. 0 turns the cap off.
    min_relevance_share: float = Field(0.3, ge=0, le=1, description="below it an event is 与本局业务无关 (level IV)")
    unrelated_reason: str = Field("与本局业务无关，常规关注", min_length=1)
    # 本局发布: an event all of whose posts came from the bureau's own channels (sources.yaml ``own: true``) is
    # the bureau speaking — a notice, its 情况说明 — not public opinion about it: it too stays at IV, out of
    # scope, so the bureau's own statement never pages its leaders or opens a 处置单 against itself.
    own_reason: str = Field("仅有本局渠道发布的信息，不是外部舆情", min_length=1)


class TimelineConfig(_Section):
    hourly_hours: int = Field(336, ge=24, description="hourly buckets kept; older ones are folded into days")


class EventsConfig(_Section):
    version: int = 1
    text: TextConfig = Field(default_factory=TextConfig)
    clustering: ClusteringConfig = Field(default_factory=ClusteringConfig)
    heat: HeatConfig = Field(default_factory=HeatConfig)
    forecast: ForecastConfig = Field(default_factory=ForecastConfig)
    risk: RiskConfig = Field(default_factory=RiskConfig)
    timeline: TimelineConfig = Field(default_factory=TimelineConfig)

    @model_validator(mode="after")
    def _timeline_covers_windows(self) -> EventsConfig:
        need = max(2 * self.heat.window_hours, self.risk.recent_hours, float(self.forecast.history_hours))
        if self.timeline.hourly_hours < need:
            raise ValueError(f"timeline.hourly_hours must be >= {need:g} (heat, risk and forecast windows)")
        return self


def load_events_config(path: Path) -> EventsConfig:
    """Read and validate ``config/events.yaml``; errors name the file and the field (ConfigError)."""
    return load_model(path, EventsConfig)
