"""Keywords (jieba segmentation + TF-IDF with jieba's IDF table) and place / organisation names (jieba POS)."""

from __future__ import annotations

import logging
import re
import threading
from collections import Counter
from collections.abc import Iterable
from functools import lru_cache
from pathlib import Path
from typing import Any

from nlp.segment import segment

_WORDLIKE = re.compile(r"[\u4e00-\u9fffA-Za-z]")
_lock = threading.Lock()


@lru_cache(maxsize=1)
def idf_table() -> tuple[dict[str, float], float]:
    """jieba's bundled IDF table and its median (the IDF of unseen words)."""
    import jieba

    path = Path(jieba.__file__).parent / "analyse" / "idf.txt"
    idf: dict[str, float] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        word, _, value = line.strip().partition(" ")
        if value:
            idf[word] = float(value)
    values = sorted(idf.values())
    return idf, values[len(values) // 2] if values else 10.0


def tfidf_keywords(
    tokens: Iterable[str],
    idf: dict[str, float],
    default_idf: float,
    topk: int,
    stopwords: set[str] | frozenset[str] = frozenset(),
) -> list[str]:
    """Top ``topk`` tokens by term frequency × IDF (ties: earlier first occurrence). Tokens shorter than two
    characters, stopwords and tokens without a CJK or Latin letter are skipped."""
    counts: Counter[str] = Counter()
    first: dict[str, int] = {}
    for i, tok in enumerate(tokens):
        t = tok.strip()
        if len(t) < 2 or t.lower() in stopwords or not _WORDLIKE.search(t):
            continue
        counts[t] += 1
        first.setdefault(t, i)
    total = sum(counts.values())
    if not total:
        return []
    scored = sorted(counts, key=lambda w: (-(counts[w] / total) * idf.get(w, default_idf), first[w]))
    return scored[:topk]


def merge_entities(
    pairs: list[tuple[str, str]], org_suffixes: list[str], max_tokens: int
) -> tuple[list[str], list[str]]:
    """(places, orgs) from jieba (word, POS flag) pairs, each in first-seen order without duplicates.

    Places: ``ns`` tokens. Organisations: ``nt`` tokens, and names closed by a token that ends with an
    organisation suffix (e.g. 局, 馆), joined with up to ``max_tokens - 1`` preceding noun-like tokens back
    to and including a place name (``北京市 文化 和 旅游局`` -> ``北京市文化和旅游局``).
    """
    places: list[str] = []
    orgs: list[str] = []
    suffixes = tuple(sorted(org_suffixes, key=len, reverse=True))
    for i, (word, flag) in enumerate(pairs):
        if flag == "ns" and len(word) >= 2 and word not in places:
            places.append(word)
        name = ""
        if flag == "nt":
            name = word
        elif flag.startswith("n") and word.endswith(suffixes) and len(word) >= 2:
            j = i
            while j > 0 and i - j + 1 < max_tokens:
                prev_word, prev_flag = pairs[j - 1]
                if not (prev_flag.startswith("n") or prev_flag in ("c", "vn")) or not _WORDLIKE.search(prev_word):
                    break
                j -= 1
                if prev_flag == "ns":
                    break
            while j < i and pairs[j][1] == "c":
                j += 1
            name = "".join(w for w, _ in pairs[j : i + 1])
            if name == word and flag != "nt" and len(word) <= 2:
                name = ""
        if name and name not in orgs:
            orgs.append(name)
    return places, orgs


@lru_cache(maxsize=1)
def _pos_tokenizer() -> Any:
    import jieba
    import jieba.posseg

    with _lock:
        jieba.setLogLevel(logging.WARNING)
        tok = jieba.Tokenizer()
        tok.initialize()
        return jieba.posseg.POSTokenizer(tok)


def pos_pairs(text: str) -> list[tuple[str, str]]:
    """jieba (word, POS flag) pairs of ``text``, whitespace tokens dropped."""
    if not text:
        return []
    return [(p.word, p.flag) for p in _pos_tokenizer().lcut(text) if p.word.strip()]


def extract(
    text: str,
    *,
    topk: int,
    stopwords: set[str] | frozenset[str],
    org_suffixes: list[str],
    org_max_tokens: int,
    max_chars: int,
) -> tuple[list[str], list[str], list[str]]:
    """(keywords, places, orgs) of the first ``max_chars`` characters of ``text``."""
    head = (text or "")[:max_chars]
    if not head.strip():
        return [], [], []
    idf, median = idf_table()
    keywords = tfidf_keywords(segment(head), idf, median, topk, stopwords)
    places, orgs = merge_entities(pos_pairs(head), org_suffixes, org_max_tokens)
    return keywords, places, orgs
