"""Word segmentation with jieba, shared by indexing (``content_seg``) and keyword extraction."""

from __future__ import annotations

import logging
import re
import signal
import threading

import jieba

from yuqing.processes import die_with_parent

_lock = threading.Lock()
_loaded: list[jieba.Tokenizer] = []  # the process's one tokenizer, once loaded
_SPACE = re.compile(r"\s+")


def _tokenizer() -> jieba.Tokenizer:
    """One initialised tokenizer per process (loading the dictionary takes about a second): threads asking at
    the same time wait for the one load instead of loading it again."""
    if not _loaded:
        with _lock:
            if not _loaded:
                jieba.setLogLevel(logging.WARNING)
                tok = jieba.Tokenizer()
                tok.initialize()
                _loaded.append(tok)
    return _loaded[0]


def segment(text: str) -> list[str]:
    """jieba tokens of ``text`` in precise mode, whitespace dropped."""
    if not text:
        return []
    return [t for t in _tokenizer().lcut(text, HMM=True) if t.strip()]


def segment_for_index(text: str) -> str:
    """The value of a ``*_seg`` field: jieba tokens, lower-cased, joined by single spaces."""
    return segment_joined(text).lower()


def segment_many(texts: list[str]) -> list[str]:
    """:func:`segment_for_index` over a list (one call per worker-process task)."""
    return [segment_for_index(t) for t in texts]


def segment_joined(text: str) -> str:
    """Tokens joined by single spaces: the value of the whitespace-analysed ``*_seg`` fields.

    Whitespace inside a token (jieba keeps some, e.g. in Latin runs) is collapsed so the whitespace analyzer
    sees exactly jieba's tokens.
    """
    return " ".join(_SPACE.sub("", t) for t in segment(text))


def init_worker(parent: int) -> None:
    """The initializer of a segmentation worker process started by process ``parent``: Ctrl-C is the parent's
    to handle (here it would print a KeyboardInterrupt traceback and break the pool), and the worker ends with
    the parent's thread that started it (:func:`~yuqing.processes.die_with_parent`): a killed crawl leaves no
    worker behind."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    die_with_parent(parent)
