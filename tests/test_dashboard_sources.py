"""信源状态 page: every enabled source with its health; silent and failing sources are called out."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from elasticsearch import Elasticsearch
from streamlit.testing.v1 import AppTest

from dashboard.components import SESSION_KEY
from index.records import SourceRun
from index.source_health import write_runs
from tests.dashboard_users import session_for, write_users
from yuqing.settings import PROJECT_ROOT, Settings

APP = PROJECT_ROOT / "dashboard" / "app.py"
T0 = datetime(2026, 11, 27, 2, 0, tzinfo=UTC)


def runs(source: str, *specs: dict[str, object]) -> list[SourceRun]:
    return [SourceRun(source=source, kind="feed", started_at=T0 - timedelta(hours=i),
                      finished_at=T0 - timedelta(hours=i), **spec)
            for i, spec in enumerate(specs)]


def test_sources_page_flags_silent_and_failing(
    settings: Settings, es_client: Elasticsearch, monkeypatch: pytest.MonkeyPatch, config_dir: Path
) -> None:
    (config_dir / "sources.yaml").write_text(
        "sources:\n"
        + "".join(f"  - {{name: {n}, kind: feed, start_urls: ['http://e.cn/{n}.xml']}}\n"
                  for n in ("busy", "quiet", "mute", "broken", "new")),
        encoding="utf-8")
    prefix = settings.elasticsearch.index_prefix
    write_runs(es_client, prefix, [
        *runs("busy", {"found": 5, "new": 2}),
        *runs("quiet", {"found": 5, "new": 0}),
        *runs("mute", {}, {}, {}, {"found": 3, "new": 3}),
        *runs("broken", {"ok": False, "error": "crawl process exited with code -6"}, {"found": 1, "new": 1}),
    ])
    monkeypatch.delenv("YUQING_CONFIG", raising=False)
    monkeypatch.setenv("YUQING_ELASTICSEARCH__INDEX_PREFIX", prefix)
    monkeypatch.setenv("YUQING_PATHS__CONFIG_DIR", str(config_dir))
    monkeypatch.setenv("YUQING_PATHS__DATA_DIR", str(settings.paths.data_dir))
    write_users(config_dir)

    at = AppTest.from_file(str(APP))
    at.session_state[SESSION_KEY] = session_for("leader")
    at.run(timeout=60)
    at.switch_page("views/sources.py")
    at.run(timeout=60)
    assert not at.exception, [e.value for e in at.exception]

    assert at.title[0].value == "信源状态"
    assert at.error[0].value == "需要关注：mute（静默(无任何产出)）；broken（失败）"
    assert at.info[0].value.startswith("1 个信源尚未运行过：new。") and not at.success  # not "all is well"
    table = at.dataframe[0].value
    status = dict(zip(table["信源"], table["状态"], strict=True))
    assert status == {"busy": "正常", "quiet": "平静(无新内容)", "mute": "静默(无任何产出)", "broken": "失败",
                      "new": "未运行"}
    row = table.set_index("信源").loc["mute"]
    assert row["连续无产出"] == 3 and row["最近成功"] == "2026-11-27 07:00"  # Beijing time of the last success
    assert table.set_index("信源").loc["broken"]["最近错误"] == "crawl process exited with code -6"
