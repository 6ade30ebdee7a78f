"""A service process for the crash tests: ``python -m tests.outbox_child [--decide] --lease-s S --backoff-s B``.

Settings from the environment (``YUQING_ELASTICSEARCH__INDEX_PREFIX``, ``YUQING_SMTP__HOST``/``PORT``). With
``--decide`` it first decides the library event through the service's outbox (prints ``DECIDED <id>``); then
the service's sender thread (alerts.service.SenderThread, as in `yuqing run`) releases and delivers until SIGTERM.
"""

from __future__ import annotations

import argparse
import signal
import threading
from datetime import UTC, datetime

from alerts.service import SenderThread, make_outbox
from index.client import es_client
from index.layout import setup
from index.outbox import OUTBOX
from tests.alert_fixtures import leader_rules, library_signal
from yuqing.logs import setup_logging
from yuqing.settings import load_settings


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--decide", action="store_true")
    ap.add_argument("--lease-s", type=float, required=True)
    ap.add_argument("--backoff-s", type=float, required=True)
    args = ap.parse_args()
    settings = load_settings()
    delivery = settings.alerts.delivery.model_copy(update={
        "lease_s": args.lease_s, "backoff_base_s": args.backoff_s, "backoff_max_s": args.backoff_s,
        "poll_interval_s": 0.2, "max_attempts": 100})
    settings = settings.model_copy(update={"alerts": settings.alerts.model_copy(update={"delivery": delivery})})
    setup_logging(settings, "outbox-child")
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with es_client(settings.elasticsearch) as client:
        setup(client, settings.elasticsearch, [OUTBOX])
        if args.decide:
            now = datetime.now(UTC)
            evaluation, _ = make_outbox(settings, client).decide(leader_rules(), [library_signal(now)], now)
            print("DECIDED", evaluation.decisions[0].id, flush=True)
    sender = SenderThread(settings)
    sender.start()
    stop.wait()
    sender.close(timeout=30)


if __name__ == "__main__":
    main()
