"""The scheduler's receipts: a plan's steps scheduled, a submission's dropped, the emitted
ones sent; written to the outbox with the change, published by the dispatcher, and folded
into the status view as such."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select, update

from gnlc_core.db import create_engine, migrate
from gnlc_core.events import CloudEvent, NoticeStatusEvent
from gnlc_core.receipts import RECEIPT_TYPE
from gnlc_scheduler.tables import outbox
from gnlc_status import view
from tests.unit.scheduler_api import OperatorApi, operator_api
from tests.unit.test_dispatcher_failures import T0, Broken, Clock, dispatcher


class Recorder(Broken):
    """A publisher that works and keeps every event it was given."""

    def __init__(self) -> None:
        super().__init__(RuntimeError("unused"))
        self.failing = False
        self.events: list[CloudEvent] = []

    async def __call__(self, event: CloudEvent) -> None:
        await super().__call__(event)
        self.events.append(event)


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[OperatorApi]:
    async with operator_api(tmp_path) as api:
        yield api


async def test_a_plan_submissions_and_emission_reach_the_view(
    api: OperatorApi, tmp_path: Path
) -> None:
    created = await api.client.post(
        "/v1/deadlines",
        json={
            "id": "report",
            "title": {"en": "Report"},
            "due_at": "2030-01-09T12:00:00Z",
            "audience": {"cities": ["durban", "suwon"]},
            "reminders": ["-7d", "-1d"],
        },
    )
    assert created.status_code == 201, created.text
    submitted = await api.client.post(
        "/v1/deadlines/report/submissions", json={"city_id": "durban"}
    )
    assert submitted.status_code == 201, submitted.text
    async with api.service.engine.begin() as connection:  # everything due now
        await connection.execute(
            update(outbox)
            .where(outbox.c.type != RECEIPT_TYPE)
            .values(fire_at=T0 - timedelta(seconds=1))
        )
        receipts_written = (
            (await connection.execute(select(outbox.c.data).where(outbox.c.type == RECEIPT_TYPE)))
            .scalars()
            .all()
        )
    assert sorted((r["recipient"], r["step"], r["state"]) for r in receipts_written) == [
        ("durban", "1d-before", "dropped"),
        ("durban", "1d-before", "scheduled"),
        ("durban", "7d-before", "dropped"),
        ("durban", "7d-before", "scheduled"),
        ("suwon", "1d-before", "scheduled"),
        ("suwon", "7d-before", "scheduled"),
    ]
    assert all(r["send_at"] for r in receipts_written if r["state"] == "scheduled")

    publish = Recorder()
    run = dispatcher(api, publish, Clock())
    await run.wake()  # the reminders and the receipts so far
    await run.wake()  # the receipts of what was just emitted
    receipts = [e.data for e in publish.events if isinstance(e, NoticeStatusEvent)]
    reminders = [e for e in publish.events if e.type == "deadline.reminder"]
    assert len(reminders) == 2  # suwon's two steps; durban submitted

    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'status.db'}")
    await migrate(engine, "status")
    await view.apply(engine, receipts)
    rows = await view.notices(engine, view.Filters(deadline_id="report"), limit=10, offset=0)
    await engine.dispose()
    assert [(r["city_id"], r["step"], r["channel"], r["state"], r["reason"]) for r in rows] == [
        ("durban", "1d-before", "schedule", "dropped", "submitted"),
        ("durban", "7d-before", "schedule", "dropped", "submitted"),
        ("suwon", "1d-before", "schedule", "sent", "on Kafka: handed to the channels"),
        ("suwon", "7d-before", "schedule", "sent", "on Kafka: handed to the channels"),
    ]
    assert {r["event_id"] for r in rows if r["city_id"] == "suwon"} == {e.id for e in reminders}


async def test_steps_left_out_or_taken_out_of_the_plan_are_dropped(api: OperatorApi) -> None:
    body = {
        "id": "survey",
        "title": {"en": "Survey"},
        "due_at": "2030-01-09T12:00:00Z",
        "audience": {"cities": ["suwon"]},
        "reminders": ["-7d", "-1d"],
    }
    assert (await api.client.post("/v1/deadlines", json=body)).status_code == 201
    edited = await api.client.patch(
        "/v1/deadlines/survey",
        json={"reminders": ["-1d"]},
        headers={"content-type": "application/merge-patch+json"},
    )
    assert edited.status_code == 200, edited.text
    async with api.service.engine.connect() as connection:
        written = (
            (await connection.execute(select(outbox.c.data).where(outbox.c.type == RECEIPT_TYPE)))
            .scalars()
            .all()
        )
    latest = {}
    for receipt in sorted(written, key=lambda r: r["state_time"]):  # the last word per step
        latest[receipt["step"]] = (receipt["state"], receipt.get("reason"))
    assert latest == {
        "7d-before": ("dropped", "no longer in the plan"),
        "1d-before": ("scheduled", None),
    }
