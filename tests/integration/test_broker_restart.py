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

pytestmark = [pytest.mark.integration, pytest.mark.long]


def test_reminders_due_during_a_broker_restart_go_out_once(
    private_broker: PrivateBroker, system: System
) -> None:
    # (the broker first: torn down last, after the scheduler has stopped; the other way
    # round the scheduler's shutdown waited on a broker already gone, 30 s, then was killed)
    system.kafka = private_broker.address
    scheduler = system.service("scheduler", GNLC_CLAIM_TIMEOUT_SECONDS="3").start()
    # steps on and after the due moment (a missed one is still sent within the grace of an
    # hour), so the test waits on no margin for how long the broker takes to come back: the
    # first goes out, the second falls due while the broker is down, the third after it is
    # back (or, on a slow machine, while it starts: sent when it answers, as the second)
    due = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=3)
    response = system.api(
        "POST",
        "/v1/deadlines",
        scheduler,
        json={
            "id": "report",
            "title": {"en": "Report"},
            "due_at": due.isoformat(),
            "audience": {"cities": ["kathmandu", "laval"]},
            "reminders": ["0d", "+10s", "+24s"],
            "delivery_hour": None,
        },
    )
    assert response.status_code == 201
    first = asyncio.run(consume(system.kafka, f"{system.prefix}deadline.reminder", 2))
    assert len(first) == 2
    private_broker.run("stop")
    stopped = datetime.now(UTC)
    # the +10s step falls due while the broker is down: stopped before, started after
    assert stopped < due + timedelta(seconds=10), f"the broker took until {stopped} to stop"
    down_until = due + timedelta(seconds=10 + 1)
    time.sleep(max(0.0, (down_until - datetime.now(UTC)).total_seconds()))
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
