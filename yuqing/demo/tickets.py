"""A 处置单 with 领导批示 for the demo: `yuqing up` opens one on the demo's 文物 repair controversy (魁星阁, two days
before the start, calmed since), so the 处置跟踪 page shows the loop 专报 → 批示 → 落实 → 反馈: one instruction
reported back on, one waiting for its report (反馈时限 still ahead), which keeps the ticket from being closed. The
library story's own ticket is opened by the rule while the story is told; nothing here touches it.

The ticket names the event the 魁星阁 posts form, and that event exists only once the demo's past has been crawled
and clustered (which post founds it depends on the order the sources are crawled in). So `up` polls
(:class:`DemoTicketSeeder`, every few seconds, with a deadline): when the story's first board message
(``m-relic-01``) has its ``event_id``, the ticket is opened on that event, with the times of the story (the matter
surfaced with that message, two days before the start). The leaders and officers are invented, like everyone in
the demo. Opened once: an event that has a ticket already (an earlier `up` kept it) gets nothing more.
"""

from __future__ import annotations

import logging
from datetime import datetime, time, timedelta

from elasticsearch import Elasticsearch, NotFoundError

from index.layout import POSTS
from response.config import ResponseConfig
from response.service import TicketService
from response.tickets import (
    Subject,
    Ticket,
    TicketError,
    add_feedback,
    add_instruction,
    add_response,
    open_ticket,
    record_brief,
    ticket_id_for,
)
from yuqing.demo.corpus import load_corpus
from yuqing.demo.requests import DEMO_OFFICER
from yuqing.models import canonicalize_url, doc_id_for

log = logging.getLogger(__name__)

RELIC_FOUNDER = "m-relic-01"  # the first board message of the 魁星阁 story (yuqing/demo/data/messages.yaml)


def relic_post_id(demo_url: str) -> str:
    """The posts-index id of the 魁星阁 story's first board message as crawled from the demo site."""
    return doc_id_for(canonicalize_url(f"{demo_url.rstrip('/')}/board/msg/{RELIC_FOUNDER}.html"))


def relic_ticket(event_id: str, start: datetime, config: ResponseConfig) -> Ticket:
    """The demo's 魁星阁 处置单 on ``event_id``; ``start``: when the demo started (the story's minute 0), in the
    office's time zone. The office's steps fall in the office hours of the day after the matter surfaced (about
    two days before the start, whatever the time of day the demo starts at)."""
    founder = next(p for p in load_corpus() if p.id == RELIC_FOUNDER)
    surfaced = (start + timedelta(minutes=founder.at)).replace(microsecond=0)
    next_day = surfaced.date() + timedelta(days=1)

    def office(hour: int, minute: int = 0) -> datetime:  # the next day, at this local time
        return datetime.combine(next_day, time(hour, minute), tzinfo=start.tzinfo)

    subject = Subject(kind="event", id=event_id, title=founder.title, topic="文化遗产保护", started_at=surfaced,
                      keywords=("魁星阁", "修缮"))
    opened = surfaced + timedelta(hours=1)
    t = open_ticket(subject, unit="文物保护与非遗科", by=DEMO_OFFICER, now=opened, config=config, risk_level="III",
                    title="魁星阁修缮“修旧如新”引发市民质疑")
    t = record_brief(t, to=("李局长", "周副局长"), by=DEMO_OFFICER, now=office(9, 10))
    t = add_instruction(t, leader="周副局长", text="请文物科做好回应口径，在留言板如实答复修缮方案的审批和费用。",
                        at=office(9, 30), by=DEMO_OFFICER, now=office(9, 40), due_at=office(9, 30) + timedelta(days=1))
    t = add_response(t, channel="留言答复", text="魁星阁修缮工程方案经省文物局批准后实施，工程总投资一百八十六万元；"
                                              "我局已组织专家现场评估，将召开修缮情况座谈会。",
                     at=office(11), by=DEMO_OFFICER, now=office(11, 5))
    t = add_feedback(t, 1, text="已于留言板答复修缮方案审批情况和费用，并告知将召开座谈会。", by="文物保护与非遗科",
                     now=office(15))
    return add_instruction(t, leader="李局长", text="请会同临溪区文旅局组织专家评估新做彩绘，召开座谈会听取市民"
                                                    "意见，评估意见和整改方案报我。",
                           at=office(17, 30), by=DEMO_OFFICER, now=office(17, 40),
                           due_at=start + timedelta(hours=20))


class DemoTicketSeeder:
    """Polled by `up` (:meth:`poll`, about once a second): opens the 魁星阁 ticket once the story's first board
    message is in an event, then is done; gives up, saying so, after ``patience``."""

    def __init__(self, client: Elasticsearch, prefix: str, demo_url: str, config: ResponseConfig, start: datetime,
                 *, every: timedelta = timedelta(seconds=5), patience: timedelta = timedelta(minutes=15)) -> None:
        self.client = client
        self.prefix = prefix
        self.post_id = relic_post_id(demo_url)
        self.config = config
        self.start = start
        self.every = every
        self.deadline = start + patience
        self.done = False
        self._next = start

    def event_id(self) -> str | None:
        """The event the story's first board message is in (None: not crawled, or not clustered yet)."""
        try:
            doc = self.client.get(index=POSTS.alias(self.prefix), id=self.post_id, source_includes=["event_id"])
        except NotFoundError:
            return None
        value = doc["_source"].get("event_id")
        return str(value) if value else None

    def poll(self, now: datetime) -> bool:
        """Look (at most every ``every``); open the ticket when its event exists. True once done."""
        if self.done or now < self._next:
            return self.done
        self._next = now + self.every
        event_id = self.event_id()
        if event_id is None:
            if now >= self.deadline:
                log.warning("demo: the 魁星阁 posts were not in an event after %s; its 处置单 with 领导批示 was not "
                            "opened (is the events job running?)", self.deadline - self.start)
                self.done = True
            return self.done
        service = TicketService(self.client, self.prefix)
        if service.get(ticket_id_for("event", event_id)) is None:
            try:
                service.create(relic_ticket(event_id, self.start, self.config))  # logs the opening
            except TicketError as exc:  # the rule opened one in between: the event has its ticket
                log.info("demo: the 魁星阁 event has a 处置单 already (%s); none opened", exc)
        self.done = True
        return True
