"""The operator API: what it accepts, and how it refuses bad input (a 4xx that names the
field and the problem). In process (``httpx.ASGITransport``, the in-memory test broker) on
SQLite and on PostgreSQL, where the database matters: nothing here needs Kafka or a process
of its own (the tests of the scheduler's process, e.g. ``test_scheduler_recovery.py``, start
it the way production does)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.unit.scheduler_api import OperatorApi, operator_api

pytestmark = pytest.mark.integration


@pytest.fixture
async def api(tmp_path: Path, database_url: str) -> AsyncIterator[OperatorApi]:
    async with operator_api(tmp_path, database_url) as api:
        yield api


@pytest.fixture(scope="module")
async def refusing(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[OperatorApi]:
    """One API for the tests whose requests are refused (they change nothing)."""
    async with operator_api(tmp_path_factory.mktemp("refusing")) as api:
        yield api


def deadline(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": "survey-2027",
        "title": {"en": "Survey"},
        "due_at": (datetime.now(UTC) + timedelta(days=10)).isoformat(),
        "audience": {"regions": ["Africa"]},
        "reminders": ["-7d", "0d"],
    }
    return body | overrides


def detail(response: httpx.Response) -> str:
    """A string ``detail``, or a 422's problems as ``field.path: message``."""
    found = response.json()["detail"]
    if isinstance(found, str):
        return found
    return " | ".join(
        f"{'.'.join(str(part) for part in problem['loc'][1:])}: {problem['msg']}"
        for problem in found
    )


@pytest.mark.parametrize("database_url", ["sqlite", "postgresql"], indirect=True)
async def test_deadline_lifecycle(api: OperatorApi) -> None:
    response = await api.client.post("/v1/deadlines", json=deadline())
    assert response.status_code == 201, response.text
    africa = {"durban", "ibadan"}
    scheduled = response.json()["scheduled"]
    assert {s["city_id"] for s in scheduled} <= africa | {"nairobi", "accra", "kigali"}
    listed = (await api.client.get("/v1/schedule", params={"limit": 500})).json()
    mine = [i for i in listed if i["deadline_id"] == "survey-2027"]
    assert len(mine) == len(scheduled)
    for item in mine:  # 09:00 in the city's own zone
        assert item["fire_at_local"][11:16] == "09:00", item
    again = await api.client.post("/v1/deadlines", json=deadline())
    assert again.status_code == 409
    edited = await api.client.put("/v1/deadlines/survey-2027", json=deadline(reminders=["-1d"]))
    assert edited.status_code == 200
    assert {s["step"] for s in edited.json()["scheduled"]} == {"1d-before"}
    cancelled = await api.client.delete("/v1/deadlines/survey-2027")
    assert cancelled.json() == {"reminders_cancelled": len(edited.json()["scheduled"])}
    left = await api.client.get("/v1/schedule", params={"deadline_id": "survey-2027"})
    assert left.json() == []


@pytest.mark.parametrize("database_url", ["sqlite", "postgresql"], indirect=True)
async def test_submission_cancels_that_citys_reminders(api: OperatorApi) -> None:
    body = deadline(audience={"cities": ["kathmandu", "laval"]})
    assert (await api.client.post("/v1/deadlines", json=body)).status_code == 201
    response = await api.client.post(
        "/v1/deadlines/survey-2027/submissions", json={"city_id": "laval"}
    )
    assert response.status_code == 201
    assert response.json()["reminders_cancelled"] == 2
    left = await api.client.get("/v1/schedule", params={"deadline_id": "survey-2027"})
    assert {i["city_id"] for i in left.json()} == {"kathmandu"}
    unknown = await api.client.post(
        "/v1/deadlines/survey-2027/submissions", json={"city_id": "atlantis"}
    )
    assert unknown.status_code == 404
    assert "no city 'atlantis'" in detail(unknown)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (deadline(audience={"cities": ["atlantis"]}), "unknown city id(s) atlantis"),
        (deadline(audience={"regions": ["Atlantis"]}), "audience.regions: unknown region(s)"),
        (deadline(audience={}), "audience is empty"),
        (
            deadline(due_at="2020-01-01T00:00:00Z"),
            "due_at: 2020-01-01T00:00:00+00:00 is in the past",
        ),
        (deadline(due_at="2027-01-17T23:59:00"), "timezone"),
        (deadline(reminders=["-7 days"]), "is not like -30d"),
        (deadline(reminders=[]), "at least 1 item"),
        (deadline(id="Not A Slug"), "should match pattern"),
        (deadline(title={}), "title: Dictionary should have at least 1 item"),
        (deadline(delivery_hour=24), "less than or equal to 23"),
        (deadline(colour="blue"), "Extra inputs are not permitted"),
    ],
)
async def test_bad_deadlines_are_refused(
    refusing: OperatorApi, body: dict[str, Any], message: str
) -> None:
    response = await refusing.client.post("/v1/deadlines", json=body)
    assert response.status_code == 422
    assert message in detail(response)


