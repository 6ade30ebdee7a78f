"""Settings: YAML + environment, defaults in one place, clear errors naming file and field."""

from __future__ import annotations

from pathlib import Path

import pytest

from yuqing.cli import main
from yuqing.errors import ConfigError
from yuqing.settings import PROJECT_ROOT, load_settings
from yuqing.sources import load_sources


def test_project_config_loads_with_environment_override(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("YUQING_ELASTICSEARCH__HOSTS", '["https://es1:9200","https://es2:9200"]')
    monkeypatch.setenv("YUQING_SMTP__PASSWORD", "s3cret")
    s = load_settings(PROJECT_ROOT / "config" / "yuqing.yaml")
    assert s.elasticsearch.hosts == ["https://es1:9200", "https://es2:9200"]
    assert s.smtp.password is not None and s.smtp.password.get_secret_value() == "s3cret"
    assert "s3cret" not in repr(s)
    assert s.paths.config_dir == PROJECT_ROOT / "config"  # relative paths resolved against the project root
    assert s.timezone == "Asia/Shanghai"


def test_malformed_yaml_names_the_file_and_line(tmp_path: Path) -> None:
    cfg = tmp_path / "config" / "yuqing.yaml"
    cfg.parent.mkdir()
    cfg.write_text("elasticsearch:\n  hosts: [oops\n", encoding="utf-8")
    with pytest.raises(ConfigError) as err:
        load_settings(cfg)
    assert str(cfg) in str(err.value) and "line" in str(err.value)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ("elasticsearch:\n  shards: zero\n", "elasticsearch.shards"),
        ("smtp:\n  port: 70000\n", "smtp.port"),
        ("elasticsearch:\n  username: elastic\n", "elasticsearch"),
        ("schedule:\n  crawl_every: 5\n", "schedule.crawl_every"),
        ("timezone: Mars/Olympus\n", "timezone"),
    ],
)
def test_bad_value_names_the_field(tmp_path: Path, body: str, field: str) -> None:
    cfg = tmp_path / "yuqing.yaml"
    cfg.write_text(body, encoding="utf-8")
    with pytest.raises(ConfigError) as err:
        load_settings(cfg)
    assert err.value.field == field
    assert str(cfg) in str(err.value)


def test_bad_environment_value_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("YUQING_DASHBOARD__PORT", "not-a-port")
    with pytest.raises(ConfigError) as err:
        load_settings(PROJECT_ROOT / "config" / "yuqing.yaml")
    assert "YUQING_DASHBOARD__PORT" in str(err.value)


def test_missing_smtp_host_refuses_to_start_alerts(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = tmp_path / "config" / "yuqing.yaml"
    cfg.parent.mkdir()
    cfg.write_text("smtp:\n  host: null\n", encoding="utf-8")
    s = load_settings(cfg)
    with pytest.raises(ConfigError, match=r"smtp\.host"):
        s.require_smtp()
    assert main(["-c", str(cfg), "run"]) == 2
    assert "smtp.host" in capsys.readouterr().err


def test_sources_file_errors_name_the_field(tmp_path: Path) -> None:
    path = tmp_path / "sources.yaml"
    path.write_text("sources:\n  - name: a\n    kind: feed\n    start_urls: [not-a-url]\n", encoding="utf-8")
    with pytest.raises(ConfigError) as err:
        load_sources(path)
    assert err.value.field == "sources[0].start_urls[0]" and str(path) in str(err.value)
    path.write_text("sources:\n  - {name: a, kind: feed, start_urls: ['http://x/f']}\n"
                    "  - {name: a, kind: feed, start_urls: ['http://y/f']}\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="duplicate source name"):
        load_sources(path)
    # The shipped file: the demo site's sources first and the only ones enabled (the others are disabled examples).
    shipped = load_sources(PROJECT_ROOT / "config" / "sources.yaml")
    assert [s.name for s in shipped.enabled()] == [s.name for s in shipped.sources[:7]]
    assert all(s.name.startswith("demo-") for s in shipped.enabled()) and len(shipped.enabled()) == 7
