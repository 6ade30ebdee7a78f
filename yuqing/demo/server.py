"""The demo site over HTTP: one threaded server; ETag / Last-Modified on every page and 304 answers to a
matching conditional request, so incremental crawling works as against a real site."""

from __future__ import annotations

import hashlib
import logging
import time
from email.utils import formatdate, parsedate_to_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from yuqing.demo.site import DemoSite, Page

log = logging.getLogger(__name__)


def etag_of(body: bytes) -> str:
    return '"' + hashlib.sha1(body).hexdigest()[:20] + '"'


def not_modified(page: Page, etag: str, if_none_match: str | None, if_modified_since: str | None) -> bool:
    """Whether a conditional request may be answered 304 (If-None-Match wins over If-Modified-Since)."""
    if if_none_match is not None:
        return etag in [t.strip() for t in if_none_match.split(",")] or if_none_match.strip() == "*"
    if if_modified_since and page.modified is not None:
        try:
            since = parsedate_to_datetime(if_modified_since).timestamp()
        except (TypeError, ValueError, IndexError):
            return False
        return int(page.modified) <= since
    return False


def make_server(site: DemoSite, host: str, port: int) -> ThreadingHTTPServer:
    """A server for ``site`` on ``host``:``port`` (0: a free port), not yet serving."""

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True
        server_version = "yuqing-demo/1"

        def log_message(self, format: str, *args: object) -> None:
            log.debug(format, *args)

        def do_HEAD(self) -> None:
            self.do_GET()

        def do_GET(self) -> None:
            address = self.server.server_address
            listening = f"{host}:{address[1] if isinstance(address, tuple) else port}"
            base = f"http://{self.headers.get('Host') or listening}"
            try:
                page = site.respond(self.path, time.time(), base)
            except Exception:  # a bug in one page must not take the site down; the request gets a 500
                log.exception("demo site: %s failed", self.path)
                page = Page(500, b"internal error", "text/plain")
            headers = {"Content-Type": page.content_type}
            status, body = page.status, page.body
            if status == 200:
                etag = etag_of(body)
                headers["ETag"] = etag
                if page.modified is not None:
                    headers["Last-Modified"] = formatdate(page.modified, usegmt=True)
                if not_modified(page, etag, self.headers.get("If-None-Match"), self.headers.get("If-Modified-Since")):
                    status, body = 304, b""
            self.send_response(status)
            for key, value in headers.items():
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

    return ThreadingHTTPServer((host, port), Handler)
