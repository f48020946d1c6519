"""Operational events of the webhook channel, on ``<prefix>webhook.operations``: a
CloudEvent (structured mode) telling operators that an endpoint was disabled and why."""

from __future__ import annotations

import json
from datetime import datetime

from gnlc_core.events import stable_id
from gnlc_webhook.store import EndpointRow

SOURCE = "/gnlc-notify/webhook"
ENDPOINT_DISABLED = "webhook.endpoint.disabled"


def endpoint_disabled(endpoint: EndpointRow, reason: str, now: datetime) -> bytes:
    """The event body; its id is stable per endpoint and moment."""
    return json.dumps(
        {
            "specversion": "1.0",
            "id": stable_id(ENDPOINT_DISABLED, endpoint.id, now.isoformat()),
            "source": SOURCE,
            "type": ENDPOINT_DISABLED,
            "time": now.isoformat(),
            "datacontenttype": "application/json",
            "subject": f"endpoints/{endpoint.id}",
            "data": {
                "endpoint_id": endpoint.id,
                "partner_id": endpoint.partner_id,
                "reason": reason,
                "failing_since": endpoint.failing_since.isoformat()
                if endpoint.failing_since
                else None,
            },
        }
    ).encode()
