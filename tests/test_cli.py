"""The `yuqing` command line: sub-commands wired to the components."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from index.es_server import LocalElasticsearch
from index.layout import ALL_SPECS
from yuqing.cli import build_parser, main


def test_every_component_registers_its_commands() -> None:
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    commands = set(sub.choices)
    assert {"es", "setup", "crawl", "ingest", "extract", "alert", "report", "dashboard", "users", "run", "up",
            "nlp", "tickets", "foia", "events"} <= commands


def test_es_status_and_setup(es_server: LocalElasticsearch, capsys: pytest.CaptureFixture[str],
                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("YUQING_ELASTICSEARCH__INDEX_PREFIX", "yuqing-test-cli")
    assert main(["es", "status"]) == 0
    assert capsys.readouterr().out.strip() in (f"{es_server.url}: green", f"{es_server.url}: yellow")
    assert main(["setup"]) == 0
    out = capsys.readouterr().out
    assert "yuqing-test-cli-posts -> yuqing-test-cli-posts-v2" in out
    assert {f"{spec.alias('yuqing-test-cli')} ->" for spec in ALL_SPECS} <= {line[: line.index("->") + 2]
                                                                             for line in out.splitlines()}
    assert main(["setup"]) == 0  # idempotent
    from elasticsearch import Elasticsearch

    Elasticsearch(es_server.url).indices.delete(index="yuqing-test-cli-*")


def test_extract_prints_the_article(shared_data: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["extract", str(shared_data / "html" / "gne" / "tests" / "people" / "1.html")]) == 0
    article = json.loads(capsys.readouterr().out)
    assert article["title"] == "女儿出嫁，郑板桥画了几笔兰花当嫁妆"
    assert "东方朔" in article["content"]


def test_bad_config_file_exits_2_with_the_file_named(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = tmp_path / "bad.yaml"
    cfg.write_text("smtp: [1, 2\n", encoding="utf-8")
    assert main(["-c", str(cfg), "es", "status"]) == 2
    assert str(cfg) in capsys.readouterr().err


@pytest.mark.parametrize("command", [["sources"], ["tickets", "list"]])
def test_a_command_finding_no_elasticsearch_says_so_in_one_line(
    command: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import socket

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv("YUQING_ELASTICSEARCH__HOSTS", f'["http://127.0.0.1:{port}"]')
    monkeypatch.setenv("YUQING_PATHS__DATA_DIR", str(tmp_path / "data"))
    assert main(command) == 2
    err = capsys.readouterr().err
    line = next(x for x in err.splitlines() if x.startswith("yuqing: "))
    assert f"elasticsearch at http://127.0.0.1:{port}: no node answered" in line and "yuqing es start" in line
    assert "Traceback" not in err


def test_any_other_failure_keeps_its_traceback(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*_: object) -> int:
        raise RuntimeError("a bug")

    monkeypatch.setattr("yuqing.cli._setup_command", broken)
    with pytest.raises(RuntimeError, match="a bug"):
        main(["setup"])
