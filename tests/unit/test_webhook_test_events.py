"""Test events through the webhook API in process (``POST /v1/endpoints/{id}/test``), the
body of a delivery (``GET .../messages/{event_id}``) and ``GET /v1/me``: partner-scoped
(another partner's endpoint is a 404), bounded, documented; and the pure parts (a test
event made of an example, the per-endpoint budget), tabled."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import ValidationError

from gnlc_core.catalog import TEST_SOURCE, as_test_event, catalog
from gnlc_core.events import EVENT_TYPES, parse_event
from gnlc_webhook.consumer import RESEND_PREFIX
from gnlc_webhook.test_events import PER_WINDOW, WINDOW, EventBudget
from tests.integration.webhook_api_app import InProcess, api_client, in_process_api
from tests.unit.webhook_log import delivered

NOW = datetime(2027, 1, 10, 3, 15, tzinfo=UTC)


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[InProcess]:
    async with in_process_api(tmp_path) as made:
        yield made


async def _partner(api: InProcess, partner_id: str) -> str:
    async with api_client(api) as http:
        answer = await http.post("/partners", json={"id": partner_id, "name": partner_id.title()})
        assert answer.status_code == 201, answer.text
        return str(answer.json()["token"])


async def _endpoint(api: InProcess, token: str, **fields: Any) -> dict[str, Any]:
    body = {"url": "https://hooks.example.org/x", "event_types": ["deadline.reminder"], **fields}
    async with api_client(api, token) as http:
        answer = await http.post("/endpoints", json=body)
    assert answer.status_code == 201, answer.text
    return dict(answer.json())


async def test_a_test_event_is_queued_for_the_endpoint_alone_like_a_resend(api: InProcess) -> None:
    token = await _partner(api, "alpha")
    endpoint = await _endpoint(api, token, event_types=["deadline.reminder"])
    async with api_client(api, token) as http:
        answer = await http.post(
            f"/endpoints/{endpoint['id']}/test", json={"event_type": "deadline.reminder"}
        )
    assert answer.status_code == 202, answer.text
    body = answer.json()
    assert body["queued"] == 1
    assert body["event_type"] == "deadline.reminder"
    [(recipient, value)] = api.resent.calls
    assert recipient == f"{RESEND_PREFIX}{endpoint['id']}"
    event = parse_event(value)
    assert event.id == body["event_id"]
    assert event.source == TEST_SOURCE
    assert event.type == "deadline.reminder"
    assert event.data.deadline_id.startswith("test-")
    async with api_client(api, token) as http:
        again = await http.post(
            f"/endpoints/{endpoint['id']}/test", json={"event_type": "deadline.reminder"}
        )
    assert again.json()["event_id"] != body["event_id"]  # a fresh id every time
    async with api_client(api, token) as http:  # a type it is not subscribed to, yet
        other = await http.post(
            f"/endpoints/{endpoint['id']}/test", json={"event_type": "announcement.published"}
        )
    assert other.status_code == 202
    assert parse_event(api.resent.calls[-1][1]).type == "announcement.published"


async def test_another_partners_endpoint_is_not_found(api: InProcess) -> None:
    mine, theirs = await _partner(api, "alpha"), await _partner(api, "beta")
    endpoint = await _endpoint(api, mine)
    await delivered(api.engine, endpoint["id"], "alpha", "evt-1", '{"id": "evt-1"}')
    async with api_client(api, theirs) as http:
        test = await http.post(
            f"/endpoints/{endpoint['id']}/test", json={"event_type": "deadline.reminder"}
        )
        message = await http.get(f"/endpoints/{endpoint['id']}/messages/evt-1")
        unknown = await http.post("/endpoints/ep-nothing/test", json={"event_type": "x"})
    assert test.status_code == 404
    assert message.status_code == 404
    assert unknown.status_code in (404, 422)
    assert api.resent.calls == []
    async with api_client(api, mine) as http:
        own = await http.get(f"/endpoints/{endpoint['id']}/messages/evt-1")
        missing = await http.get(f"/endpoints/{endpoint['id']}/messages/evt-2")
    assert own.status_code == 200
    assert own.json() == {
        "event_id": "evt-1",
        "event_type": "deadline.reminder",
        "body": '{"id": "evt-1"}',
    }
    assert missing.status_code == 404


@pytest.mark.parametrize(
    ("body", "field", "words"),
    [
        ({"event_type": "notice.status"}, "event_type", "unknown event type"),
        ({}, "event_type", "Field required"),
        ({"event_type": "deadline.reminder", "extra": 1}, "extra", "Extra inputs"),
    ],
)
async def test_a_wrong_test_event_request_names_its_field(
    api: InProcess, body: dict[str, Any], field: str, words: str
) -> None:
    token = await _partner(api, "alpha")
    endpoint = await _endpoint(api, token)
    async with api_client(api, token) as http:
        answer = await http.post(f"/endpoints/{endpoint['id']}/test", json=body)
    assert answer.status_code == 422
    [problem] = answer.json()["detail"]
    assert problem["loc"][-1] == field
    assert words in problem["msg"]
    assert api.resent.calls == []


async def test_a_paused_endpoint_gets_no_test_event(api: InProcess) -> None:
    token = await _partner(api, "alpha")
    endpoint = await _endpoint(api, token)
    async with api_client(api, token) as http:
        await http.post(f"/endpoints/{endpoint['id']}/pause")
        answer = await http.post(
            f"/endpoints/{endpoint['id']}/test", json={"event_type": "deadline.reminder"}
        )
    assert answer.status_code == 409
    assert "paused" in answer.json()["detail"]


async def test_test_events_are_bounded_per_endpoint(api: InProcess) -> None:
    token = await _partner(api, "alpha")
    first, second = await _endpoint(api, token), await _endpoint(api, token)
    async with api_client(api, token) as http:
        for _ in range(PER_WINDOW):
            sent = await http.post(
                f"/endpoints/{first['id']}/test", json={"event_type": "deadline.reminder"}
            )
            assert sent.status_code == 202
        refused = await http.post(
            f"/endpoints/{first['id']}/test", json={"event_type": "deadline.reminder"}
        )
        other = await http.post(
            f"/endpoints/{second['id']}/test", json={"event_type": "deadline.reminder"}
        )
    assert refused.status_code == 429
    assert 1 <= int(refused.headers["retry-after"]) <= WINDOW.total_seconds()
    assert "at most" in refused.json()["detail"]
    assert other.status_code == 202  # per endpoint
    assert len(api.resent.calls) == PER_WINDOW + 1


async def test_me_names_the_partner_or_the_operator(api: InProcess) -> None:
    token = await _partner(api, "alpha")
    async with api_client(api, token) as http:
        assert (await http.get("/me")).json() == {
            "operator": False,
            "partner_id": "alpha",
            "partner_name": "Alpha",
        }
    async with api_client(api) as http:
        assert (await http.get("/me")).json()["operator"] is True
    async with api_client(api, "gnlcp_not-a-token") as http:
        assert (await http.get("/me")).status_code == 401


async def test_the_new_routes_are_documented(api: InProcess) -> None:
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=api.app), base_url="http://webhook.test"
    ) as http:
        document = (await http.get("/openapi.json")).json()
    test = document["paths"]["/v1/endpoints/{endpoint_id}/test"]["post"]
    assert set(test["responses"]) >= {"202", "401", "404", "409", "413", "422", "429"}
    schema = document["components"]["schemas"]["EventTestIn"]["properties"]["event_type"]
    assert schema["enum"] == sorted(EVENT_TYPES)
    assert "get" in document["paths"]["/v1/endpoints/{endpoint_id}/messages/{event_id}"]
    assert "get" in document["paths"]["/v1/me"]


# -- pure parts ----------------------------------------------------------------------------


@pytest.mark.parametrize("event_type", sorted(EVENT_TYPES))
def test_a_test_event_is_its_types_example_with_a_fresh_id(event_type: str) -> None:
    example = catalog()[event_type].example
    made = as_test_event(example, event_id="fresh-id", now=NOW)
    event = parse_event(made)
    assert (event.id, event.time, event.source, event.type) == (
        "fresh-id",
        NOW,
        TEST_SOURCE,
        event_type,
    )
    business = made["data"].get("deadline_id") or made["data"]["announcement_id"]
    assert business.startswith("test-")
    assert business in made["partitionkey"]
    assert business in made["subject"]
    assert "traceparent" not in made
    # the rest is the example's
    rest = {k: v for k, v in made["data"].items() if k not in ("deadline_id", "announcement_id")}
    assert rest == {
        k: v for k, v in example["data"].items() if k not in ("deadline_id", "announcement_id")
    }
    assert example["id"] != "fresh-id"  # the example itself is untouched


@pytest.mark.parametrize(
    ("business_id", "expected"),
    [
        ("education-day-2027", "test-education-day-2027"),
        ("test-already", "test-already"),
        ("a" * 63, "test-" + "a" * 58),
        ("a" * 57 + "-bcdef", "test-" + "a" * 57),  # cut at 63, no trailing hyphen
    ],
)
def test_the_business_id_of_a_test_event(business_id: str, expected: str) -> None:
    example = json.loads(json.dumps(catalog()["announcement.published"].example))
    old = example["data"]["announcement_id"]
    example["data"]["announcement_id"] = business_id
    example["subject"] = example["subject"].replace(old, business_id)
    example["partitionkey"] = business_id
    made = as_test_event(example, event_id="x", now=NOW)
    assert made["data"]["announcement_id"] == expected
    assert made["partitionkey"] == expected


def test_a_broken_example_is_refused() -> None:
    example = json.loads(json.dumps(catalog()["deadline.reminder"].example))
    del example["data"]["due_at"]
    with pytest.raises(ValidationError):
        as_test_event(example, event_id="x", now=NOW)


@pytest.mark.parametrize(
    ("sent_ago", "expected_wait"),
    [
        ([], None),
        ([50] * (PER_WINDOW - 1), None),  # one left
        ([50] * PER_WINDOW, timedelta(seconds=10)),  # the oldest frees in 10 s
        ([59, *[1] * (PER_WINDOW - 1)], timedelta(seconds=1)),
        ([60] * PER_WINDOW, None),  # all out of the window
        ([61, *[1] * (PER_WINDOW - 1)], None),
    ],
)
def test_the_test_event_budget(sent_ago: list[int], expected_wait: timedelta | None) -> None:
    budget = EventBudget()
    for seconds in sorted(sent_ago, reverse=True):
        budget.spend("ep", NOW - timedelta(seconds=seconds))
    assert budget.wait("ep", NOW) == expected_wait
    assert budget.wait("another", NOW) is None
