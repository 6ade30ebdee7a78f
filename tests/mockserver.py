"""A local HTTP server for crawl tests, run in a subprocess (as Scrapy's own tests do).

    python -m tests.mockserver --pages DIR --site DIR

Prints ``PORT <n>`` once listening on 127.0.0.1 (port chosen by the OS). Routes:

- ``/pages/<path>``   a saved real page from DIR (bytes as saved), with ETag and Last-Modified; answers
                      304 to a matching If-None-Match / If-Modified-Since
- ``/noetag/<path>``  the same page without validators
- ``/gb/<path>``      the same page transcoded to GB18030 (its own <meta charset> declares GB2312/GBK)
- ``/wrongcharset/<path>`` the GB18030 bytes under a header that claims UTF-8
- ``/truncated/<path>`` the first third of the page's bytes
- ``/status/<code>``  an empty response with that status
- ``/redirect-loop``  a redirect to itself
- ``/flaky/<n>/<path>`` 503 for the first n requests of that URL, then the saved page
- ``/slow/<seconds>/<path>`` the saved page (or the site's file) after that many seconds (a crawl that lasts)
- ``/big/<mb>``       an HTML page of that many megabytes
- anything else      a file under the site directory the test wrote (feeds, robots.txt, ...), with
                      validators like /pages/
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import mimetypes
import sys
import threading
import time
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlsplit


class Handler(BaseHTTPRequestHandler):
    pages: Path
    site: Path
    protocol_version = "HTTP/1.1"  # keep-alive, like a real web server
    hits: dict[str, int] = {}  # noqa: RUF012 - per-server request counts of the flaky route
    lock = threading.Lock()
    disable_nagle_algorithm = True  # headers and body leave at once (no delayed-ACK stalls)

    def log_message(self, format: str, *args: object) -> None:  # quiet
        pass

    def _validated(self, body: bytes, ctype: str, mtime: float) -> None:
        """200 with ETag/Last-Modified, or 304 when the client's validators match."""
        etag = '"' + hashlib.md5(body).hexdigest() + '"'
        modified = formatdate(mtime, usegmt=True)
        if self.headers.get("If-None-Match") == etag or (
            self.headers.get("If-None-Match") is None and self.headers.get("If-Modified-Since") == modified
        ):
            return self._send(304, b"", ctype, {"ETag": etag, "Last-Modified": modified})
        return self._send(200, body, ctype, {"ETag": etag, "Last-Modified": modified})

    def _send(self, status: int, body: bytes, ctype: str = "text/html", headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _file(self, root: Path, rel: str) -> bytes | None:
        path = (root / rel).resolve()
        if not str(path).startswith(str(root.resolve())) or not path.is_file():
            return None
        return path.read_bytes()

    def do_HEAD(self) -> None:
        self.do_GET()

    def do_GET(self) -> None:
        path = unquote(urlsplit(self.path).path)
        head, _, rest = path.lstrip("/").partition("/")
        if head in ("pages", "noetag", "gb", "wrongcharset", "truncated"):
            body = self._file(self.pages, rest)
            if body is None:
                return self._send(404, b"not found")
            if head in ("gb", "wrongcharset"):
                body = body.decode("utf-8").encode("gb18030", errors="replace")
                return self._send(200, body, "text/html" + ("; charset=utf-8" if head == "wrongcharset" else ""))
            if head == "truncated":
                return self._send(200, body[: len(body) // 3], "text/html; charset=utf-8")
            if head == "noetag":
                return self._send(200, body, "text/html; charset=utf-8")
            return self._validated(body, "text/html; charset=utf-8", (self.pages / rest).stat().st_mtime)
        if head == "status":
            return self._send(int(rest or 500), b"")
        if head == "flaky":
            times, _, rel = rest.partition("/")
            with self.lock:
                seen = self.hits.get(path, 0)
                self.hits[path] = seen + 1
            if seen < int(times):
                return self._send(503, b"busy")
            body = self._file(self.pages, rel)
            return self._send(200, body or b"", "text/html; charset=utf-8")
        if head == "slow":
            seconds, _, rel = rest.partition("/")
            time.sleep(float(seconds))  # the server's own pace, not a test's synchronisation
            body = self._file(self.pages, rel) or self._file(self.site, rel)
            return self._send(200 if body else 404, body or b"not found", "text/html; charset=utf-8")
        if head == "redirect-loop":
            return self._send(302, b"", headers={"Location": "/redirect-loop"})
        if head == "big":
            mb = int(rest or 1)
            chunk = "<p>大文件测试段落。</p>\n".encode() * 1000
            body = b"<html><body>" + chunk * max(1, (mb * 1024 * 1024) // len(chunk)) + b"</body></html>"
            return self._send(200, body, "text/html; charset=utf-8")
        body = self._file(self.site, path.lstrip("/"))
        if body is None:
            return self._send(404, b"not found")
        ctype = mimetypes.guess_type(path)[0] or "application/octet-stream"
        if path.endswith(".xml"):
            ctype = "application/rss+xml"
        elif path.endswith(".json"):
            ctype = "application/json"
        return self._validated(body, ctype, (self.site / path.lstrip("/")).stat().st_mtime)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--pages", required=True)
    ap.add_argument("--site", required=True)
    args = ap.parse_args()
    Handler.pages = Path(args.pages)
    Handler.site = Path(args.site)
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    print(f"PORT {server.server_address[1]}", flush=True)
    with contextlib.suppress(KeyboardInterrupt):
        server.serve_forever()
    sys.exit(0)


if __name__ == "__main__":
    main()
