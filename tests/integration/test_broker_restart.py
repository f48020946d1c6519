"""The scheduler rides out a broker restart: reminders that fall due while the broker is
down go out when it is back, each once. A private broker, so nothing else is disturbed."""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest

from tests.integration.conftest import PrivateBroker, System
from tests.integration.kafka_io import consume, read_all
from tests.support import eventually

pytestmark = pytest.mark.integration


def test_reminders_due_during_a_broker_restart_go_out_once(
    system: System, private_broker: PrivateBroker
) -> None:
    system.kafka = private_broker.address
    scheduler = system.service("scheduler", GNLC_CLAIM_TIMEOUT_SECONDS="3").start()
    # the broker is back 25 s before the due moment, however long it takes to stop: after
    # it, a "before" step that missed its moment would (rightly) be skipped
    due = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=40)
    response = system.api(
        "POST",
        "/v1/deadlines",
        scheduler,
        json={
            "id": "report",
            "title": {"en": "Report"},
            "due_at": due.isoformat(),
            "audience": {"cities": ["kathmandu", "laval"]},
            "reminders": ["-36s", "-26s", "0d"],
            "delivery_hour": None,
        },
    )
    assert response.status_code == 201
    first = asyncio.run(consume(system.kafka, f"{system.prefix}deadline.reminder", 2))
    assert len(first) == 2
    private_broker.run("stop")  # the -26s step falls due while the broker is down
    time.sleep(max(0.0, (due - datetime.now(UTC)).total_seconds() - 25))
    private_broker.run("start")
    topic = f"{system.prefix}deadline.reminder"
    assert len(asyncio.run(consume(system.kafka, topic, 6, wait_seconds=90))) == 6
    eventually(  # settled: every step emitted (or skipped), so nothing more will come
        lambda: (
            system.api("GET", "/v1/schedule", scheduler, params={"deadline_id": "report"}).json()
            == []
        ),
        timeout=30,
        what="the plan to settle",
    )
    records = asyncio.run(read_all(system.kafka, topic))  # and no more
    ids = Counter(json.loads(r.value)["id"] for r in records if r.value is not None)
    assert len(ids) == 6, scheduler.tail()
    assert max(ids.values()) == 1
