"""The operator API: what it accepts, and how it refuses bad input (a 4xx that names the
field and the problem)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from tests.integration.conftest import System
from tests.support import HTTP, Service

pytestmark = pytest.mark.integration


@pytest.fixture
def scheduler(system: System) -> Service:
    return system.service("scheduler").start()


@pytest.fixture(scope="module")
def refusing(module_system: System) -> Service:
    """One scheduler for the tests whose requests are refused (they change nothing)."""
    return module_system.service("scheduler").start()


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
def test_deadline_lifecycle(system: System, scheduler: Service) -> None:
    response = system.api("POST", "/v1/deadlines", scheduler, json=deadline())
    assert response.status_code == 201, response.text
    africa = {"durban", "ibadan"}
    scheduled = response.json()["scheduled"]
    assert {s["city_id"] for s in scheduled} <= africa | {"nairobi", "accra", "kigali"}
    listed = system.api("GET", "/v1/schedule", scheduler, params={"limit": 500}).json()
    mine = [i for i in listed if i["deadline_id"] == "survey-2027"]
    assert len(mine) == len(scheduled)
    for item in mine:  # 09:00 in the city's own zone
        assert item["fire_at_local"][11:16] == "09:00", item
    again = system.api("POST", "/v1/deadlines", scheduler, json=deadline())
    assert again.status_code == 409
    edited = system.api(
        "PUT", "/v1/deadlines/survey-2027", scheduler, json=deadline(reminders=["-1d"])
    )
    assert edited.status_code == 200
    assert {s["step"] for s in edited.json()["scheduled"]} == {"1d-before"}
    cancelled = system.api("DELETE", "/v1/deadlines/survey-2027", scheduler)
    assert cancelled.json() == {"reminders_cancelled": len(edited.json()["scheduled"])}
    left = system.api("GET", "/v1/schedule", scheduler, params={"deadline_id": "survey-2027"})
    assert left.json() == []


@pytest.mark.parametrize("database_url", ["sqlite", "postgresql"], indirect=True)
def test_submission_cancels_that_citys_reminders(system: System, scheduler: Service) -> None:
    body = deadline(audience={"cities": ["kathmandu", "laval"]})
    assert system.api("POST", "/v1/deadlines", scheduler, json=body).status_code == 201
    response = system.api(
        "POST", "/v1/deadlines/survey-2027/submissions", scheduler, json={"city_id": "laval"}
    )
    assert response.status_code == 201
    assert response.json()["reminders_cancelled"] == 2
    left = system.api("GET", "/v1/schedule", scheduler, params={"deadline_id": "survey-2027"})
    assert {i["city_id"] for i in left.json()} == {"kathmandu"}
    unknown = system.api(
        "POST", "/v1/deadlines/survey-2027/submissions", scheduler, json={"city_id": "atlantis"}
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
def test_bad_deadlines_are_refused(
    module_system: System, refusing: Service, body: dict[str, Any], message: str
) -> None:
    response = module_system.api("POST", "/v1/deadlines", refusing, json=body)
    assert response.status_code == 422
    assert message in detail(response)


def test_malformed_json_is_refused(module_system: System, refusing: Service) -> None:
    response = module_system.api(
        "POST",
        "/v1/deadlines",
        refusing,
        content=b'{"id": "x",',
        headers={"content-type": "application/json"},
    )
    assert response.status_code == 422
    assert "JSON decode error" in detail(response)


@pytest.mark.parametrize("database_url", ["sqlite", "postgresql"], indirect=True)
def test_city_import_is_all_or_nothing(system: System, scheduler: Service) -> None:
    good = (
        "id,name,country,region,timezone,language,contact_email\n"
        "st-johns,St. John's,CA,Europe and North America,America/St_Johns,en,a@sj.example.org\n"
    )
    bad = good + "chatham,Chatham,NZ,Asia and the Pacific,Pacific/Chatam,en,b@chatham.example.org\n"
    refused = system.api(
        "POST",
        "/v1/cities/import",
        scheduler,
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
    assert system.api("GET", "/v1/cities/st-johns", scheduler).status_code == 404
    accepted = system.api(
        "POST",
        "/v1/cities/import",
        scheduler,
        content=good.encode(),
        headers={"content-type": "text/csv"},
    )
    assert accepted.json() == {"imported": 1}
    city = system.api("GET", "/v1/cities/st-johns", scheduler).json()
    assert city["timezone"] == "America/St_Johns"
    as_yaml = (
        "- {id: chatham, name: Chatham Islands, country: nz, region: Asia and the Pacific,\n"
        "   timezone: Pacific/Chatham, language: en, contacts: [c@chatham.example.org]}\n"
    )
    assert system.api(
        "POST",
        "/v1/cities/import",
        scheduler,
        content=as_yaml.encode(),
        headers={"content-type": "application/yaml"},
    ).json() == {"imported": 1}


@pytest.mark.parametrize("database_url", ["sqlite", "postgresql"], indirect=True)
def test_announcement_can_be_edited_and_withdrawn_until_it_goes_out(
    system: System, scheduler: Service
) -> None:
    later = (datetime.now(UTC) + timedelta(hours=2)).isoformat()
    body = {
        "id": "study-visit",
        "category": "event",
        "title": {"en": "Mayors' study visit"},
        "body": {"en": "Details follow."},
        "audience": {"all_members": True},
        "publish_at": later,
    }
    assert system.api("POST", "/v1/announcements", scheduler, json=body).status_code == 202
    edited = system.api(
        "PUT",
        "/v1/announcements/study-visit",
        scheduler,
        json=body | {"title": {"en": "Mayors' study visit (new dates)"}},
    )
    assert edited.status_code == 202
    assert system.api("DELETE", "/v1/announcements/study-visit", scheduler).status_code == 204
    again = system.api("DELETE", "/v1/announcements/study-visit", scheduler)
    assert again.status_code == 409
    assert "is withdrawn" in detail(again)


def test_token_is_required(refusing: Service) -> None:
    assert HTTP.post(f"{refusing.url}/v1/deadlines", json=deadline()).status_code == 401
    wrong = {"authorization": "Bearer not-the-token"}
    assert HTTP.get(f"{refusing.url}/v1/schedule", headers=wrong).status_code == 401
    assert HTTP.get(f"{refusing.url}/health/live").status_code == 204
