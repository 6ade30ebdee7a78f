"""Decoding page bytes: BOM, declared charsets, verification and fallbacks, on real pages."""

from __future__ import annotations

import codecs
import random
from pathlib import Path

import pytest

from crawlers.encoding import decode_html, decodes_cleanly, normalize_encoding, sniff_meta_charset
from yuqing.settings import load_settings


@pytest.fixture(scope="module")
def people_page() -> bytes:
    """A real page that declares GB2312 in its <meta> but was saved as UTF-8."""
    path = load_settings().paths.shared_data / "html" / "gne" / "tests" / "people" / "1.html"
    if not path.is_file():
        pytest.fail(f"shared test page not found: {path} (set YUQING_PATHS__SHARED_DATA)", pytrace=False)
    return path.read_bytes()


TITLE = "女儿出嫁，郑板桥画了几笔兰花当嫁妆"


def test_declared_gb2312_but_utf8_bytes(people_page: bytes) -> None:
    assert sniff_meta_charset(people_page) == "GB2312"
    text, encoding = decode_html(people_page, "gbk")
    assert encoding == "utf-8"
    assert TITLE in text and "\ufffd" not in text


def test_gb18030_page_with_wrong_header(people_page: bytes) -> None:
    original = people_page.decode("utf-8")
    gb_bytes = original.encode("gb18030")
    # <meta charset=GB2312> is right, the HTTP header (utf-8) is wrong.
    text, encoding = decode_html(gb_bytes, "utf-8")
    assert encoding == "gb18030"
    assert text == original


def test_gb18030_page_without_meta_and_wrong_header(people_page: bytes) -> None:
    original = people_page.decode("utf-8").replace("charset=GB2312", "")
    gb_bytes = original.encode("gb18030")
    assert sniff_meta_charset(gb_bytes) is None
    for header in ("utf-8", "iso-8859-1", None):
        text, encoding = decode_html(gb_bytes, header)
        assert encoding == "gb18030", header
        assert text == original


def test_gbk_header_on_gbk_bytes_is_read_as_gb18030() -> None:
    body = "<html><body><p>文化馆举办非遗展览，欢迎市民参观。€ 䶮</p></body></html>".encode("gb18030")
    text, encoding = decode_html(body, "GBK")
    assert encoding == "gb18030"
    assert "䶮" in text and "非遗" in text


def test_bom_wins_over_declarations() -> None:
    html = '<html><head><meta charset="gb2312"></head><body>图书馆</body></html>'
    text, encoding = decode_html(codecs.BOM_UTF8 + html.encode("utf-8"), "gbk")
    assert (text, encoding) == (html, "utf-8")
    text, encoding = decode_html(codecs.BOM_UTF16_LE + html.encode("utf-16-le"), None)
    assert (text, encoding) == (html, "utf-16-le")


def test_truncated_multibyte_sequence() -> None:
    html = '<html><head><meta charset="utf-8"></head><body>博物馆开放时间调整</body></html>'
    body = html.encode("utf-8")
    cut = body[: body.index("调".encode()) + 1]  # one byte of a three-byte character
    assert not decodes_cleanly(cut + b"x", "utf-8")
    assert decodes_cleanly(cut, "utf-8")  # only the tail is incomplete
    text, encoding = decode_html(cut, None)
    assert encoding == "utf-8"
    assert text.startswith(html[: html.index("调")])
    gb = html.replace("utf-8", "gb2312").encode("gb18030")
    gb_cut = gb[: gb.index("调".encode("gb18030")) + 1]
    text, encoding = decode_html(gb_cut, None)
    assert encoding == "gb18030"
    assert "博物馆开放时间" in text


def test_never_raises_on_garbage() -> None:
    rng = random.Random(20261127)
    for size in (1, 7, 100, 5000):
        body = bytes(rng.randrange(256) for _ in range(size))
        text, encoding = decode_html(body, rng.choice([None, "utf-8", "gbk", "no-such-charset"]))
        assert isinstance(text, str) and encoding
    assert decode_html(b"", None) == ("", "utf-8")
    assert decode_html(b'<meta charset="x-klingon"><p>ok</p>', "also-bogus") == (
        '<meta charset="x-klingon"><p>ok</p>',
        "utf-8",
    )


def test_normalize_encoding() -> None:
    assert normalize_encoding("GB2312") == "gb18030"
    assert normalize_encoding(" gbk ") == "gb18030"
    assert normalize_encoding("UTF8") == "utf-8"
    assert normalize_encoding("us-ascii") == "utf-8"
    assert normalize_encoding("big5") == "big5hkscs"
    assert normalize_encoding("nonsense") is None
    assert normalize_encoding(None) is None


def test_every_saved_page_decodes_losslessly(people_page: bytes) -> None:
    # The saved pages are all UTF-8 files, whatever their <meta> says (several say GB2312).
    gne = load_settings().paths.shared_data / "html" / "gne"
    pages = sorted(Path(gne).rglob("*.html"))
    assert len(pages) >= 60, f"expected the 64 saved pages under {gne}"
    for page in pages:
        body = page.read_bytes()
        assert decode_html(body, None) == (body.decode("utf-8"), "utf-8"), page
        # ... and as GB18030 bytes they come back unchanged too (the declaration may be wrong or absent).
        as_gb = body.decode("utf-8").encode("gb18030")
        assert decode_html(as_gb, "iso-8859-1")[0] == body.decode("utf-8"), page
