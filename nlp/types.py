"""What the classifier produces for one post (the contract between nlp/ and the indexing pipeline)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

Sentiment = Literal["negative", "neutral", "positive"]


class Analysis(BaseModel):
    """Classifier and keyword output for one text, with probabilities and the model version."""

    sentiment: Sentiment
    sentiment_probs: dict[str, float] = Field(default_factory=dict)
    relevant: bool
    relevance_prob: float = Field(ge=0.0, le=1.0)
    topic: str | None = None
    topic_probs: dict[str, float] = Field(default_factory=dict)
    keywords: list[str] = Field(default_factory=list)
    places: list[str] = Field(default_factory=list)
    orgs: list[str] = Field(default_factory=list)
    model_version: str
