"""SMTP fixtures as a pytest plugin (``pytest_plugins = ("tests.smtp_fixtures",)``): ``start_smtp`` (start
servers; stopped after the test), ``smtp`` (one server), ``tls_files`` (a self-signed certificate for 127.0.0.1).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller

from tests.smtp_server import Collector, SMTPServer, StallingCollector, StartSMTP, free_port


@pytest.fixture()
def start_smtp() -> Iterator[StartSMTP]:
    """Start an SMTP server (on ``port`` or a free one, with ``collector`` or a new one; other kwargs go to
    aiosmtpd); every server is stopped after the test."""
    servers: list[SMTPServer] = []

    def start(port: int | None = None, collector: Collector | None = None, **kwargs: Any) -> SMTPServer:
        handler = collector or Collector()
        controller = Controller(handler, hostname="127.0.0.1", port=port or free_port(), **kwargs)
        controller.start()
        server = SMTPServer(controller.port, handler, controller)
        servers.append(server)
        return server

    yield start
    for server in servers:
        if isinstance(server.collector, StallingCollector):
            server.collector.release.set()
        server.controller.stop()


@pytest.fixture()
def smtp(start_smtp: StartSMTP) -> SMTPServer:
    return start_smtp()


@pytest.fixture(scope="session")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 and its key."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.now(UTC)
    san = x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=2))
        .add_extension(san, critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    folder = tmp_path_factory.mktemp("tls")
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_path, key_path
