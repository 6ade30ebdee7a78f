"""呈报: a 舆情专报 mailed to the leaders through the outbox (sent once, retried while the mail server is down, a
failure listed on 预警投递), to the recipients of ``reports.brief`` in ``alerts.yaml``.

The mail carries the 专报 as text and HTML (the trend chart inline) with the Word file attached. Its outbox entry's
id is fixed by the event, who submits it and the minute: a double click sends one mail. When the event has a
处置单, the submission is noted in its audit trail (:func:`response.tickets.record_brief`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage
from email.utils import format_datetime

from elasticsearch import Elasticsearch

from alerts.brief import BriefError, EventBrief
from alerts.brief_render import filename, render_docx, render_html, render_text
from alerts.compose import add_inline_image, message_id_for, one_line, shorten
from alerts.event_rules import decision_id
from alerts.outbox import encode_message
from alerts.rules import alert_config
from index import outbox as store
from index.outbox import OUTBOX, OutboxEntry, cooldown_key
from yuqing.settings import Settings

log = logging.getLogger(__name__)

RULE = "brief"
RULE_LABEL = "舆情专报"
DOCX_TYPE = ("application", "vnd.openxmlformats-officedocument.wordprocessingml.document")


@dataclass(frozen=True)
class Submitted:
    entry: OutboxEntry | None  # None: the same 专报 was submitted already (same event, person and minute)
    recipients: tuple[str, ...]  # who it goes to, as the directory names them (王局长（局领导）)
    ticket_error: str | None = None  # queued, but the note on the 处置单 could not be written (why)


def brief_entry_id(event_id: str, by: str, now: datetime) -> str:
    return decision_id(RULE, f"brief:{event_id}", f"{by}@{now.astimezone().strftime('%Y-%m-%dT%H:%M')}")


def brief_subject(b: EventBrief) -> str:
    follow_up = "·续报" if b.previous_brief is not None else ""
    return f"【{RULE_LABEL}{follow_up}·{b.event.risk_level}级】{shorten(one_line(b.title), 60)}"


def compose_brief(b: EventBrief, *, sender: str, recipients: tuple[str, ...], message_id: str,
                  chart_png: bytes | None) -> EmailMessage:
    """The mail: text + HTML (the chart inline) and the .docx attached."""
    domain = sender.rpartition("@")[2] or "localhost"
    cid = f"trend.{message_id.strip('<>').partition('@')[0]}@{domain}" if chart_png else None
    msg = EmailMessage()
    msg["Subject"] = brief_subject(b)
    msg["From"] = sender
    if recipients:
        msg["To"] = ", ".join(recipients)
    msg["Date"] = format_datetime(b.generated_at.astimezone(b.tz))
    msg["Message-ID"] = message_id
    msg.set_content(render_text(b))
    msg.add_alternative(render_html(b, chart_cid=cid), subtype="html")
    if chart_png is not None and cid is not None:
        add_inline_image(msg, chart_png, cid, "trend.png")
    msg.add_attachment(render_docx(b, chart_png=chart_png), maintype=DOCX_TYPE[0], subtype=DOCX_TYPE[1],
                       filename=filename(b, ".docx"))
    return msg


def submit_brief(client: Elasticsearch, settings: Settings, b: EventBrief, *, by: str,
                 chart_png: bytes | None) -> Submitted:
    """Put the mail of ``b`` into the outbox for ``reports.brief`` and note it on the event's 处置单; raises
    :class:`BriefError` when nobody is configured to receive it."""
    config = alert_config(settings)
    people = config.brief_recipients
    if not people:
        raise BriefError(f"{config.path} 的 reports.brief 未配置收件人：请先指定呈报对象"
                         "（如 brief: {names: [局长]}）")
    addresses = tuple(dict.fromkeys(p.email for p in people))
    labels = tuple(p.label() for p in people)
    now = b.generated_at
    entry_id = brief_entry_id(b.event.event_id, by, now)
    alias = OUTBOX.alias(settings.elasticsearch.index_prefix)
    msg = compose_brief(b, sender=settings.smtp.sender, recipients=addresses,
                        message_id=message_id_for(entry_id, settings.smtp.sender), chart_png=chart_png)
    msg["X-Yuqing-Rule"] = RULE
    msg["X-Yuqing-Entry"] = entry_id
    entry = OutboxEntry(
        id=entry_id, rule=RULE, rule_kind=RULE, subject_key=f"brief:{b.event.event_id}",
        occurrence=now.isoformat(), cooldown_key=cooldown_key(RULE, f"brief:{b.event.event_id}"),
        title=b.heading, reason=f"{by} 呈报", level=b.event.risk_level, status="pending", recipients=addresses,
        decided_at=now, deliver_at=now, next_attempt_at=now, message_id=msg["Message-ID"],
        subject=str(msg["Subject"]), mime=encode_message(msg), updated_at=now,
    )
    created = store.create(client, alias, entry, refresh=True)
    if created is None:
        return Submitted(None, labels)
    log.info("舆情专报 of event %s submitted by %s -> outbox %s for %s", b.event.event_id, by, entry_id,
             ", ".join(addresses))
    if b.ticket is None:
        return Submitted(created, labels)
    from response.service import TicketService
    from response.tickets import TicketError, record_brief

    try:
        TicketService(client, settings.elasticsearch.index_prefix).update(
            b.ticket.id, lambda t: record_brief(t, to=labels, by=by, now=datetime.now(b.tz)))
    except TicketError as exc:  # the mail is queued all the same: say what is missing
        log.warning("舆情专报 of event %s queued (outbox %s), not noted on ticket %s: %s", b.event.event_id,
                    entry_id, b.ticket.id, exc)
        return Submitted(created, labels, str(exc))
    return Submitted(created, labels)
