"""依申请公开 requests for the demo: `yuqing up` registers a few, so the 依申请公开 page and its reminders have
something to show. Nothing is crawled for them (requests reach the bureau by post, counter or web form and are
registered by a person). The applicants are invented, like everyone in the demo.

Registered once: when requests of these demo applicants exist (an earlier `up`), nothing is added.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from elasticsearch import Elasticsearch

from response.calendar import WorkCalendar
from response.foia import FoiaChannel, register, start_consultation
from response.service import FoiaService

log = logging.getLogger(__name__)

DEMO_OFFICER = "演示数据"


@dataclass(frozen=True)
class DemoRequest:
    applicant: str
    content: str
    channel: FoiaChannel
    working_days_ago: int  # received this many working days before today
    consulted: str | None = None  # a third party asked for its opinion (5 working days after receipt)


DEMO_REQUESTS: tuple[DemoRequest, ...] = (
    DemoRequest("林晓", "青川市图书馆新馆建设项目的资金来源、预算及使用情况", "网上申请", 17),
    DemoRequest("陈立", "2026年青川市文化市场综合执法检查中对网吧的行政处罚决定书", "邮寄", 9,
                consulted="青川市星空网络会所"),
    DemoRequest("吴敏", "青川市图书馆临时闭馆的决定及闭馆期间读者服务安排", "网上申请", 0),
)


def _received_on(cal: WorkCalendar, today: date, working_days_ago: int) -> date:
    """The day ``working_days_ago`` working days before ``today`` (0: today)."""
    day = today
    for _ in range(working_days_ago):
        day -= timedelta(days=1)
        while not cal.is_workday(day):
            day -= timedelta(days=1)
    return day


def seed_demo_requests(client: Elasticsearch, prefix: str, now: datetime, cal: WorkCalendar | None = None) -> int:
    """Register the demo's requests unless an earlier `up` did; returns how many were registered."""
    service = FoiaService(client, prefix)
    if service.list(text=None, applicant=DEMO_REQUESTS[0].applicant, size=1)[0]:
        return 0
    cal = cal or WorkCalendar.official()
    today = now.date()
    for spec in DEMO_REQUESTS:
        received = _received_on(cal, today, spec.working_days_ago)
        req = register(applicant=spec.applicant, content=spec.content, channel=spec.channel, received_on=received,
                       by=DEMO_OFFICER, now=now)
        if spec.consulted:
            sent = cal.add_working_days(received, 5).day
            req = start_consultation(req, third_party=spec.consulted, sent_on=min(sent, today), by=DEMO_OFFICER,
                                     now=now)
        service.create(req)
    log.info("demo: %d 依申请公开 requests registered (依申请公开 page)", len(DEMO_REQUESTS))
    return len(DEMO_REQUESTS)
