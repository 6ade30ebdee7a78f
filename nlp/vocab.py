"""Character vocabulary for the from-scratch model (saved with the model as a BERT WordPiece vocabulary)."""

from __future__ import annotations

import string
from collections import Counter
from collections.abc import Iterable

SPECIAL_TOKENS: tuple[str, ...] = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")


def build_char_vocab(texts: Iterable[str], min_freq: int = 2, max_size: int = 8000) -> list[str]:
    """Special tokens, ASCII letters/digits (also as ``##`` continuations), then the most frequent other
    characters seen at least ``min_freq`` times (lower-cased, whitespace skipped), up to ``max_size`` tokens.

    BERT's basic tokenizer splits CJK characters and punctuation into single tokens; Latin words become
    ``h ##e ##l ##l ##o`` with this vocabulary. Deterministic for a given input (ties broken by code point).
    """
    ascii_chars = list(string.ascii_lowercase + string.digits)
    vocab = list(SPECIAL_TOKENS) + ascii_chars + ["##" + c for c in ascii_chars]
    seen = set(vocab)
    counts: Counter[str] = Counter()
    for t in texts:
        counts.update(c for c in t.lower() if not c.isspace())
    ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    for ch, n in ranked:
        if len(vocab) >= max_size or n < min_freq:
            break
        if ch not in seen:
            vocab.append(ch)
            seen.add(ch)
    return vocab


def make_tokenizer(vocab: list[str]) -> object:
    """A transformers BertTokenizer over ``vocab`` (lower-casing, CJK characters split)."""
    from transformers import BertTokenizer

    return BertTokenizer(vocab={tok: i for i, tok in enumerate(vocab)}, do_lower_case=True, tokenize_chinese_chars=True)
