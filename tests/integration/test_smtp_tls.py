"""STARTTLS and authentication against a real aiosmtpd server with a certificate from a
private CA (trustme): the pool upgrades, verifies the certificate, logs in, and a wrong
password or an untrusted certificate is a failure to retry, not a lost notice."""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import trustme
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session
from pydantic import SecretStr

from gnlc_core.settings import Settings
from gnlc_email.sender import SEND_ERRORS, SmtpPool, classify
from tests.support import free_port

pytestmark = pytest.mark.integration
USER, PASSWORD = "notify", "correct horse battery staple"
MESSAGE = b"From: a@example.org\r\nTo: b@example.org\r\nSubject: tls\r\n\r\nhello\r\n"


@dataclass
class Recorder:
    received: list[tuple[bytes, bool, Any]] = field(default_factory=list)

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        assert isinstance(envelope.content, bytes)
        self.received.append((envelope.content, session.ssl is not None, session.auth_data))
        return "250 OK"


def authenticate(
    server: SMTP, session: Session, envelope: Envelope, mechanism: str, auth_data: Any
) -> AuthResult:
    ok = isinstance(auth_data, LoginPassword) and (
        auth_data.login.decode(),
        auth_data.password.decode(),
    ) == (USER, PASSWORD)
    return AuthResult(success=ok, handled=False, auth_data=USER if ok else None)


@dataclass
class TlsServer:
    port: int
    ca_file: Path
    recorder: Recorder


@pytest.fixture
def tls_server(tmp_path: Path) -> Iterator[TlsServer]:
    ca = trustme.CA()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1", "localhost").configure_cert(context)
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    recorder = Recorder()
    port = free_port()
    controller = Controller(
        recorder,
        hostname="127.0.0.1",
        port=port,
        tls_context=context,
        require_starttls=True,
        auth_required=True,
        auth_require_tls=True,
        authenticator=authenticate,
        ready_timeout=10,
    )
    controller.start()
    try:
        yield TlsServer(port, ca_file, recorder)
    finally:
        controller.stop()


def settings(server: TlsServer, **changes: Any) -> Settings:
    values: dict[str, Any] = {
        "smtp_host": "127.0.0.1",
        "smtp_port": server.port,
        "smtp_starttls": True,
        "smtp_username": USER,
        "smtp_password": SecretStr(PASSWORD),
        "smtp_ca_file": server.ca_file,
        "smtp_timeout_seconds": 10,
    }
    values.update(changes)
    return Settings(**values)


async def test_starttls_with_a_verified_certificate_and_login(tls_server: TlsServer) -> None:
    pool = SmtpPool(settings(tls_server))
    try:
        await pool.send("a@example.org", "b@example.org", MESSAGE)
        await pool.send("a@example.org", "b@example.org", MESSAGE)  # same connection, reused
    finally:
        await pool.close()
    assert len(tls_server.recorder.received) == 2
    assert all(tls and who == USER for _, tls, who in tls_server.recorder.received)


async def test_a_wrong_password_is_a_failure_to_retry(tls_server: TlsServer) -> None:
    pool = SmtpPool(settings(tls_server, smtp_password=SecretStr("wrong")))
    with pytest.raises(SEND_ERRORS) as caught:
        await pool.send("a@example.org", "b@example.org", MESSAGE)
    await pool.close()
    failure = classify(caught.value)
    assert failure.transient
    assert failure.code == 535
    assert "wrong" not in failure.reason
    assert tls_server.recorder.received == []


async def test_an_untrusted_certificate_is_refused(tls_server: TlsServer) -> None:
    pool = SmtpPool(settings(tls_server, smtp_ca_file=None))
    with pytest.raises(SEND_ERRORS) as caught:
        await pool.send("a@example.org", "b@example.org", MESSAGE)
    await pool.close()
    assert classify(caught.value).transient
    assert tls_server.recorder.received == []
