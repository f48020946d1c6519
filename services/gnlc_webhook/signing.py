"""Standard Webhooks signing, pure: keys, and the headers of one delivery (id, timestamp and
the signatures over ``id.timestamp.body``).

Two kinds, told apart by the key's prefix, so whatever holds a key (the store, the consumer,
the partners file) needs no other field:

- ``whsec_``: a shared secret (24 to 64 random bytes, base64); signatures ``v1,<base64
  HMAC-SHA256>``. The default.
- ``whsk_``: an ed25519 signing key (its 32-byte seed, or the 64-byte seed and public key
  libsodium keeps, base64); signatures ``v1a,<base64 ed25519>``. The partner verifies with
  the ``whpk_`` public key (32 bytes, base64), which is all it ever sees.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets as random
from collections.abc import Callable
from datetime import datetime
from enum import StrEnum
from functools import lru_cache

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

SECRET_PREFIX = "whsec_"  # noqa: S105 - a prefix, not a secret
SIGNING_KEY_PREFIX = "whsk_"
PUBLIC_KEY_PREFIX = "whpk_"


class SignatureKind(StrEnum):
    """How deliveries to an endpoint are signed: ``hmac`` (``v1``, a ``whsec_`` secret) or
    ``ed25519`` (``v1a``, a ``whsk_`` signing key and its ``whpk_`` public key)."""

    HMAC = "hmac"
    ED25519 = "ed25519"


def new_secret(kind: SignatureKind = SignatureKind.HMAC) -> str:
    """A fresh key of ``kind``: 32 random bytes, base64, with the kind's prefix."""
    prefix = SIGNING_KEY_PREFIX if kind is SignatureKind.ED25519 else SECRET_PREFIX
    return prefix + base64.b64encode(random.token_bytes(32)).decode()


def signature_kind(secret: str) -> SignatureKind:
    """The kind of a stored key, by its prefix."""
    return SignatureKind.ED25519 if secret.startswith(SIGNING_KEY_PREFIX) else SignatureKind.HMAC


def _decoded(raw: str, prefix: str) -> bytes:
    try:
        return base64.b64decode(raw.removeprefix(prefix), validate=True)
    except (ValueError, binascii.Error):
        raise ValueError(f"secret after {prefix} must be base64") from None


@lru_cache(maxsize=4096)
def _seed(secret: str) -> bytes:
    """The 32-byte ed25519 seed of a ``whsk_`` key; ``ValueError`` when it is not one."""
    key = _decoded(secret, SIGNING_KEY_PREFIX)
    if len(key) not in (32, 64):
        raise ValueError("an ed25519 key after whsk_ must decode to 32 or 64 bytes")
    if len(key) == 64 and _public_bytes(key[:32]) != key[32:]:
        raise ValueError("the 64-byte whsk_ key's public half does not match its seed")
    return key[:32]


def _public_bytes(seed: bytes) -> bytes:
    return _private_key(seed).public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)


def valid_signing_secret(raw: str) -> str:
    """``raw`` if it is a usable ``whsec_`` secret or ``whsk_`` key; ``ValueError`` saying
    what is wrong."""
    if raw.startswith(SIGNING_KEY_PREFIX):
        _seed(raw)
        return raw
    if not raw.startswith(SECRET_PREFIX):
        raise ValueError("secret must start with whsec_ (HMAC) or whsk_ (ed25519)")
    key = _decoded(raw, SECRET_PREFIX)
    if not 24 <= len(key) <= 64:
        raise ValueError("secret must decode to 24 to 64 bytes")
    return raw


def public_key(secret: str) -> str | None:
    """The ``whpk_`` public key of a ``whsk_`` signing key; None for an HMAC secret."""
    if signature_kind(secret) is not SignatureKind.ED25519:
        return None
    return PUBLIC_KEY_PREFIX + base64.b64encode(_public_bytes(_seed(secret))).decode()


@lru_cache(maxsize=4096)
def _private_key(seed: bytes) -> Ed25519PrivateKey:
    return Ed25519PrivateKey.from_private_bytes(seed)


Signer = Callable[[bytes], str]


@lru_cache(maxsize=4096)
def _signer(secret: str) -> Signer:
    """The signature function of a key, its key material decoded once: the signed content
    ``id.timestamp.body`` in, ``v1,<base64 HMAC-SHA256>`` (what ``standardwebhooks``
    ``Webhook.sign`` gives) or ``v1a,<base64 ed25519>`` out."""
    if signature_kind(secret) is SignatureKind.HMAC:
        keyed = hmac.new(base64.b64decode(secret.removeprefix(SECRET_PREFIX)), None, hashlib.sha256)

        def sign_hmac(content: bytes) -> str:
            one = keyed.copy()
            one.update(content)
            return "v1," + base64.b64encode(one.digest()).decode()

        return sign_hmac
    private = _private_key(_seed(secret))

    def sign_ed25519(content: bytes) -> str:
        return "v1a," + base64.b64encode(private.sign(content)).decode()

    return sign_ed25519


def signed_headers(
    *, message_id: str, timestamp: datetime, body: bytes, secrets: list[str]
) -> dict[str, str]:
    """Headers for one delivery; several keys (during a rotation) give several
    space-separated signatures, and a receiver holding any one of them verifies."""
    stamp = str(int(timestamp.timestamp()))
    content = f"{message_id}.{stamp}.".encode() + body
    if len(secrets) == 1:
        signatures = _signer(secrets[0])(content)
    else:
        signatures = " ".join(_signer(key)(content) for key in secrets)
    return {
        "webhook-id": message_id,
        "webhook-timestamp": stamp,
        "webhook-signature": signatures,
        "content-type": "application/json",
    }
