"""A submission stops reminders: pending ones are cancelled, and one already on Kafka is
dropped by the consumers before it is sent."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta

import pytest

from gnlc_core.events import DeadlineSubmitted, encode_event, submission_event
from gnlc_core.kafka import REASON_HEADER
from tests.integration.conftest import System
from tests.integration.kafka_io import consume, headers_of, produce
from tests.support import eventually, start_all

pytestmark = pytest.mark.integration


def pending_cities(system: System, url: str) -> set[str]:
    response = system.api_at("GET", url, "/v1/schedule", params={"deadline_id": "report"})
    return {item["city_id"] for item in response.json()}


@pytest.mark.parametrize("database_url", ["sqlite", "postgresql"], indirect=True)
def test_a_partner_submission_on_kafka_cancels_pending_reminders(system: System) -> None:
    scheduler = system.service("scheduler").start()
    due = (datetime.now(UTC) + timedelta(days=3)).isoformat()
    response = system.api(
        "POST",
        "/v1/deadlines",
        scheduler,
        json={
            "id": "report",
            "title": {"en": "Report"},
            "due_at": due,
            "audience": {"cities": ["kathmandu", "laval"]},
            "reminders": ["-1d", "0d"],
        },
    )
    assert response.status_code == 201
    event = submission_event(
        DeadlineSubmitted(
            deadline_id="report",
            city_id="laval",
            submitted_at=datetime.now(UTC),
            source="uil-portal",
        ),
        source="/partners/uil-portal",
    )
    asyncio.run(
        produce(
            system.kafka,
            f"{system.prefix}deadline.submitted",
            encode_event(event),
            b'{"not": "a submission"}',
            key=b"report/laval",
        )
    )
    eventually(
        lambda: pending_cities(system, scheduler.url) == {"kathmandu"},
        timeout=30,
        what="Laval's reminders to be cancelled, Kathmandu's kept",
    )
    listed = system.api("GET", "/v1/deadlines/report/submissions", scheduler).json()
    assert [(s["city_id"], s["source"]) for s in listed] == [("laval", "uil-portal")]
    parked = asyncio.run(consume(system.kafka, f"{system.prefix}scheduler.dead-letter", 1))
    assert headers_of(parked[0])[REASON_HEADER].startswith("invalid event:")


def test_a_reminder_already_in_flight_is_dropped_after_a_submission(system: System) -> None:
    scheduler = system.service("scheduler").start()
    due = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=4)
    response = system.api(
        "POST",
        "/v1/deadlines",
        scheduler,
        json={
            "id": "report",
            "title": {"en": "Report"},
            "due_at": due.isoformat(),
            "audience": {"cities": ["kathmandu", "laval"]},
            "reminders": ["-2s"],
            "delivery_hour": None,
        },
    )
    assert response.status_code == 201
    # both reminders reach Kafka while no consumer runs ...
    records = asyncio.run(consume(system.kafka, f"{system.prefix}deadline.reminder", 2))
    assert len(records) == 2
    assert {json.loads(r.value)["data"]["audience"]["cities"][0] for r in records} == {
        "kathmandu",
        "laval",
    }
    # ... then Laval submits, and only then do the consumers start
    submitted = system.api(
        "POST", "/v1/deadlines/report/submissions", scheduler, json={"city_id": "laval"}
    )
    assert submitted.status_code == 201
    start_all(system.service("email"), system.service("webhook"))
    assert system.mailbox.wait_for(1, timeout=60)
    assert system.receiver.inbox.wait_for_unique(1, timeout=30)
    system.caught_up("email", "webhook")  # anything for Laval would have been sent
    assert [str(m["To"]) for m in system.mailbox.messages] == [
        "Kathmandu <lll@kathmandu.example.org>"
    ]
    delivered = list(system.receiver.inbox.unique.values())
    assert [d.event["data"]["audience"]["cities"] for d in delivered] == [["kathmandu"]]
