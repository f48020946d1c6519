"""The partner/operator API of the webhook service: deliveries on the real service and
broker; the rules of the API alone (who sees what, input, SSRF targets) in process, with the
same router and store the service mounts."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from standardwebhooks.webhooks import Webhook

from gnlc_core.db import create_engine, migrate
from gnlc_webhook.partners import seed_partners
from gnlc_webhook.ssrf import Policy, system_resolver
from gnlc_webhook.store import Store
from tests.integration.conftest import System
from tests.integration.kafka_io import produce
from tests.integration.webhook_api_app import api_client, in_process_api, webhook_api
from tests.integration.webhook_support import (
    Api,
    delete_endpoints_of_the_test,
    event,
    hooks_server,
    start_webhook,
)
from tests.support import eventually, free_port

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def shared_service(module_system: System) -> Api:
    """One webhook service for the module's delivery tests (each with a partner of its own)."""
    _service, api = start_webhook(module_system)
    return api


@pytest.fixture
def shared(module_system: System, shared_service: Api) -> Iterator[tuple[System, Api]]:
    yield module_system, shared_service
    delete_endpoints_of_the_test(shared_service)


def test_a_partner_registers_and_gets_signed_deliveries_and_its_log(
    shared: tuple[System, Api],
) -> None:
    system, api = shared
    with hooks_server() as (hooks, base):
        token = api.partner("portal-a")
        endpoint = api.endpoint(token, f"{base}/a", description="our portal")
        assert endpoint["secret"].startswith("whsec_")
        assert endpoint["partner"] == "portal-a"
        hooks.secrets["a"] = [endpoint["secret"]]
        event_id, value = event()
        asyncio.run(produce(system.kafka, f"{system.prefix}deadline.reminder", value))

        assert hooks.wait("a", 1, timeout=60)
        hit = hooks.of("a")[0]
        assert hit.verified  # by the official standardwebhooks package
        assert hit.webhook_id == event_id
        assert hit.event["id"] == event_id
        assert hit.event["specversion"] == "1.0"
        Webhook(endpoint["secret"]).verify(hit.body.decode(), hit.headers)

        def logged() -> list[dict[str, Any]]:  # written once the answer is in, maybe after
            answer = api.call("GET", f"/endpoints/{endpoint['id']}/attempts", token)
            assert answer.status_code == 200
            return list(answer.json())

        [row] = eventually(logged, timeout=10, what="the attempt in the delivery log")
        assert row["event_id"] == event_id
        assert row["status"] == "delivered"
        assert row["status_code"] == 204
        assert row["latency_ms"] > 0
        assert row["attempt"] == 1
        # the running service refuses a bad token, and a partner the operators' routes
        assert api.call("GET", "/endpoints", "not-a-token").status_code == 401
        assert api.call("GET", "/partners", token).status_code == 403


def test_an_ed25519_endpoint_gets_v1a_signatures_its_public_key_from_the_api_verifies(
    shared: tuple[System, Api],
) -> None:
    system, api = shared
    with hooks_server() as (hooks, base):
        token = api.partner("portal-k")
        endpoint = api.endpoint(token, f"{base}/k", signature="ed25519")
        assert endpoint["signature"] == "ed25519"
        assert endpoint["secret"] is None  # the signing key never leaves the service
        keys = api.call("GET", f"/endpoints/{endpoint['id']}/secret", token).json()
        assert keys["public_key"] == endpoint["public_key"]
        assert keys["public_key"].startswith("whpk_")
        hooks.secrets["k"] = [keys["public_key"]]  # verified by libsodium
        event_id, value = event()
        asyncio.run(produce(system.kafka, f"{system.prefix}deadline.reminder", value))

        assert hooks.wait("k", 1, timeout=60)
        [hit] = hooks.of("k")
        assert hit.webhook_id == event_id
        assert hit.headers["webhook-signature"].startswith("v1a,")


async def _partner(operator: httpx.AsyncClient, partner_id: str) -> str:
    """Register a partner; returns its token."""
    response = await operator.post("/partners", json={"id": partner_id, "name": partner_id})
    assert response.status_code == 201, response.text
    return str(response.json()["token"])


