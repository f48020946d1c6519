"""The operator API refuses bad input with a 4xx that names the field and the problem."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from tests.integration.conftest import System
from tests.support import Service

pytestmark = pytest.mark.integration


@pytest.fixture
def scheduler(system: System) -> Service:
    return system.service("scheduler").start()


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
    return str(response.json()["detail"])


def test_valid_deadline_is_scheduled_and_listed(system: System, scheduler: Service) -> None:
    response = system.api("POST", "/v1/deadlines", scheduler, json=deadline())
    assert response.status_code == 201
    listed = system.api("GET", "/v1/schedule", scheduler).json()
    assert [(i["deadline_id"], i["step"]) for i in listed] == [
        ("survey-2027", "7d-before"),
        ("survey-2027", "due"),
    ]


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        (deadline(audience={"cities": ["atlantis"]}), 422, "unknown city id(s) atlantis"),
        (deadline(audience={}), 422, "audience is empty"),
        (deadline(due_at="2020-01-01T00:00:00Z"), 422, "is in the past"),
        (deadline(due_at="2027-01-17T23:59:00"), 422, "timezone"),
        (deadline(reminders=["-7 days"]), 422, "is not like -30d"),
        (deadline(id="Not A Slug"), 422, "should match pattern"),
        (deadline(title={}), 422, "needs a text in at least one language"),
    ],
)
def test_bad_deadlines_are_refused(
    system: System, scheduler: Service, body: dict[str, Any], status: int, message: str
) -> None:
    response = system.api("POST", "/v1/deadlines", scheduler, json=body)
    assert response.status_code == status
    assert message in detail(response)


def test_malformed_json_is_refused(system: System, scheduler: Service) -> None:
    response = system.api(
        "POST",
        "/v1/deadlines",
        scheduler,
        content=b'{"id": "x",',
        headers={"content-type": "application/json"},
    )
    assert response.status_code == 422
    assert "JSON decode error" in detail(response)


def test_token_is_required(scheduler: Service) -> None:
    assert httpx.post(f"{scheduler.url}/v1/deadlines", json=deadline()).status_code == 401
    wrong = {"authorization": "Bearer not-the-token"}
    assert httpx.get(f"{scheduler.url}/v1/schedule", headers=wrong).status_code == 401
    assert httpx.get(f"{scheduler.url}/health/live").status_code == 204
