"""DKIM signing (dkimpy), verified by dkimpy against a DNS stub holding the public key."""

from __future__ import annotations

import base64
from pathlib import Path

import dkim
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from pydantic import SecretStr

from gnlc_core.settings import Settings
from gnlc_email.dkim_signer import DkimSigner
from gnlc_email.render import render
from tests.unit.test_message import ANNOUNCEMENT, DIRECTORY, REMINDER, compose_for

SELECTOR, DOMAIN = "gnlc2027", "gnlc.example.org"


@pytest.fixture(scope="module")
def keys() -> tuple[bytes, bytes]:
    """(PEM private key, DNS TXT record of the public key)."""
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    der = private.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return pem, b"v=DKIM1; k=rsa; p=" + base64.b64encode(der)


def dns_stub(record: bytes) -> object:
    def txt(name: bytes, timeout: int = 5) -> bytes | None:
        return record if name == f"{SELECTOR}._domainkey.{DOMAIN}.".encode() else None

    return txt


def signed_headers(raw: bytes) -> list[str]:
    signature = raw.split(b"\r\n\r\n", 1)[0].decode()
    tags = dict(
        part.strip().split("=", 1)
        for part in signature.split(":", 1)[1].replace("\r\n", "").split(";")
        if "=" in part
    )
    return [name.strip().lower() for name in tags["h"].split(":")]


def test_an_announcement_is_signed_with_list_unsubscribe_and_verifies(
    keys: tuple[bytes, bytes],
) -> None:
    pem, record = keys
    signer = DkimSigner(SELECTOR, DOMAIN, pem)
    city = DIRECTORY.by_id["durban"]
    url = "https://notify.example.org/unsubscribe?token=abc"
    _rendered, raw = compose_for("durban", render(ANNOUNCEMENT, city), unsubscribe_url=url)
    signed = signer.sign(raw)
    assert signed.startswith(b"DKIM-Signature:")
    assert dkim.verify(signed, dnsfunc=dns_stub(record))
    names = signed_headers(signed)
    for name in (
        "from",
        "to",
        "subject",
        "date",
        "message-id",
        "list-unsubscribe",
        "list-unsubscribe-post",
        "mime-version",
        "content-type",
    ):
        assert name in names
    # a changed List-Unsubscribe (someone redirecting the one-click) no longer verifies
    tampered = signed.replace(b"token=abc", b"token=xyz", 1)
    assert tampered != signed
    assert not dkim.verify(tampered, dnsfunc=dns_stub(record))


def test_a_reminder_verifies_and_a_list_unsubscribe_added_later_breaks_it(
    keys: tuple[bytes, bytes],
) -> None:
    pem, record = keys
    _rendered, raw = compose_for("kathmandu", render(REMINDER, DIRECTORY.by_id["kathmandu"]))
    signed = DkimSigner(SELECTOR, DOMAIN, pem).sign(raw)
    assert dkim.verify(signed, dnsfunc=dns_stub(record))
    head, body = signed.split(b"\r\n\r\n", 1)
    added = head + b"\r\nList-Unsubscribe: <https://evil.example/>\r\n\r\n" + body
    assert not dkim.verify(added, dnsfunc=dns_stub(record))


def test_settings_key_from_a_file_or_a_secret(keys: tuple[bytes, bytes], tmp_path: Path) -> None:
    pem, record = keys
    path = tmp_path / "dkim.pem"
    path.write_bytes(pem)
    assert DkimSigner.from_settings(Settings()) is None
    for settings in (
        Settings(dkim_domain=DOMAIN, dkim_selector=SELECTOR, dkim_private_key_path=path),
        Settings(
            dkim_domain=DOMAIN, dkim_selector=SELECTOR, dkim_private_key=SecretStr(pem.decode())
        ),
    ):
        signer = DkimSigner.from_settings(settings)
        assert signer is not None
        raw = compose_for("kathmandu", render(REMINDER, DIRECTORY.by_id["kathmandu"]))[1]
        assert dkim.verify(signer.sign(raw), dnsfunc=dns_stub(record))


@pytest.mark.parametrize(
    ("values", "problem"),
    [
        ({"dkim_domain": DOMAIN}, "GNLC_DKIM_SELECTOR, GNLC_DKIM_PRIVATE_KEY_PATH"),
        ({"dkim_domain": DOMAIN, "dkim_selector": "s"}, "GNLC_DKIM_PRIVATE_KEY_PATH or"),
        (
            {"dkim_domain": DOMAIN, "dkim_selector": "s", "dkim_private_key_path": "/nonexistent"},
            "GNLC_DKIM_PRIVATE_KEY_PATH: No such file",
        ),
        (
            {"dkim_domain": DOMAIN, "dkim_selector": "s", "dkim_private_key": "not a key"},
            "cannot sign",
        ),
    ],
)
def test_a_partial_or_bad_dkim_configuration_is_named(values: dict[str, str], problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        DkimSigner.from_settings(Settings(**values))  # type: ignore[arg-type]
