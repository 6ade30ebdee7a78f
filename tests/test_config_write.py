"""Config files written back by the settings forms: validated with the start-up models, replaced atomically."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import yaml

from alerts.rules import AlertRulesFile, load_rules
from yuqing.config_files import read_yaml
from yuqing.config_write import ABSENT, ConfigConflictError, file_digest, write_config
from yuqing.errors import ConfigError
from yuqing.settings import PROJECT_ROOT
from yuqing.sources import SourcesFile, load_sources


def _sources(config_dir: Path) -> tuple[Path, dict]:
    path = config_dir / "sources.yaml"
    return path, read_yaml(path)


def test_valid_edit_is_written_with_the_header_kept(config_dir: Path) -> None:
    path, data = _sources(config_dir)
    header = path.read_text(encoding="utf-8").split("sources:")[0]
    data["sources"].append({"name": "市文旅局官网", "kind": "feed", "site": "市文化广电旅游局",
                            "start_urls": ["https://wlj.example.gov.cn/rss.xml"]})
    os.chmod(path, 0o640)

    model = write_config(path, data, SourcesFile, check=load_sources)

    assert [s.name for s in model.sources][-1] == "市文旅局官网"
    text = path.read_text(encoding="utf-8")
    assert text.startswith(header) and "市文旅局官网" in text  # documentation kept, Chinese readable
    assert [s.name for s in load_sources(path).sources] == [s["name"] for s in data["sources"]]
    assert stat.S_IMODE(path.stat().st_mode) == 0o640
    assert not list(config_dir.glob(".sources.yaml.*.tmp"))


def test_bad_value_is_refused_with_the_field_named_and_the_file_untouched(config_dir: Path) -> None:
    path, data = _sources(config_dir)
    before = path.read_bytes()
    data["sources"][1]["kind"] = "telegram"

    with pytest.raises(ConfigError) as err:
        write_config(path, data, SourcesFile, check=load_sources)

    assert err.value.field == "sources[1].kind" and err.value.file == str(path)
    assert path.read_bytes() == before


def test_start_up_checks_beyond_the_model_apply_and_name_the_real_file(config_dir: Path) -> None:
    path, data = _sources(config_dir)
    before = path.read_bytes()
    data["sources"].append(dict(data["sources"][0]))  # duplicate name: only load_sources refuses it

    with pytest.raises(ConfigError) as err:
        write_config(path, data, SourcesFile, check=load_sources)

    assert err.value.file == str(path) and err.value.field == f"sources[{len(data['sources']) - 1}].name"
    assert "duplicate source name" in str(err.value) and ".tmp" not in str(err.value)
    assert path.read_bytes() == before
    assert not list(config_dir.glob(".sources.yaml.*.tmp"))


def test_alert_recipients_are_checked_like_at_start_up(config_dir: Path) -> None:
    path = config_dir / "alerts.yaml"
    data = read_yaml(path)
    data["recipients"]["leaders"].append("not-an-address")
    with pytest.raises(ConfigError) as err:
        write_config(path, data, AlertRulesFile, check=load_rules)
    assert err.value.field == "recipients" and "not-an-address" in str(err.value)

    data = read_yaml(path)
    data["rules"][1]["recipients"] = ["nobody-group"]  # an unknown group: refused by load_rules, not the model
    with pytest.raises(ConfigError, match="nobody-group"):
        write_config(path, data, AlertRulesFile, check=load_rules)

    data = read_yaml(path)
    data["recipients"]["press_office"].append("duty@culture.example.gov.cn")
    write_config(path, data, AlertRulesFile, check=load_rules)
    assert "duty@culture.example.gov.cn" in load_rules(path)[0].recipients


def test_someone_elses_newer_edit_is_not_overwritten(config_dir: Path) -> None:
    path, data = _sources(config_dir)
    seen = file_digest(path)
    other = dict(data, sources=data["sources"][:1])
    write_config(path, other, SourcesFile, expected_digest=seen)  # the other editor saves first

    with pytest.raises(ConfigConflictError):
        write_config(path, data, SourcesFile, expected_digest=seen)
    assert len(load_sources(path).sources) == 1

    new = config_dir / "new.yaml"
    write_config(new, {"sources": []}, SourcesFile, expected_digest=ABSENT)
    with pytest.raises(ConfigConflictError):
        write_config(new, {"sources": []}, SourcesFile, expected_digest=ABSENT)


CRASH_BEFORE_REPLACE = textwrap.dedent("""
    import os, sys
    from pathlib import Path
    import yuqing.config_write as cw
    from yuqing.sources import SourcesFile

    def crash(src, dst):  # the process dies after the temp file is complete, before the swap
        os._exit(9)

    cw.os.replace = crash
    cw.write_config(Path(sys.argv[1]), {"sources": []}, SourcesFile)
""")


def test_crash_between_write_and_replace_leaves_the_old_file_intact(config_dir: Path) -> None:
    path, data = _sources(config_dir)
    before = path.read_bytes()

    proc = subprocess.run([sys.executable, "-c", CRASH_BEFORE_REPLACE, str(path)], cwd=PROJECT_ROOT,
                          capture_output=True, text=True, timeout=60)

    assert proc.returncode == 9, proc.stderr
    assert path.read_bytes() == before
    leftovers = list(config_dir.glob(".sources.yaml.*.tmp"))
    assert len(leftovers) == 1 and yaml.safe_load(leftovers[0].read_text()) == {"sources": []}
    assert load_sources(path).sources  # start-up still reads the old file

    write_config(path, data, SourcesFile, check=load_sources)  # the next write clears the leftover
    assert not list(config_dir.glob(".sources.yaml.*.tmp"))
