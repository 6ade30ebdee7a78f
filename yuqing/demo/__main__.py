"""``python -m yuqing.demo [-c CONFIG]``: serve the demo site (settings section ``demo``) until stopped."""

from __future__ import annotations

import argparse
import contextlib
import logging
import time
from zoneinfo import ZoneInfo

from yuqing.demo.corpus import load_corpus, summary
from yuqing.demo.replay import DemoClock
from yuqing.demo.server import make_server
from yuqing.demo.shared import load_shared
from yuqing.demo.site import DemoSite
from yuqing.logs import setup_logging
from yuqing.settings import load_settings

log = logging.getLogger("yuqing.demo")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m yuqing.demo", description=__doc__)
    ap.add_argument("-c", "--config", help="config file (default: $YUQING_CONFIG or config/yuqing.yaml)")
    args = ap.parse_args(argv)
    settings = load_settings(args.config)
    setup_logging(settings, "demo-site")
    demo = settings.demo
    posts = load_corpus()
    shared = load_shared(settings.paths.shared_data, demo.shared_messages) if demo.join_shared else None
    clock = DemoClock(start=time.time(), minute_s=demo.minute_s, ramp_minutes=demo.ramp_minutes)
    site = DemoSite(posts, clock, ZoneInfo(settings.timezone), shared)
    server = make_server(site, demo.host, demo.port)
    port = server.server_address[1]
    if demo.port == 0:  # a caller that let the OS choose learns the port from this line
        print(f"PORT {port}", flush=True)
    log.info("demo site on http://%s:%d/: %d posts written for the demo (%s)%s", demo.host, port, len(posts),
             summary(posts), f", with {shared.describe()}" if shared else "")
    try:
        with contextlib.suppress(KeyboardInterrupt):
            server.serve_forever()
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
