from __future__ import annotations

from datetime import UTC, datetime

import pytest
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from gnlc_webhook.partners import new_secret
from gnlc_webhook.signing import signed_headers


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
