"""Crawl throughput: the full pipeline (feed spider + article extraction + near-duplicate linking + indexing
in Elasticsearch) against a bare Scrapy spider that only downloads the same pages, in one run.

Both read the same local feed of N article URLs (the saved real pages of the shared data, each served under
N/60 distinct URLs by the local test server) with the same Scrapy settings; each runs in its own process
(Twisted's reactor runs once per process). The classifier is off for both (bench/classifier.py measures it).

    python -m bench.crawl [--n 2000]
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from bench.common import start
from crawlers.feeds import FeedEntry, rss_document
from crawlers.runner import CrawlReport, crawl_command
from index.client import es_client
from yuqing.settings import PROJECT_ROOT, Settings

GOAL = 0.6
PREFIX = "yuqing-bench-crawl"


def start_server(pages: Path, site: Path) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen([sys.executable, "-m", "tests.mockserver", "--pages", str(pages), "--site", str(site)],
                            cwd=PROJECT_ROOT, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line.startswith("PORT "):
        proc.kill()
        raise RuntimeError(f"test server did not start: {line!r}")
    return proc, f"http://127.0.0.1:{line.split()[1]}"


def main() -> None:
    args, settings = start(__doc__, 2000, "bench:crawl")
    with es_client(settings.elasticsearch) as client:
        client.indices.delete(index=f"{PREFIX}-*", ignore_unavailable=True)
        ratio = measure(settings, args.n)
        client.indices.delete(index=f"{PREFIX}-*", ignore_unavailable=True)
        client.options(ignore_status=404).indices.delete_index_template(name=f"{PREFIX}-*")
    print(f"RESULT crawl ratio={ratio:.2f} goal={GOAL} {'PASS' if ratio >= GOAL else 'FAIL'}")


def measure(settings: Settings, n: int) -> float:
    """Pages/s of the full pipeline over pages/s of the bare spider, on the same feed of ``n`` pages."""
    gne = settings.paths.shared_data / "html" / "gne"
    paths = sorted(str(p.relative_to(gne)) for p in (gne / "tests").rglob("*.html"))

    with tempfile.TemporaryDirectory() as tmp:
        site, config_dir, data_dir = Path(tmp) / "site", Path(tmp) / "config", Path(tmp) / "data"
        site.mkdir()
        server, url = start_server(gne, site)
        try:
            entries = [FeedEntry(link=f"{url}/noetag/{paths[i % len(paths)]}?copy={i}", title=str(i))
                       for i in range(n)]
            (site / "feed.xml").write_bytes(rss_document("bench", url, entries,
                                                         built=datetime.now(ZoneInfo("Asia/Shanghai"))))
            feed = f"{url}/feed.xml"
            import shutil

            shutil.copytree(PROJECT_ROOT / "config", config_dir)
            (config_dir / "sources.yaml").write_text(
                f"sources:\n  - {{name: bench, kind: feed, start_urls: ['{feed}'], max_items: {n}}}\n",
                encoding="utf-8")
            env = {**os.environ, "YUQING_ELASTICSEARCH__INDEX_PREFIX": PREFIX, "YUQING_NLP__ENABLED": "false",
                   "YUQING_PATHS__CONFIG_DIR": str(config_dir), "YUQING_PATHS__DATA_DIR": str(data_dir),
                   "YUQING_CRAWL__AUTOTHROTTLE": "false", "YUQING_CRAWL__OBEY_ROBOTS": "false",
                   "YUQING_LOGGING__LEVEL": "WARNING"}

            bare = subprocess.run([sys.executable, "-m", "bench.bare_spider", feed], cwd=PROJECT_ROOT, env=env,
                                  capture_output=True, text=True, check=True)
            bare_result = json.loads(bare.stdout.strip().splitlines()[-1])
            bare_rate = bare_result["pages"] / bare_result["seconds"]
            print(f"bare spider: {bare_result['pages']} pages in {bare_result['seconds']:.1f}s "
                  f"= {bare_rate:.1f} pages/s")

            report_path = Path(tmp) / "report.json"
            subprocess.run(crawl_command(None, [], report_path), cwd=PROJECT_ROOT, env=env, check=True,
                           capture_output=True)
            report = CrawlReport.from_json(report_path.read_text(encoding="utf-8"))
            run = report.sources[0]
            assert report.finished_at is not None
            seconds = report.finished_at - report.started_at
            full_rate = run.found / seconds.total_seconds()
            print(f"full pipeline: {run.found} pages ({run.indexed} indexed, {run.duplicates} linked as duplicates, "
                  f"{run.errors} errors) in {seconds.total_seconds():.1f}s = {full_rate:.1f} pages/s")
        finally:
            server.terminate()
            server.wait()
    return full_rate / bare_rate


if __name__ == "__main__":
    main()
