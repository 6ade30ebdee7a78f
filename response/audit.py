"""The audit trail shared by 处置单 and 依申请公开 records: append-only entries (who, when, from → to, note)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, tzinfo

from pydantic import BaseModel, ConfigDict

from yuqing.errors import YuqingError

SYSTEM_USER = "系统"


def local(at: datetime, tz: tzinfo) -> datetime:
    """``at`` as a person in ``tz`` reads it (the records hold aware times, often UTC; a naive one is kept as it
    is)."""
    return at.astimezone(tz) if at.tzinfo is not None else at


class AuditEntry(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    at: datetime
    by: str
    action: str
    from_value: str | None = None
    to_value: str | None = None
    note: str | None = None

    def line(self, tz: tzinfo) -> str:
        """The entry as one line, its time in ``tz``."""
        move = ""
        if self.from_value is not None or self.to_value is not None:
            move = f" {self.from_value or '—'} → {self.to_value or '—'}"
        note = f"：{self.note}" if self.note else ""
        return f"{local(self.at, tz):%Y-%m-%d %H:%M} {self.by} {self.action}{move}{note}"


class AuditError(YuqingError):
    """A new version would edit or drop audit entries, or change a record without an entry."""


def check_append_only(what: str, before: Sequence[AuditEntry], after: Sequence[AuditEntry], changed: bool) -> None:
    """Refuse a new version whose trail does not extend the stored one, or that changed without an entry."""
    if tuple(after[: len(before)]) != tuple(before):
        raise AuditError(f"{what} 的审计记录不可修改或删除")
    if changed and len(after) == len(before):
        raise AuditError(f"{what} 的修改未写入审计记录")


def required(value: str | None, what: str, error: type[YuqingError]) -> str:
    """``value`` stripped; blank raises ``error`` naming ``what`` (操作人, 理由 …)."""
    if value is None or not value.strip():
        raise error(f"须填写{what}")
    return value.strip()
