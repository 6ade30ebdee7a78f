"""Errors shared by every component."""

from __future__ import annotations

from pathlib import Path
from typing import Any


class YuqingError(Exception):
    """Base class for errors that are reported to the user with a clear message."""


class ConfigError(YuqingError):
    """A configuration file is malformed or a required value is missing.

    The message names the file and the field so a user can fix it without reading code.
    """

    def __init__(self, message: str, *, file: Path | str | None = None, field: str | None = None,
                 error_type: str | None = None, error_ctx: dict[str, Any] | None = None) -> None:
        self.file = str(file) if file is not None else None
        self.field = field
        self.detail = message
        # from a validation error: pydantic's error type and context (e.g. "greater_than", {"gt": 0}), so that a
        # user interface can say it in its own language
        self.error_type = error_type
        self.error_ctx = dict(error_ctx or {})
        where = []
        if self.file:
            where.append(f"file {self.file}")
        if field:
            where.append(f"field '{field}'")
        prefix = f"configuration error in {', '.join(where)}: " if where else "configuration error: "
        super().__init__(prefix + message)
