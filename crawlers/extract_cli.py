"""`yuqing extract PATH_OR_URL [--url URL]`: run the article extractor on one page and print JSON."""

from __future__ import annotations

import argparse
import json
import sys
import urllib.error
import urllib.request
from datetime import datetime
from email.message import Message
from pathlib import Path
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

if TYPE_CHECKING:
    from yuqing.settings import Settings

FETCH_TIMEOUT_S = 20.0
MAX_FETCH_BYTES = 20 * 1024 * 1024


def _is_url(target: str) -> bool:
    return target.lower().startswith(("http://", "https://"))


def fetch(url: str, *, user_agent: str, timeout: float = FETCH_TIMEOUT_S) -> tuple[bytes, str | None]:
    """(body, charset from the Content-Type header or None). Raises OSError (URLError) on failure."""
    request = urllib.request.Request(url, headers={"User-Agent": user_agent})
    with urllib.request.urlopen(request, timeout=timeout) as response:
        body: bytes = response.read(MAX_FETCH_BYTES)
        headers: Message = response.headers
        charset = headers.get_content_charset()
    return body, charset


def article_json(
    body: bytes, header_encoding: str | None, url: str | None, settings: Settings
) -> dict[str, Any]:
    """Decode and extract one page; the dict the command prints."""
    from crawlers.encoding import decode_html
    from crawlers.extract import extract_article, load_extraction_rules
    from crawlers.extract.rules import EXTRACTION_CONFIG_NAME

    rules = load_extraction_rules(settings.paths.config_file(EXTRACTION_CONFIG_NAME))
    text, encoding = decode_html(body, header_encoding)
    article = extract_article(text, url, rules=rules, now=datetime.now(ZoneInfo(settings.timezone)))
    return {
        "title": article.title,
        "content": article.content,
        "published_at": article.published_at.isoformat() if article.published_at else None,
        "author": article.author,
        "site": article.site,
        "encoding": encoding,
    }


def _handler(args: argparse.Namespace, settings: Settings) -> int:
    target: str = args.target
    header_encoding: str | None = None
    try:
        if _is_url(target):
            body, header_encoding = fetch(target, user_agent=settings.crawl.user_agent)
            url = args.url or target
        else:
            body = Path(target).read_bytes()
            url = args.url
    except (OSError, ValueError) as exc:
        print(f"yuqing extract: cannot read {target}: {exc}", file=sys.stderr)
        return 2
    try:
        result = article_json(body, header_encoding, url, settings)
    except ValueError as exc:
        print(f"yuqing extract: {target}: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(result, ensure_ascii=False, indent=2))
    return 0


def add_subcommand(sub: argparse._SubParsersAction) -> None:
    """Register `extract` on the `yuqing` command's sub-parsers."""
    parser = sub.add_parser(
        "extract",
        help="extract title, text, publish time and author from one saved page or URL (prints JSON)",
    )
    parser.add_argument("target", metavar="PATH_OR_URL", help="a local HTML file or an http(s) URL")
    parser.add_argument("--url", help="the page's original URL (for a local file; used for the site name)")
    parser.set_defaults(func=_handler)
