"""Signing keys through the API, in process: HMAC by default, ed25519 on request; the
partner reads the public key (never the signing key), and rotation with grace works for
both kinds. Signatures are checked with independent implementations: ``standardwebhooks``
for ``v1`` and libsodium (PyNaCl) for ``v1a``."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from nacl.signing import SigningKey, VerifyKey
from standardwebhooks.webhooks import Webhook

from gnlc_webhook.partners import seed_partners
from gnlc_webhook.signing import signed_headers
from gnlc_webhook.ssrf import Policy
from tests.integration.webhook_api_app import (
    InProcess,
    api_client,
    in_process_api,
)

pytestmark = pytest.mark.integration


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[InProcess]:
    async with in_process_api(tmp_path) as made:
        yield made


@pytest.fixture
async def client(api: InProcess) -> AsyncIterator[httpx.AsyncClient]:
    async with api_client(api) as http:
        token = (await http.post("/partners", json={"id": "p1", "name": "P1"})).json()["token"]
        http.headers["authorization"] = f"Bearer {token}"  # from here on, as the partner
        yield http


async def _create(client: httpx.AsyncClient, **fields: Any) -> dict[str, Any]:
    body = {"url": "https://hooks.example.org/k", "event_types": ["deadline.reminder"], **fields}
    response = await client.post("/endpoints", json=body)
    assert response.status_code == 201, response.text
    return dict(response.json())


async def _signed_now(api: InProcess, endpoint_id: str) -> tuple[dict[str, str], bytes]:
    """The headers the consumer would send now: signed by the stored keys."""
    row = await api.store.endpoint(endpoint_id)
    assert row is not None
    body = b'{"id":"evt-1"}'
    now = datetime.now(UTC)  # standardwebhooks checks that the timestamp is recent
    headers = signed_headers(message_id="evt-1", timestamp=now, body=body, secrets=row.secrets(now))
    return headers, body


def _libsodium_verifies(public: str, headers: dict[str, str], body: bytes) -> bool:
    content = f"{headers['webhook-id']}.{headers['webhook-timestamp']}.".encode() + body
    key = VerifyKey(base64.b64decode(public.removeprefix("whpk_")))
    signatures = [
        base64.b64decode(part.removeprefix("v1a,"))
        for part in headers["webhook-signature"].split(" ")
        if part.startswith("v1a,")
    ]
    for signature in signatures:
        try:
            key.verify(content, signature)
        except Exception:  # noqa: S112 - try the next one, as a receiver does
            continue
        return True
    return False


async def test_hmac_stays_the_default(api: InProcess, client: httpx.AsyncClient) -> None:
    endpoint = await _create(client)
    assert endpoint["signature"] == "hmac"
    assert endpoint["secret"].startswith("whsec_")
    assert endpoint["public_key"] is None
    headers, body = await _signed_now(api, endpoint["id"])
    assert headers["webhook-signature"].startswith("v1,")
    Webhook(endpoint["secret"]).verify(body.decode(), headers)


async def test_an_ed25519_endpoint_shows_only_its_public_key_and_rotates_with_grace(
    api: InProcess, client: httpx.AsyncClient
) -> None:
    endpoint = await _create(client, signature="ed25519")
    assert endpoint["signature"] == "ed25519"
    assert endpoint["secret"] is None
    first = endpoint["public_key"]
    assert first.startswith("whpk_")
    keys = (await client.get(f"/endpoints/{endpoint['id']}/secret")).json()
    assert keys == {
        "signature": "ed25519",
        "secret": None,
        "public_key": first,
        "previous_public_key": None,
        "previous_secret_expires_at": None,
    }
    headers, body = await _signed_now(api, endpoint["id"])
    assert headers["webhook-signature"].startswith("v1a,")
    assert _libsodium_verifies(first, headers, body)

    rotated = await client.post(
        f"/endpoints/{endpoint['id']}/rotate-secret", json={"grace_seconds": 600}
    )
    assert rotated.status_code == 200, rotated.text
    keys = rotated.json()
    second = keys["public_key"]
    assert second.startswith("whpk_")
    assert second != first
    assert keys["previous_public_key"] == first
    assert keys["secret"] is None
    headers, body = await _signed_now(api, endpoint["id"])
    assert len(headers["webhook-signature"].split(" ")) == 2
    assert _libsodium_verifies(second, headers, body)  # a receiver with the new key
    assert _libsodium_verifies(first, headers, body)  # and one not yet updated

    ended = await client.post(
        f"/endpoints/{endpoint['id']}/rotate-secret", json={"grace_seconds": 0}
    )
    third = ended.json()["public_key"]
    assert ended.json()["previous_public_key"] is None
    headers, body = await _signed_now(api, endpoint["id"])
    assert _libsodium_verifies(third, headers, body)
    assert not _libsodium_verifies(second, headers, body)

    texts = [
        (await client.get(path)).text for path in ("/endpoints", f"/endpoints/{endpoint['id']}")
    ] + [rotated.text, ended.text]
    assert all("whsk_" not in text for text in texts)  # the signing key never leaves


async def test_an_hmac_rotation_shows_the_new_secret_and_both_sign(
    api: InProcess, client: httpx.AsyncClient
) -> None:
    endpoint = await _create(client)
    rotated = (await client.post(f"/endpoints/{endpoint['id']}/rotate-secret", json={})).json()
    assert rotated["signature"] == "hmac"
    assert rotated["secret"].startswith("whsec_")
    assert rotated["secret"] != endpoint["secret"]
    assert rotated["public_key"] is None
    headers, body = await _signed_now(api, endpoint["id"])
    Webhook(rotated["secret"]).verify(body.decode(), headers)
    Webhook(endpoint["secret"]).verify(body.decode(), headers)


async def test_an_unknown_signature_kind_is_a_422_naming_the_field(
    client: httpx.AsyncClient,
) -> None:
    response = await client.post(
        "/endpoints",
        json={
            "url": "https://hooks.example.org/k",
            "event_types": ["deadline.reminder"],
            "signature": "rsa",
        },
    )
    assert response.status_code == 422
    [error] = response.json()["detail"]
    assert error["loc"] == ["body", "signature"]
    assert "'hmac' or 'ed25519'" in error["msg"]


async def test_a_partners_file_may_give_an_ed25519_key(
    api: InProcess, client: httpx.AsyncClient, tmp_path: Path
) -> None:
    nacl = SigningKey.generate()
    path = tmp_path / "partners.yaml"
    entry = {
        "id": "seeded",
        "partner": "p1",
        "url": "https://hooks.example.org/seeded",
        "event_types": ["deadline.reminder"],
        "secret": "whsk_" + base64.b64encode(bytes(nacl)).decode(),
    }
    path.write_text(yaml.safe_dump({"endpoints": [entry]}))
    await seed_partners(api.store, path, policy=Policy(), directory=None, resolver=api.resolver)
    keys = (await client.get("/endpoints/seeded/secret")).json()
    assert keys["signature"] == "ed25519"
    assert keys["public_key"] == "whpk_" + base64.b64encode(bytes(nacl.verify_key)).decode()
