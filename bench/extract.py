"""Article-extraction speed: `extract_article` over the saved real pages, against the cost floor of any
extractor (lxml parsing the same pages and reading their text), in one run.

The pages (html/gne/tests/**.html of the shared data, decoded once beforehand: decoding is not timed) are
each processed once per round; the best of 3 rounds counts, for both (rounds alternate between the two).
Wall-clock time: on a shared machine other jobs' load shows; rerun when the two rates look off.

    python -m bench.extract
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime
from zoneinfo import ZoneInfo

import lxml.html

from crawlers.encoding import decode_html
from crawlers.extract import extract_article, load_extraction_rules
from crawlers.extract.rules import EXTRACTION_CONFIG_NAME
from yuqing.logs import setup_logging
from yuqing.progress import track
from yuqing.settings import load_settings

GOAL = 100.0  # pages/s (on the project's 2-core benchmark machine)
ROUNDS = 3


def best_seconds(works: dict[str, Callable[[str], object]], pages: list[str]) -> dict[str, float]:
    """For each of `works`, the fastest of ROUNDS passes over all pages (after one warm-up pass).

    Rounds alternate between the works, so that both see the same load on a shared machine.
    """
    for work in works.values():
        for page in pages:
            work(page)
    best = dict.fromkeys(works, float("inf"))
    for _ in track(range(ROUNDS), "rounds", unit="rounds"):
        for name, work in works.items():
            start = time.perf_counter()
            for page in pages:
                work(page)
            best[name] = min(best[name], time.perf_counter() - start)
    return best


def main() -> None:
    settings = load_settings()
    setup_logging(settings, "bench:extract")
    gne = settings.paths.shared_data / "html" / "gne" / "tests"
    paths = sorted(gne.rglob("*.html"))
    if not paths:
        raise SystemExit(f"no pages under {gne}")
    pages = [decode_html(path.read_bytes())[0] for path in paths]
    rules = load_extraction_rules(settings.config_file(EXTRACTION_CONFIG_NAME))
    now = datetime.now(ZoneInfo("Asia/Shanghai"))

    def floor(html: str) -> object:
        return lxml.html.document_fromstring(html).text_content()

    def extract(html: str) -> object:
        return extract_article(html, rules=rules, now=now)

    best = best_seconds({"floor": floor, "extract": extract}, pages)
    floor_rate = len(pages) / best["floor"]
    rate = len(pages) / best["extract"]
    print(f"{len(pages)} pages, best of {ROUNDS} rounds")
    print(f"lxml parse + text_content (floor): {floor_rate:8.1f} pages/s")
    print(f"extract_article:                   {rate:8.1f} pages/s ({rate / floor_rate:.2f} of the floor)")
    print(f"RESULT extract pages_per_s={rate:.1f} goal={GOAL:.0f} {'PASS' if rate >= GOAL else 'FAIL'}")


if __name__ == "__main__":
    main()
