"""A local SMTP server for the demo: every alert mail is saved as an .eml file under ``<data_dir>/mail``.

    python -m yuqing.mailsink --port 8025 --dir var/mail

Production uses a real mail server (smtp.* settings); this only lets a newcomer see the alerts locally.
"""

from __future__ import annotations

import argparse
import logging
import signal
import threading
from datetime import datetime
from email import message_from_bytes, policy
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller

from yuqing.config_write import atomic_write_bytes

log = logging.getLogger(__name__)


class SaveToDir:
    def __init__(self, directory: Path) -> None:
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        """Save the mail whole (a temporary file renamed into place) or not at all: a full disk is answered 452,
        a temporary failure, so the sender keeps the mail and tries again."""
        stamp = datetime.now().strftime("%Y%m%dT%H%M%S%f")
        path = self.directory / f"{stamp}.eml"
        try:
            atomic_write_bytes(path, envelope.content)
        except OSError as exc:
            log.error("cannot save a mail to %s in %s (%s); answered 452, the sender tries again later",
                      ",".join(envelope.rcpt_tos), self.directory, exc.strerror or exc)
            return "452 4.3.1 Insufficient system storage"
        msg = message_from_bytes(envelope.content, policy=policy.default)
        log.info("mail to %s saved to %s: %s", ",".join(envelope.rcpt_tos), path, msg["Subject"])
        return "250 Message accepted for delivery"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=8025)
    ap.add_argument("--dir", type=Path, required=True)
    args = ap.parse_args()
    from yuqing.logs import setup_logging
    from yuqing.settings import load_settings

    setup_logging(load_settings(), "mail-sink")  # the settings of `yuqing up` (YUQING_CONFIG, YUQING_*)
    controller = Controller(SaveToDir(args.dir), hostname=args.host, port=args.port)
    controller.start()
    log.info("demo mail sink on %s:%d, saving to %s", args.host, args.port, args.dir)
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    signal.signal(signal.SIGINT, lambda *_: done.set())
    done.wait()
    controller.stop()


if __name__ == "__main__":
    main()
