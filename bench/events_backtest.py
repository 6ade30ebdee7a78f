"""Backtest of the early warning (预判): replay the board's messages in time order through the code of
``yuqing events assign`` and ask, for the 10 largest events, whether they were flagged (risk level III or
more severe) no later than when they reached half their final size; and whether the 6-hour heat forecast
beats a naive persistence forecast (heat stays as it is).

Input: ``gov_messages/messages_with_replies_2816.xlsx`` (default; ``--file likes`` replays
``messages_with_likes_4326.xlsx`` instead), held-out messages excluded. The replies file has no likes: they
are joined from the likes file by 留言编号, else by (留言用户, 留言主题), where available.

Per event: *half time* = the time of its ⌈n/2⌉-th post (n = final size); *flag time* = the first post time at
which its risk level was III or more severe (for merged events, the earliest flag of any part). Flagged
early: flag time ≤ half time; lead time = half time − flag time. Forecast: after every post of an event, its
forecast heat 6 h ahead and its heat then (persistence) are compared with the heat it actually has 6 h later
(all posts up to that time replayed); mean absolute errors over the 10 largest events (and over every
event, for information).

The board is a city's general message board: its largest matters are schools, traffic and housing, not the
culture bureau's work, so under the shipped ``risk.min_relevance_share`` they would all be held at IV as
与本局业务无关. The backtest measures the early-warning mechanism (do the rules fire early enough on a growing
matter?), so it runs with that cap off and reports how many of the largest events the cap would hold back;
``--relevance-cap`` runs it as shipped.

    python -m bench.events_backtest [--file replies|likes] [--top 10] [--relevance-cap]
"""

from __future__ import annotations

import argparse
import json
import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from bench.gov_events import LIKES, REPLIES, join_likes, load_messages
from events.aggregate import HOUR
from events.cli import build_assigner
from events.config import EventsConfig
from yuqing.logs import setup_logging
from yuqing.settings import load_settings

GOAL_SHARE = 0.8
FORECAST_H = 6


@dataclass
class Pending:
    event_id: str
    due: float
    forecast: float
    persistence: float


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--file", choices=["replies", "likes"], default="replies")
    ap.add_argument("--top", type=int, default=10)
    ap.add_argument("--relevance-cap", action="store_true",
                    help="keep risk.min_relevance_share as configured (default: off, see above)")
    args = ap.parse_args(argv)
    settings = load_settings()
    setup_logging(settings, "bench:events-backtest")
    shared = settings.paths.shared_data
    tz = ZoneInfo(settings.timezone)
    if args.file == "replies":
        messages, joined = join_likes(load_messages(shared, REPLIES), shared)
        print(f"{REPLIES}: {len(messages)} messages (held-out excluded); likes joined for {joined}")
    else:
        messages = load_messages(shared, LIKES)
        print(f"{LIKES}: {len(messages)} messages (held-out excluded)")
    lines = [json.dumps(m.json_line(), ensure_ascii=False) for m in messages]

    floor = 0.0

    def without_cap(cfg: EventsConfig) -> EventsConfig:
        nonlocal floor
        floor = cfg.risk.min_relevance_share
        return cfg.model_copy(update={"risk": cfg.risk.model_copy(update={"min_relevance_share": 0.0})})

    # the code `yuqing events assign` runs
    assigner = build_assigner(settings, None if args.relevance_cap else without_cap)
    engine = assigner.engine
    times: dict[str, float] = {}
    flags: dict[str, float] = {}  # event id (as it was) -> first time flagged
    pending: list[Pending] = []
    done: list[tuple[str, float, float, float]] = []  # event id, forecast, persistence, actual

    def settle(until: float | None) -> None:
        keep: list[Pending] = []
        for p in pending:
            if until is None or p.due < until:
                actual = engine.score(engine.clusterer.resolve(p.event_id), p.due).heat
                done.append((p.event_id, p.forecast, p.persistence, actual))
            else:
                keep.append(p)
        pending[:] = keep

    for post, result in assigner.run(lines, tz):
        t = post.published_at.timestamp()
        settle(t)
        times[post.id] = t
        score = result.score
        if score.risk.flagged and result.event_id not in flags:
            flags[result.event_id] = t
        pending.append(Pending(result.event_id, t + FORECAST_H * HOUR, score.heat_6h, score.heat))
    settle(None)

    c = engine.clusterer
    members: dict[str, list[float]] = defaultdict(list)
    for pid, t in times.items():
        final = c.event_of(pid)
        assert final is not None
        members[final].append(t)
    first_flag: dict[str, float] = {}
    for eid, t in flags.items():
        final = c.resolve(eid)
        first_flag[final] = min(t, first_flag.get(final, math.inf))
    sizes = sorted(members.items(), key=lambda kv: (-len(kv[1]), min(kv[1]), kv[0]))
    top = sizes[: args.top]
    print(f"{len(times)} posts -> {len(members)} events; sizes of the {len(top)} largest: "
          f"{[len(ts) for _, ts in top]}; merges: {len(c.merges)}")

    early = 0
    leads: list[float] = []
    for eid, ts in top:
        ts.sort()
        half_time = ts[math.ceil(len(ts) / 2) - 1]
        flag = first_flag.get(eid)
        ok = flag is not None and flag <= half_time
        early += ok
        if ok and flag is not None:
            leads.append((half_time - flag) / HOUR)
        s = engine.summary(eid)
        when = "never" if flag is None else f"{(flag - ts[0]) / HOUR:+.1f} h after the first post"
        print(f"  {len(ts):3d} posts  flagged {when:28s} half size at {(half_time - ts[0]) / HOUR:+.1f} h  "
              f"{'EARLY' if ok else 'late '}  {s.title[:40]}")
    if not args.relevance_cap:
        unrelated = sum(1 for eid, _ in top if engine.aggregates[eid].relevance_known
                        and engine.aggregates[eid].relevance_share < floor)
        print(f"relevance cap off: {unrelated} of these {len(top)} events are 与本局业务无关 by the taxonomy's rules "
              f"(relevance share < {floor:g}) and would be held at IV as shipped")
    ever = {c.resolve(e) for e in flags}
    print(f"alert volume: {len(ever)} of {len(members)} events flagged (level III or higher) at some point")
    share = early / len(top) if top else 0.0
    mean_lead = sum(leads) / len(leads) if leads else 0.0
    print(f"flagged early: {early}/{len(top)} = {share:.2f}; mean lead time of those {mean_lead:.1f} h")

    top_ids = {eid for eid, _ in top}
    errors: dict[str, tuple[float, float]] = {}
    for name, rows in (
        (f"{len(top)} largest events", [d for d in done if c.resolve(d[0]) in top_ids]),
        ("all events", done),
    ):
        if not rows:
            continue
        mae_f = sum(abs(f - a) for _, f, _, a in rows) / len(rows)
        mae_p = sum(abs(p - a) for _, _, p, a in rows) / len(rows)
        errors[name] = (mae_f, mae_p)
        print(f"6 h forecast on {name} ({len(rows)} points): MAE forecast {mae_f:.2f} vs persistence {mae_p:.2f} "
              f"({'below' if mae_f < mae_p else 'NOT below'} persistence)")
    mae_f, mae_p = errors.get(f"{len(top)} largest events", (math.inf, 0.0))
    ok = share >= GOAL_SHARE and mae_f < mae_p
    print(f"RESULT events_backtest share_flagged_early={share:.2f} forecast_mae={mae_f:.2f} "
          f"persistence_mae={mae_p:.2f} goal=share>={GOAL_SHARE}&forecast<persistence {'PASS' if ok else 'FAIL'}")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
