"""Event heat (热度), 0–100.

Each member post ``i`` has an authority weight ``w_i`` (``heat.authority``: by source, else by kind, else the
default), an engagement ``e_i = likes + dislikes + 2·comments + 3·reposts`` (``heat.engagement``) and, at
time ``now``, a recency decay ``d_i = 2^(-(now - t_i) / H)`` (``H`` = ``heat.half_life_hours``). With

    V = Σ w_i·d_i                      decayed, authority-weighted volume
    E = Σ e_i·d_i                      decayed engagement
    N = Σ w_i·d_i·[i is negative]      decayed negative volume (= negative share × V)
    A = Σ w_i over posts of the last window (hourly buckets, ``heat.window_hours``)
    P = Σ w_i over posts of the window before it
    g = (A − P) / (A + P) if A > P else 0          growth, 0..1

the score is ``S = a_v·ln(1+V) + a_e·ln(1+E) + a_n·ln(1+N) + a_g·g·ln(1+A)`` (weights ``heat.weights``) and
``heat = 100·(1 − e^(−S))``: logarithmic compression of every term, saturating at 100.

Properties (unit-tested): a post arriving at the current time never lowers the heat (V, N, A grow; P is
unchanged, so g does not fall), nor does more engagement (E grows); with no new posts the heat falls as
time passes (every d_i shrinks and the window empties), so an old event cools down. At equal volume a more
negative event is hotter (N grows with the negative share).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from events.aggregate import HOUR, EventAggregate
from events.config import HeatConfig


@dataclass(frozen=True)
class HeatInputs:
    volume: float
    engagement: float
    negative: float
    recent: float
    previous: float

    @property
    def growth(self) -> float:
        """g of the formula (0..1)."""
        a, p = self.recent, self.previous
        return (a - p) / (a + p) if a > p else 0.0

    @property
    def growth_ratio(self) -> float:
        """(A + 1) / (P + 1): how many times the last window outweighs the one before."""
        return (self.recent + 1.0) / (self.previous + 1.0)


def heat_score(x: HeatInputs, cfg: HeatConfig) -> float:
    """The heat (0–100) of the formula in the module docstring."""
    w = cfg.weights
    s = (
        w.volume * math.log1p(x.volume)
        + w.engagement * math.log1p(x.engagement)
        + w.negative * math.log1p(x.negative)
        + w.growth * x.growth * math.log1p(x.recent)
    )
    return 100.0 * (1.0 - math.exp(-s))


def window_hours(now: float, cfg: HeatConfig) -> tuple[int, int, int]:
    """(first hour of the previous window, first hour of the recent window, current hour) as hour indices."""
    w = max(1, round(cfg.window_hours))
    cur = int(now // HOUR)
    return cur - 2 * w + 1, cur - w + 1, cur


def heat_inputs(agg: EventAggregate, now: float, cfg: HeatConfig) -> HeatInputs:
    half_life = cfg.half_life_hours * HOUR
    prev_start, recent_start, cur = window_hours(now, cfg)
    return HeatInputs(
        volume=agg.volume.at(now, half_life),
        engagement=agg.engaged.at(now, half_life),
        negative=agg.negative.at(now, half_life),
        recent=agg.in_hours(recent_start, cur),
        previous=agg.in_hours(prev_start, recent_start - 1),
    )


def heat_of(agg: EventAggregate, now: float, cfg: HeatConfig) -> float:
    """The event's heat at ``now`` (epoch seconds)."""
    return heat_score(heat_inputs(agg, now, cfg), cfg)
