"""The status API in process (``httpx.ASGITransport``): operators see every notice, a
partner only its own endpoints' deliveries (its token checked with the webhook API, here
an ``httpx.MockTransport``); every query parameter has a limit."""

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

TOKEN = "test-operator-token"
OPERATOR = {"authorization": f"Bearer {TOKEN}"}
PARTNER = {"authorization": "Bearer whk-partner-token"}
NOW = datetime.now(UTC).replace(microsecond=0)


def webhook_api(request: httpx.Request) -> httpx.Response:
    """The webhook API's ``GET /v1/endpoints`` for the partner token: its endpoints."""
    if request.headers["authorization"] == PARTNER["authorization"]:
        return httpx.Response(200, json=[{"id": "portal-main"}])
    return httpx.Response(401, json={"detail": "unknown bearer token"})


def receipt(event: str, channel: str, recipient: str, state: str, **facts: str) -> NoticeStatus:
    return NoticeStatus(
        event_id=event,
        channel=channel,
        recipient=recipient,
        state=state,
        attempts=1,
        state_time=NOW - timedelta(minutes=5),
        **facts,
    )


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'status.db'}")
    await migrate(engine, "status")
    reminder = {"deadline_id": "report", "step": "7d-before", "city_id": "kathmandu"}
    await view.apply(
        engine,
        [
            receipt("r1", "schedule", "kathmandu", "sent", **reminder),
            receipt("r1", "email", "kathmandu:a@x.org", "delivered", **reminder),
            receipt("r1", "email", "kathmandu:b@x.org", "retrying", **reminder),
            receipt("r1", "webhook", "portal-main", "delivered", partner_id="uil", **reminder),
            receipt("r1", "webhook", "other-endpoint", "failed", partner_id="someone-else"),
            receipt("a1", "email", "laval:c@x.org", "delivered", announcement_id="news"),
        ],
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


async def test_a_deadline_per_city_and_step_with_paging(client: httpx.AsyncClient) -> None:
    answer = await client.get("/v1/status/deadlines/report", headers=OPERATOR)
    assert answer.status_code == 200
    page = answer.json()
    assert {(i["channel"], i["recipient"], i["state"]) for i in page["items"]} == {
        ("schedule", "kathmandu", "sent"),
        ("email", "kathmandu:a@x.org", "delivered"),
        ("email", "kathmandu:b@x.org", "retrying"),
        ("webhook", "portal-main", "delivered"),
    }
    assert page["next_offset"] is None
    assert (
        page["items"][0]["state_time"].endswith("Z") or "+00:00" in page["items"][0]["state_time"]
    )
    first = (await client.get("/v1/status/deadlines/report?limit=3", headers=OPERATOR)).json()
    assert (len(first["items"]), first["next_offset"]) == (3, 3)
    rest = await client.get("/v1/status/deadlines/report?limit=3&offset=3", headers=OPERATOR)
    assert len(rest.json()["items"]) == 1
    retrying = await client.get("/v1/status/deadlines/report?state=retrying", headers=OPERATOR)
    assert [i["recipient"] for i in retrying.json()["items"]] == ["kathmandu:b@x.org"]


async def test_announcement_city_and_summary(client: httpx.AsyncClient) -> None:
    news = (await client.get("/v1/status/announcements/news", headers=OPERATOR)).json()
    assert [i["city_id"] for i in news["items"]] == [None]  # no city was said
    city = (await client.get("/v1/status/cities/kathmandu", headers=OPERATOR)).json()
    assert len(city["items"]) == 4
    summary = (await client.get("/v1/status/summary", headers=OPERATOR)).json()
    assert summary["counts"] == {
        "schedule": {"sent": 1},
        "email": {"delivered": 2, "retrying": 1},
        "webhook": {"delivered": 1, "failed": 1},
    }


async def test_a_partner_sees_only_its_own_endpoints(client: httpx.AsyncClient) -> None:
    own = await client.get("/v1/status/endpoints/portal-main", headers=PARTNER)
    assert [i["state"] for i in own.json()["items"]] == ["delivered"]
    other = await client.get("/v1/status/endpoints/other-endpoint", headers=PARTNER)
    assert other.status_code == 404
    operator = await client.get("/v1/status/endpoints/other-endpoint", headers=OPERATOR)
    assert [i["partner_id"] for i in operator.json()["items"]] == ["someone-else"]
    assert (await client.get("/v1/status/deadlines/report", headers=PARTNER)).status_code == 403
    summary = (await client.get("/v1/status/summary", headers=PARTNER)).json()
    assert summary["counts"] == {"webhook": {"delivered": 1}}


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("", {"r1/schedule", "r1/email", "r1/webhook", "a1/email"}),
        ("?city=kathmandu&channel=email", {"r1/email"}),
        ("?event=report&channel=webhook", {"r1/webhook"}),  # a deadline id
        ("?event=news", {"a1/email"}),  # an announcement id
        ("?event=a1", {"a1/email"}),  # an event id
        ("?recipient=portal-main", {"r1/webhook"}),
        ("?state=retrying", {"r1/email"}),
        ("?event=nothing", set()),
    ],
)
async def test_the_search_of_every_notice(
    client: httpx.AsyncClient, query: str, expected: set[str]
) -> None:
    answer = await client.get(f"/v1/status/notices{query}", headers=OPERATOR)
    assert answer.status_code == 200, answer.text
    assert {f"{i['event_id']}/{i['channel']}" for i in answer.json()["items"]} == expected
    partner = await client.get(f"/v1/status/notices{query}", headers=PARTNER)
    assert partner.status_code == 403


