"""How long, on the real demo clock, until the demo's library event is flagged (risk level III or higher).

What `./run.sh up` does, minus the dashboard and the mail sink: the demo site (default ``demo.minute_s``: the
story's 300 minutes in 5 real minutes), `yuqing run --no-alerts` with the shipped demo sources and their intervals,
the classifier on (as configured), on a private index prefix that is removed afterwards. The clock starts when the
demo site starts; the time is when the events index first shows the event holding the library story's posts at
level III or higher. Prints the event's course and ends with
``RESULT demo_flag seconds=<s> goal=300 PASS|FAIL``.

Usage: ``nice -n 10 python bench/demo_flag.py [--minute-s 1.0] [--timeout-s 600]``
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from pathlib import Path

import yaml
from elasticsearch import helpers

from index.client import es_client
from index.events import EVENTS, get_events
from index.layout import POSTS
from yuqing.demo.corpus import RISING_STORY, load_corpus
from yuqing.settings import PROJECT_ROOT, load_settings

GOAL_S = 300.0


def _port(proc: subprocess.Popen[str]) -> int:
    assert proc.stdout is not None
    for line in proc.stdout:
        if line.startswith("PORT "):
            return int(line.split()[1])
    raise RuntimeError("the demo site did not report its port")


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--minute-s", type=float, default=1.0)
    ap.add_argument("--timeout-s", type=float, default=600.0)
    args = ap.parse_args()
    prefix = f"bench-demo-{uuid.uuid4().hex[:6]}"
    work = Path(tempfile.mkdtemp(prefix="demo-flag-"))
    config = work / "config"
    shutil.copytree(PROJECT_ROOT / "config", config)
    env = {**os.environ, "YUQING_ELASTICSEARCH__INDEX_PREFIX": prefix, "YUQING_PATHS__CONFIG_DIR": str(config),
           "YUQING_PATHS__DATA_DIR": str(work / "data"), "YUQING_DEMO__PORT": "0",
           "YUQING_DEMO__MINUTE_S": str(args.minute_s), "YUQING_PATHS__SHARED_DATA": str(work / "no-shared")}
    settings = load_settings(overrides={"elasticsearch": {"index_prefix": prefix}})
    library = {p.id for p in load_corpus() if p.story == RISING_STORY}
    started = time.monotonic()
    site = subprocess.Popen([sys.executable, "-m", "yuqing.demo"], cwd=PROJECT_ROOT, env=env, stdout=subprocess.PIPE,
                            text=True)
    port = _port(site)
    data = yaml.safe_load((config / "sources.yaml").read_text(encoding="utf-8"))
    demo = [s for s in data["sources"] if s["name"].startswith("demo-")]
    text = yaml.safe_dump({"sources": demo}, allow_unicode=True).replace(":8601/", f":{port}/")
    (config / "sources.yaml").write_text(text, encoding="utf-8")
    run = subprocess.Popen([sys.executable, "-m", "yuqing.cli", "run", "--no-alerts"], cwd=PROJECT_ROOT, env=env,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    course: list[tuple[int, int, str, float]] = []
    flagged: float | None = None
    try:
        with es_client(settings.elasticsearch) as client:
            posts, events = POSTS.alias(prefix), EVENTS.alias(prefix)
            while time.monotonic() - started < args.timeout_s and run.poll() is None:
                time.sleep(2)
                if not client.indices.exists_alias(name=events):
                    continue
                client.indices.refresh(index=posts)
                counts: Counter[str] = Counter()
                for hit in helpers.scan(client, index=posts, query={"query": {"exists": {"field": "event_id"}},
                                                                    "_source": ["url", "event_id"]}):
                    ident = hit["_source"]["url"].rstrip("/").rsplit("/", 1)[-1].removesuffix(".html")
                    if ident in library:
                        counts[hit["_source"]["event_id"]] += 1
                if not counts:
                    continue
                eid, n = counts.most_common(1)[0]
                record = get_events(client, events, [eid]).get(eid)
                if record is None:
                    continue
                elapsed = time.monotonic() - started
                if not course or course[-1][1:3] != (n, record.risk_level):
                    course.append((round(elapsed), n, record.risk_level, record.heat))
                    print(f"{elapsed:6.0f} s  library posts in the event {n:3d}  level {record.risk_level}  "
                          f"heat {record.heat:.1f}", flush=True)
                if record.risk_level in ("I", "II", "III"):
                    flagged = elapsed
                    break
    finally:
        os.killpg(run.pid, signal.SIGTERM)
        run.wait(timeout=60)
        site.terminate()
        site.wait(timeout=10)
        shutil.rmtree(work, ignore_errors=True)
        with es_client(settings.elasticsearch) as client:  # after the service stopped writing
            client.indices.delete(index=f"{prefix}-*", ignore_unavailable=True)
            client.options(ignore_status=404).indices.delete_index_template(name=f"{prefix}-*")
    seconds = flagged if flagged is not None else float("inf")
    verdict = "PASS" if seconds <= GOAL_S else "FAIL"
    print(f"RESULT demo_flag seconds={seconds:.0f} goal={GOAL_S:.0f} {verdict}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
