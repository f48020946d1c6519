"""Standard Webhooks headers, pure: id, timestamp and the v1 HMAC-SHA256 signature."""

from __future__ import annotations

from datetime import datetime
from functools import lru_cache

from standardwebhooks.webhooks import Webhook


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
