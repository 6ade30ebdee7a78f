"""What was alerted: one state document per (rule, post) in the alert-state index.

The document id is a hash of the rule name and the post id, so the state survives restarts and a post is
never alerted twice under one rule. A ``sent`` document is written only after the SMTP server accepted the
message: with ``op_type=create`` when there was no earlier document, otherwise as a compare-and-set on the
earlier (``failed``) document's sequence number. A ``failed`` document counts attempts and keeps the last
error; it is retried on later runs. Reads use ``mget``, which is real-time (no refresh needed).
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from datetime import datetime

from elasticsearch import ConflictError, Elasticsearch

from index.records import AlertState, AlertStatus

log = logging.getLogger(__name__)

_CONFLICT_RETRIES = 3


def state_id(rule: str, post_id: str) -> str:
    """The state document's id for ``post_id`` under ``rule`` (deterministic)."""
    return hashlib.sha1(f"{rule}\x00{post_id}".encode()).hexdigest()


class AlertStateStore:
    """Reads and writes alert state documents through the alert-state alias."""

    def __init__(self, client: Elasticsearch, alias: str) -> None:
        self.client = client
        self.alias = alias
        self.writes = 0

    def get(self, rule: str, post_ids: Sequence[str]) -> dict[str, AlertState]:
        """The known states of ``post_ids`` under ``rule``, keyed by post id (absent: never tried)."""
        if not post_ids:
            return {}
        resp = self.client.mget(index=self.alias, ids=[state_id(rule, p) for p in post_ids])
        out: dict[str, AlertState] = {}
        for doc in resp["docs"]:
            if "error" in doc:
                raise RuntimeError(f"reading alert state {doc.get('_id')} from {self.alias}: {doc['error']}")
            if doc.get("found"):
                state = AlertState.from_hit(doc)
                out[state.post_id] = state
        return out

    def get_one(self, rule: str, post_id: str) -> AlertState | None:
        return self.get(rule, [post_id]).get(post_id)

    def mark_sent(
        self,
        rule: str,
        post_id: str,
        recipients: Sequence[str],
        *,
        now: datetime,
        prior: AlertState | None,
        error: str | None = None,
    ) -> None:
        """Record that the message was accepted by the SMTP server (``error``: recipients it refused)."""
        attempts = (prior.attempts if prior else 0) + 1
        self._write(_state(rule, post_id, "sent", attempts, recipients, now, error), prior)

    def mark_failed(
        self,
        rule: str,
        post_id: str,
        recipients: Sequence[str],
        error: str,
        *,
        now: datetime,
        prior: AlertState | None,
    ) -> int:
        """Record a failed attempt; returns the number of attempts so far."""
        attempts = (prior.attempts if prior else 0) + 1
        self._write(_state(rule, post_id, "failed", attempts, recipients, now, error), prior)
        return attempts

    def _write(self, state: AlertState, prior: AlertState | None) -> None:
        doc_id = state_id(state.rule, state.post_id)
        for _ in range(_CONFLICT_RETRIES):
            try:
                if prior is None:
                    self.client.create(index=self.alias, id=doc_id, document=state.as_source())
                else:
                    self.client.index(
                        index=self.alias, id=doc_id, document=state.as_source(),
                        if_seq_no=prior.seq_no, if_primary_term=prior.primary_term,
                    )
                self.writes += 1
                return
            except ConflictError:
                current = self.get_one(state.rule, state.post_id)
                if current is not None and current.sent:
                    # A concurrent run sent it meanwhile: keep its record (the post may have gone out twice).
                    log.warning(
                        "rule %r, post %s: already marked sent by a concurrent alert run; not overwriting",
                        state.rule, state.post_id,
                    )
                    return
                prior = current
                state = state.model_copy(update={"attempts": (current.attempts if current else 0) + 1})
        raise RuntimeError(
            f"could not record alert state for rule {state.rule!r}, post {state.post_id} in {self.alias}: "
            f"concurrent updates kept conflicting"
        )


def _state(
    rule: str,
    post_id: str,
    status: AlertStatus,
    attempts: int,
    recipients: Sequence[str],
    now: datetime,
    error: str | None,
) -> AlertState:
    return AlertState(rule=rule, post_id=post_id, status=status, attempts=attempts, recipients=tuple(recipients),
                      at=now, error=error)
