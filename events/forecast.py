"""Heat forecast (预判) for the next 6 h and 24 h.

Method: damped-trend exponential smoothing (Holt, Gardner & McKenzie's damped trend) of the event's hourly
authority-weighted post counts over the last ``forecast.history_hours`` hours (hours without posts count 0):

    level_t = α·y_t + (1 − α)·(level_{t−1} + φ·trend_{t−1})
    trend_t = β·(level_t − level_{t−1}) + (1 − β)·φ·trend_{t−1}
    ŷ_{t+k} = max(0, level_t + (φ + φ² + … + φ^k)·trend_t)

The expected arrivals ŷ are then fed, hour by hour, into the heat formula of :mod:`events.heat` at the
future time (each expected post with the event's mean engagement and negative share so far), so the
forecast accounts both for new posts and for the recency decay of the existing ones. A persistence forecast
(heat stays as it is) is the benchmark baseline (``bench/events_backtest.py``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from events.aggregate import HOUR, EventAggregate
from events.config import EventsConfig, ForecastConfig
from events.heat import HeatInputs, heat_score, window_hours


def holt_damped(series: Sequence[float], alpha: float, beta: float, phi: float) -> tuple[float, float]:
    """(level, trend) after smoothing ``series`` (initial level: the first value, initial trend: 0)."""
    if not series:
        return 0.0, 0.0
    level, trend = float(series[0]), 0.0
    for y in series[1:]:
        prev = level
        level = alpha * y + (1.0 - alpha) * (level + phi * trend)
        trend = beta * (level - prev) + (1.0 - beta) * phi * trend
    return level, trend


def holt_forecast(level: float, trend: float, phi: float, horizon: int) -> list[float]:
    """ŷ for the next ``horizon`` steps (never negative)."""
    out: list[float] = []
    damp = 0.0
    for k in range(1, horizon + 1):
        damp += phi**k
        out.append(max(0.0, level + damp * trend))
    return out


def expected_arrivals(agg: EventAggregate, now: float, cfg: ForecastConfig, horizon: int) -> list[float]:
    """Expected authority-weighted posts in each of the ``horizon`` hours after the current one."""
    cur = int(now // HOUR)
    start = cur - cfg.history_hours + 1
    series = [agg.hourly[h][1] if h in agg.hourly else 0.0 for h in range(start, cur + 1)]
    level, trend = holt_damped(series, cfg.alpha, cfg.beta, cfg.phi)
    return holt_forecast(level, trend, cfg.phi, horizon)


def forecast_heat(agg: EventAggregate, now: float, cfg: EventsConfig, hours: Sequence[int] = (6, 24)) -> list[float]:
    """The heat expected ``hours`` after ``now`` (see the module docstring)."""
    heat = cfg.heat
    half_life = heat.half_life_hours * HOUR
    horizon = max(hours)
    arrivals = expected_arrivals(agg, now, cfg.forecast, horizon)
    cur = int(now // HOUR)
    count = max(agg.opinion_count, 1)  # the engagement counted is the public's posts' (aggregate.add)
    ew = heat.engagement
    e = agg.engagement
    mean_eng = (
        ew.likes * e["likes"] + ew.dislikes * e["dislikes"] + ew.comments * e["comments"] + ew.reposts * e["reposts"]
    ) / count
    neg_share = agg.negative_share
    v0 = agg.volume.at(now, half_life)
    e0 = agg.engaged.at(now, half_life)
    n0 = agg.negative.at(now, half_life)
    out: list[float] = []
    for h in hours:
        future = now + h * HOUR
        decay = math.pow(2.0, -(future - now) / half_life)
        v, en, n = v0 * decay, e0 * decay, n0 * decay
        future_hour = int(future // HOUR)
        extra: dict[int, float] = {}
        for k in range(1, future_hour - cur + 1):
            y = arrivals[k - 1] if k - 1 < len(arrivals) else 0.0
            if y <= 0:
                continue
            at = min((cur + k) * HOUR + HOUR / 2, future)
            d = math.pow(2.0, -(future - at) / half_life)
            v += y * d
            en += y * mean_eng * d
            n += y * neg_share * d
            extra[cur + k] = y
        prev_start, recent_start, last = window_hours(future, heat)

        def weighted(first: int, last_hour: int, extra: dict[int, float] = extra) -> float:
            return agg.in_hours(first, last_hour) + sum(y for hh, y in extra.items() if first <= hh <= last_hour)

        x = HeatInputs(
            volume=v,
            engagement=en,
            negative=n,
            recent=weighted(recent_start, last),
            previous=weighted(prev_start, recent_start - 1),
        )
        out.append(heat_score(x, heat))
    return out
