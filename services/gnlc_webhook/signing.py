"""Standard Webhooks signing, pure: secrets, and the headers of one delivery (id, timestamp
and the ``v1`` HMAC-SHA256 signature over ``id.timestamp.body``)."""

from __future__ import annotations

import base64
import secrets as random
from datetime import datetime
from functools import lru_cache

from standardwebhooks.webhooks import Webhook

SECRET_PREFIX = "whsec_"  # noqa: S105 - a prefix, not a secret


def new_secret() -> str:
    """A fresh ``whsec_`` secret: 32 random bytes, base64."""
    return SECRET_PREFIX + base64.b64encode(random.token_bytes(32)).decode()


def valid_signing_secret(raw: str) -> str:
    """``raw`` if it is a usable ``whsec_`` secret; ``ValueError`` saying what is wrong."""
    if not raw.startswith(SECRET_PREFIX):
        raise ValueError("secret must start with whsec_")
    try:
        key = base64.b64decode(raw.removeprefix(SECRET_PREFIX), validate=True)
    except ValueError:
        raise ValueError("secret after whsec_ must be base64") from None
    if not 24 <= len(key) <= 64:
        raise ValueError("secret must decode to 24 to 64 bytes")
    return raw


@lru_cache(maxsize=4096)
def _signer(secret: str) -> Webhook:
    return Webhook(secret)  # decodes the secret once, not once per delivery


def signed_headers(
    *, message_id: str, timestamp: datetime, body: bytes, secrets: list[str]
) -> dict[str, str]:
    """Headers for one delivery; several secrets (during a rotation) give several
    space-separated signatures, and a receiver holding any one of them verifies."""
    text = body.decode()
    signatures = " ".join(_signer(secret).sign(message_id, timestamp, text) for secret in secrets)
    return {
        "webhook-id": message_id,
        "webhook-timestamp": str(int(timestamp.timestamp())),
        "webhook-signature": signatures,
        "content-type": "application/json",
    }
