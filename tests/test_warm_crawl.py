"""The scheduler's warm crawl child: started ahead of time, it crawls the sources it is handed on stdin and exits
as soon as its report is written; one that is not needed exits at the end of its input without crawling."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from elasticsearch import Elasticsearch

from crawlers.feeds import FeedEntry, rss_document
from crawlers.runner import collect_crawl, dispatch_warm_crawl, start_warm_crawl
from tests.conftest import MockServer, crawl_env
from yuqing.settings import Settings


def test_a_warm_child_crawls_what_it_is_handed_and_an_unneeded_one_exits(
    settings: Settings, es_client: Elasticsearch, mockserver: MockServer, config_dir: Path
) -> None:
    page = f"{mockserver.url}/pages/tests/sina/1.html"
    feed = mockserver.write("feed.xml", rss_document("t", mockserver.url, [FeedEntry(link=page, title="t")],
                                                     built=datetime.now(ZoneInfo("Asia/Shanghai"))))
    (config_dir / "sources.yaml").write_text(
        f"sources:\n  - {{name: warm, kind: feed, start_urls: ['{feed}']}}\n"
        f"  - {{name: other, kind: feed, start_urls: ['{mockserver.url}/nothing.xml']}}\n", encoding="utf-8")
    env = crawl_env(settings, config_dir, YUQING_NLP__ENABLED="false")

    spare, spare_report = start_warm_crawl(None, env=env)
    warm, report_path = start_warm_crawl(None, env=env)
    assert dispatch_warm_crawl(warm, ["warm"])
    assert warm.wait(timeout=300) == 0
    report = collect_crawl(warm, report_path)
    assert [(r.source, r.found, r.indexed) for r in report.sources] == [("warm", 1, 1)]  # only what it was handed

    assert spare.stdin is not None
    spare.stdin.close()  # not needed after all
    assert spare.wait(timeout=300) == 0
    assert spare_report.read_text(encoding="utf-8") == ""  # it crawled nothing and reported nothing
    spare_report.unlink()
    assert not dispatch_warm_crawl(spare, ["warm"])  # a child that is gone cannot be handed anything
