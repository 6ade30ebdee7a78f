"""The topic taxonomy (config/taxonomy.yaml): categories, keyword rules, responsible units."""

from __future__ import annotations

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

    def unit_of(self, name: str) -> str | None:
        for c in self.categories:
            if c.name == name:
                return c.unit
        return None


def load_taxonomy(path: Path) -> Taxonomy:
    """Read and validate the taxonomy; errors name the file and the field (ConfigError)."""
    return load_model(path, Taxonomy)


def rule_scores(text: str, taxonomy: Taxonomy) -> dict[str, float]:
    """Keyword-rule score per category: each distinct keyword found in ``text`` adds the category weight."""
    low = text.lower()
    out: dict[str, float] = {}
    for cat in taxonomy.categories:
        hits = sum(1 for k in cat.keywords if k.lower() in low)
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


def rule_relevant(text: str, taxonomy: Taxonomy) -> bool:
    """Weak relevance rule: a relevance keyword, or a category keyword that is not merely generic."""
    low = text.lower()
    if any(k.lower() in low for k in taxonomy.relevance.keywords):
        return True
    weak = {k.lower() for k in taxonomy.relevance.weak_keywords}
    for cat in taxonomy.categories:
        for k in cat.keywords:
            kl = k.lower()
            if kl not in weak and kl in low:
                return True
    return False


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
