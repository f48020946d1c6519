"""Standard Webhooks headers, pure: id, timestamp and the v1 HMAC-SHA256 signature."""

from __future__ import annotations

from datetime import datetime

from standardwebhooks.webhooks import Webhook


def signed_headers(
    *, message_id: str, timestamp: datetime, body: bytes, secrets: list[str]
) -> dict[str, str]:
    """Headers for one delivery; several secrets (during a rotation) give several
    space-separated signatures, and a receiver holding any one of them verifies."""
    text = body.decode()
    signatures = " ".join(Webhook(secret).sign(message_id, timestamp, text) for secret in secrets)
    return {
        "webhook-id": message_id,
        "webhook-timestamp": str(int(timestamp.timestamp())),
        "webhook-signature": signatures,
        "content-type": "application/json",
    }
