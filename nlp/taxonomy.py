"""The topic taxonomy (config/taxonomy.yaml): categories, keyword rules, responsible units."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cached_property, lru_cache
from pathlib import Path

from pydantic import BaseModel, Field, field_validator

from yuqing.config_files import load_model


class Category(BaseModel):
    name: str = Field(min_length=1)
    unit: str = Field(min_length=1)
    keywords: list[str] = Field(min_length=1)
    weight: float = Field(1.0, gt=0)

    @field_validator("keywords")
    @classmethod
    def _no_blank(cls, value: list[str]) -> list[str]:
        if any(not k.strip() for k in value):
            raise ValueError("keywords must not be blank")
        return value


class RelevanceRules(BaseModel):
    keywords: list[str] = Field(default_factory=list)
    weak_keywords: list[str] = Field(default_factory=list)
    tnews_relevant: list[str] = Field(default_factory=lambda: ["news_culture"])
    tnews_excluded: list[str] = Field(default_factory=list)
    gov_relevant_category: str = "教育文体"
    # at prediction time a text the rules mark relevant gets relevance prob >= rule_confidence:
    # p = 1 - (1 - p_model) * (1 - rule_confidence)
    rule_confidence: float = Field(0.9, ge=0.0, le=1.0)
    # regular expressions for text the rules do not read (an address such as 文艺路, a Weibo retweet author):
    # a keyword inside such a match is no evidence, for relevance or topic
    ignore_patterns: list[str] = Field(default_factory=list)
    # a venue only as a nuisance (KTV 扰民): when a nuisance pattern matches and no enforcement keyword does,
    # the nuisance keywords (the venues) do not count
    nuisance_keywords: list[str] = Field(default_factory=list)
    nuisance_patterns: list[str] = Field(default_factory=list)
    enforcement_keywords: list[str] = Field(default_factory=list)
    # culture abroad: a text naming a place abroad and nothing at home (no domestic keyword) is not the bureau's
    # work, whatever culture words it has; the rules stay silent on it
    abroad_keywords: list[str] = Field(default_factory=list)
    domestic_keywords: list[str] = Field(default_factory=list)

    @field_validator("ignore_patterns", "nuisance_patterns")
    @classmethod
    def _compiles(cls, value: list[str]) -> list[str]:
        for pattern in value:
            try:
                re.compile(pattern)
            except re.error as exc:
                raise ValueError(f"not a regular expression: {pattern!r} ({exc})") from None
        return value


class EntityRules(BaseModel):
    org_suffixes: list[str] = Field(default_factory=lambda: ["局", "馆", "院", "中心", "委员会", "公司"])
    org_max_tokens: int = Field(4, ge=1)


class KeywordRules(BaseModel):
    topk: int = Field(8, ge=1)
    stopwords: list[str] = Field(default_factory=list)


class Taxonomy(BaseModel):
    version: int = 1
    rule_weight: float = Field(0.5, ge=0.0, le=1.0)
    min_rule_score: float = Field(1.0, gt=0)
    categories: list[Category] = Field(min_length=1)
    relevance: RelevanceRules = Field(default_factory=RelevanceRules)
    entities: EntityRules = Field(default_factory=EntityRules)
    keywords: KeywordRules = Field(default_factory=KeywordRules)

    @field_validator("categories")
    @classmethod
    def _unique_names(cls, value: list[Category]) -> list[Category]:
        names = [c.name for c in value]
        if len(set(names)) != len(names):
            raise ValueError("category names must be unique")
        return value

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.categories]

    @cached_property
    def rule_keywords(self) -> tuple[tuple[str, str, bool], ...]:
        """(keyword, lower-cased, generic) for every relevance keyword, then every category keyword, each once in
        file order; generic: a category keyword in ``relevance.weak_keywords`` (it alone makes nothing relevant).
        Computed once per taxonomy (the classifier asks for every text)."""
        generic = {k.lower() for k in self.relevance.weak_keywords}
        seen: dict[str, tuple[str, str, bool]] = {}
        for k in self.relevance.keywords:
            seen.setdefault(k, (k, k.lower(), False))
        for c in self.categories:
            for k in c.keywords:
                seen.setdefault(k, (k, k.lower(), k.lower() in generic))
        return tuple(seen.values())

    def unit_of(self, name: str) -> str | None:
        for c in self.categories:
            if c.name == name:
                return c.unit
        return None


def load_taxonomy(path: Path) -> Taxonomy:
    """Read and validate the taxonomy; errors name the file and the field (ConfigError)."""
    return load_model(path, Taxonomy)


@lru_cache(maxsize=32)
def _alternation(patterns: tuple[str, ...]) -> re.Pattern[str] | None:
    return re.compile("|".join(f"(?:{p})" for p in patterns), re.IGNORECASE) if patterns else None


def rule_text(text: str, taxonomy: Taxonomy) -> str:
    """What the keyword rules read: ``text`` lower-cased, each match of ``relevance.ignore_patterns`` replaced by
    a space (so no keyword spans the gap)."""
    low = text.lower()
    ignore = _alternation(tuple(taxonomy.relevance.ignore_patterns))
    return ignore.sub(" ", low) if ignore else low


def abroad_only(low: str, taxonomy: Taxonomy) -> bool:
    """Whether the rule text ``low`` names a place abroad (``relevance.abroad_keywords``) and nothing at home
    (``relevance.domestic_keywords``)."""
    rules = taxonomy.relevance
    return any(k.lower() in low for k in rules.abroad_keywords) and not any(
        k.lower() in low for k in rules.domestic_keywords)


def silenced_keywords(low: str, taxonomy: Taxonomy) -> frozenset[str]:
    """The keywords (lower-cased) that do not count in the rule text ``low``: the nuisance keywords when the
    text is a nuisance complaint (a nuisance pattern, no enforcement keyword), else none. (A text about culture
    abroad silences every keyword: :func:`abroad_only`.)"""
    rules = taxonomy.relevance
    nuisance = _alternation(tuple(rules.nuisance_patterns))
    if nuisance is None or not nuisance.search(low) or any(k.lower() in low for k in rules.enforcement_keywords):
        return frozenset()
    return frozenset(k.lower() for k in rules.nuisance_keywords)


def rule_scores(text: str, taxonomy: Taxonomy) -> dict[str, float]:
    """Keyword-rule score per category: each distinct keyword found in the rule text (:func:`rule_text`) adds
    the category weight; silenced keywords (:func:`silenced_keywords`) do not, nor any in a text about culture
    abroad (:func:`abroad_only`)."""
    low = rule_text(text, taxonomy)
    if abroad_only(low, taxonomy):
        return {}
    silent = silenced_keywords(low, taxonomy)
    out: dict[str, float] = {}
    for cat in taxonomy.categories:
        hits = sum(1 for k in cat.keywords if k.lower() in low and k.lower() not in silent)
        if hits:
            out[cat.name] = hits * cat.weight
    return out


def rule_topic(text: str, taxonomy: Taxonomy) -> str | None:
    """The category with the highest rule score (first in file order on ties), or None below threshold."""
    scores = rule_scores(text, taxonomy)
    best: str | None = None
    best_score = 0.0
    for name in taxonomy.names:
        s = scores.get(name, 0.0)
        if s > best_score:
            best, best_score = name, s
    return best if best_score >= taxonomy.min_rule_score else None


@dataclass(frozen=True)
class RuleEvidence:
    """What the keyword rules saw in a text, for a person asking why a post was flagged or not."""

    hits: tuple[str, ...]  # keywords that make the text relevant (as written in the taxonomy)
    weak: tuple[str, ...]  # generic keywords found, which alone do not
    ignored: tuple[str, ...]  # text the rules did not read (an address, a repost author; lower-cased)
    silenced: tuple[str, ...]  # venues found in a nuisance complaint
    abroad: bool  # about culture abroad: no rule evidence at all

    @property
    def relevant(self) -> bool:
        return bool(self.hits) and not self.abroad


def rule_evidence(text: str, taxonomy: Taxonomy) -> RuleEvidence:
    """The keyword rules on ``text``: a relevance keyword, or a category keyword that is not merely generic, in
    the rule text (:func:`rule_text`) and not silenced (:func:`silenced_keywords`) makes it relevant; nothing
    does in a text about culture abroad (:func:`abroad_only`). Keywords in file order, each once."""
    rules = taxonomy.relevance
    low = rule_text(text, taxonomy)
    ignore = _alternation(tuple(rules.ignore_patterns))
    ignored = tuple(dict.fromkeys(m.group(0) for m in ignore.finditer(text.lower()))) if ignore else ()
    silent = silenced_keywords(low, taxonomy)
    hits: list[str] = []
    weak: list[str] = []
    silenced: list[str] = []
    for keyword, kl, generic in taxonomy.rule_keywords:
        if kl in low:
            (silenced if kl in silent else weak if generic else hits).append(keyword)
    return RuleEvidence(hits=tuple(hits), weak=tuple(weak), ignored=ignored, silenced=tuple(silenced),
                        abroad=abroad_only(low, taxonomy))


def rule_relevant(text: str, taxonomy: Taxonomy) -> bool:
    """Weak relevance rule (:func:`rule_evidence`): a relevance keyword, or a category keyword that is not merely
    generic, read and not silenced, in a text not about culture abroad."""
    return rule_evidence(text, taxonomy).relevant


def combine_relevance(model_prob: float, rule_fired: bool, rule_confidence: float) -> float:
    """Noisy-OR of the model's relevance probability and the keyword rule (when it fires)."""
    if not rule_fired:
        return model_prob
    return 1.0 - (1.0 - model_prob) * (1.0 - rule_confidence)


def rule_distribution(text: str, taxonomy: Taxonomy) -> dict[str, float]:
    """Rule scores normalised to sum to 1 over all categories (empty when no rule fires)."""
    scores = rule_scores(text, taxonomy)
    total = sum(scores.values())
    if total <= 0:
        return {}
    return {name: scores.get(name, 0.0) / total for name in taxonomy.names}
