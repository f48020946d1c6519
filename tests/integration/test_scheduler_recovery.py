"""Crash safety of the scheduler: a restart mid-plan loses nothing and emits nothing twice;
missed reminders follow the documented policy; two instances on one PostgreSQL emit every
reminder exactly once, even when one of them is killed mid-run."""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.integration.conftest import System
from tests.integration.kafka_io import read_all
from tests.support import Service, eventually, start_all

pytestmark = pytest.mark.integration


def post_deadline(system: System, scheduler: Service, **fields: Any) -> list[dict[str, Any]]:
    body = {"id": "report", "title": {"en": "Report"}, "delivery_hour": None} | fields
    response = system.api("POST", "/v1/deadlines", scheduler, json=body)
    assert response.status_code == 201, response.text
    return list(response.json()["scheduled"])


def pending(system: System, scheduler: Service) -> int:
    response = system.api("GET", "/v1/schedule", scheduler, params={"limit": 10000})
    return len(response.json())


def every_reminder(system: System) -> list[dict[str, Any]]:
    """Every reminder on Kafka now (read to the end: exact once the plan has settled)."""
    records = asyncio.run(read_all(system.kafka, f"{system.prefix}deadline.reminder"))
    return [json.loads(r.value) for r in records if r.value is not None]


@pytest.mark.parametrize("database_url", ["sqlite", "postgresql"], indirect=True)
def test_restart_mid_plan_loses_nothing_and_repeats_nothing(system: System) -> None:
    scheduler = system.service("scheduler").start()
    # the due moment first, then steps 3 s apart after it (a missed one is still sent within
    # the grace of an hour): however long the restart takes, nothing is rightly skipped
    due = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=2)
    scheduled = post_deadline(
        system,
        scheduler,
        due_at=due.isoformat(),
        audience={"cities": ["kathmandu", "laval", "durban"]},
        reminders=["0d", "+3s", "+6s", "+9s", "+12s"],
    )
    assert len(scheduled) == 15
    eventually(
        lambda: pending(system, scheduler) <= 12, timeout=30, what="the first step to go out"
    )
    scheduler.kill()  # a crash between two steps
    killed = datetime.now(UTC)
    assert killed < due + timedelta(seconds=3), f"killed at {killed}, after the second step"
    # only the due moment's step went out, or is on its way: the API stops listing a row
    # once an instance claims it, and a kill between the claim and the publication leaves
    # it to the restarted instance (checked below: all 15, none twice)
    before = every_reminder(system)
    assert len(before) <= 3, before
    assert {event["data"]["step"] for event in before} <= {"due"}, before
    # the +3s step falls due while nobody runs
    time.sleep(max(0.0, (due + timedelta(seconds=3.5) - datetime.now(UTC)).total_seconds()))
    # a claim of the killed instance is taken over once it is 3 s old
    restarted = system.service("scheduler", GNLC_CLAIM_TIMEOUT_SECONDS="3").start()
    eventually(
        lambda: pending(system, restarted) == 0 and len(every_reminder(system)) >= 15,
        timeout=40,
        every=0.5,
        what="every step to go out",
    )

    events = every_reminder(system)
    ids = Counter(event["id"] for event in events)
    assert len(ids) == 15, sorted(e["data"]["step"] for e in events)
    assert max(ids.values()) == 1, "an event was emitted twice"
    steps = Counter(event["data"]["step"] for event in events)
    overdue = [f"{n}s-overdue" for n in (3, 6, 9, 12)]
    assert steps == dict.fromkeys(("due", *overdue), 3)


def test_after_the_due_moment_no_before_reminder_goes_out(system: System) -> None:
    scheduler = system.service("scheduler").start()
    due = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=6)
    post_deadline(
        system,
        scheduler,
        due_at=due.isoformat(),
        audience={"cities": ["kathmandu"]},
        reminders=["-3s", "0d", "+2s"],
    )
    scheduler.kill()  # down before anything fired, back after the due moment
    time.sleep(max(0.0, (due - datetime.now(UTC)).total_seconds()) + 3)
    restarted = system.service("scheduler").start()
    eventually(lambda: pending(system, restarted) == 0, timeout=30, what="the plan to settle")
    events = every_reminder(system)
    assert sorted(e["data"]["step"] for e in events) == ["2s-overdue", "due"]


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_two_instances_emit_each_reminder_once_even_when_one_dies(system: System) -> None:
    fast = {"GNLC_CLAIM_TIMEOUT_SECONDS": "2", "GNLC_SWEEP_SECONDS": "0.2"}
    first, second = start_all(  # side by side (the migration lock serialises them)
        system.service("scheduler", **fast), system.service("scheduler", **fast)
    )
    due = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=10)
    scheduled = post_deadline(
        system,
        first,
        due_at=due.isoformat(),
        audience={"all_members": True},
        reminders=[f"-{n}s" for n in range(8, 0, -1)] + ["0d"],
    )
    total = len(scheduled)
    assert total >= 200
    time.sleep(max(0.0, (due - datetime.now(UTC)).total_seconds()) - 6)
    first.kill()  # mid-run: the other instance carries on and takes over its claims
    eventually(
        lambda: pending(system, second) == 0,
        timeout=40,
        what="the other instance to finish the plan",
    )
    events = every_reminder(system)
    ids = Counter(event["id"] for event in events)
    assert len(ids) == total
    assert max(ids.values()) == 1, [i for i, n in ids.items() if n > 1][:5]
