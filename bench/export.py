"""Export speed: the dashboard's CSV and Excel export of a whole result (point-in-time + search_after, posts
parsed, masked, written) against the floor of reading the very same pages from Elasticsearch without parsing or
writing anything, in one run, on the same local Elasticsearch.

Real text (citizens' messages and Weibo posts of the shared data) is indexed once into a fresh index; every export
reads it all, ``EXPORT_PAGE_SIZE`` posts a page, with the analyst's mask (config/privacy.yaml) applied to each
post. The floor and the two formats are run alternately, twice each, and the better run of each counts. The goal
is that the slower format writes at least 1,000 posts/s: the default cap (dashboard.export_max_rows, 50,000) in
under a minute.

    python -m bench.export [--n 20000]
"""

from __future__ import annotations

import os
import tempfile
import time
import uuid
from typing import Any

from elasticsearch import Elasticsearch

from bench.common import start
from bench.index_bulk import make_posts
from dashboard.auth import mask_post
from index.client import es_client
from index.export import EXPORT_PAGE_SIZE, PIT_KEEP_ALIVE, build_export_search, export_posts
from index.layout import POSTS, setup
from index.search import PostQuery
from index.writer import index_posts
from ingest.privacy import Redactor
from yuqing.models import Post

GOAL = 1000.0  # posts/s of the slower format


def read_floor(client: Elasticsearch, alias: str, q: PostQuery) -> int:
    """Read every page of the result as the export does, and nothing else."""
    pit = client.open_point_in_time(index=alias, keep_alive=PIT_KEEP_ALIVE)["id"]
    rows, after = 0, None
    try:
        while True:
            resp: Any = client.search(**build_export_search(q, pit, EXPORT_PAGE_SIZE, after, first=after is None))
            hits = resp["hits"]["hits"]
            rows += len(hits)
            if len(hits) < EXPORT_PAGE_SIZE:
                return rows
            after = hits[-1]["sort"]
    finally:
        client.close_point_in_time(id=pit)


def main() -> None:
    args, base = start(__doc__.splitlines()[0], 20_000, "bench:export")
    prefix = f"bench-export-{uuid.uuid4().hex[:6]}"
    settings = base.model_copy(update={"elasticsearch": base.elasticsearch.model_copy(update={"index_prefix": prefix})})
    redact = Redactor.from_file(settings.config_file("privacy.yaml")).redact

    def masked(post: Post) -> Post:
        return mask_post(post, redact)

    with es_client(settings.elasticsearch) as client:
        try:
            setup(client, settings.elasticsearch, [POSTS])
            alias = POSTS.alias(prefix)
            # The export does not read the jieba fields: leave them empty instead of segmenting 20,000 texts.
            posts = [p.model_copy(update={"title_seg": "", "content_seg": ""}) for p in make_posts(settings, args.n)]
            index_posts(client, alias, posts, refresh=True)
            q = PostQuery()

            def floor() -> int:
                return read_floor(client, alias, q)

            def export(fmt: str) -> int:
                with tempfile.TemporaryFile() as out:
                    stats = export_posts(client, alias, q, out, fmt,  # type: ignore[arg-type]
                                         tz=settings.timezone, max_rows=args.n, transform=masked)
                    return stats.rows

            works = {"read floor": floor, "csv": lambda: export("csv"), "xlsx": lambda: export("xlsx")}
            best = dict.fromkeys(works, float("inf"))
            cpu = dict.fromkeys(works, float("inf"))
            for _ in range(2):
                for name, work in works.items():
                    start_s, start_cpu = time.perf_counter(), time.process_time()
                    rows = work()
                    best[name] = min(best[name], time.perf_counter() - start_s)
                    cpu[name] = min(cpu[name], time.process_time() - start_cpu)
                    assert rows == args.n, f"{name}: {rows} rows of {args.n}"
        finally:
            client.indices.delete(index=f"{prefix}-*", ignore_unavailable=True)
            client.options(ignore_status=404).indices.delete_index_template(name=f"{prefix}-*")

    rates = {name: args.n / s for name, s in best.items()}
    for name, rate in rates.items():
        print(f"{name:>10}: {args.n} posts in {best[name]:.2f} s = {rate:,.0f} posts/s "
              f"({rate / rates['read floor']:.2f} of the floor; {cpu[name]:.2f} s CPU in this process)")
    print(f"load average while measuring: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs (a shared machine: "
          "rerun when the machine is busy)")
    slowest = min(rates["csv"], rates["xlsx"])
    print(f"RESULT export posts_per_s={slowest:.0f} goal={GOAL:.0f} {'PASS' if slowest >= GOAL else 'FAIL'}")


if __name__ == "__main__":
    main()