async def test_malformed_json_is_refused(refusing: OperatorApi) -> None:
    response = await refusing.client.request(
        "POST",
        "/v1/deadlines",
        content=b'{"id": "x",',
        headers={"content-type": "application/json"},
    )
    assert response.status_code == 422
    assert "JSON decode error" in detail(response)


@pytest.mark.parametrize("database_url", ["sqlite", "postgresql"], indirect=True)
async def test_city_import_is_all_or_nothing(api: OperatorApi) -> None:
    good = (
        "id,name,country,region,timezone,language,contact_email\n"
        "st-johns,St. John's,CA,Europe and North America,America/St_Johns,en,a@sj.example.org\n"
    )
    bad = good + "chatham,Chatham,NZ,Asia and the Pacific,Pacific/Chatam,en,b@chatham.example.org\n"
    refused = await api.client.post(
        "/v1/cities/import",
        content=bad.encode(),
        headers={"content-type": "text/csv"},
    )
    assert refused.status_code == 422
    assert refused.json()["detail"] == [
        {
            "loc": ["body", "line 3", "timezone"],
            "msg": "unknown IANA time zone 'Pacific/Chatam'",
            "type": "value_error",
        }
    ]
    assert (await api.client.get("/v1/cities/st-johns")).status_code == 404
    accepted = await api.client.post(
        "/v1/cities/import",
        content=good.encode(),
        headers={"content-type": "text/csv"},
    )
    assert accepted.json() == {"imported": 1}
    city = (await api.client.get("/v1/cities/st-johns")).json()
    assert city["timezone"] == "America/St_Johns"
    as_yaml = (
        "- {id: chatham, name: Chatham Islands, country: nz, region: Asia and the Pacific,\n"
        "   timezone: Pacific/Chatham, language: en, contacts: [c@chatham.example.org]}\n"
    )
    assert (
        await api.client.post(
            "/v1/cities/import",
            content=as_yaml.encode(),
            headers={"content-type": "application/yaml"},
        )
    ).json() == {"imported": 1}


@pytest.mark.parametrize("database_url", ["sqlite", "postgresql"], indirect=True)
async def test_announcement_can_be_edited_and_withdrawn_until_it_goes_out(api: OperatorApi) -> None:
    later = (datetime.now(UTC) + timedelta(hours=2)).isoformat()
    body = {
        "id": "study-visit",
        "category": "event",
        "title": {"en": "Mayors' study visit"},
        "body": {"en": "Details follow."},
        "audience": {"all_members": True},
        "publish_at": later,
    }
    assert (await api.client.post("/v1/announcements", json=body)).status_code == 202
    edited = await api.client.put(
        "/v1/announcements/study-visit",
        json=body | {"title": {"en": "Mayors' study visit (new dates)"}},
    )
    assert edited.status_code == 202
    assert (await api.client.delete("/v1/announcements/study-visit")).status_code == 204
    again = await api.client.delete("/v1/announcements/study-visit")
    assert again.status_code == 409
    assert "is withdrawn" in detail(again)


async def test_token_is_required(refusing: OperatorApi) -> None:
    transport = httpx.ASGITransport(app=refusing.app)
    async with httpx.AsyncClient(transport=transport, base_url="http://scheduler") as bare:
        assert (await bare.post("/v1/deadlines", json=deadline())).status_code == 401
        wrong = {"authorization": "Bearer not-the-token"}
        assert (await bare.get("/v1/schedule", headers=wrong)).status_code == 401
        assert (await bare.get("/health/live")).status_code == 204