async def _endpoint(partner: httpx.AsyncClient, url: str) -> dict[str, Any]:
    body = {"url": url, "event_types": ["deadline.reminder"]}
    response = await partner.post("/endpoints", json=body)
    assert response.status_code == 201, response.text
    return dict(response.json())


async def test_a_partner_sees_and_manages_only_its_own_endpoints(tmp_path: Path) -> None:
    """In process (the API's own code, router to store, as the service mounts it)."""
    async with (
        in_process_api(tmp_path) as made,
        api_client(made) as operator,
        api_client(made, await _partner(operator, "partner-one")) as a,
        api_client(made, await _partner(operator, "partner-two")) as b,
        api_client(made, "not-a-token") as stranger,
    ):
        mine = await _endpoint(a, "http://127.0.0.1:9/a")
        theirs = await _endpoint(b, "http://127.0.0.1:9/b")

        listed = (await a.get("/endpoints")).json()
        assert [e["id"] for e in listed] == [mine["id"]]
        assert all("secret" not in e for e in listed)
        for method, path in [
            ("GET", ""),
            ("PATCH", ""),
            ("DELETE", ""),
            ("GET", "/secret"),
            ("POST", "/rotate-secret"),
            ("POST", "/pause"),
            ("GET", "/attempts"),
            ("POST", "/replay"),
        ]:
            bodies = {"/replay": {"since": "2026-01-01T00:00:00Z"}, "": {"description": "mine"}}
            body = bodies.get(path, {})
            response = await a.request(method, f"/endpoints/{theirs['id']}{path}", json=body)
            assert response.status_code == 404, (method, path, response.text)
        assert (await b.get(f"/endpoints/{theirs['id']}")).status_code == 200

        # a partner registers only for itself and cannot manage partners
        response = await a.post(
            "/endpoints",
            json={
                "url": "http://127.0.0.1:9/x",
                "event_types": ["deadline.reminder"],
                "partner": "partner-two",
            },
        )
        assert response.status_code == 422
        assert (await a.get("/partners")).status_code == 403
        assert (await stranger.get("/endpoints")).status_code == 401

        # the operator sees everyone's
        every = (await operator.get("/endpoints")).json()
        assert {e["id"] for e in every} >= {mine["id"], theirs["id"]}
        only_two = (await operator.get("/endpoints?partner=partner-two")).json()
        assert [e["id"] for e in only_two] == [theirs["id"]]


async def test_invalid_input_names_the_field(tmp_path: Path) -> None:
    cases = [
        (
            {"url": "http://127.0.0.1:9/", "event_types": ["deadline.nope"]},
            "event_types",
            "unknown event type",
        ),
        ({"url": "http://127.0.0.1:9/", "event_types": []}, "event_types", "at least 1"),
        ({"event_types": ["deadline.reminder"]}, "url", "Field required"),
        (
            {
                "url": "http://127.0.0.1:9/",
                "event_types": ["deadline.reminder"],
                "cities": ["atlantis"],
            },
            "cities",
            "unknown city",
        ),
        (
            {
                "url": "http://127.0.0.1:9/",
                "event_types": ["deadline.reminder"],
                "regions": ["Mars"],
            },
            "regions",
            "unknown region",
        ),
        (
            {"url": "gopher://127.0.0.1/", "event_types": ["deadline.reminder"]},
            "url",
            "http:// or https://",
        ),
    ]
    async with (
        in_process_api(tmp_path) as made,
        api_client(made) as operator,
        api_client(made, await _partner(operator, "partner-v")) as partner,
    ):
        for body, field, message in cases:
            response = await partner.post("/endpoints", json=body)
            assert response.status_code == 422, body
            [error] = [e for e in response.json()["detail"] if field in e["loc"]]
            assert message in error["msg"], (field, error)


def _no_partners_file(system: System) -> str:
    empty = system.tmp / "no-partners.yaml"
    empty.write_text("endpoints: []\n")
    return str(empty)


