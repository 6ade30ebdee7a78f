"""Freshness: how long from a post appearing on a source to the alert mail arriving, through the real service.

A local feed (RSS + article pages, in a thread of this process) publishes a new post matching the alert rule
every ``--every`` seconds; ``yuqing run`` runs as a child process with a 30 s crawl interval (its crawl children,
the post-crawl jobs — events, tickets, 失声, alert decide — and the outbox sender thread, as in production) and
mails a local SMTP server (aiosmtpd, in this process), which notes when each mail arrives. Per post:
published → mail received; p50 and p95 over ``--n`` posts (≥ 20). The breakdown comes from what the service
stored: published → fetched (the crawl interval plus the crawl child's start-up), fetched → decided (indexing,
the post-crawl jobs before alert decide), decided → sent (the sender), sent → received.

Baseline, in the same run: an ideal poller with the same 30 s interval and nothing else to do (the post waits
for the next poll: uniform over the interval) — the floor any crawl-based service has at that interval.

    python -m bench.freshness [--n 24] [--every 5]

Goal: p95 ≤ 60 s (蚁坊 advertises 5 minutes). Ends with ``RESULT freshness p95_s=… goal=60 PASS|FAIL``.
"""

from __future__ import annotations

import argparse
import os
import random
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email import message_from_bytes, policy
from email.message import EmailMessage
from email.utils import format_datetime
from html import escape
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller

from crawlers.feeds import FeedEntry, rss_document
from index.client import es_client
from index.layout import POSTS
from index.outbox import OUTBOX
from yuqing.logs import setup_logging
from yuqing.settings import PROJECT_ROOT, load_settings

CRAWL_INTERVAL_S = 30
GOAL_P95_S = 60.0
RECIPIENT = "duty@culture.example.gov.cn"
# Common characters: each post's text is a different random draw, so no two posts are near-duplicates.
HAN = ("的一是在不了有和人这中大为上个国我以要他时来用们生到作地于出就分对成会可主发年动同工也能下过子说产种面而方后多"
       "定行学法所民得经十三之进着等部度家电力里如水化高自二理起小物现实加量都两体制机当使点从业本去把性好应开它合还因由"
       "其些然前外天政四日那社义事平形相全表间样与关各重新线内数正心反你明看原又么利比或但质气第向道命此变条只没结解问意")


