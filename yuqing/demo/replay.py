"""The demo clock: when each post of the corpus is published, relative to the moment the demo starts.

A post ``at`` a negative offset lies in the past: published ``-at`` real minutes before the start, visible
at once. A post at a positive offset is published ``at * minute_s`` real seconds after the start: with the
default ``minute_s`` of 1 s the rising story (offsets 0–300) arrives over the first five minutes; 60 replays it
in real time; tests compress it further. Social posts' engagement grows after publication, in four steps
over ``ramp_minutes`` story minutes, so a reposted post visibly spreads.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from yuqing.demo.corpus import DemoPost


@dataclass(frozen=True)
class DemoClock:
    start: float  # epoch seconds of the demo's start
    minute_s: float = 1.0  # real seconds per story minute after the start
    ramp_minutes: float = 60.0  # story minutes over which a social post's engagement reaches its final counts

    def time_of(self, at: float) -> float:
        """Epoch seconds at which a post at offset ``at`` (minutes) is published."""
        return self.start + (at * 60.0 if at <= 0 else at * self.minute_s)

    def minute_at(self, now: float) -> float:
        """The story minute it is at epoch ``now`` (inverse of :meth:`time_of`)."""
        delta = now - self.start
        return delta / 60.0 if delta <= 0 else delta / self.minute_s

    def is_out(self, at: float, now: float) -> bool:
        return self.time_of(at) <= now

    def growth(self, at: float, now: float) -> float:
        """Share of its final engagement a post published at ``at`` has at ``now``: 0 before publication,
        then 1/4, 1/2, 3/4 and 1 as a quarter of the ramp passes each time."""
        elapsed = self.minute_at(now) - at
        if elapsed < 0:
            return 0.0
        if self.ramp_minutes <= 0:
            return 1.0
        return min(1.0, (math.floor(4 * elapsed / self.ramp_minutes) + 1) / 4)

    def datetime_of(self, at: float, zone: ZoneInfo) -> datetime:
        return datetime.fromtimestamp(self.time_of(at), zone)


def visible(posts: list[DemoPost], clock: DemoClock, now: float) -> list[DemoPost]:
    """The posts published by ``now``, newest first."""
    out = [p for p in posts if clock.is_out(p.at, now)]
    return sorted(out, key=lambda p: (p.at, p.id), reverse=True)


def engagement(post: DemoPost, clock: DemoClock, now: float) -> tuple[int, int, int]:
    """(reposts, comments, likes) of a social post at ``now``."""
    share = clock.growth(post.at, now)
    return (round(post.reposts * share), round(post.comments * share), round(post.likes * share))


def reply_out(post: DemoPost, clock: DemoClock, now: float) -> bool:
    return post.reply is not None and clock.is_out(post.reply.at, now)
