"""`yuqing up`: the whole local service starts from a plain clone (no shared data), crawls the demo site, serves
the dashboard, stops cleanly; each run replays the demo from its beginning."""

from __future__ import annotations

import os
import re
import select
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import yaml
from elasticsearch import Elasticsearch

from dashboard.accounts import load_users
from dashboard.auth import verify_password
from events.config import TextConfig
from index.events import EVENTS, get_events
from index.layout import CRAWL_STATE, POSTS, setup
from index.outbox import OUTBOX
from index.tickets import TICKETS
from ingest.judgements import JudgementService
from response.service import TicketService
from response.tickets import Ticket
from tests.conftest import seed_posts
from yuqing.demo.reset import forget_earlier_replay
from yuqing.demo.tickets import relic_post_id
from yuqing.models import Post
from yuqing.service import _shared_data_line
from yuqing.settings import PROJECT_ROOT, Settings


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def get(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:
            return int(resp.status)
    except OSError:
        return 0


def test_up_runs_everything_and_stops_on_sigterm(
    settings: Settings, es_client: Elasticsearch, tmp_path: Path
) -> None:
    dash, demo, smtp = free_port(), free_port(), free_port()
    missing = tmp_path / "no-shared-data"  # a plain clone: no ../shared beside it
    env = {
        "PATH": "/usr/bin:/bin", "HOME": str(tmp_path),
        "YUQING_ELASTICSEARCH__INDEX_PREFIX": settings.elasticsearch.index_prefix,
        "YUQING_PATHS__DATA_DIR": str(tmp_path / "data"),
        "YUQING_PATHS__SHARED_DATA": str(missing),
        "YUQING_DASHBOARD__PORT": str(dash), "YUQING_DEMO__PORT": str(demo), "YUQING_SMTP__PORT": str(smtp),
        "YUQING_DEMO__MINUTE_S": "0.01",  # the story's five hours in three seconds
        "YUQING_NLP__ENABLED": "false", "YUQING_SCHEDULE__CRAWL_INTERVAL_S": "3",
    }
    config = tmp_path / "config"
    config.mkdir()
    (config / "yuqing.yaml").write_text((PROJECT_ROOT / "config" / "yuqing.yaml").read_text(encoding="utf-8"))
    for name in ("alerts.yaml", "extraction.yaml", "taxonomy.yaml", "events.yaml", "keyword_groups.yaml"):
        src = PROJECT_ROOT / "config" / name
        if src.exists():
            (config / name).write_text(src.read_text(encoding="utf-8"), encoding="utf-8")
    # Three of the shipped demo sources (all of them take longer to crawl one after the other), on the test's port.
    shipped = yaml.safe_load((PROJECT_ROOT / "config" / "sources.yaml").read_text(encoding="utf-8"))
    chosen = [s for s in shipped["sources"] if s["name"] in ("demo-weibo", "demo-bureau-wechat", "demo-board")]
    for source in chosen:
        source["interval_s"] = 3
    (config / "sources.yaml").write_text(
        yaml.safe_dump({"sources": chosen}, allow_unicode=True).replace(":8601/", f":{demo}/"), encoding="utf-8")
    env["YUQING_PATHS__CONFIG_DIR"] = str(config)
    log = tmp_path / "up.log"  # a file, not a pipe: nobody reads a pipe while the crawls write to it
    with log.open("w") as sink:
        proc = subprocess.Popen([sys.executable, "-m", "yuqing.cli", "up"], cwd=PROJECT_ROOT, env=env,
                                stdout=sink, stderr=subprocess.STDOUT)
    alias = POSTS.alias(settings.elasticsearch.index_prefix)
    # The rising story's big repost and the bureau's explanation, both published after the start.
    wanted = {f"http://127.0.0.1:{demo}/weibo/detail/w-lib-bigv2", f"http://127.0.0.1:{demo}/wechat/s/c-lib-01.html"}
    try:
        deadline = time.monotonic() + 150
        found: set[str] = set()
        relic: list[Ticket] = []
        while time.monotonic() < deadline and proc.poll() is None:
            es_client.indices.refresh(index=alias)
            hits = es_client.search(index=alias, size=20, query={"terms": {"canonical_url": sorted(wanted)}})
            found = {h["_source"]["canonical_url"] for h in hits["hits"]["hits"]}
            if es_client.indices.exists_alias(name=TICKETS.alias(settings.elasticsearch.index_prefix)):
                relic = TicketService(es_client, settings.elasticsearch.index_prefix).list(text="魁星阁")[1]
            if found == wanted and relic and get(f"http://127.0.0.1:{dash}/_stcore/health") == 200:
                break
            time.sleep(0.5)
        feed_status = get(f"http://127.0.0.1:{demo}/news/feed.xml")
    finally:
        proc.send_signal(signal.SIGTERM)  # `up` stops its children (a kill would leave them running)
        try:
            proc.wait(timeout=90)
        except subprocess.TimeoutExpired:
            proc.kill()
            raise
    out = log.read_text(encoding="utf-8")
    assert found == wanted, f"the demo site was not crawled: {out[-3000:]}"
    # the demo's 处置单 with 领导批示, opened on the 魁星阁 event once the board was crawled and clustered
    assert len(relic) == 1 and [i.leader for i in relic[0].instructions] == ["周副局长", "李局长"], out[-3000:]
    member = es_client.get(index=alias, id=relic_post_id(f"http://127.0.0.1:{demo}/"))["_source"]
    record = get_events(es_client, EVENTS.alias(settings.elasticsearch.index_prefix), [relic[0].subject.id])
    assert member["event_id"] in (relic[0].subject.id, record[relic[0].subject.id].merged_into)  # (merged since)
    assert feed_status == 200
    assert proc.returncode == 0, out[-3000:]
    assert "yuqing is up" in out and "scheduler stopped" in out and "the story rises over the next 3 seconds" in out
    assert out.count("shared data") == 1 and f"{missing} not found, so it did not join" in out
    password = re.findall(r"dashboard login: admin / (\S+)", out)  # the demo admin's one-time password
    assert len(password) == 1 and out.count(password[0]) == 1
    assert verify_password(password[0], load_users(config / "users.yaml").users[0].password_hash)
    assert get(f"http://127.0.0.1:{dash}/_stcore/health") == 0  # the dashboard went down with it
    # Streamlit's own output is in a file beside the log, not repeated in `up`'s (it prints the URL once).
    assert "You can now view" not in out and out.count(f"http://127.0.0.1:{dash}") == 1
    assert "You can now view your Streamlit app" in (tmp_path / "data" / "log" / "dashboard.out").read_text()


def test_the_shared_data_line_says_whether_it_joined(base_settings: Settings, shared_data: Path,
                                                      tmp_path: Path) -> None:
    def line(**demo: object) -> str:
        paths = base_settings.paths.model_copy(update={"shared_data": demo.pop("folder", shared_data)})
        return _shared_data_line(base_settings.model_copy(
            update={"paths": paths, "demo": base_settings.demo.model_copy(update=demo)}))

    assert line() == f"shared data: the real pages and board messages of {shared_data} join the demo replay"
    assert "did not join" in line(folder=tmp_path) and str(tmp_path) in line(folder=tmp_path)
    assert "join_shared is false" in line(join_shared=False)


def test_a_new_replay_forgets_what_the_last_one_crawled(settings: Settings, es_client: Elasticsearch) -> None:
    prefix = settings.elasticsearch.index_prefix
    now = datetime.now(ZoneInfo("Asia/Shanghai"))
    demo_post = Post(url="http://127.0.0.1:8601/news/a/n-lib-01.html", title="市图书馆突然闭馆", content="读者扑空",
                     source="demo-news", fetched_at=now)
    other = Post(url="http://news.example.cn/a/1.html", title="别的新闻", content="正文", source="other",
                 fetched_at=now)
    seed_posts(es_client, settings, [demo_post, other])
    setup(es_client, settings.elasticsearch, [OUTBOX])
    judgements = JudgementService.ready(es_client, settings.elasticsearch, [])
    for post in (demo_post, other):
        es_client.index(index=CRAWL_STATE.alias(prefix), id=post.doc_id,
                        document={"url": post.canonical_url, "source": post.source, "content_hash": "x"})
        es_client.index(index=OUTBOX.alias(prefix), id=f"rule-{post.doc_id}",
                        document={"rule": "图书馆舆情", "subject_key": f"post:{post.doc_id}", "status": "sent"})
        judgements.judge(post.doc_id, relevant=False, topic=None, by="宣传小王（press）", at=now)
    es_client.indices.refresh(index=f"{prefix}-*")

    assert forget_earlier_replay(es_client, prefix, "http://127.0.0.1:8601/", TextConfig()) == 1

    for spec, field in ((POSTS, "canonical_url"), (CRAWL_STATE, "url")):
        left = es_client.search(index=spec.alias(prefix), query={"match_all": {}})["hits"]["hits"]
        assert [h["_source"][field] for h in left] == [other.canonical_url]
    alerts = es_client.search(index=OUTBOX.alias(prefix), query={"match_all": {}})["hits"]["hits"]
    assert [h["_source"]["subject_key"] for h in alerts] == [f"post:{other.doc_id}"]
    assert [r.post_id for r in judgements.scan()] == [other.doc_id]  # the replay's posts are judged afresh
    assert forget_earlier_replay(es_client, prefix, "http://127.0.0.1:8601/", TextConfig()) == 0


CHILD = """
import sys
from pathlib import Path
from dashboard.cli import streamlit_command
from yuqing.service import start_child
proc = start_child("dashboard", streamlit_command("127.0.0.1", int(sys.argv[1])), dict(__import__("os").environ),
                   Path(sys.argv[2]))
print(proc.popen.pid, flush=True)
sys.exit(proc.popen.wait())
"""


def test_the_dashboard_stops_on_sigterm_after_ups_output_is_gone(tmp_path: Path) -> None:
    # `up` started from a pipe (a terminal that closed, `| head`): the pipe's reader is gone when `up` stops its
    # children. A Streamlit server writing to that pipe loses the SIGTERM ("Stopping..." raises BrokenPipeError in
    # its signal handler); `up` sends its standard output to a file instead, so it stops at once. Its log lines
    # (standard error) still reach `up`'s output while someone reads it.
    port = free_port()
    out = tmp_path / "log" / "dashboard.out"
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "YUQING_PATHS__DATA_DIR": str(tmp_path / "data")}
    up = subprocess.Popen([sys.executable, "-c", CHILD, str(port), str(out)], cwd=PROJECT_ROOT, env=env,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    assert up.stdout is not None
    seen = b""
    try:
        deadline = time.monotonic() + 120
        while b"dashboard warm-up" not in seen or get(f"http://127.0.0.1:{port}/_stcore/health") != 200:
            assert up.poll() is None, f"the dashboard exited: {seen.decode(errors='replace')}"
            assert time.monotonic() < deadline, f"the dashboard did not come up: {seen.decode(errors='replace')}"
            if select.select([up.stdout], [], [], 0.5)[0]:
                seen += os.read(up.stdout.fileno(), 65536)
        dash_pid = int(seen.split(b"\n", 1)[0])
        up.stdout.close()  # nobody reads `up`'s output any more
        started = time.monotonic()
        os.kill(dash_pid, signal.SIGTERM)
        code = up.wait(timeout=20)  # the child's own exit, relayed
    finally:
        if up.poll() is None:
            up.kill()
            subprocess.run(["pkill", "-KILL", "-f", f"server.port {port}"], check=False)
    assert code == 0 and time.monotonic() - started < 15
    text = out.read_text(encoding="utf-8")
    assert "You can now view your Streamlit app" in text and "Stopping..." in text
    assert b"You can now view" not in seen  # the banner is in the file only
