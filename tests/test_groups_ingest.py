"""专题 keyword groups end to end: matched on ingest and stored on the posts, evaluated on demand against the index
(``yuqing events groups``, ``--apply`` after an expression changed), and a bad expression refused at start-up naming
the file and the group."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from elasticsearch import Elasticsearch

from index.layout import POSTS
from index.search import PostQuery, build_query
from ingest.service import IngestService, standard_stages
from ingest.spool import Spool
from yuqing.cli import main
from yuqing.errors import ConfigError
from yuqing.models import Post
from yuqing.service import post_crawl_jobs
from yuqing.settings import Settings

TZ = ZoneInfo("Asia/Shanghai")
TEXTS = {
    "closed": ("市图书馆突然闭馆", "青川市图书馆今天闭馆，没有通知。"),
    "hiring": ("图书馆闭馆期间招聘志愿者", "市图书馆闭馆装修期间招聘志愿者。"),
    "museum": ("博物馆延长开放时间", "市博物馆暑期开放到晚上九点。"),
}


def _with_config(settings: Settings, config_dir: Path) -> Settings:
    paths = settings.paths.model_copy(update={"config_dir": config_dir})
    nlp = settings.nlp.model_copy(update={"enabled": False})
    return settings.model_copy(update={"paths": paths, "nlp": nlp})


def _posts() -> list[Post]:
    return [Post(url=f"https://e.cn/{k}", title=t, content=c, source="s",
                 published_at=datetime(2026, 5, 1, 9, i, tzinfo=TZ), fetched_at=datetime(2026, 5, 1, 10, tzinfo=TZ))
            for i, (k, (t, c)) in enumerate(TEXTS.items())]


def stored_groups(client: Elasticsearch, settings: Settings) -> dict[str, list[str] | None]:
    alias = POSTS.alias(settings.elasticsearch.index_prefix)
    client.indices.refresh(index=alias)
    return {p.url.rsplit("/", 1)[1]: client.get(index=alias, id=p.doc_id)["_source"].get("keyword_groups")
            for p in _posts()}


def test_groups_are_stored_on_ingest_and_evaluated_on_demand(
        settings: Settings, es_client: Elasticsearch, config_dir: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    s = _with_config(settings, config_dir)
    report = IngestService(standard_stages(s, es_client), Spool(s.paths.data_dir / "spool"), tag="t").run(_posts())
    assert report.indexed == 3
    assert stored_groups(es_client, s) == {"closed": ["图书馆闭馆"], "hiring": [], "museum": ["场馆开放"]}
    hits = es_client.search(index=POSTS.alias(s.elasticsearch.index_prefix),
                            query=build_query(PostQuery(groups=("图书馆闭馆",))))["hits"]["hits"]
    assert [h["_id"] for h in hits] == [_posts()[0].doc_id]  # the search filter on the stored field

    # the group's expression is changed (招聘 no longer excluded): on demand, then stored with --apply
    path = config_dir / "keyword_groups.yaml"
    path.write_text(path.read_text(encoding="utf-8").replace("图书馆 +闭馆 !招聘", "图书馆 +闭馆"), encoding="utf-8")
    monkeypatch.setenv("YUQING_ELASTICSEARCH__INDEX_PREFIX", s.elasticsearch.index_prefix)
    monkeypatch.setenv("YUQING_PATHS__CONFIG_DIR", str(config_dir))
    monkeypatch.setenv("YUQING_PATHS__DATA_DIR", str(s.paths.data_dir))
    assert main(["events", "groups", "图书馆闭馆"]) == 0
    out = capsys.readouterr().out
    assert "图书馆闭馆  [图书馆 +闭馆]  2 条" in out and "招聘志愿者" in out
    assert stored_groups(es_client, s)["hiring"] == []  # evaluating changes nothing
    assert main(["events", "groups", "图书馆闭馆", "--apply"]) == 0
    assert "新增 1 条，移除 0 条" in capsys.readouterr().out
    assert stored_groups(es_client, s) == {"closed": ["图书馆闭馆"], "hiring": ["图书馆闭馆"], "museum": ["场馆开放"]}
    assert main(["events", "groups", "没有这个"]) != 0
    assert "no group named 没有这个" in capsys.readouterr().err


def test_a_bad_expression_stops_the_start_naming_file_and_group(settings: Settings, config_dir: Path) -> None:
    path = config_dir / "keyword_groups.yaml"
    path.write_text(path.read_text(encoding="utf-8").replace("演出 演唱会 剧院 +退票", "演出 +退票 !退票"),
                    encoding="utf-8")
    s = _with_config(settings, config_dir)
    with pytest.raises(ConfigError) as exc:
        post_crawl_jobs(s, alerts=False)  # `yuqing run` / `up` build these before anything runs
    assert str(path) in str(exc.value) and "演出市场" in str(exc.value)
    with pytest.raises(ConfigError, match="演出市场"):
        standard_stages(s, None)  # type: ignore[arg-type]  # every crawl and import builds these first
