"""Response-tracking post-crawl jobs at scale: the 失声 check and the auto-open rule over ``--n`` open tickets,
as many event records, 2×n own-channel posts and n board messages with replies, against the floor of the
reads they cannot avoid (every open ticket with its version, every own-channel post and board message since the
oldest ticket started), in one run, on the local Elasticsearch.

Three timings: the first round (every ticket gets its flags or proposal: one compare-and-set write each), the
steady state (nothing changed since: reads and decisions only — what runs after every crawl), and the floor.
The goal: the steady state of both jobs together within 5 s at 1,000 open tickets, so that the alerts after
them are not held up (the freshness goal is 60 s from publication to mail).

    python -m bench.response_jobs [--n 1000]
"""

from __future__ import annotations

import os
import random
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from elasticsearch import Elasticsearch, helpers

from bench.common import start
from index.client import es_client
from index.events import EVENTS, EventRecord, FirstPostRecord
from index.foia import FOIA
from index.layout import POSTS, setup
from index.tickets import TICKETS
from response.config import Channel, ResponseConfig, RiskLevel
from response.jobs import ResponseJobs, board_messages_query, own_posts_query
from response.service import TicketService, ticket_to_record
from response.tickets import Subject, open_ticket
from yuqing.models import Post, Reply, doc_id_for

GOAL_S = 5.0
WORDS = ["图书馆", "博物馆", "文化馆", "剧院", "非遗", "演出", "闭馆", "排队", "退票", "噪音", "押金", "预约", "维修",
         "门票", "展览", "讲座", "停车", "空调", "座位", "志愿者", "文物", "修缮", "广场舞", "书店", "电影"]
OWN: dict[str, Channel] = {"bureau-site": "官网", "bureau-wechat": "微信公众号"}


def _bulk(client: Elasticsearch, alias: str, docs: list[tuple[str, dict[str, Any]]]) -> None:
    helpers.bulk(client, ({"_index": alias, "_id": i, "_source": d} for i, d in docs), refresh="wait_for",
                 chunk_size=1000)


def seed(client: Elasticsearch, prefix: str, n: int, now: datetime, rnd: random.Random) -> None:
    cfg = ResponseConfig()
    events, tickets, posts = [], [], []
    for i in range(n):
        words = rnd.sample(WORDS, 3)
        started = now - timedelta(hours=rnd.uniform(1, 24 * 14))
        level: RiskLevel = rnd.choice(["II", "III"])
        eid = f"ev-{i:05d}"
        events.append(EventRecord(
            event_id=eid, status="open", title=f"{words[0]}{words[1]}问题{i}", keywords=words,
            first_post=FirstPostRecord(id=f"p{i}", title="t", source="weibo", kind="social", published_at=started),
            started_at=started, last_post_at=now, updated_at=now, count=5, heat=50, heat_6h=50, heat_24h=50,
            growth=1, risk_level=level, risk_colour="橙" if level == "II" else "黄",
        ))
        if i % 2 == 0:  # half have a ticket already (opened by hand); the rule opens the other half
            subject = Subject(kind="event", id=eid, title=f"{words[0]}{words[1]}问题{i}", started_at=started,
                              keywords=tuple(words))
            t = open_ticket(subject, unit="公共服务科", by="张三", now=started + timedelta(minutes=30), config=cfg,
                            risk_level="III")
            tickets.append((t.id, ticket_to_record(t).model_dump(mode="json")))
        msg = Post(url=f"https://liuyan.example.cn/{i}", title=f"{words[0]}{words[2]}留言", source="liuyan",
                   kind="message", content="……", published_at=started + timedelta(hours=1), fetched_at=now,
                   reply=Reply(text="已处理", replied_at=started + timedelta(hours=rnd.uniform(2, 80))))
        posts.append((doc_id_for(msg.url), {**msg.model_dump(mode="json"), "event_id": eid}))
    for j in range(2 * n):
        words = rnd.sample(WORDS, 2)
        source = rnd.choice(list(OWN))
        own = Post(url=f"https://gov.example.cn/{source}/{j}", title=f"关于{words[0]}{words[1]}的说明", source=source,
                   content=f"{words[0]}……{words[1]}……", published_at=now - timedelta(hours=rnd.uniform(0, 24 * 14)),
                   fetched_at=now)
        posts.append((doc_id_for(own.url), own.model_dump(mode="json")))
    _bulk(client, EVENTS.alias(prefix), [(e.event_id, e.model_dump(mode="json")) for e in events])
    _bulk(client, TICKETS.alias(prefix), tickets)
    _bulk(client, POSTS.alias(prefix), posts)


def main() -> None:
    args, base = start(__doc__.splitlines()[0], 1000, "bench:response_jobs")
    prefix = f"bench-response-{uuid.uuid4().hex[:6]}"
    settings = base.model_copy(update={"elasticsearch": base.elasticsearch.model_copy(update={"index_prefix": prefix})})
    cfg = ResponseConfig()
    jobs = ResponseJobs(prefix, cfg, {}, OWN, ZoneInfo("Asia/Shanghai"))
    now = datetime.now(UTC)
    timings: dict[str, float] = {}
    with es_client(settings.elasticsearch) as client:
        try:
            setup(client, settings.elasticsearch, [POSTS, TICKETS, FOIA, EVENTS])
            seed(client, prefix, args.n, now, random.Random(7))

            def floor() -> int:
                loaded = TicketService(client, prefix).all_loaded(statuses=["待研判", "处置中", "已回应"])
                since = min(t.ticket.subject.started_at or t.ticket.opened_at for t in loaded)
                events = [t.ticket.subject.id for t in loaded]
                alias = POSTS.alias(prefix)
                rows = sum(1 for _ in helpers.scan(client, index=alias, size=1000,
                                                   query={"query": own_posts_query(list(OWN), since, now)}))
                rows += sum(1 for _ in helpers.scan(client, index=alias, size=1000,
                                                    query={"query": board_messages_query(events, [])}))
                return rows + len(loaded)

            def timed(name: str, work: Any) -> Any:
                t0 = time.perf_counter()
                out = work()
                timings[name] = min(timings.get(name, float("inf")), time.perf_counter() - t0)
                return out

            opened = timed("first auto-open", lambda: jobs.auto_open(client, now))
            first = timed("first 失声 check", lambda: jobs.silence(client, now))
            for _ in range(2):
                timed("floor (reads only)", floor)
                again = timed("steady auto-open", lambda: jobs.auto_open(client, now))
                steady = timed("steady 失声 check", lambda: jobs.silence(client, now))
                assert not again.opened and not steady.changed, (again, steady)
        finally:
            client.indices.delete(index=f"{prefix}-*", ignore_unavailable=True)
            client.options(ignore_status=404).indices.delete_index_template(name=f"{prefix}-*")

    print(f"{args.n} events, {len(opened.opened)} tickets opened by the rule; first 失声 check: {first.checked} "
          f"tickets, {len(first.changed)} written, {len(first.silent)} 失声")
    for name, s in timings.items():
        print(f"{name:>20}: {s:.2f} s")
    steady_s = timings["steady auto-open"] + timings["steady 失声 check"]
    print(f"steady state of both jobs {steady_s:.2f} s = {steady_s / timings['floor (reads only)']:.1f}× the floor; "
          f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs (a shared machine)")
    print(f"RESULT response_jobs steady_s={steady_s:.2f} goal={GOAL_S:.0f} {'PASS' if steady_s <= GOAL_S else 'FAIL'}")


if __name__ == "__main__":
    main()
