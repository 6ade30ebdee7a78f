"""A negative surge read from posts in the real Elasticsearch, decided by a rule and mailed through the outbox."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from elasticsearch import Elasticsearch

from alerts.event_rules import EventRulesFile, check_rules
from alerts.outbox import DeliverySettings, Outbox, Sender
from alerts.signal_queries import surge_signals
from index.layout import POSTS, setup
from index.outbox import OUTBOX
from tests.alert_fixtures import DASHBOARD, SENDER
from tests.conftest import seed_posts
from tests.smtp_server import SMTPServer
from yuqing.models import Analysis, Post
from yuqing.settings import Settings, SMTPSettings

pytest_plugins = ("tests.smtp_fixtures",)

TZ = ZoneInfo("Asia/Shanghai")
END = datetime(2026, 5, 6, 12, 0, tzinfo=TZ)
SERVICE = "公益性文化服务活动"
LAW = "文化市场执法"


def post(n: int, topic: str, sentiment: str, minutes_before_end: int, source: str = "微博", **kw: object) -> Post:
    analysis = Analysis(sentiment=sentiment, relevant=True, relevance_prob=0.9, topic=topic,
                        model_version="test")
    fetched = END - timedelta(minutes=minutes_before_end)
    return Post(url=f"https://example.com/s/{n}", title=f"帖子{n}：{topic}{sentiment}", source=source, kind="social",
                published_at=fetched, fetched_at=fetched, analysis=analysis, **kw)


def test_negative_surge_from_indexed_posts_is_mailed_to_the_topics_followers(
    settings: Settings, es_client: Elasticsearch, smtp: SMTPServer
) -> None:
    posts = [post(i, SERVICE, "negative", 5 + i) for i in range(6)]  # this window: 6 of 8 negative
    posts += [post(10 + i, SERVICE, "neutral", 20 + i) for i in range(2)]
    posts += [post(20, SERVICE, "negative", 70)] + [post(21 + i, SERVICE, "neutral", 80 + i) for i in range(5)]
    posts += [post(30 + i, LAW, "negative", 10 + i) for i in range(2)]  # too few to be a surge
    posts += [post(40, SERVICE, "negative", 15, duplicate_of="x"), post(41, SERVICE, "negative", 200)]
    # 本局发布: the bureau's own 情况说明 (classified negative: it speaks of the closure) is no complaint
    own = [post(50 + i, SERVICE, "negative", 12 + i, source="局官网") for i in range(3)]
    seed_posts(es_client, settings, posts + own)

    alias = POSTS.alias(settings.elasticsearch.index_prefix)
    counted = {s.topic: s for s in surge_signals(es_client, alias, window_end=END, minutes=60)}[SERVICE]
    assert (counted.negative, counted.total) == (9, 11)  # without own_sources they count
    signals = surge_signals(es_client, alias, window_end=END, minutes=60, own_sources=["局官网"])
    by_topic = {s.topic: s for s in signals}
    service = by_topic[SERVICE]
    assert (service.negative, service.total, service.prev_negative, service.prev_total) == (6, 8, 1, 6)
    assert {p.url for p in service.posts} <= {f"https://example.com/s/{i}" for i in range(6)}
    assert (by_topic[LAW].negative, by_topic[LAW].total) == (2, 2)

    rules = check_rules(EventRulesFile.model_validate({
        "people": [{"name": "宣传科", "email": "press@x.gov.cn", "topics": [SERVICE]},
                   {"name": "执法支队", "email": "law@x.gov.cn", "topics": [LAW]}],
        "event_rules": [{"name": "负面激增", "kind": "negative_surge", "window_minutes": 60, "min_count": 5,
                         "min_share": 0.3, "growth": 2, "recipients": {"signal_topic": True}}],
    }), "test")
    setup(es_client, settings.elasticsearch, [OUTBOX])
    alias = OUTBOX.alias(settings.elasticsearch.index_prefix)
    outbox = Outbox(es_client, alias, sender=SENDER, dashboard_url=DASHBOARD, tz=TZ)
    evaluation, _ = outbox.decide(rules, signals, END)
    assert [d.subject_key for d in evaluation.decisions] == [f"topic:{SERVICE}"]
    sender = Sender(es_client, alias, SMTPSettings(host="127.0.0.1", port=smtp.port, sender=SENDER),
                    DeliverySettings())
    assert sender.deliver_due(END).sent == 1
    (got,) = smtp.collector.wait_for(1)
    assert got.rcpt_tos == ["press@x.gov.cn"]
    assert got.message["Subject"] == f"【负面激增】“{SERVICE}”负面信息激增"
    text = got.message.get_body(preferencelist=("plain",))
    assert text is not None
    content = text.get_content()
    assert "6 条（占 75%，共 8 条）" in content and "https://example.com/s/0" in content
