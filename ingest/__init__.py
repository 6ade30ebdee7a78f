"""Ingest: a batch of posts through ordered stages, from wherever posts come (a crawl, the spool, a file).

    redact → skip unchanged → analyse → segment → link near-duplicates → index → remember what was indexed
    (later: events, 专题, alerts)

``service`` runs the stages on a :class:`~ingest.batch.Batch` and classifies failures (Elasticsearch
unavailable: spooled; refused: reported); ``stages`` holds one small class per stage; ``session`` adds what a
run needs around it (the client, the indices, the crawl state, the spool replay, batching in a background
thread); ``cli`` is ``yuqing ingest FILE.jsonl``. Nothing here imports Scrapy: the crawl pipeline
(``crawlers.pipelines``) is a thin adapter onto a session.
"""
