"""处置单 for events: the ticket's subject and unit from an event record, and the auto-open rule (pure).

A ticket opened for an event (by hand on the 处置跟踪 page, or by rule after each events update) takes from the
event: its title, topic, the moment the 舆情 surfaced (the event's first post: deadlines count from there),
its risk level (deadlines follow it) and its keywords (an own-channel post containing them is a candidate
response, the 失声 check). The responsible unit is the event's unit (from the taxonomy topic, 谁实施谁公开),
else the topic's unit in the taxonomy, else ``default_unit`` of config/response.yaml.

The rule (``auto_open_min_level`` in config/response.yaml, default II): every open event at or above that level
without a ticket gets one, opened by 系统; when an event's level rises above its ticket's, the ticket's level is
raised with it (deadlines recomputed from the start). A level that falls is left to a person: the deadlines
of a 舆情 that was once grave stand until someone decides otherwise.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from index.events import EventRecord
from response.audit import SYSTEM_USER
from response.config import RISK_LEVELS, ResponseConfig, RiskLevel
from response.tickets import Subject, Ticket, auto_open_rule, change_level, open_ticket, ticket_id_for, unit_for_topic

# Keywords of the event a response must contain (the first few: the event's most characteristic words).
SUBJECT_KEYWORDS = 5


def subject_for_event(event: EventRecord, keywords: int = SUBJECT_KEYWORDS) -> Subject:
    return Subject(kind="event", id=event.event_id, title=event.title, topic=event.topic,
                   started_at=event.started_at, keywords=tuple(event.keywords[:keywords]))


def unit_for_event(event: EventRecord, topic_units: Mapping[str, str], default: str) -> str:
    """The event's unit, else its topic's unit in the taxonomy, else ``default``."""
    return event.unit or unit_for_topic(event.topic, topic_units, default)


def ticket_id_for_event(event_id: str) -> str:
    return ticket_id_for("event", event_id)


def raises_level(current: RiskLevel | None, new: RiskLevel | None) -> bool:
    """Whether ``new`` is a graver level than ``current`` (I is the gravest; no level is below IV)."""
    if new is None:
        return False
    return current is None or RISK_LEVELS.index(new) < RISK_LEVELS.index(current)


@dataclass(frozen=True)
class EventTicketChange:
    """What the rule does for one event: open a ticket, raise its level, or nothing (``ticket`` None)."""

    event_id: str
    action: Literal["open", "raise"]
    ticket: Ticket


def apply_rule(event: EventRecord, existing: Ticket | None, *, config: ResponseConfig,
               topic_units: Mapping[str, str], now: datetime) -> EventTicketChange | None:
    """The rule for one event and its ticket (None: nothing to do)."""
    if event.status != "open" or event.merged_into:
        return None
    if existing is None:
        rule = auto_open_rule(config, event.risk_level)
        if rule is None:
            return None
        ticket = open_ticket(subject_for_event(event), unit=unit_for_event(event, topic_units, config.default_unit),
                             by=SYSTEM_USER, now=now, config=config, risk_level=event.risk_level, rule=rule,
                             note=f"事件 {event.event_id} 风险等级 {event.risk_level}")
        return EventTicketChange(event.event_id, "open", ticket)
    if existing.status in ("已办结", "不予处置") or not raises_level(existing.risk_level, event.risk_level):
        return None
    raised = change_level(existing, event.risk_level, config=config, by=SYSTEM_USER, now=now,
                          reason=f"事件风险等级升至 {event.risk_level}")
    return EventTicketChange(event.event_id, "raise", raised)
