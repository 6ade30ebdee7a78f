"""A sender process for the crash tests: ``python -m tests.outbox_child [--decide] --lease-s S --backoff-s B``.

Settings from the environment (``YUQING_ELASTICSEARCH__INDEX_PREFIX``, ``YUQING_SMTP__HOST``/``PORT``). With
``--decide`` it first decides the library event (prints ``DECIDED <id>``), then it releases and delivers
until SIGTERM, like the service's alert loop.
"""

from __future__ import annotations

import argparse
import signal
import threading
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from alerts.outbox import DeliverySettings, Outbox, Sender, serve
from index.client import es_client
from index.layout import setup
from index.outbox import OUTBOX
from tests.alert_fixtures import DASHBOARD, leader_rules, library_signal
from yuqing.logs import setup_logging
from yuqing.settings import load_settings


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--decide", action="store_true")
    ap.add_argument("--lease-s", type=float, required=True)
    ap.add_argument("--backoff-s", type=float, required=True)
    args = ap.parse_args()
    settings = load_settings()
    setup_logging(settings, "outbox-child")
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with es_client(settings.elasticsearch) as client:
        setup(client, settings.elasticsearch, [OUTBOX])
        alias = OUTBOX.alias(settings.elasticsearch.index_prefix)
        outbox = Outbox(client, alias, sender=settings.smtp.sender, dashboard_url=DASHBOARD,
                        tz=ZoneInfo(settings.timezone))
        if args.decide:
            now = datetime.now(UTC)
            evaluation, _ = outbox.decide(leader_rules(), [library_signal(now)], now)
            print("DECIDED", evaluation.decisions[0].id, flush=True)
        delivery = DeliverySettings(lease_s=args.lease_s, backoff_base_s=args.backoff_s, backoff_max_s=args.backoff_s,
                                    poll_interval_s=0.2, max_attempts=100)
        serve(outbox, Sender(client, alias, settings.require_smtp(), delivery), stop)


if __name__ == "__main__":
    main()
