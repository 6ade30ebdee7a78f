"""Content fingerprints (pure): an exact content hash and a 64-bit SimHash over jieba tokens.

SimHash maps near-identical texts (a repost with a different footer, a copied article with an editor's line)
to fingerprints a few bits apart. The 64 bits are split into four 16-bit bands: two fingerprints within
Hamming distance 3 share at least one band exactly (pigeonhole), so candidates are found with a `terms` query
on the bands and confirmed in Python.
"""

from __future__ import annotations

import hashlib
import re
from collections import Counter

import numpy as np

from nlp.segment import segment
from yuqing.models import Post

BITS = 64
MAX_DISTANCE = 3
MIN_TOKENS = 12  # shorter texts are too small for SimHash: only exact content hashes link them

__all__ = ["content_hash", "hamming", "near", "post_content_hash", "post_tokens", "simhash", "tokens_for"]

_WORD = re.compile(r"[\w\u4e00-\u9fff]", re.UNICODE)
_MASK = (1 << BITS) - 1
_SHIFTS = np.arange(BITS, dtype=np.uint64)


def content_hash(*parts: str) -> str:
    """SHA-1 of the whitespace-normalised parts: equal for byte-identical text after normalisation."""
    h = hashlib.sha1()
    for part in parts:
        h.update(" ".join(part.split()).encode("utf-8"))
        h.update(b"\x00")
    return h.hexdigest()


def post_content_hash(post: Post) -> str:
    """The hash of what a post says and how far it spread — not when or where it was fetched — so a page
    whose text, official reply or engagement counts changed is re-indexed, and an unchanged one is not."""
    reply = post.reply
    return content_hash(
        post.title, post.content, post.category or "",
        reply.text if reply else "", reply.unit or "" if reply else "",
        reply.replied_at.isoformat() if reply and reply.replied_at else "",
        post.engagement.model_dump_json(),
    )


def _token_hash(token: str) -> int:
    return int.from_bytes(hashlib.blake2b(token.encode("utf-8"), digest_size=8).digest(), "big")


def tokens_for(text: str) -> list[str]:
    """Tokens that carry content: jieba words containing a letter, digit or Han character."""
    return [t for t in segment(text) if _WORD.search(t)]


def post_tokens(post: Post) -> list[str]:
    """Body tokens of a post (copies often get a new headline, so the title is left out), reusing the
    segmentation stage's output when it ran, so jieba runs once per post."""
    if post.content_seg is not None:
        return [t for t in post.content_seg.split() if _WORD.search(t)]
    return [t.lower() for t in tokens_for(post.content)]


def simhash(tokens: list[str]) -> int | None:
    """64-bit SimHash with term-frequency weights; None when there are too few tokens to be meaningful."""
    if len(tokens) < MIN_TOKENS:
        return None
    counts = Counter(tokens)
    hashes = np.fromiter((_token_hash(t) for t in counts), dtype=np.uint64, count=len(counts))
    tf = np.fromiter(counts.values(), dtype=np.int64, count=len(counts))
    bits = (hashes[:, None] >> _SHIFTS) & np.uint64(1)  # (tokens, 64): bit i of each token's hash
    weights = (np.where(bits == 1, 1, -1) * tf[:, None]).sum(axis=0)
    return int(sum(1 << i for i in np.flatnonzero(weights > 0))) & _MASK


def hamming(a: int, b: int) -> int:
    return (a ^ b).bit_count()


def to_hex(value: int) -> str:
    return f"{value:016x}"


def near(a: int, b: int, max_distance: int = MAX_DISTANCE) -> bool:
    return hamming(a, b) <= max_distance
