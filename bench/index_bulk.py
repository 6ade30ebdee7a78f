"""Indexing throughput: the project's path (Post -> index.records.PostRecord -> index.writer.index_posts ->
streaming_bulk) against raw
``helpers.bulk`` of the very same documents, in one run, on the same local Elasticsearch.

Both sides receive posts that went through the segmentation stage already (jieba runs in the crawl pipeline
before indexing; its own rate is printed for information). Each side indexes into its own fresh index with
the same template; the two are run alternately, twice each, and the better run of each is compared.

    python -m bench.index_bulk [--n 20000]
"""

from __future__ import annotations

import itertools
import time
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from elasticsearch import Elasticsearch, helpers

from bench.common import start
from bench.corpus import texts
from index.client import es_client
from index.layout import POSTS, setup
from index.records import PostRecord
from index.writer import index_posts
from ingest.batch import Batch
from ingest.stages import Segment
from yuqing.models import Post
from yuqing.progress import progress
from yuqing.settings import Settings

GOAL = 0.8


def make_posts(settings: Settings, n: int) -> list[Post]:
    tz = ZoneInfo(settings.timezone)
    now = datetime.now(tz)
    pairs = itertools.cycle(list(texts(settings.paths.shared_data)))
    return [
        Post(url=f"https://bench.example.cn/post/{i}", title=t or b[:30], content=b, source="bench",
             site="bench.example.cn", published_at=now - timedelta(minutes=i), fetched_at=now)
        for i, (t, b) in zip(range(n), pairs, strict=False)
    ]


def fresh(client: Elasticsearch, settings: Settings, tag: str) -> tuple[Settings, str]:
    es = settings.elasticsearch.model_copy(update={"index_prefix": f"yuqing-bench-{tag}", "refresh_interval": "30s"})
    client.indices.delete(index=f"yuqing-bench-{tag}-*", ignore_unavailable=True)
    setup(client, es, [POSTS])
    return settings.model_copy(update={"elasticsearch": es}), POSTS.alias(es.index_prefix)


def run_project(client: Elasticsearch, settings: Settings, posts: list[Post]) -> float:
    s, alias = fresh(client, settings, "project")
    t0 = time.perf_counter()
    report = index_posts(client, alias, posts, chunk_size=s.elasticsearch.bulk_chunk_size)
    client.indices.refresh(index=alias)
    elapsed = time.perf_counter() - t0
    assert report.created == len(posts) and not report.failures
    return len(posts) / elapsed


def run_raw(client: Elasticsearch, settings: Settings, sources: list[tuple[str, dict[str, object]]]) -> float:
    s, alias = fresh(client, settings, "raw")
    t0 = time.perf_counter()
    ok, errors = helpers.bulk(client, ({"_index": alias, "_id": i, "_source": src} for i, src in sources),
                              chunk_size=s.elasticsearch.bulk_chunk_size)
    client.indices.refresh(index=alias)
    elapsed = time.perf_counter() - t0
    assert ok == len(sources) and not errors
    return len(sources) / elapsed


def segmented(posts: list[Post], batch: int = 500) -> list[Post]:
    """``posts`` through the ingest segmentation stage (in this process), with progress."""
    stage = Segment()
    out: list[Post] = []
    with progress("segmenting", total=len(posts), unit="posts") as bar:
        for i in range(0, len(posts), batch):
            out += stage.run(Batch(posts[i : i + batch])).posts
            bar.update(len(posts[i : i + batch]))
    return out


def main() -> None:
    args, settings = start(__doc__, 20000, "bench:index_bulk")
    with es_client(settings.elasticsearch) as client:
        compare(client, settings, args.n)


def compare(client: Elasticsearch, settings: Settings, n: int) -> None:
    posts = make_posts(settings, n)
    t0 = time.perf_counter()
    posts = segmented(posts)
    seg_rate = len(posts) / (time.perf_counter() - t0)
    sources = [(p.doc_id, PostRecord.source_of(p)) for p in posts]
    chars = sum(len(p.content) for p in posts) / len(posts)
    print(f"{len(posts)} posts, mean body {chars:.0f} chars; jieba segmentation stage: {seg_rate:,.0f} posts/s")

    raw_rates, project_rates = [], []
    for round_no in range(2):
        raw_rates.append(run_raw(client, settings, sources))
        project_rates.append(run_project(client, settings, posts))
        print(f"round {round_no + 1}: raw helpers.bulk {raw_rates[-1]:,.0f} docs/s, "
              f"project index_posts {project_rates[-1]:,.0f} docs/s")
    client.indices.delete(index="yuqing-bench-*", ignore_unavailable=True)
    client.options(ignore_status=404).indices.delete_index_template(name="yuqing-bench-*")
    raw, project = max(raw_rates), max(project_rates)
    ratio = project / raw
    print(f"best: raw {raw:,.0f} docs/s, project {project:,.0f} docs/s, ratio {ratio:.2f}")
    print(f"RESULT index_bulk ratio={ratio:.2f} goal={GOAL} {'PASS' if ratio >= GOAL else 'FAIL'}")


if __name__ == "__main__":
    main()
