"""The stopword list of the hot-words aggregation (config/hotwords.yaml): heuristics are data."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from yuqing.config_files import load_model


class HotWords(BaseModel):
    model_config = ConfigDict(extra="forbid")
    stopwords: list[str] = Field(default_factory=list)


def load_stopwords(path: Path) -> tuple[str, ...]:
    """The configured stopwords; an absent file means none, a malformed one raises ConfigError."""
    if not path.exists():
        return ()
    return tuple(dict.fromkeys(w.strip() for w in load_model(path, HotWords).stopwords if w.strip()))
