"""`yuqing up`: the whole local service starts, crawls the demo source, serves the dashboard, stops cleanly."""

from __future__ import annotations

import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from elasticsearch import Elasticsearch

from dashboard.accounts import load_users
from dashboard.auth import verify_password
from index.layout import POSTS
from yuqing.cli import main
from yuqing.demo import DemoFeed, article_pages
from yuqing.settings import PROJECT_ROOT, Settings


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_demo_feed_grows_over_time(shared_data: Path) -> None:
    pages = article_pages(shared_data / "html" / "gne")
    assert len(pages) >= 50 and all(p.startswith("tests/") for p, _ in pages)
    feed = DemoFeed(pages, per_step=3, step_s=60, start=1000.0)
    assert [feed.visible(t) for t in (1000, 1059, 1060, 1000 + 60 * 100)] == [3, 3, 6, len(pages)]
    doc = feed.document("http://demo", 1061).decode()
    assert doc.count("<item>") == 6 and "http://demo/pages/tests/" in doc


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
    env = {
        "PATH": "/usr/bin:/bin", "HOME": str(tmp_path),
        "YUQING_ELASTICSEARCH__INDEX_PREFIX": settings.elasticsearch.index_prefix,
        "YUQING_PATHS__DATA_DIR": str(tmp_path / "data"),
        "YUQING_PATHS__SHARED_DATA": str(settings.paths.shared_data),
        "YUQING_DASHBOARD__PORT": str(dash), "YUQING_DEMO__PORT": str(demo), "YUQING_SMTP__PORT": str(smtp),
        "YUQING_NLP__ENABLED": "false", "YUQING_SCHEDULE__CRAWL_INTERVAL_S": "3",
    }
    config = tmp_path / "config"
    config.mkdir()
    (config / "yuqing.yaml").write_text((PROJECT_ROOT / "config" / "yuqing.yaml").read_text(encoding="utf-8"))
    for name in ("alerts.yaml", "extraction.yaml", "taxonomy.yaml"):
        src = PROJECT_ROOT / "config" / name
        if src.exists():
            (config / name).write_text(src.read_text(encoding="utf-8"), encoding="utf-8")
    (config / "sources.yaml").write_text(
        f"sources:\n  - {{name: demo-news, kind: feed, start_urls: ['http://127.0.0.1:{demo}/feed.xml']}}\n",
        encoding="utf-8")
    env["YUQING_PATHS__CONFIG_DIR"] = str(config)
    proc = subprocess.Popen([sys.executable, "-m", "yuqing.cli", "up"], cwd=PROJECT_ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    alias = POSTS.alias(settings.elasticsearch.index_prefix)
    try:
        deadline = time.monotonic() + 150
        indexed = 0
        while time.monotonic() < deadline:
            es_client.indices.refresh(index=alias)
            indexed = int(es_client.count(index=alias)["count"])
            if indexed >= 3 and get(f"http://127.0.0.1:{dash}/_stcore/health") == 200:
                break
            assert proc.poll() is None, proc.communicate()[0][-3000:]
            time.sleep(0.5)
        assert indexed >= 3, "the demo source was not crawled"
        assert get(f"http://127.0.0.1:{demo}/feed.xml") == 200
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=90)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, out[-3000:]
    assert "yuqing is up" in out and "scheduler stopped" in out
    password = re.findall(r"dashboard login: admin / (\S+)", out)  # the demo admin's one-time password
    assert len(password) == 1 and out.count(password[0]) == 1
    assert verify_password(password[0], load_users(config / "users.yaml").users[0].password_hash)
    assert get(f"http://127.0.0.1:{dash}/_stcore/health") == 0  # the dashboard went down with it


def test_up_without_the_shared_data_says_what_is_missing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("YUQING_PATHS__SHARED_DATA", str(tmp_path / "nowhere"))
    assert main(["up"]) == 2
    err = capsys.readouterr().err
    assert "paths.shared_data" in err and str(tmp_path / "nowhere") in err
