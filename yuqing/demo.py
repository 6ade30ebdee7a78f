"""The demo source `yuqing up` starts: saved real news pages replayed as an RSS feed that grows over time.

    python -m yuqing.demo --pages ../shared/data/html/gne --port 8601

``/feed.xml`` lists the first pages (``pages_per_step`` more every ``step_interval_s``), newest first;
``/pages/<path>`` serves each saved page as it was saved.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import logging
import time
from datetime import datetime, timedelta
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import quote, unquote, urlsplit
from zoneinfo import ZoneInfo

from crawlers.feeds import FeedEntry, rss_document

log = logging.getLogger(__name__)


def article_pages(gne_dir: Path) -> list[tuple[str, str]]:
    """(relative path, saved title) of the article pages listed in the gne index (list pages excluded)."""
    index = gne_dir / "index.csv"
    if not index.exists():
        raise FileNotFoundError(f"{index} not found: set paths.shared_data to the shared data folder")
    with index.open(encoding="utf-8-sig") as fh:
        rows = [(r["file"].removeprefix("gne/"), r["title"]) for r in csv.DictReader(fh)]
    return [(path, title) for path, title in rows if path.startswith("tests/")]


class DemoFeed:
    def __init__(self, pages: list[tuple[str, str]], *, per_step: int, step_s: float, start: float) -> None:
        self.pages = pages
        self.per_step = per_step
        self.step_s = step_s
        self.start = start

    def visible(self, now: float) -> int:
        steps = int(max(0.0, now - self.start) // self.step_s) + 1
        return min(len(self.pages), steps * self.per_step)

    def document(self, base_url: str, now: float) -> bytes:
        zone = ZoneInfo("Asia/Shanghai")
        t0 = datetime.fromtimestamp(self.start, zone)
        entries = []
        for i, (path, title) in enumerate(self.pages[: self.visible(now)]):
            published = t0 + timedelta(seconds=self.step_s * (i // self.per_step))
            entries.append(
                FeedEntry(link=f"{base_url}/pages/{quote(path)}", title=title, published=format_datetime(published))
            )
        entries.reverse()
        return rss_document("yuqing 演示新闻源", base_url, entries, built=datetime.now(zone))


def serve(gne_dir: Path, host: str, port: int, per_step: int, step_s: float) -> None:
    feed = DemoFeed(article_pages(gne_dir), per_step=per_step, step_s=step_s, start=time.time())

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True

        def log_message(self, format: str, *args: object) -> None:
            log.debug(format, *args)

        def _send(self, status: int, body: bytes, ctype: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:
            path = unquote(urlsplit(self.path).path)
            if path == "/feed.xml":
                base = f"http://{self.headers.get('Host') or f'{host}:{port}'}"
                return self._send(200, feed.document(base, time.time()), "application/rss+xml")
            if path == "/robots.txt":
                return self._send(200, b"User-agent: *\nAllow: /\n", "text/plain")
            if path.startswith("/pages/"):
                target = (gne_dir / path.removeprefix("/pages/")).resolve()
                if target.is_file() and str(target).startswith(str(gne_dir.resolve())):
                    return self._send(200, target.read_bytes(), "text/html")
            return self._send(404, b"not found", "text/plain")

    server = ThreadingHTTPServer((host, port), Handler)
    log.info("demo source on http://%s:%d/feed.xml (%d pages)", host, server.server_address[1], len(feed.pages))
    print(f"PORT {server.server_address[1]}", flush=True)
    try:
        server.serve_forever()
    finally:
        server.server_close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--pages", type=Path, required=True, help="the gne folder of the shared data")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=8601)
    ap.add_argument("--per-step", type=int, default=3)
    ap.add_argument("--step-seconds", type=float, default=60.0)
    args = ap.parse_args()
    from yuqing.logs import setup_logging
    from yuqing.settings import load_settings

    setup_logging(load_settings(), "demo-source")  # the settings of `yuqing up` (YUQING_CONFIG, YUQING_*)
    with contextlib.suppress(KeyboardInterrupt):
        serve(args.pages, args.host, args.port, args.per_step, args.step_seconds)


if __name__ == "__main__":
    main()
