"""Alert test data written for these tests: a library-closure event with a timeline and posts, and the rules
and directory the delivery tests use."""

from __future__ import annotations

from datetime import datetime, timedelta

from alerts.content import EventAlert, PostLink, TimelinePoint
from alerts.event_rules import EventRules, EventRulesFile, check_rules
from alerts.signals import EventSignal

LEADER = "leader@culture.example.gov.cn"
PRESS = "press@culture.example.gov.cn"
SENDER = "yuqing@culture.example.gov.cn"
DASHBOARD = "http://dashboard.test:8501"
TITLE = "市图书馆突然闭馆引发读者不满"


def library_event(now: datetime, event_id: str = "E-lib-1", *, level: str = "II", title: str = TITLE,
                  hours: int = 12) -> EventAlert:
    """An event that grows and turns negative over ``hours`` hours before ``now``."""
    start = (now - timedelta(hours=hours)).replace(minute=0, second=0, microsecond=0)
    timeline = tuple(TimelinePoint(at=start + timedelta(hours=h), posts=1 + h * h // 4, negative=h * h // 8)
                     for h in range(hours))
    posts = (
        PostLink(title="市图书馆周末突然闭馆，读者白跑一趟", url="https://weibo.example.com/status/1001", source="微博",
                 published_at=start + timedelta(hours=1), sentiment="negative", post_id="p1001"),
        PostLink(title="关于市图书馆临时闭馆的留言", url="https://liuyan.example.gov.cn/m/2002", source="市民留言板",
                 published_at=start + timedelta(hours=3), sentiment="negative", post_id="p2002"),
        PostLink(title="记者探访：图书馆闭馆原因待公布", url="https://news.example.com/a/3003.html", source="都市报",
                 published_at=start + timedelta(hours=6), sentiment="neutral", post_id="p3003"),
    )
    return EventAlert(
        event_id=event_id, title=title, level=level, heat=78.4, heat_6h=84.0, heat_24h=71.2,
        summary="市图书馆周末未提前告知即闭馆，读者在微博和留言板集中表达不满，媒体开始跟进。",
        count=sum(p.posts for p in timeline), negative_share=0.62, first_source="微博", started_at=start,
        unit="市图书馆", topic="公益性文化服务活动", keywords=("图书馆", "闭馆", "读者"),
        reasons=("负面情绪集中且热度高（热度 78 ≥ 70；负面占比 62% ≥ 50%）", "媒体开始报道（媒体报道数 3 ≥ 2）"),
        timeline=timeline, top_posts=posts,
    )


def library_signal(now: datetime, event_id: str = "E-lib-1", **kw: object) -> EventSignal:
    return EventSignal(library_event(now, event_id, **kw))  # type: ignore[arg-type]


def leader_rules(**rule: object) -> EventRules:
    """One new_event rule (level ≥ II) to the leader and the press office; ``rule`` overrides its fields."""
    spec = {"name": "重大舆情", "kind": "new_event", "min_level": "II",
            "recipients": {"names": ["局领导"], "units": ["宣传科"]}, **rule}
    people = [{"name": "局领导", "email": LEADER, "unit": "局领导"},
              {"name": "宣传科", "email": PRESS, "unit": "宣传科"}]
    return check_rules(EventRulesFile.model_validate({"people": people, "event_rules": [spec]}), "test")
