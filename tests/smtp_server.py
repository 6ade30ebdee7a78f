"""A real SMTP server for tests (aiosmtpd on 127.0.0.1): the handlers; the fixtures are in
:mod:`tests.smtp_fixtures`.

A :class:`Collector` keeps every accepted message; a :class:`StallingCollector` never answers the end of DATA
until released (a server that hangs mid-send).
"""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

LOGIN = (b"yuqing", b"s3cret")


@dataclass(frozen=True)
class Received:
    mail_from: str
    rcpt_tos: list[str]
    message: EmailMessage
    login: str | None


@dataclass
class Collector:
    """aiosmtpd handler: keeps every accepted message; refuses the addresses in ``refuse``."""

    refuse: set[str] = field(default_factory=set)
    received: list[Received] = field(default_factory=list)
    cond: threading.Condition = field(default_factory=threading.Condition)

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str, options: Any) -> str:
        if address in self.refuse:
            return "550 5.1.1 mailbox unavailable"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        msg = message_from_bytes(envelope.content, policy=policy.default)
        assert isinstance(msg, EmailMessage)
        login = session.login_data.decode() if isinstance(session.login_data, bytes) else None
        with self.cond:
            self.received.append(Received(envelope.mail_from, list(envelope.rcpt_tos), msg, login))
            self.cond.notify_all()
        return "250 Message accepted for delivery"

    def wait_for(self, count: int, timeout: float = 30.0) -> list[Received]:
        """The messages once at least ``count`` have arrived (polls with a deadline, no fixed sleeps)."""
        with self.cond:
            ok = self.cond.wait_for(lambda: len(self.received) >= count, timeout)
            assert ok, f"expected {count} messages, got {len(self.received)}"
            return list(self.received)


@dataclass
class StallingCollector(Collector):
    """Receives the message but answers the end of DATA only when released, then with a temporary error:
    the client never learns it was accepted, and nothing is recorded."""

    in_data: threading.Event = field(default_factory=threading.Event)
    release: threading.Event = field(default_factory=threading.Event)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.in_data.set()
        while not self.release.is_set():
            await asyncio.sleep(0.05)
        return "451 4.3.0 try again later"


@dataclass
class SMTPServer:
    port: int
    collector: Collector
    controller: Controller


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


StartSMTP = Callable[..., SMTPServer]


def authenticator(server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any) -> AuthResult:
    ok = isinstance(auth_data, LoginPassword) and auth_data == LOGIN
    return AuthResult(success=ok, handled=False, auth_data=auth_data)
