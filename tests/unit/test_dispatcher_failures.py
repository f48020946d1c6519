"""Rows the dispatcher cannot publish: retried with growing delays, then parked with their
reason, visible to the operator, and stopped by a withdrawal or a cancellation."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from aiokafka.errors import KafkaConnectionError, MessageSizeTooLargeError
from sqlalchemy import update

from gnlc_core.events import CloudEvent
from gnlc_scheduler import store
from gnlc_scheduler.dispatcher import Dispatcher, RetryPolicy
from gnlc_scheduler.tables import outbox
from tests.unit.scheduler_api import OperatorApi, operator_api

T0 = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


class Broken:
    """A publisher that fails with ``error`` while ``failing``, and records what it sent."""

    def __init__(self, error: Exception) -> None:
        self.error = error
        self.failing = True
        self.sent: list[str] = []
        self.calls = 0

    async def __call__(self, event: CloudEvent) -> None:
        self.calls += 1
        if self.failing:
            raise self.error
        self.sent.append(event.id)


class ReadBack:
    """What reading the topics back finds (``found``), or that it fails (``error``)."""

    def __init__(self) -> None:
        self.found: set[str] = set()
        self.error: Exception | None = None
        self.asked: list[tuple[set[str], datetime]] = []

    async def __call__(
        self, _bootstrap: str, _topics: set[str], since: datetime, event_ids: set[str]
    ) -> set[str]:
        self.asked.append((event_ids, since))
        if self.error is not None:
            raise self.error
        return self.found & event_ids


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[OperatorApi]:
    async with operator_api(tmp_path) as api:
        yield api


def dispatcher(
    api: OperatorApi, publish: Broken, clock: Clock, read_back: ReadBack | None = None
) -> Dispatcher:
    return Dispatcher(
        api.service.engine,
        api.service._broker,
        api.service.dispatcher._topics,
        bootstrap_servers="127.0.0.1:9",
        instance="test",
        grace=timedelta(days=365),
        clock=clock,
        retry=RetryPolicy(delays=(5, 60)),
        publish=publish,
        read_back=read_back or ReadBack(),
    )


async def announce(api: OperatorApi) -> str:
    response = await api.client.post(
        "/v1/announcements",
        json={
            "id": "workshop",
            "category": "workshop",
            "title": {"en": "Workshop"},
            "body": {"en": "Details follow."},
            "audience": {"all_members": True},
        },
    )
    assert response.status_code == 202, response.text
    # due at T0: the clock of the dispatcher under test
    async with api.service.engine.begin() as connection:
        await connection.execute(update(outbox).values(fire_at=T0 - timedelta(seconds=1)))
    return str(response.json()["event_id"])


@pytest.mark.parametrize(
    ("attempts", "error", "retry_in"),
    [
        (1, KafkaConnectionError(), timedelta(seconds=5)),
        (2, KafkaConnectionError(), timedelta(seconds=60)),
        (3, KafkaConnectionError(), None),  # the last attempt: parked
        (1, MessageSizeTooLargeError(), None),  # cannot heal: parked at once
        (1, ValueError("bad"), timedelta(seconds=5)),
    ],
)
def test_retry_policy(attempts: int, error: Exception, retry_in: timedelta | None) -> None:
    at = RetryPolicy(delays=(5, 60)).retry_at(attempts, T0, error)
    assert at == (T0 + retry_in if retry_in is not None else None)


async def test_a_failing_row_is_retried_with_backoff_then_parked(api: OperatorApi) -> None:
    event_id = await announce(api)
    clock, broken = Clock(), Broken(KafkaConnectionError())
    worker = dispatcher(api, broken, clock)
    await worker.wake()
    row = (await api.client.get("/v1/announcements/workshop")).json()["outbox"]
    assert (row["state"], row["attempts"]) == ("pending", 1)
    assert datetime.fromisoformat(row["next_attempt_at"]) == T0 + timedelta(seconds=5)
    assert "KafkaConnectionError" in row["last_error"]
    await worker.wake()  # not before its next attempt: no tight loop
    assert broken.calls == 1
    clock.now += timedelta(seconds=5)
    await worker.wake()
    clock.now += timedelta(seconds=60)
    await worker.wake()
    assert broken.calls == 3
    parked = (await api.client.get("/v1/outbox", params={"state": "parked"})).json()
    assert [(p["event_id"], p["attempts"]) for p in parked] == [(event_id, 3)]
    clock.now += timedelta(days=1)
    await worker.wake()
    assert broken.calls == 3  # parked rows are not retried
    assert (await api.client.get("/v1/announcements/workshop")).json()["state"] == "scheduled"


async def test_a_row_that_cannot_fit_is_parked_at_once_with_its_reason(api: OperatorApi) -> None:
    await announce(api)
    broken = Broken(MessageSizeTooLargeError("The message is 2097152 bytes"))
    await dispatcher(api, broken, Clock()).wake()
    row = (await api.client.get("/v1/announcements/workshop")).json()["outbox"]
    assert row["state"] == "parked"
    assert "2097152 bytes" in row["last_error"]


async def test_a_row_that_recovers_is_emitted(api: OperatorApi) -> None:
    event_id = await announce(api)
    clock, broken = Clock(), Broken(KafkaConnectionError())
    worker = dispatcher(api, broken, clock)
    await worker.wake()
    broken.failing = False
    clock.now += timedelta(seconds=5)
    await worker.wake()
    assert broken.sent == [event_id]
    stored = (await api.client.get("/v1/announcements/workshop")).json()
    assert (stored["state"], stored["outbox"]["state"]) == ("published", "emitted")


async def test_a_retry_does_not_publish_again_what_reached_kafka(api: OperatorApi) -> None:
    event_id = await announce(api)
    clock, broken, read_back = Clock(), Broken(KafkaConnectionError()), ReadBack()
    worker = dispatcher(api, broken, clock, read_back)
    await worker.wake()  # the broker wrote it, but the acknowledgement was lost
    assert read_back.asked == []  # a first attempt needs no reading back
    read_back.found = {event_id}
    broken.failing = False
    clock.now += timedelta(seconds=5)
    await worker.wake()
    assert broken.sent == []
    assert read_back.asked == [({event_id}, T0)]  # from the first failed attempt's claim
    stored = (await api.client.get("/v1/announcements/workshop")).json()
    assert (stored["state"], stored["outbox"]["state"]) == ("published", "emitted")


async def test_a_retry_waits_while_the_topics_cannot_be_read_back(api: OperatorApi) -> None:
    await announce(api)
    clock, broken, read_back = Clock(), Broken(KafkaConnectionError()), ReadBack()
    worker = dispatcher(api, broken, clock, read_back)
    await worker.wake()
    read_back.error = KafkaConnectionError("no broker")
    clock.now += timedelta(seconds=5)
    await worker.wake()
    assert broken.calls == 1
    row = (await api.client.get("/v1/announcements/workshop")).json()["outbox"]
    assert (row["state"], row["attempts"]) == ("pending", 2)
    assert "could not read back" in row["last_error"]


async def test_withdrawing_stops_a_failing_row(api: OperatorApi) -> None:
    await announce(api)
    clock, broken = Clock(), Broken(KafkaConnectionError())
    worker = dispatcher(api, broken, clock)
    await worker.wake()
    assert (await api.client.delete("/v1/announcements/workshop")).status_code == 204
    broken.failing = False
    clock.now += timedelta(hours=1)
    await worker.wake()
    assert broken.sent == []
    row = (await api.client.get("/v1/announcements/workshop")).json()["outbox"]
    assert row["state"] == "cancelled"


async def test_a_row_cancelled_while_it_is_being_published_stays_cancelled(
    api: OperatorApi,
) -> None:
    await announce(api)
    engine = api.service.engine
    claimed = await store.claim_due(engine, now=T0, instance="a", limit=10)
    assert len(claimed) == 1
    await store.withdraw_announcement(engine, "workshop", T0)
    await store.failed(engine, [store.Failure(claimed[0], "KafkaConnectionError", T0)])
    await store.settle(engine, emitted=claimed, skipped=[], at=T0)
    row = (await api.client.get("/v1/announcements/workshop")).json()
    assert (row["state"], row["outbox"]["state"]) == ("withdrawn", "cancelled")


async def test_cancelling_a_deadline_stops_its_parked_reminders(api: OperatorApi) -> None:
    response = await api.client.post(
        "/v1/deadlines",
        json={
            "id": "report",
            "title": {"en": "Report"},
            "due_at": "2030-01-02T12:00:00Z",
            "audience": {"cities": ["kathmandu"]},
            "reminders": ["-1d"],
        },
    )
    assert response.status_code == 201, response.text
    async with api.service.engine.begin() as connection:
        await connection.execute(update(outbox).values(fire_at=T0 - timedelta(seconds=1)))
    await dispatcher(api, Broken(MessageSizeTooLargeError()), Clock()).wake()
    detail = (await api.client.get("/v1/deadlines/report")).json()
    assert detail["outbox"] == {"parked": 1}
    assert [p["step"] for p in detail["parked"]] == ["1d-before"]
    cancelled = await api.client.delete("/v1/deadlines/report")
    assert cancelled.json() == {"reminders_cancelled": 1}
    parked = (await api.client.get("/v1/outbox", params={"state": "parked"})).json()
    # only the plan's receipt, which the same broken broker could not take either
    assert [row["type"] for row in parked] == ["notice.status"]
