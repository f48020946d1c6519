"""Endpoint health (``gnlc_webhook.health``): the nearest-rank percentile (a table), and
``GET /v1/endpoint-health`` in process over a delivery log written by the store: requests
made, successes, p50/p95, the window, operators only."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from gnlc_core.ledger import Status
from gnlc_webhook.health import percentile
from gnlc_webhook.store import Attempt
from tests.integration.webhook_api_app import api_client, in_process_api


@pytest.mark.parametrize(
    ("values", "share", "expected"),
    [
        ([], 0.5, None),
        ([7.0], 0.5, 7.0),
        ([7.0], 0.95, 7.0),
        ([1.0, 2.0], 0.5, 1.0),
        ([1.0, 2.0, 3.0, 4.0], 0.5, 2.0),
        ([float(i) for i in range(1, 101)], 0.95, 95.0),
        ([float(i) for i in range(1, 101)], 0.5, 50.0),
        ([1.0, 2.0, 3.0], 0.0, 1.0),
        ([1.0, 2.0, 3.0], 1.0, 3.0),
    ],
)
def test_percentile(values: list[float], share: float, expected: float | None) -> None:
    assert percentile(values, share) == expected


async def test_health_of_every_endpoint(tmp_path: Path) -> None:
    async with in_process_api(tmp_path) as api, api_client(api) as client:
        token = (await client.post("/partners", json={"id": "p1", "name": "P1"})).json()["token"]
        ids = []
        for name in ("a", "b"):
            created = await client.post(
                "/endpoints",
                json={
                    "url": f"https://hooks.example.org/{name}",
                    "event_types": ["deadline.reminder"],
                    "partner": "p1",
                },
            )
            assert created.status_code == 201, created.text
            ids.append(created.json()["id"])
        now = datetime.now(UTC)

        def attempt(n: int, status: Status, latency: float | None, hours: float = 1) -> Attempt:
            return Attempt(
                f"e{n}",
                ids[0],
                "p1",
                1,
                status,
                at=now - timedelta(hours=hours),
                status_code=200 if status is Status.DELIVERED else 500,
                latency_ms=latency,
            )

        rows = [attempt(n, Status.DELIVERED, float(n)) for n in range(1, 19)]  # 1..18 ms
        rows += [attempt(19, Status.RETRYING, 500.0), attempt(20, Status.FAILED, 900.0)]
        rows += [attempt(21, Status.DROPPED, None)]  # no request made: not counted
        rows += [attempt(22, Status.DELIVERED, 5000.0, hours=30)]  # before the window
        async with api.engine.begin() as connection:
            await api.store.add_attempts(rows, connection=connection)

        answer = await client.get("/endpoint-health")
        assert answer.status_code == 200, answer.text
        found = {h["endpoint_id"]: h for h in answer.json()}
        busy, quiet = found[ids[0]], found[ids[1]]
        assert (busy["requests"], busy["delivered"], busy["sampled"]) == (20, 18, 20)
        assert busy["success_rate"] == pytest.approx(0.9)
        assert (busy["p50_ms"], busy["p95_ms"]) == (10.0, 500.0)
        assert quiet == {**quiet, "requests": 0, "success_rate": None, "p50_ms": None}

        wider = await client.get(
            "/endpoint-health",
            params={"since": (now - timedelta(hours=48)).isoformat()},
        )
        assert {h["endpoint_id"]: h["requests"] for h in wider.json()}[ids[0]] == 21

        async def requests_since(since: str) -> int:
            answer = await client.get("/endpoint-health", params={"since": since})
            assert answer.status_code == 200, answer.text
            return int({h["endpoint_id"]: h["requests"] for h in answer.json()}[ids[0]])

        longest = await requests_since((now - timedelta(days=7)).isoformat())
        assert await requests_since((now - timedelta(days=80)).isoformat()) == longest >= 21
        assert await requests_since((now + timedelta(hours=1)).isoformat()) == 0
        for text in ("0.5", "yesterday", "2027-01-17T09:00:00"):  # no offset: which zone?
            refused = await client.get("/endpoint-health", params={"since": text})
            assert refused.status_code == 422, text
            assert refused.json()["detail"][0]["loc"] == ["query", "since"]
        async with api_client(api, token) as partner:
            assert (await partner.get("/endpoint-health")).status_code == 403
        async with api_client(api, "nobody") as nobody:
            assert (await nobody.get("/endpoint-health")).status_code == 401