async def test_ssrf_targets_are_refused_with_a_clear_error(tmp_path: Path) -> None:
    """The API with the service's default guard (no allowlist) and the system's resolver:
    every private, loopback and metadata target is refused, and nothing is stored."""
    made = await webhook_api(tmp_path, policy=Policy.parse(""), resolve=system_resolver)
    port = free_port()
    cases = {
        "http://10.0.0.5/hook": "10.0.0.5 is a private address",
        "http://192.168.1.20/hook": "192.168.1.20 is a private address",
        "http://[fd00::1]/hook": "fd00::1 is a private address",
        f"http://localhost:{port}/hook": "localhost resolves to",
        f"http://127.0.0.1:{port}/hook": "127.0.0.1 is a loopback address",
        "http://169.254.169.254/latest/meta-data/": "169.254.169.254 is a cloud metadata address",
        "http://[::ffff:169.254.169.254]/": "cloud metadata address",
    }
    try:
        async with (
            api_client(made) as operator,
            api_client(made, await _partner(operator, "partner-s")) as partner,
        ):
            for url, message in cases.items():
                body = {"url": url, "event_types": ["deadline.reminder"]}
                response = await partner.post("/endpoints", json=body)
                assert response.status_code == 422, url
                [error] = response.json()["detail"]
                assert error["loc"] == ["body", "url"]
                assert error["msg"].startswith("refused: ")
                assert message in error["msg"], (url, error["msg"])
            assert (await partner.get("/endpoints")).json() == []
    finally:
        await made.engine.dispose()


async def _seed_while_loopback_is_allowed(system: System) -> None:
    """The test's partners file into the webhook service's database, as a start with the
    loopback allowlist does (without starting a process for it)."""
    engine = create_engine(system.database_url_for("webhook"))
    try:
        await migrate(engine, "webhook")
        allowed = Policy.parse("127.0.0.0/8,::1/128")
        await seed_partners(Store(engine), system.partners, policy=allowed, directory=None)
    finally:
        await engine.dispose()


def test_ssrf_is_checked_again_at_send_time(system: System) -> None:
    """The endpoint seeded while loopback was allowed points at the loopback receiver: after
    a restart without the allowlist the transport refuses to connect after resolving, and
    the log says why."""
    asyncio.run(_seed_while_loopback_is_allowed(system))
    _service, api = start_webhook(
        system,
        GNLC_WEBHOOK_ALLOWED_NETWORKS="",
        GNLC_WEBHOOK_RETRY_DELAYS="[0.2]",
        GNLC_PARTNERS_PATH=_no_partners_file(system),
    )
    _event_id, value = event()
    asyncio.run(produce(system.kafka, f"{system.prefix}deadline.reminder", value))
    rows: list[dict[str, object]] = []
    for _ in range(120):
        rows = api.call("GET", "/endpoints/partner-a/attempts").json()
        if any(r["status"] == "failed" for r in rows):
            break
        asyncio.run(asyncio.sleep(0.5))
    assert rows, "no attempt logged"
    assert rows[0]["status"] == "failed", rows
    assert {r["attempt"] for r in rows} == {1, 2}  # the schedule has one retry
    assert all("refused by the SSRF guard" in str(r["error"]) for r in rows)
    assert all("127.0.0.1 is a loopback address" in str(r["error"]) for r in rows)
    assert system.receiver.inbox.deliveries == []


def test_a_partners_file_with_a_metadata_url_stops_the_start_naming_endpoint_and_field(
    system: System,
) -> None:
    """The partners file is checked as the API checks: loopback is allowed here (the
    tests' receivers), the cloud metadata address is not."""
    partners = system.tmp / "evil-partners.yaml"
    partners.write_text(
        yaml.safe_dump(
            {
                "endpoints": [
                    {
                        "id": "evil",
                        "partner": "someone",
                        "url": "http://169.254.169.254/latest/meta-data/",
                        "event_types": ["deadline.reminder"],
                        "secret": system.receiver.secret,
                    }
                ]
            }
        )
    )
    service = system.service("webhook", GNLC_PARTNERS_PATH=str(partners))
    with pytest.raises(RuntimeError, match="exited at start"):
        service.start()
    assert (
        f"{partners}: endpoint evil: url: refused: 169.254.169.254 is a cloud metadata address"
        in service.log.read_text()
    )
