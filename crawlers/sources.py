"""Source declarations (config/sources.yaml): what to crawl, how, how often and how much it weighs."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, HttpUrl, field_validator

from yuqing.config_files import load_model
from yuqing.errors import ConfigError

SourceKind = Literal["feed", "list", "message_board", "social", "search"]


class Selectors(BaseModel):
    """CSS (or XPath when starting with '/' or '(') selectors; an absent body selector means automatic
    main-text extraction."""

    model_config = ConfigDict(extra="forbid")
    title: str | None = None
    body: str | None = None
    published_at: str | None = None
    author: str | None = None
    item_links: str | None = None
    next_page: str | None = None


class Source(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1)
    kind: SourceKind
    start_urls: list[HttpUrl] = Field(min_length=1)
    site: str | None = None
    selectors: Selectors = Field(default_factory=Selectors)
    interval_s: int | None = Field(None, ge=1, description="crawl interval; default: schedule.crawl_interval_s")
    weight: float = Field(1.0, ge=0)
    enabled: bool = True
    max_items: int = Field(200, ge=1)
    allowed_domains: list[str] = Field(default_factory=list)

    @field_validator("name")
    @classmethod
    def _no_slash(cls, value: str) -> str:
        if "/" in value:
            raise ValueError("a source name must not contain '/'")
        return value


class SourcesFile(BaseModel):
    model_config = ConfigDict(extra="forbid")
    sources: list[Source] = Field(default_factory=list)

    def enabled(self) -> list[Source]:
        return [s for s in self.sources if s.enabled]

    def by_name(self, names: list[str] | None = None) -> list[Source]:
        if not names:
            return self.enabled()
        known = {s.name: s for s in self.sources}
        missing = [n for n in names if n not in known]
        if missing:
            raise ConfigError(f"unknown source(s): {', '.join(missing)}; known: {', '.join(known)}")
        return [known[n] for n in names]


def load_sources(path: Path) -> SourcesFile:
    sources = load_model(path, SourcesFile)
    seen: set[str] = set()
    for i, s in enumerate(sources.sources):
        if s.name in seen:
            raise ConfigError(f"duplicate source name {s.name!r}", file=path, field=f"sources[{i}].name")
        seen.add(s.name)
    return sources
