"""Hot words (热词): the configuration (config/hotwords.yaml: heuristics are data) and the pure function that
picks a post's ``hot_terms`` at ingest.

The dashboard's hot-words query is a terms aggregation over the ``hot_terms`` keyword field (doc values, no
fielddata): each post contributes at most ``per_post`` words, the ones it uses most, so the aggregation's cost
grows with the number of posts, not with their length, and no full-text field is ever loaded into the heap.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from yuqing.config_files import load_model

# A word worth counting: two or more Han characters (jieba tokens of one character say nothing about a topic).
HAN_WORD = re.compile("[\u4e00-\u9fff]{2,}")


class HotWords(BaseModel):
    model_config = ConfigDict(extra="forbid")
    stopwords: list[str] = Field(default_factory=list)
    # How many words of one post are kept in its ``hot_terms`` (its most frequent ones).
    per_post: int = Field(24, ge=1, le=256)
    # Above twice this many posts in the chosen period, hot words are counted over a random sample of about this
    # many (counts become estimates; the query's cost stays flat). 0: always every post.
    sample_docs: int = Field(30_000, ge=0)


def load_hot_words(path: Path) -> HotWords:
    """The configuration; an absent file means the defaults, a malformed one raises ConfigError (file, field)."""
    if not path.exists():
        return HotWords()
    cfg = load_model(path, HotWords)
    return cfg.model_copy(update={"stopwords": list(dict.fromkeys(w.strip() for w in cfg.stopwords if w.strip()))})


def load_stopwords(path: Path) -> tuple[str, ...]:
    """The configured stopwords; an absent file means none, a malformed one raises ConfigError."""
    return tuple(load_hot_words(path).stopwords)


def hot_terms_of(title_seg: str, content_seg: str, *, stopwords: Iterable[str] = (), per_post: int = 24) -> list[str]:
    """The ``hot_terms`` of a segmented post (pure): its words of two or more Han characters that are not
    stopwords, the ``per_post`` most frequent, title and body counted together, first occurrence breaking ties."""
    stop = stopwords if isinstance(stopwords, frozenset | set) else frozenset(stopwords)
    counts = Counter(t for t in f"{title_seg} {content_seg}".split() if t not in stop and HAN_WORD.fullmatch(t))
    return [word for word, _n in counts.most_common(per_post)]