@pytest.mark.parametrize(
    ("path", "status", "headers"),
    [
        ("/v1/status/deadlines/report", 401, {}),
        ("/v1/status/deadlines/report", 401, {"authorization": "Bearer nobody-at-all"}),
        ("/v1/status/deadlines/report?limit=0", 422, OPERATOR),
        ("/v1/status/deadlines/report?limit=1001", 422, OPERATOR),
        ("/v1/status/deadlines/report?offset=-1", 422, OPERATOR),
        ("/v1/status/deadlines/report?offset=1000001", 422, OPERATOR),
        ("/v1/status/deadlines/Not%20A%20Slug", 422, OPERATOR),
        ("/v1/status/deadlines/report?city=" + "x" * 64, 422, OPERATOR),
        ("/v1/status/deadlines/report?step=tomorrow", 422, OPERATOR),
        ("/v1/status/deadlines/report?state=opened", 422, OPERATOR),
        ("/v1/status/endpoints/portal-main?event_id=" + "e" * 65, 422, OPERATOR),
        ("/v1/status/summary?since=2027-01-01T00:00:00", 422, OPERATOR),  # no offset
        ("/v1/status/summary?since=2027-01-02T00:00:00Z&until=2027-01-01T00:00:00Z", 422, OPERATOR),
        ("/v1/status/summary?since=2020-01-01T00:00:00Z&until=2027-01-01T00:00:00Z", 422, OPERATOR),
        ("/v1/status/summary?since=yesterday", 422, OPERATOR),
        ("/v1/status/summary?since=0001-01-01T00:00:00%2B05:00", 422, OPERATOR),
        ("/v1/status/cities/laval?until=9999-12-31T23:59:59-05:00", 422, OPERATOR),
        ("/v1/status/notices?event=" + "e" * 65, 422, OPERATOR),
        ("/v1/status/notices?recipient=" + "r" * 321, 422, OPERATOR),
        ("/v1/status/notices?limit=1001", 422, OPERATOR),
    ],
)
async def test_bad_requests_are_refused_naming_what_to_fix(
    client: httpx.AsyncClient, path: str, status: int, headers: dict[str, str]
) -> None:
    answer = await client.get(path, headers=headers)
    assert answer.status_code == status, answer.text
    assert answer.json()["detail"]


async def test_the_api_is_described_in_openapi(client: httpx.AsyncClient) -> None:
    document = (await client.get("/openapi.json")).json()
    assert {
        "/v1/status/deadlines/{deadline_id}",
        "/v1/status/announcements/{announcement_id}",
        "/v1/status/cities/{city_id}",
        "/v1/status/endpoints/{endpoint_id}",
        "/v1/status/summary",
        "/v1/status/notices",
    } <= set(document["paths"])
    limit = next(
        p
        for p in document["paths"]["/v1/status/deadlines/{deadline_id}"]["get"]["parameters"]
        if p["name"] == "limit"
    )
    assert limit["schema"]["maximum"] == 1000
