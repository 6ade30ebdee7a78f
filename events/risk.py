"""Risk level (预警等级) I–IV (红/橙/黄/蓝) by the rules in ``config/events.yaml`` (``risk.rules``).

Each rule names a level, a reason (Chinese, for the user) and lower bounds on metrics of the event
(:data:`events.config.METRIC_LABELS`); it fires when every bound holds. The event's level is the most severe
level among the rules that fired (I is the most severe), IV when none fired. The reasons returned are those
of the rules at the chosen level, each followed by the values that made it fire, e.g.
``负面情绪集中且热度高（热度 82 ≥ 80；负面占比 64% ≥ 50%）``.

An event 与本局业务无关 — fewer than ``risk.min_relevance_share`` of its posts concern the bureau's work — stays at
IV whatever fired, with ``risk.unrelated_reason``: a viral story about water cuts or a marathon is not the culture
bureau's to answer, and must not page its leaders or open a 处置单. So does an event whose every post came from the
bureau's own channels (本局发布, ``risk.own_reason``): the bureau's own notice or 情况说明 is not public opinion
about it. Both are "out of scope" (``Risk.in_scope`` False): no alert, no 处置单, left out of 热点事件 and the
reports unless asked for.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from events.aggregate import HOUR, EventAggregate
from events.config import LEVEL_COLOURS, LEVELS, METRIC_LABELS, EventsConfig, RiskLevel
from events.heat import HeatInputs

_PERCENT = frozenset({"negative_share", "relevance_share"})


@dataclass(frozen=True)
class Risk:
    level: RiskLevel
    reasons: tuple[str, ...]
    # False: 与本局业务无关 (held at IV by ``risk.min_relevance_share``) or 本局发布 only (``risk.own_reason``)
    in_scope: bool = True

    @property
    def colour(self) -> str:
        return LEVEL_COLOURS[self.level]

    @property
    def flagged(self) -> bool:
        """Level III or more severe (黄/橙/红): an early warning."""
        return LEVELS.index(self.level) <= LEVELS.index("III")


def event_metrics(
    agg: EventAggregate,
    now: float,
    cfg: EventsConfig,
    *,
    heat: float,
    inputs: HeatInputs,
    heat_6h: float,
    heat_24h: float,
) -> dict[str, float]:
    """The values risk rules test (keys: :data:`METRIC_LABELS`)."""
    cur = int(now // HOUR)
    recent_first = cur - max(1, round(cfg.risk.recent_hours)) + 1
    e = agg.engagement
    return {
        "heat": heat,
        "heat_6h": heat_6h,
        "heat_24h": heat_24h,
        "growth": inputs.growth_ratio,
        "count": float(agg.opinion_count),  # the bureau's own posts are its response, not opinion
        "recent_count": agg.in_hours(recent_first, cur, column=0),
        "board_reports": agg.since(now - cfg.risk.board_hours * HOUR, column=3),
        "negative_share": agg.negative_share,
        "sensitive": float(len(agg.sensitive)),
        "relevance_share": agg.relevance_share,
        "media_count": float(agg.media),
        "official_count": float(agg.official),
        "engagement": float(e["likes"] + e["dislikes"] + e["comments"] + e["reposts"]),
    }


def _fmt(metric: str, value: float) -> str:
    if metric in _PERCENT:
        return f"{value * 100:.0f}%"
    if metric == "growth":
        return f"{value:.1f}倍"
    if float(value).is_integer():
        return f"{value:.0f}"
    return f"{value:.1f}" if metric != "heat" else f"{value:.0f}"


def assess(
    metrics: Mapping[str, float],
    cfg: EventsConfig,
    sensitive_words: list[str] | None = None,
    *,
    relevance_known: bool = False,
    own_only: bool = False,
) -> Risk:
    """The level and reasons for ``metrics`` under ``cfg.risk.rules``; ``relevance_known``: some member's
    relevance is known, so a low ``relevance_share`` means unrelated rather than unknown; ``own_only``: every
    member came from the bureau's own channels."""
    if own_only:
        return Risk("IV", (cfg.risk.own_reason,), in_scope=False)
    floor = cfg.risk.min_relevance_share
    share = metrics.get("relevance_share", 0.0)
    if relevance_known and share < floor:
        return Risk("IV", (f"{cfg.risk.unrelated_reason}（{METRIC_LABELS['relevance_share']} "
                           f"{_fmt('relevance_share', share)} < {_fmt('relevance_share', floor)}）",), in_scope=False)
    fired: list[tuple[RiskLevel, str]] = []
    for rule in cfg.risk.rules:
        if all(metrics.get(m, 0.0) >= bound for m, bound in rule.when.items()):
            detail = "；".join(
                f"{METRIC_LABELS[m]} {_fmt(m, metrics.get(m, 0.0))} ≥ {_fmt(m, bound)}"
                for m, bound in rule.when.items()
            )
            if "sensitive" in rule.when and sensitive_words:
                detail += f"；敏感词：{'、'.join(sensitive_words[:5])}"
            fired.append((rule.level, f"{rule.reason}（{detail}）"))
    if not fired:
        return Risk("IV", (cfg.risk.default_reason,))
    level = min((lv for lv, _ in fired), key=LEVELS.index)
    return Risk(level, tuple(dict.fromkeys(r for lv, r in fired if lv == level)))
