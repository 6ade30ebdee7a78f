"""Sending mail with :mod:`smtplib`: plain, STARTTLS or implicit TLS, with optional login.

Two kinds of failure are told apart, because the alert run treats them differently:

* :class:`SMTPUnavailableError` — the server cannot be reached, TLS or login fails, the connection drops, or
  the server closes the session (``421``, also in answer to MAIL, RCPT or DATA). Nothing can be sent now; the
  run stops and every pending alert waits for the next run.
* :class:`MessageRejectedError` — the server refused one message (e.g. a recipient). That alert is recorded
  as failed and retried on a later run; the others go on.
"""

from __future__ import annotations

import logging
import smtplib
import ssl
from email.message import EmailMessage
from types import TracebackType

from yuqing.errors import YuqingError
from yuqing.settings import SMTPSettings

log = logging.getLogger(__name__)


class MailDeliveryError(YuqingError):
    """Base class of mail delivery failures; the message names the SMTP server as host:port."""


class SMTPUnavailableError(MailDeliveryError):
    """The SMTP server cannot be used at all right now."""


class MessageRejectedError(MailDeliveryError):
    """The SMTP server refused one message."""


class Mailer:
    """One SMTP session: ``with Mailer(smtp) as m: m.send(msg)``.

    ``ssl_context`` defaults to :func:`ssl.create_default_context` (system CAs, or ``SSL_CERT_FILE``).
    """

    def __init__(self, smtp: SMTPSettings, *, ssl_context: ssl.SSLContext | None = None) -> None:
        if not smtp.host:
            raise MailDeliveryError("no SMTP host configured (smtp.host)")
        self.settings = smtp
        self.host: str = smtp.host
        self.port = smtp.port
        self._ssl_context = ssl_context
        self._conn: smtplib.SMTP | None = None

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    def _context(self) -> ssl.SSLContext:
        if self._ssl_context is None:
            self._ssl_context = ssl.create_default_context()
        return self._ssl_context

    def connect(self) -> None:
        s = self.settings
        mode = "SSL" if s.ssl else "STARTTLS" if s.starttls else "plain"
        conn: smtplib.SMTP | None = None
        step = "connect"
        try:
            if s.ssl:
                conn = smtplib.SMTP_SSL(self.host, self.port, timeout=s.timeout_s, context=self._context())
            else:
                conn = smtplib.SMTP(self.host, self.port, timeout=s.timeout_s)
            step = "EHLO"
            conn.ehlo()
            if s.starttls:
                step = "STARTTLS"
                conn.starttls(context=self._context())
                conn.ehlo()
            if s.username is not None:
                step = f"login as {s.username!r}"
                password = s.password.get_secret_value() if s.password is not None else ""
                conn.login(s.username, password)
        except (OSError, smtplib.SMTPException) as exc:
            if conn is not None:
                conn.close()
            raise SMTPUnavailableError(
                f"SMTP server {self.address} ({mode}) failed at {step}: {type(exc).__name__}: {exc}"
            ) from exc
        self._conn = conn
        log.debug("connected to SMTP server %s (%s)", self.address, mode)

    def send(self, msg: EmailMessage) -> list[str]:
        """Send one message; returns the recipients the server refused while accepting the others.

        Raises MessageRejectedError when the message was not accepted at all, SMTPUnavailableError when the
        session broke.
        """
        if self._conn is None:
            raise SMTPUnavailableError(f"not connected to SMTP server {self.address}")
        what = f"message {msg['Subject']!r} to {msg['To']}"
        try:
            refused = self._conn.send_message(msg)
        except (smtplib.SMTPRecipientsRefused, smtplib.SMTPSenderRefused, smtplib.SMTPDataError) as exc:
            if self._conn.sock is None or getattr(exc, "smtp_code", None) == 421:
                # 421: the server is closing the session (smtplib has closed it; for a refused recipient the
                # code is per recipient): not this message's fault, and nothing more can be sent on it.
                self._conn.close()
                self._conn = None
                raise SMTPUnavailableError(
                    f"SMTP server {self.address} closed the session while sending {what}: {type(exc).__name__}: "
                    f"{exc}"
                ) from exc
            raise MessageRejectedError(
                f"SMTP server {self.address} refused {what}: {type(exc).__name__}: {exc}"
            ) from exc
        except (OSError, smtplib.SMTPException) as exc:
            self.close()
            raise SMTPUnavailableError(
                f"SMTP server {self.address} failed while sending {what}: {type(exc).__name__}: {exc}"
            ) from exc
        if refused:
            # Some recipients took the message; the refused ones are reported, not retried (the others
            # would get it twice).
            log.error("SMTP server %s refused some recipients of %s: %s", self.address, what, refused)
        return sorted(refused)

    def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is None:
            return
        try:
            conn.quit()
        except (OSError, smtplib.SMTPException) as exc:
            log.warning("closing the SMTP session with %s failed: %s", self.address, exc)
            conn.close()

    def __enter__(self) -> Mailer:
        self.connect()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
