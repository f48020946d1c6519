from __future__ import annotations

import base64
from datetime import UTC, datetime

import pytest
from nacl.exceptions import BadSignatureError
from nacl.signing import SigningKey, VerifyKey
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from gnlc_webhook.partners import new_secret
from gnlc_webhook.signing import (
    SignatureKind,
    public_key,
    signature_kind,
    signed_headers,
    valid_signing_secret,
)


def test_standardwebhooks_verifies_our_signature() -> None:
    secret = new_secret()
    body = '{"type":"deadline.reminder","data":{"title":{"ar":"التقرير"}}}'.encode()
    headers = signed_headers(
        message_id="evt-1", timestamp=datetime.now(UTC), body=body, secrets=[secret]
    )
    assert headers["webhook-signature"].startswith("v1,")
    payload = Webhook(secret).verify(body.decode(), headers)
    assert payload["data"]["title"]["ar"] == "التقرير"


def test_rotation_sends_both_signatures() -> None:
    old, new = new_secret(), new_secret()
    body = b'{"x":1}'
    headers = signed_headers(
        message_id="evt-2", timestamp=datetime.now(UTC), body=body, secrets=[old, new]
    )
    assert len(headers["webhook-signature"].split(" ")) == 2
    Webhook(old).verify(body.decode(), headers)
    Webhook(new).verify(body.decode(), headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(new_secret()).verify(body.decode(), headers)


def test_tampered_body_fails() -> None:
    secret = new_secret()
    headers = signed_headers(
        message_id="evt-3", timestamp=datetime.now(UTC), body=b'{"a":1}', secrets=[secret]
    )
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify('{"a":2}', headers)


def test_svix_verifies_our_signature_too() -> None:
    from svix.webhooks import Webhook as SvixWebhook
    from svix.webhooks import WebhookVerificationError as SvixError

    secret = new_secret()
    body = b'{"type":"announcement.published","data":{"title":{"ko":"\xea\xb3\xb5\xec\xa7\x80"}}}'
    headers = signed_headers(
        message_id="evt-4", timestamp=datetime.now(UTC), body=body, secrets=[secret]
    )
    SvixWebhook(secret).verify(body, headers)  # returns nothing, raises when it fails
    with pytest.raises(SvixError):
        SvixWebhook(new_secret()).verify(body, headers)


# ed25519 (v1a), verified by an independent implementation (PyNaCl, libsodium) -----------


def _nacl_key(public: str) -> VerifyKey:
    assert public.startswith("whpk_")
    return VerifyKey(base64.b64decode(public.removeprefix("whpk_")))


def _v1a(headers: dict[str, str]) -> list[bytes]:
    return [
        base64.b64decode(part.removeprefix("v1a,"))
        for part in headers["webhook-signature"].split(" ")
        if part.startswith("v1a,")
    ]


def test_ed25519_signatures_verify_with_libsodium_over_id_timestamp_body() -> None:
    key = new_secret(SignatureKind.ED25519)
    assert key.startswith("whsk_")
    assert signature_kind(key) is SignatureKind.ED25519
    body = '{"type":"deadline.reminder","data":{"title":{"zh":"报告"}}}'.encode()
    when = datetime(2026, 1, 31, 9, 0, tzinfo=UTC)
    headers = signed_headers(message_id="evt-5", timestamp=when, body=body, secrets=[key])
    assert headers["webhook-signature"].startswith("v1a,")
    [signature] = _v1a(headers)
    content = b"evt-5." + str(int(when.timestamp())).encode() + b"." + body
    public = public_key(key)
    assert public is not None
    assert _nacl_key(public).verify(content, signature) == content
    with pytest.raises(BadSignatureError):
        _nacl_key(public).verify(content.replace(b"evt-5", b"evt-6"), signature)
    with pytest.raises(BadSignatureError):
        _nacl_key(public).verify(content + b" ", signature)


def test_the_public_key_is_the_one_libsodium_derives_and_both_key_forms_sign_alike() -> None:
    nacl = SigningKey.generate()
    seed_form = "whsk_" + base64.b64encode(bytes(nacl)).decode()
    libsodium_form = "whsk_" + base64.b64encode(bytes(nacl) + bytes(nacl.verify_key)).decode()
    expected = "whpk_" + base64.b64encode(bytes(nacl.verify_key)).decode()
    assert public_key(seed_form) == public_key(libsodium_form) == expected
    when = datetime.now(UTC)
    one = signed_headers(message_id="m", timestamp=when, body=b"{}", secrets=[seed_form])
    other = signed_headers(message_id="m", timestamp=when, body=b"{}", secrets=[libsodium_form])
    assert one["webhook-signature"] == other["webhook-signature"]  # ed25519 is deterministic
    content = f"m.{int(when.timestamp())}.{{}}".encode()
    assert nacl.sign(content).signature == _v1a(one)[0]


def test_rotation_of_an_ed25519_key_sends_both_signatures() -> None:
    old, new = new_secret(SignatureKind.ED25519), new_secret(SignatureKind.ED25519)
    when = datetime.now(UTC)
    headers = signed_headers(message_id="m", timestamp=when, body=b"{}", secrets=[new, old])
    content = f"m.{int(when.timestamp())}.{{}}".encode()
    first, second = _v1a(headers)
    _nacl_key(public_key(new) or "").verify(content, first)
    _nacl_key(public_key(old) or "").verify(content, second)


@pytest.mark.parametrize(
    ("secret", "message"),
    [
        ("whsk_" + base64.b64encode(b"x" * 31).decode(), "32 or 64 bytes"),
        ("whsk_" + base64.b64encode(b"x" * 64).decode(), "does not match its seed"),
        ("whsk_not base64!", "must be base64"),
        ("whsec_" + base64.b64encode(b"x" * 16).decode(), "24 to 64 bytes"),
        ("whpk_" + base64.b64encode(b"x" * 32).decode(), "must start with whsec_"),
    ],
)
def test_unusable_keys_are_refused_saying_why(secret: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        valid_signing_secret(secret)


def test_hmac_stays_the_default_and_has_no_public_key() -> None:
    secret = new_secret()
    assert secret.startswith("whsec_")
    assert signature_kind(secret) is SignatureKind.HMAC
    assert public_key(secret) is None
