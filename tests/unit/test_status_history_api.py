"""``GET /v1/status/notices/history`` in process: a notice's states latest first, bounded;
a partner reads only its own endpoints' histories; bad queries are 422s in FastAPI's list
shape."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from pydantic import SecretStr

from gnlc_core.answers import answer_errors
from gnlc_core.db import create_engine, migrate
from gnlc_core.events import NoticeStatus
from gnlc_core.settings import Settings
from gnlc_status import view
from gnlc_status.api import status_router
from gnlc_status.partners import PartnerDirectory
from tests.unit.test_status_api import OPERATOR, PARTNER, TOKEN, webhook_api

PATH = "/v1/status/notices/history"
T0 = datetime(2027, 1, 10, 3, 15, tzinfo=UTC)
OWN = {"event_id": "r1", "channel": "webhook", "recipient": "portal-main"}


def receipt(channel: str, recipient: str, state: str, attempts: int, reason: str | None = None
            ) -> NoticeStatus:  # fmt: skip
    return NoticeStatus(
        event_id="r1",
        channel=channel,
        recipient=recipient,
        state=state,
        attempts=attempts,
        reason=reason,
        state_time=T0 + timedelta(minutes=attempts),
    )


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'status.db'}")
    await migrate(engine, "status")
    await view.apply(
        engine,
        [
            receipt("webhook", "portal-main", "retrying", 1, "HTTP 503"),
            receipt("webhook", "portal-main", "delivered", 2),
            receipt("webhook", "other-endpoint", "failed", 3, "HTTP 410"),
            receipt("email", "kathmandu:a@x.org", "retrying", 1, "421 try later"),
            receipt("email", "kathmandu:a@x.org", "delivered", 2),
        ],
        received_at=T0 + timedelta(hours=1),
    )
    partners = PartnerDirectory("http://webhook.test", transport=httpx.MockTransport(webhook_api))
    app = FastAPI()
    answer_errors(app)
    app.include_router(status_router(Settings(operator_token=SecretStr(TOKEN)), engine, partners))
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://status.test"
    ) as client:
        yield client
    await partners.aclose()
    await engine.dispose()


async def test_an_operator_reads_an_emails_history(client: httpx.AsyncClient) -> None:
    query = {"event_id": "r1", "channel": "email", "recipient": "kathmandu:a@x.org"}
    answer = await client.get(PATH, params=query, headers=OPERATOR)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert {k: body[k] for k in query} == query
    assert [(i["state"], i["attempts"], i["reason"]) for i in body["items"]] == [
        ("delivered", 2, None),
        ("retrying", 1, "421 try later"),
    ]
    assert body["items"][1]["state_time"] == "2027-01-10T03:16:00Z"
    assert body["items"][1]["received_at"] == "2027-01-10T04:15:00Z"
    one = await client.get(PATH, params={**query, "limit": 1}, headers=OPERATOR)
    assert [i["state"] for i in one.json()["items"]] == ["delivered"]
    none = await client.get(PATH, params={**query, "event_id": "r2"}, headers=OPERATOR)
    assert none.json()["items"] == []


async def test_a_partner_reads_only_its_own_endpoints(client: httpx.AsyncClient) -> None:
    own = await client.get(PATH, params=OWN, headers=PARTNER)
    assert own.status_code == 200, own.text
    assert [i["state"] for i in own.json()["items"]] == ["delivered", "retrying"]
    for other in (
        {**OWN, "recipient": "other-endpoint"},
        {"event_id": "r1", "channel": "email", "recipient": "kathmandu:a@x.org"},
        {**OWN, "channel": "email"},  # its endpoint's id, but not a webhook notice
    ):
        refused = await client.get(PATH, params=other, headers=PARTNER)
        assert refused.status_code == 404, other
        assert "of yours" in refused.json()["detail"]
    operator = await client.get(
        PATH, params={**OWN, "recipient": "other-endpoint"}, headers=OPERATOR
    )
    assert [i["reason"] for i in operator.json()["items"]] == ["HTTP 410"]
    assert (await client.get(PATH, params=OWN)).status_code == 401


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"channel": "webhook", "recipient": "portal-main"}, "event_id"),
        ({**OWN, "event_id": "e" * 65}, "event_id"),
        ({**OWN, "channel": "sms"}, "channel"),
        ({**OWN, "recipient": "r" * 321}, "recipient"),
        ({**OWN, "recipient": ""}, "recipient"),
        ({**OWN, "limit": 51}, "limit"),
        ({**OWN, "limit": 0}, "limit"),
    ],
)
async def test_bad_queries_are_422s_naming_the_field(
    client: httpx.AsyncClient, params: dict[str, str | int], field: str
) -> None:
    answer = await client.get(PATH, params=params, headers=OPERATOR)
    assert answer.status_code == 422, answer.text
    detail = answer.json()["detail"]
    assert isinstance(detail, list)
    assert [d["loc"] for d in detail] == [["query", field]]


async def test_the_history_is_described_in_openapi(client: httpx.AsyncClient) -> None:
    document = (await client.get("/openapi.json")).json()
    operation = document["paths"][PATH]["get"]
    limit = next(p for p in operation["parameters"] if p["name"] == "limit")
    assert limit["schema"]["maximum"] == 50
    assert {"200", "401", "404", "422"} <= set(operation["responses"])
