"""Masking personal data (phone and ID numbers, email addresses) in crawled posts; patterns are data
(config/privacy.yaml)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, field_validator

from yuqing.config_files import load_model
from yuqing.models import Post


class PatternSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1)
    regex: str = Field(min_length=1)
    replace: str

    @field_validator("regex")
    @classmethod
    def _compiles(cls, value: str) -> str:
        try:
            re.compile(value)
        except re.error as exc:
            raise ValueError(f"not a regular expression: {exc}") from exc
        return value


class PrivacyFile(BaseModel):
    model_config = ConfigDict(extra="forbid")
    patterns: list[PatternSpec] = Field(default_factory=list)


@dataclass(frozen=True)
class Redactor:
    rules: tuple[tuple[re.Pattern[str], str], ...] = ()

    @classmethod
    def from_file(cls, path: Path) -> Redactor:
        """The configured patterns; an absent file masks nothing, a malformed one raises ConfigError."""
        if not path.exists():
            return cls()
        spec = load_model(path, PrivacyFile)
        return cls(tuple((re.compile(p.regex), p.replace) for p in spec.patterns))

    def redact(self, text: str) -> str:
        for pattern, replacement in self.rules:
            text = pattern.sub(replacement, text)
        return text

    def redact_post(self, post: Post) -> Post:
        """``post`` with title, body and official reply masked (unchanged object when nothing matched)."""
        if not self.rules:
            return post
        update: dict[str, object] = {}
        for field in ("title", "content"):
            value = getattr(post, field)
            masked = self.redact(value)
            if masked != value:
                update[field] = masked
        if post.reply is not None:
            masked = self.redact(post.reply.text)
            if masked != post.reply.text:
                update["reply"] = post.reply.model_copy(update={"text": masked})
        return post.model_copy(update=update) if update else post
