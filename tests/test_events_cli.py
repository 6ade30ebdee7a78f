"""``yuqing events assign`` as a user runs it: JSON lines in a subprocess, no Elasticsearch."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from datetime import timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from events.assign import InputError, parse_line
from events.cluster import event_id_for
from yuqing.settings import PROJECT_ROOT

LINES = [
    {"id": "m1", "title": "市图书馆突然闭馆装修", "text": "市图书馆贴出通知，闭馆装修三个月，借阅暂停。",
     "published_at": "2024-05-06T08:00:00+08:00", "likes": 3, "dislikes": 0},
    {"id": "m2", "title": "图书馆闭馆三个月，读者不满", "text": "市图书馆闭馆装修三个月，自习的学生无处可去。",
     "published_at": "2024-05-06T09:30:00+08:00", "likes": 12, "dislikes": 1},
    {"id": "m3", "title": "万达广场KTV深夜噪音扰民", "text": "KTV营业到凌晨三点，噪音扰民。",
     "published_at": "2024-05-06T10:00:00", "likes": 0, "dislikes": 0},
    {"id": 4, "title": "市图书馆闭馆装修引发投诉", "text": "读者投诉市图书馆闭馆装修时间太长。",
     "published_at": "2024-05-06T11:00:00+08:00"},
]


def run_assign(stdin: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT)}
    return subprocess.run(
        [sys.executable, "-m", "yuqing.cli", "events", "assign", *args],
        input=stdin, capture_output=True, text=True, cwd=PROJECT_ROOT, env=env, timeout=120,
    )


def test_assign_writes_one_line_per_post_with_event_heat_and_level(tmp_path: Path) -> None:
    events_out = tmp_path / "events.jsonl"
    stdin = "\n".join(json.dumps(x, ensure_ascii=False) for x in LINES) + "\n\n"
    proc = run_assign(stdin, "--events-out", str(events_out))
    assert proc.returncode == 0, proc.stderr
    out = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [o["id"] for o in out] == ["m1", "m2", "m3", "4"]
    assert all(set(o) == {"id", "event_id", "heat", "risk_level"} for o in out)
    assert out[0]["event_id"] == out[1]["event_id"] == out[3]["event_id"] == event_id_for("m1")
    assert out[2]["event_id"] == event_id_for("m3")
    assert out[1]["heat"] > out[0]["heat"] > 0 and all(o["risk_level"] in ("I", "II", "III", "IV") for o in out)
    summaries = {s["event_id"]: s for s in map(json.loads, events_out.read_text("utf-8").splitlines())}
    lib = summaries[event_id_for("m1")]
    assert lib["count"] == 3 and lib["first_post"]["id"] == "m1" and lib["engagement"]["likes"] == 15
    assert lib["topic"] == "公共文化设施建设和使用" and lib["unit"] == "公共服务科"  # taxonomy rules
    assert lib["relevance_share"] == 1.0 and "图书馆闭馆" in lib["keyword_groups"]
    # same input, same output: deterministic across processes (string hashing differs per process)
    again = run_assign(stdin)
    assert again.stdout == proc.stdout


def test_a_bad_line_is_refused_with_its_line_number() -> None:
    good = json.dumps(LINES[0], ensure_ascii=False)
    proc = run_assign(f"{good}\n{{not json\n{good}\n")
    assert proc.returncode == 2
    assert "line 2: not valid JSON" in proc.stderr, proc.stderr
    assert len(proc.stdout.splitlines()) == 1  # the good line before it was written
    tz = ZoneInfo("Asia/Shanghai")
    for bad, why in [
        ({"id": "x", "title": "t"}, "line 7: missing field(s) published_at"),
        ({**LINES[1], "likes": -1}, "line 7: 'likes' must be a non-negative integer"),
        ({**LINES[1], "published_at": "yesterday"}, "line 7: 'published_at' is not an ISO 8601 time"),
        ({**LINES[1], "sentiment": "angry"}, "line 7: 'sentiment' must be one of"),
        ({**LINES[1], "own": "yes"}, "line 7: 'own' must be true or false"),
        ({"id": "x", "published_at": "2024-05-06T08:00:00"}, "line 7: a post needs a title or a text"),
        ([1, 2], "line 7: expected a JSON object"),
    ]:
        with pytest.raises(InputError, match=re.escape(why)):
            parse_line(json.dumps(bad, ensure_ascii=False), 7, tz)
    assert parse_line("   ", 8, tz) is None
    naive = parse_line(json.dumps(LINES[2], ensure_ascii=False), 9, tz)
    assert naive is not None and naive.published_at.utcoffset() == timedelta(hours=8) and not naive.own
    own = parse_line(json.dumps({**LINES[2], "own": True}, ensure_ascii=False), 10, tz)
    assert own is not None and own.own
