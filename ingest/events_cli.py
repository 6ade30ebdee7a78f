"""``yuqing events update``: the events update job (:mod:`ingest.events_job`) once, from the command line.

The scheduler (``yuqing run`` / ``up``) runs the same job after every crawl, as the single writer of event records;
run this one when no scheduler is running (after an import with ``yuqing ingest``, or to catch up).
"""

from __future__ import annotations

import argparse

from yuqing.settings import Settings


def add_update(evsub: argparse._SubParsersAction) -> None:
    up = evsub.add_parser(
        "update", help="cluster the posts not yet in an event, write event records and posts' event_id (once)",
        description="Reads the posts without an event_id in time order, clusters them with the saved state, "
        "writes the event records, the state and the posts' event_id; then rescores the open events. Safe to "
        "interrupt: the next run continues from the saved state.")
    up.add_argument("--batch-size", type=int, default=500, help="posts per batch (state saved after each)")
    up.add_argument("--max-batches", type=int, default=None, help="stop after this many batches")
    up.set_defaults(func=cmd_update)


def cmd_update(args: argparse.Namespace, settings: Settings) -> int:
    from index.client import check_connection, es_client
    from index.layout import setup
    from ingest.events_job import EventsUpdater

    if args.batch_size < 1:
        raise SystemExit("--batch-size must be at least 1")
    check_connection(settings.elasticsearch)
    with es_client(settings.elasticsearch) as client:
        setup(client, settings.elasticsearch)
        report = EventsUpdater(settings, client, batch_size=args.batch_size).run_once(max_batches=args.max_batches)
    print(f"events update: {report.summary()}")
    return 0