def percentile(values: list[float], q: float) -> float:
    """The ``q`` quantile (0..1) by linear interpolation (pure)."""
    ordered = sorted(values)
    if not ordered:
        raise ValueError("no values")
    pos = (len(ordered) - 1) * q
    lo, hi = int(pos), min(int(pos) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


# ---- the source -------------------------------------------------------------------------------------------
@dataclass
class Feed:
    """Post k appears at ``published[k]``; the feed lists what has appeared, newest first."""

    base_url: str = ""
    published: dict[int, float] = field(default_factory=dict)
    texts: dict[int, tuple[str, str]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def publish(self, k: int, rng: random.Random) -> None:
        title = f"市图书馆第{k}号读者反映：{''.join(rng.choice(HAN) for _ in range(8))}"
        body = "。".join("".join(rng.choice(HAN) for _ in range(30)) for _ in range(8)) + f"。市图书馆回应第{k}号。"
        with self.lock:
            self.texts[k] = (title, body)
            self.published[k] = time.time()

    def url(self, k: int) -> str:
        return f"{self.base_url}/a/{k}.html"

    def feed(self) -> bytes:
        with self.lock:
            items = sorted(self.published.items(), key=lambda kv: -kv[1])[:50]
            entries = [FeedEntry(link=self.url(k), title=self.texts[k][0],
                                 published=format_datetime(datetime.fromtimestamp(at, UTC))) for k, at in items]
        built = datetime.fromtimestamp(items[0][1] if items else time.time(), UTC)
        return rss_document("青川读者之声", self.base_url, entries, built=built)

    def article(self, k: int) -> bytes | None:
        with self.lock:
            if k not in self.published:
                return None
            title, body = self.texts[k]
            when = datetime.fromtimestamp(self.published[k], UTC)
        return (f"<!DOCTYPE html><html lang=\"zh-CN\"><head><meta charset=\"utf-8\"><title>{escape(title)}</title>"
                f"</head><body><h1>{escape(title)}</h1><div class=\"info\">发布时间：{when:%Y-%m-%d %H:%M}</div>"
                f"<div class=\"content\"><p>{escape(body)}</p></div></body></html>").encode()


def serve_feed(feed: Feed) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body: bytes | None
            if self.path.startswith("/feed.xml"):
                body, ctype = feed.feed(), "application/rss+xml; charset=utf-8"
            elif m := re.fullmatch(r"/a/(\d+)\.html", self.path):
                body, ctype = feed.article(int(m.group(1))), "text/html; charset=utf-8"
            else:
                body, ctype = None, ""
            if body is None:
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    feed.base_url = f"http://127.0.0.1:{server.server_address[1]}"
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


# ---- the mail server --------------------------------------------------------------------------------------
@dataclass
class Inbox:
    received: list[tuple[float, EmailMessage]] = field(default_factory=list)
    cond: threading.Condition = field(default_factory=threading.Condition)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        msg = message_from_bytes(envelope.content, policy=policy.default)
        assert isinstance(msg, EmailMessage)
        with self.cond:
            self.received.append((time.time(), msg))
            self.cond.notify_all()
        return "250 OK"


def post_of(msg: EmailMessage) -> int | None:
    part = msg.get_body(preferencelist=("plain",))
    m = re.search(r"/a/(\d+)\.html", str(part.get_content()) if part is not None else "")
    return int(m.group(1)) if m else None


# ---- the run ----------------------------------------------------------------------------------------------
def write_config(folder: Path, feed_url: str) -> None:
    shutil.copytree(PROJECT_ROOT / "config", folder, dirs_exist_ok=True)
    for name in ("users.yaml", "login_attempts.yaml"):
        (folder / name).unlink(missing_ok=True)
    (folder / "sources.yaml").write_text(
        "sources:\n  - name: bench-feed\n    kind: feed\n    site: 青川读者之声\n"
        f"    start_urls: [\"{feed_url}\"]\n    interval_s: {CRAWL_INTERVAL_S}\n    max_items: 50\n",
        encoding="utf-8")
    (folder / "alerts.yaml").write_text(
        f"rules:\n  - name: 图书馆舆情\n    any: [图书馆]\n    recipients: [{RECIPIENT}]\n", encoding="utf-8")


def wait_for(proc: subprocess.Popen[str], log: Path, needle: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if log.exists() and needle in log.read_text(encoding="utf-8", errors="replace"):
            return
        if proc.poll() is not None:
            raise RuntimeError(f"yuqing run exited with {proc.returncode}; see {log}")
        time.sleep(0.2)
    raise RuntimeError(f"yuqing run did not log {needle!r} within {timeout:.0f} s; see {log}")


def stored_times(settings: Any, prefix: str, feed: Feed) -> dict[int, dict[str, float]]:
    """fetched (posts index), decided and sent (outbox) per post k, as epoch seconds."""
    out: dict[int, dict[str, float]] = {}
    es = settings.elasticsearch.model_copy(update={"index_prefix": prefix})
    with es_client(es) as client:
        client.indices.refresh(index=f"{prefix}-*")
        posts = client.search(index=POSTS.alias(prefix), size=1000, source_includes=["url", "fetched_at"],
                              query={"match_all": {}})["hits"]["hits"]
        by_id = {}
        for h in posts:
            m = re.search(r"/a/(\d+)\.html", h["_source"]["url"])
            if m:
                k = int(m.group(1))
                by_id[h["_id"]] = k
                out.setdefault(k, {})["fetched"] = datetime.fromisoformat(h["_source"]["fetched_at"]).timestamp()
        entries = client.search(index=OUTBOX.alias(prefix), size=1000, query={"match_all": {}},
                                source_includes=["subject_key", "decided_at", "sent_at"])["hits"]["hits"]
        for h in entries:
            pid = h["_source"]["subject_key"].removeprefix("post:")
            if pid in by_id:
                times = out.setdefault(by_id[pid], {})
                times["decided"] = datetime.fromisoformat(h["_source"]["decided_at"]).timestamp()
                if h["_source"].get("sent_at"):
                    times["sent"] = datetime.fromisoformat(h["_source"]["sent_at"]).timestamp()
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--n", type=int, default=24, help="posts to publish (at least 20)")
    ap.add_argument("--every", type=float, default=5.0, help="seconds between two posts")
    ap.add_argument("--tail", type=float, default=180.0, help="seconds to wait for the last mails")
    args = ap.parse_args()
    settings = load_settings()
    setup_logging(settings, "bench-freshness")
    rng = random.Random(20261130)
    feed = Feed()
    http = serve_feed(feed)
    inbox = Inbox()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        smtp_port = s.getsockname()[1]
    smtp = Controller(inbox, hostname="127.0.0.1", port=smtp_port)
    smtp.start()
    prefix = f"bench-fresh-{uuid.uuid4().hex[:6]}"
    work = Path(tempfile.mkdtemp(prefix="yuqing-freshness-"))
    write_config(work / "config", f"{feed.base_url}/feed.xml")
    env = {**os.environ, "YUQING_ELASTICSEARCH__INDEX_PREFIX": prefix, "YUQING_PATHS__CONFIG_DIR": str(work / "config"),
           "YUQING_PATHS__DATA_DIR": str(work / "data"), "YUQING_SMTP__HOST": "127.0.0.1",
           "YUQING_SMTP__PORT": str(smtp_port), "YUQING_SCHEDULE__CRAWL_INTERVAL_S": str(CRAWL_INTERVAL_S),
           "YUQING_CRAWL__AUTOTHROTTLE": "false", "YUQING_CRAWL__OBEY_ROBOTS": "false"}
    env.pop("YUQING_CONFIG", None)
    log = work / "data" / "log" / "yuqing.log"
    proc = subprocess.Popen([sys.executable, "-m", "yuqing.cli", "run"], cwd=PROJECT_ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, text=True)
    try:
        t_start = time.time()
        wait_for(proc, log, "outbox sender started", 120)
        print(f"service up in {time.time() - t_start:.1f} s (prefix {prefix}, log {log})", flush=True)
        for k in range(args.n):
            feed.publish(k, rng)
            time.sleep(args.every)
        deadline = time.time() + args.tail
        with inbox.cond:
            while len({post_of(m) for _, m in inbox.received}) < args.n and time.time() < deadline:
                inbox.cond.wait(timeout=1.0)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        smtp.stop()
        http.shutdown()

    arrived: dict[int, float] = {}
    for at, msg in inbox.received:
        got = post_of(msg)
        if got is not None and got not in arrived:
            arrived[got] = at
    repeats = len(inbox.received) - len(arrived)
    latencies = [arrived[k] - feed.published[k] for k in sorted(arrived)]
    stored = stored_times(settings, prefix, feed)
    with es_client(settings.elasticsearch) as client:
        client.indices.delete(index=f"{prefix}-*", ignore_unavailable=True)
        client.options(ignore_status=404).indices.delete_index_template(name=f"{prefix}-*")

    def stage(a: str, b: str) -> str:
        vals = []
        for k, t in stored.items():
            start = feed.published.get(k) if a == "published" else t.get(a)
            end = arrived.get(k) if b == "received" else t.get(b)
            if start is not None and end is not None:
                vals.append(end - start)
        return f"p50 {statistics.median(vals):.1f} s, max {max(vals):.1f} s" if vals else "n/a"

    print(f"posts published: {args.n} (one every {args.every:.0f} s); mails received: {len(arrived)} "
          f"(+{repeats} repeated)")
    for a, b in (("published", "fetched"), ("fetched", "decided"), ("decided", "sent"), ("sent", "received")):
        print(f"  {a:>9} → {b:<8} {stage(a, b)}")
    floor = [rng.uniform(0, CRAWL_INTERVAL_S) for _ in range(10_000)]
    print(f"baseline (ideal poller, {CRAWL_INTERVAL_S} s interval): p50 {percentile(floor, 0.5):.1f} s, "
          f"p95 {percentile(floor, 0.95):.1f} s")
    if len(arrived) < args.n:
        missing = sorted(set(feed.published) - set(arrived))
        print(f"missing mails for posts {missing}; see the service log {log}")
        print(f"RESULT freshness p95_s=inf goal={GOAL_P95_S:.0f} FAIL")
        return 1
    p50, p95 = percentile(latencies, 0.5), percentile(latencies, 0.95)
    print(f"published → mail received: p50 {p50:.1f} s, p95 {p95:.1f} s, max {max(latencies):.1f} s")
    ok = p95 <= GOAL_P95_S and repeats == 0
    print(f"RESULT freshness p95_s={p95:.1f} goal={GOAL_P95_S:.0f} {'PASS' if ok else 'FAIL'}")
    if ok:
        shutil.rmtree(work, ignore_errors=True)
    else:
        print(f"(the service's log is kept: {log})")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
