"""The extraction heuristics as data: the typed model of ``config/extraction.yaml`` and its loader."""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, field_validator

from yuqing.config_files import load_model

EXTRACTION_CONFIG_NAME = "extraction.yaml"


def _check_patterns(values: list[str]) -> list[str]:
    for value in values:
        try:
            re.compile(value)
        except re.error as exc:
            raise ValueError(f"invalid regular expression {value!r}: {exc}") from exc
    return values


@lru_cache(maxsize=256)
def _compiled(patterns: tuple[str, ...]) -> tuple[re.Pattern[str], ...]:
    """Compiled regexes, cached by their source text (so copies of a rules object stay consistent)."""
    return tuple(re.compile(p) for p in patterns)


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TitleRules(_Section):
    """Where the headline comes from and which site suffixes are cut off a ``<title>``."""

    meta: list[str] = Field(default_factory=list, description="meta property/name values, in order")
    heading_selectors: list[str] = Field(default_factory=lambda: ["h1"])
    suffix_patterns: list[str] = Field(default_factory=list, description="regexes anchored at the end")
    max_suffix_strips: int = Field(default=5, ge=0)
    min_heading_chars: int = Field(default=4, ge=1)
    scan_for_title_prefix: bool = True

    @field_validator("suffix_patterns")
    @classmethod
    def _valid_patterns(cls, value: list[str]) -> list[str]:
        return _check_patterns(value)

    @property
    def suffix_regexes(self) -> tuple[re.Pattern[str], ...]:
        return _compiled(tuple(self.suffix_patterns))


class TimeRules(_Section):
    """Where the publish time is looked for, in order: meta, scripts, elements, labelled text, near title."""

    meta: list[str] = Field(default_factory=list)
    script_patterns: list[str] = Field(default_factory=list, description="regexes with a group 'value'")
    selectors: list[str] = Field(default_factory=list, description="CSS; an element's datetime attr or text")
    labelled_patterns: list[str] = Field(default_factory=list, description="regexes with a group 'value'")
    near_title_chars: int = Field(default=300, ge=0)
    prefer_byline: bool = True
    byline_max_gap_hours: float = Field(default=48.0, ge=0)
    byline_max_line_chars: int = Field(default=80, ge=1)

    @field_validator("script_patterns", "labelled_patterns")
    @classmethod
    def _valid_patterns(cls, value: list[str]) -> list[str]:
        return _check_patterns(value)

    @property
    def script_regexes(self) -> tuple[re.Pattern[str], ...]:
        return _compiled(tuple(self.script_patterns))

    @property
    def labelled_regexes(self) -> tuple[re.Pattern[str], ...]:
        return _compiled(tuple(self.labelled_patterns))


class AuthorRules(_Section):
    """Where the author (or, failing that, the source) comes from.

    Order: `patterns` (bylines such as 作者：) near the title, then meta tags, then `fallback_patterns`
    (来源：, 责任编辑：) near the title and then anywhere in the page.
    """

    meta: list[str] = Field(default_factory=list)
    patterns: list[str] = Field(default_factory=list, description="regexes with a group 'value', in order")
    fallback_patterns: list[str] = Field(default_factory=list, description="regexes with a group 'value'")
    reject: list[str] = Field(default_factory=list, description="regexes: values that are not authors")
    max_chars: int = Field(default=40, ge=1)

    @field_validator("patterns", "fallback_patterns", "reject")
    @classmethod
    def _valid_patterns(cls, value: list[str]) -> list[str]:
        return _check_patterns(value)

    @property
    def regexes(self) -> tuple[re.Pattern[str], ...]:
        return _compiled(tuple(self.patterns))

    @property
    def fallback_regexes(self) -> tuple[re.Pattern[str], ...]:
        return _compiled(tuple(self.fallback_patterns))

    @property
    def reject_regexes(self) -> tuple[re.Pattern[str], ...]:
        return _compiled(tuple(self.reject))


class SiteRules(_Section):
    meta: list[str] = Field(default_factory=list)


class BoilerplateRules(_Section):
    """What is removed before the main text is looked for, and which lines are trimmed off its ends."""

    remove_tags: list[str] = Field(default_factory=list)
    remove_selectors: list[str] = Field(default_factory=list)
    remove_class_id_pattern: str | None = None
    keep_if_text_share_above: float = Field(default=0.3, ge=0, le=1)
    head_line_patterns: list[str] = Field(default_factory=list)
    tail_line_patterns: list[str] = Field(default_factory=list)
    drop_line_patterns: list[str] = Field(default_factory=list)
    max_tail_line_chars: int = Field(default=120, ge=1)

    @field_validator("head_line_patterns", "tail_line_patterns", "drop_line_patterns")
    @classmethod
    def _valid_patterns(cls, value: list[str]) -> list[str]:
        return _check_patterns(value)

    @field_validator("remove_class_id_pattern")
    @classmethod
    def _one_pattern(cls, value: str | None) -> str | None:
        if value is not None:
            _check_patterns([value])
        return value

    @property
    def class_id_regex(self) -> re.Pattern[str] | None:
        return _compiled((self.remove_class_id_pattern,))[0] if self.remove_class_id_pattern else None

    @property
    def head_regexes(self) -> tuple[re.Pattern[str], ...]:
        return _compiled(tuple(self.head_line_patterns))

    @property
    def tail_regexes(self) -> tuple[re.Pattern[str], ...]:
        return _compiled(tuple(self.tail_line_patterns))

    @property
    def drop_regexes(self) -> tuple[re.Pattern[str], ...]:
        return _compiled(tuple(self.drop_line_patterns))


class ContentRules(_Section):
    """Main-text detection: known body containers, then the density heuristic's parameters."""

    preferred_selectors: list[str] = Field(default_factory=list)
    preferred_min_chars: int = Field(default=50, ge=0)
    block_tags: list[str] = Field(default_factory=list)
    punctuation: str = "，。！？；：、,.!?;"
    min_paragraph_chars: int = Field(default=8, ge=1)
    max_paragraph_link_density: float = Field(default=0.5, ge=0, le=1)
    paragraph_tags: list[str] = Field(default_factory=lambda: ["p"])
    ancestor_weights: list[float] = Field(default_factory=lambda: [1.0, 0.5, 0.25])
    min_container_chars: int = Field(default=30, ge=0)
    max_line_link_density: float = Field(default=0.6, ge=0, le=1)


class ExtractionRules(_Section):
    """The whole of ``config/extraction.yaml``."""

    title: TitleRules = Field(default_factory=lambda: TitleRules())
    published_at: TimeRules = Field(default_factory=lambda: TimeRules())
    author: AuthorRules = Field(default_factory=lambda: AuthorRules())
    site: SiteRules = Field(default_factory=lambda: SiteRules())
    boilerplate: BoilerplateRules = Field(default_factory=lambda: BoilerplateRules())
    content: ContentRules = Field(default_factory=lambda: ContentRules())


def load_extraction_rules(path: Path) -> ExtractionRules:
    """Read and validate an extraction-rules file; errors are ConfigError naming the file and field."""
    return load_model(path, ExtractionRules)

