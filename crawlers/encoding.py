"""Turning downloaded bytes into text: BOM, declared charsets, verification and fallbacks.

Order of evidence: a byte-order mark; the page's own ``<meta charset>`` / ``http-equiv`` declaration; the
HTTP header; then detection (UTF-8, then GB18030). A declared encoding is used only if the bytes decode
cleanly with it (an incomplete multibyte sequence at the very end, as in a truncated download, is
tolerated). GB2312 and GBK are read as GB18030, their superset. A Latin-1/cp1252 declaration (HTTP's default)
is trusted only when the bytes are not clean GB18030. Bytes that are valid UTF-8 and contain
multibyte sequences are taken as UTF-8 even when a legacy charset is declared: saved pages are often
re-encoded without their declaration being updated, and GBK text is practically never valid UTF-8.
`decode_html` never raises: at worst undecodable bytes become U+FFFD.
"""

from __future__ import annotations

import codecs
import re

_BOMS: tuple[tuple[bytes, str], ...] = (
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF32_LE, "utf-32-le"),
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)

# Encodings that are superseded by a superset we read them as.
_ALIASES = {
    "gb2312": "gb18030",
    "gbk": "gb18030",
    "x-gbk": "gb18030",
    "gb_2312-80": "gb18030",
    "cp936": "gb18030",
    "euc-cn": "gb18030",
    "big5": "big5hkscs",
    "ascii": "utf-8",
    "us-ascii": "utf-8",
    "iso-8859-1": "cp1252",
    "latin-1": "cp1252",
    "latin1": "cp1252",
}

_META_SCAN_BYTES = 4096
_META_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?\s*([A-Za-z0-9_\-:.]+)""", re.IGNORECASE)
# Single-byte encodings that decode any byte string "cleanly", so verification says nothing about them.
_NON_VERIFIABLE = {"cp1252", "iso8859-1", "latin-1"}


def normalize_encoding(name: str | None) -> str | None:
    """A Python codec name for a declared charset (GB2312/GBK -> gb18030), or None if unknown."""
    if not name:
        return None
    key = name.strip().strip("\"'").lower()
    key = _ALIASES.get(key, key)
    try:
        canonical = codecs.lookup(key).name
    except LookupError:
        return None
    return _ALIASES.get(canonical, canonical)


def sniff_bom(body: bytes) -> tuple[str, int] | None:
    """(encoding, BOM length) if `body` starts with a byte-order mark."""
    for bom, name in _BOMS:
        if body.startswith(bom):
            return name, len(bom)
    return None


def sniff_meta_charset(body: bytes) -> str | None:
    """The charset declared in the page's first few KB (``<meta charset>`` or ``http-equiv``), raw."""
    match = _META_CHARSET.search(body[:_META_SCAN_BYTES])
    return match.group(1).decode("ascii", "replace") if match else None


def decodes_cleanly(body: bytes, encoding: str) -> bool:
    """Whether `body` decodes without errors, ignoring an incomplete sequence at the very end."""
    try:
        decoder = codecs.getincrementaldecoder(encoding)(errors="strict")
        decoder.decode(body, final=False)
    except (UnicodeDecodeError, LookupError):
        return False
    return True


def _is_multibyte_utf8(body: bytes) -> bool:
    return not body.isascii() and decodes_cleanly(body, "utf-8")


def decode_html(body: bytes, header_encoding: str | None = None) -> tuple[str, str]:
    """Decode a page's bytes; returns (text, Python codec name used). Never raises."""
    if not body:
        return "", "utf-8"
    bom = sniff_bom(body)
    if bom is not None:
        bom_name, size = bom
        return body[size:].decode(bom_name, errors="replace"), bom_name

    utf8_valid = _is_multibyte_utf8(body)
    declared = [normalize_encoding(sniff_meta_charset(body)), normalize_encoding(header_encoding)]
    for name in declared:
        if name is None:
            continue
        if name == "utf-8":
            if decodes_cleanly(body, "utf-8"):
                return body.decode("utf-8", errors="replace"), "utf-8"
            continue
        if utf8_valid:
            break  # valid multibyte UTF-8 outranks a legacy declaration (see the module docstring)
        if name in _NON_VERIFIABLE:
            # Any bytes "decode" as Latin-1/cp1252 (and HTTP defaults to it): a weak claim that loses
            # to bytes that are clean GB18030.
            if decodes_cleanly(body, "gb18030"):
                continue
            return body.decode(name, errors="replace"), name
        if decodes_cleanly(body, name):
            return body.decode(name, errors="replace"), name

    if body.isascii() or utf8_valid:
        return body.decode("utf-8", errors="replace"), "utf-8"
    if decodes_cleanly(body, "gb18030"):
        return body.decode("gb18030", errors="replace"), "gb18030"
    # Nothing decodes cleanly: pick whichever of the two loses fewer characters.
    as_utf8 = body.decode("utf-8", errors="replace")
    as_gb = body.decode("gb18030", errors="replace")
    if as_gb.count("\ufffd") < as_utf8.count("\ufffd"):
        return as_gb, "gb18030"
    return as_utf8, "utf-8"
