"""Text features for clustering: tokens (jieba words and/or character bigrams) and TF-IDF vectors with an
incremental IDF (document frequencies grow with each post and live in the clustering state).

A post's vector: term frequency ``1 + ln(tf)`` (the title's tokens counted ``title_weight`` times) × IDF
``ln((1 + N) / (1 + df)) + 1`` with the document frequencies as they stand after the post was counted;
the highest-weighted ``max_post_terms`` terms are kept and the vector is scaled to unit length.
Vectors are plain ``dict[str, float]``; ties are broken by the term so that everything is deterministic.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from events.config import Features, TextConfig

Vector = dict[str, float]

_WORDLIKE = re.compile(r"[\u4e00-\u9fffA-Za-z]")
_HAN_RUN = re.compile(r"[\u4e00-\u9fffA-Za-z0-9]+")
# Administrative place codes (the provincial board's anonymised names: A7县, B9市, K2区, M市) and real names
# ending in a county-level suffix. A code with a digit is county-level, a bare letter + 市 city-level.
_PLACE_CODE = re.compile(r"(?<![A-Za-z0-9])([A-Z]\d{0,2})(市|区|县)")
_COUNTY_SUFFIX = ("区", "县", "旗")
_CITY_SUFFIX = ("市", "州", "盟")
_GENERIC_PLACES = frozenset(
    [
        "城区", "社区", "小区", "园区", "景区", "校区", "市区", "郊区", "辖区", "地区",
        "片区", "新区", "山区", "老区", "街区", "库区", "矿区", "灾区", "试验区", "开发区",
        "示范区", "保护区", "商业区", "居民区", "住宅区", "风景区", "全区", "本区", "该区", "我区",
        "全县", "本县", "该县", "我县", "各县", "各区", "县城", "全市", "本市", "该市",
        "我市", "城市", "超市", "股市", "楼市", "车市", "夜市", "各市", "都市", "门市",
    ]
)


def _wordlike(token: str) -> bool:
    return bool(_WORDLIKE.search(token))


def place_codes(text: str) -> list[str]:
    """Place codes like ``A7县`` / ``M市`` in ``text`` (first-seen order, no repeats)."""
    out: dict[str, None] = {}
    for m in _PLACE_CODE.finditer(text):
        out[m.group(1) + m.group(2)] = None
    return list(out)


def places_of(text: str, words: Iterable[str]) -> tuple[list[str], list[str]]:
    """(county-level, city-level) place names of a post: codes found in ``text`` and jieba ``words`` of three
    or more characters ending in a county or city suffix (generic words such as 小区 or 全市 excluded)."""
    county: dict[str, None] = {}
    city: dict[str, None] = {}
    for code in place_codes(text):
        (county if any(ch.isdigit() for ch in code) or code[-1] in _COUNTY_SUFFIX else city)[code] = None
    for w in words:
        if len(w) < 3 or w in _GENERIC_PLACES or not all("\u4e00" <= ch <= "\u9fff" for ch in w):
            continue
        if w.endswith(_COUNTY_SUFFIX):
            county[w] = None
        elif w.endswith(_CITY_SUFFIX):
            city[w] = None
    return list(county), list(city)


# A Weibo 话题: #…# of at most 40 characters without whitespace or another # inside.
_HASHTAG = re.compile(r"#([^#\s]{1,40})#")


def hashtags(text: str, min_chars: int = 1) -> list[str]:
    """The 话题 of ``text`` of at least ``min_chars`` characters (``青川市图书馆突然闭馆`` for
    ``#青川市图书馆突然闭馆#``), first-seen order, no repeats."""
    return list(dict.fromkeys(m.group(1) for m in _HASHTAG.finditer(text) if len(m.group(1)) >= min_chars))


def word_tokens(words: Iterable[str], stopwords: frozenset[str]) -> list[str]:
    """Clustering tokens from jieba words: at least two characters, a CJK or Latin letter, not a stopword."""
    return [w for w in words if len(w) >= 2 and _wordlike(w) and w.lower() not in stopwords]


def char_bigrams(text: str) -> list[str]:
    """Overlapping character bigrams within runs of CJK / Latin / digit characters (the baseline's features)."""
    out: list[str] = []
    for run in _HAN_RUN.findall(text):
        out.extend(run[i : i + 2] for i in range(len(run) - 1))
    return out


@dataclass(frozen=True)
class PostTerms:
    """What clustering needs from a post's text: its term counts and its place names."""

    counts: Mapping[str, int]
    county: tuple[str, ...] = ()
    city: tuple[str, ...] = ()
    hashtags: tuple[str, ...] = ()  # its 话题, whole text (not only the head the terms come from)


def post_terms(
    title: str,
    text: str,
    cfg: TextConfig,
    *,
    segment: Any = None,
    features: Features | None = None,
) -> PostTerms:
    """Term counts of a post under ``features`` (default ``cfg.features``): the title counted
    ``title_weight`` times plus the first ``max_chars`` characters of the body. ``segment`` (default
    :func:`nlp.segment.segment`) is the word segmenter, so callers may pass a cached one. Place names come
    from the codes in the text and, when words are features, from the jieba words; 话题 from the whole text."""
    feats = features or cfg.features
    body = (text or "")[: cfg.max_chars]
    title = title or ""
    stop = frozenset(w.lower() for w in cfg.stopwords)
    counts: Counter[str] = Counter()
    title_words: list[str] = []
    body_words: list[str] = []
    if feats in ("words", "words+bigrams"):
        if segment is None:
            from nlp.segment import segment as jieba_segment

            segment = jieba_segment
        title_words = segment(title) if title else []
        body_words = segment(body) if body else []
    if feats in ("words", "words+bigrams"):
        tw = word_tokens(title_words, stop) + place_codes(title)
        bw = word_tokens(body_words, stop) + place_codes(body)
        for tok in tw:
            counts[tok] += cfg.title_weight
        counts.update(bw)
    if feats in ("bigrams", "words+bigrams"):
        for tok in char_bigrams(title):
            counts[tok] += cfg.title_weight
        counts.update(char_bigrams(body))
    county, city = places_of(f"{title} {body}", [*title_words, *body_words])
    tags = hashtags(f"{title} {text or ''}")
    return PostTerms(counts=dict(counts), county=tuple(county), city=tuple(city), hashtags=tuple(tags))


@dataclass
class Vocabulary:
    """Document frequencies seen so far (the incremental IDF)."""

    n_docs: int = 0
    df: dict[str, int] = field(default_factory=dict)

    def add(self, terms: Iterable[str]) -> None:
        self.n_docs += 1
        df = self.df
        for t in terms:
            df[t] = df.get(t, 0) + 1

    def remove(self, terms: Iterable[str]) -> None:
        """Undo :meth:`add` of one document (its posts left the index: the demo's reset). Counts never go below
        zero, so removing a document that was never added cannot corrupt the rest."""
        self.n_docs = max(0, self.n_docs - 1)
        df = self.df
        for t in terms:
            n = df.get(t, 0) - 1
            if n > 0:
                df[t] = n
            else:
                df.pop(t, None)

    def prune(self, keep: int) -> int:
        """Keep the ``keep`` most frequent terms (ties: the term's order) and forget the rest; returns how many
        were dropped. ``n_docs`` stays: a dropped term counts as unseen, so its next post weighs it as new (the
        rarest terms, which hardly differ in weight from unseen ones)."""
        df = self.df
        if len(df) <= keep:
            return 0
        kept = sorted(df.items(), key=lambda td: (-td[1], td[0]))[:keep]
        dropped = len(df) - len(kept)
        self.df = dict(kept)
        return dropped

    def idf(self, term: str) -> float:
        return math.log((1 + self.n_docs) / (1 + self.df.get(term, 0))) + 1.0

    def vector(self, counts: Mapping[str, int], max_terms: int) -> Vector:
        """The unit TF-IDF vector of ``counts`` (top ``max_terms`` terms)."""
        n1 = 1 + self.n_docs
        df = self.df
        weights = [
            (t, (1.0 + math.log(c)) * (math.log(n1 / (1 + df.get(t, 0))) + 1.0)) for t, c in counts.items() if c > 0
        ]
        weights.sort(key=lambda tw: (-tw[1], tw[0]))
        weights = weights[:max_terms]
        norm = math.sqrt(sum(w * w for _, w in weights))
        if norm <= 0:
            return {}
        return {t: w / norm for t, w in weights}

    def to_dict(self) -> dict[str, Any]:
        """``{"n_docs": N, "terms": "<df>\\t<term>\\n…"}``: the frequencies as one string, not a JSON object of
        a key per term: Elasticsearch stores the state document twenty times faster so (200,000 terms: 0.05 s
        against 1 s, every batch; ``bench/events_vocabulary.py``). A term never holds a line break (tokens come
        from splitting text); one that did would be refused here rather than saved unreadable."""
        lines = [f"{n}\t{t}" for t, n in self.df.items()]
        text = "\n".join(lines)
        if text.count("\n") != max(len(lines) - 1, 0):
            bad = next(t for t in self.df if "\n" in t)
            raise ValueError(f"events vocabulary: the term {bad!r} holds a line break")
        return {"n_docs": self.n_docs, "terms": text}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Vocabulary:
        if "df" in data:  # saved before the frequencies were one string
            return cls(n_docs=int(data["n_docs"]), df={str(k): int(v) for k, v in data["df"].items()})
        df: dict[str, int] = {}
        text = str(data["terms"])
        for line in text.split("\n") if text else ():
            n, term = line.split("\t", 1)
            df[term] = int(n)
        return cls(n_docs=int(data["n_docs"]), df=df)


def top_terms(vec: Mapping[str, float], k: int) -> list[str]:
    """The ``k`` highest-weighted terms (ties by term)."""
    return [t for t, _ in sorted(vec.items(), key=lambda tw: (-tw[1], tw[0]))[:k]]


def norm(vec: Mapping[str, float]) -> float:
    return math.sqrt(sum(w * w for w in vec.values()))


def dot(a: Mapping[str, float], b: Mapping[str, float]) -> float:
    if len(a) > len(b):
        a, b = b, a
    return sum(w * b.get(t, 0.0) for t, w in a.items())


def cosine(a: Mapping[str, float], b: Mapping[str, float]) -> float:
    na, nb = norm(a), norm(b)
    if na <= 0 or nb <= 0:
        return 0.0
    return dot(a, b) / (na * nb)
