"""The one delivery loop (``gnlc_core.deliveries``) with a fake channel, table-driven:
records that are no events parked, settled notices skipped (looked up only where the fence
says so), each outcome a notice state, and what follows a failure (retry or park)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import pytest
from aiokafka import ConsumerRecord
from faststream.kafka import KafkaBroker

from gnlc_core.consumer import Event, Read, decode
from gnlc_core.deliveries import UNREADABLE_DUE, Batch, DeliveryLoop, Target
from gnlc_core.kafka import REASON_HEADER, RECIPIENT_HEADER, Topics
from gnlc_core.ledger import Ledger, Notice, Status
from gnlc_core.notices import Step
from gnlc_core.receipts import Subjects
from gnlc_core.retry import ATTEMPT_HEADER, Due, Retrier, RetrySchedule
from tests.unit import kafka_fakes
from tests.unit.kafka_fakes import RecordingBroker

EXAMPLE = (
    Path(__file__).resolve().parents[2]
    / "schemas/examples/deadline.reminder/valid/overdue-minimal.json"
)
EVENT_ID = "1fbcfa17-9717-5eed-b918-c4062534eda3"
TOPICS = Topics("unit.")
DEAD = TOPICS.dead_letter("fake")


def on(broker: RecordingBroker, *, dead: bool) -> list[dict[str, str]]:
    """The headers of what ``broker`` published on the dead-letter topic (or elsewhere)."""
    return [h for t, _v, h in broker.published if (t == DEAD) is dead]


@dataclass
class FakeLedger:
    settled: set[tuple[str, str]] = field(default_factory=set)
    asked: list[tuple[str, str]] = field(default_factory=list)

    async def settled_many(self, pairs: Any) -> set[tuple[str, str]]:
        wanted = list(pairs)
        self.asked += wanted
        return {pair for pair in wanted if pair in self.settled}


@dataclass
class Writes:
    notices: list[Notice] = field(default_factory=list)
    closed: bool = False

    def add(self, notice: Notice, job: Any) -> None:
        self.notices.append(notice)

    async def close(self) -> None:
        self.closed = True


@dataclass(frozen=True)
class Job:
    event: Event
    recipient: str
    attempt: int = 1
    forced: bool = False


#: How the fake channel's send goes for a recipient: a step, or a failed request
#: ("transient", "permanent").
Plan = dict[str, Step | str]


class FakeChannel:
    """Sends to ``recipients``; each outcome as ``plan`` says (delivered by default)."""

    def __init__(self, recipients: Sequence[str], plan: Plan) -> None:
        self.recipients = recipients
        self.plan = plan
        self.sent: list[str] = []
        self.subjects = Subjects()
        self.ledger = FakeLedger()
        self.broker = RecordingBroker()
        self.loop: DeliveryLoop[Event, Job, Writes] = DeliveryLoop(
            self,
            name="fake",
            broker=cast("KafkaBroker", self.broker),
            retrier=Retrier(
                cast("KafkaBroker", self.broker),
                TOPICS,
                "fake",
                RetrySchedule((60.0,), jitter=0.0),
                dead_letter_topic=DEAD,
            ),
            ledger=lambda: cast("Ledger", self.ledger),
            dead_letter_topic=DEAD,
            subjects=self.subjects,
            source_topic=TOPICS.for_event_type,
            group="unit.fake",
        )

    def decode(self, value: bytes) -> Event | str:
        return decode(value)

    def writes(self, *, first: bool) -> Writes:
        return Writes()

    def target(self, job: Job) -> Target:
        return Target(job.event, job.recipient, job.attempt, b"body", None, forced=job.forced)

    async def jobs(self, batch: Batch[Job, Writes], read: Read[Event]) -> list[Job]:
        return [Job(read.event, recipient) for recipient in self.recipients]

    async def due_job(self, batch: Batch[Job, Writes], due: Due, event: Event) -> Job:
        recipient = due.recipient.removeprefix("resend:")
        return Job(event, recipient, due.attempt, forced=due.recipient != recipient)

    async def send(self, batch: Batch[Job, Writes], jobs: Sequence[Job]) -> None:
        for job in jobs:
            self.sent.append(job.recipient)
            how = self.plan.get(job.recipient, Step.DELIVERED)
            if isinstance(how, Step):
                await self.loop.settle(batch, job, how, None if how is Step.DELIVERED else "why")
            else:
                notice = await self.loop.failed(job, "no", permanent=how == "permanent")
                batch.writes.add(notice, job)


def channel(recipients: Sequence[str] = ("a",), plan: Plan | None = None) -> FakeChannel:
    return FakeChannel(recipients, plan or {})


def record(offset: int, value: bytes) -> ConsumerRecord[bytes, bytes]:
    return kafka_fakes.record("unit.deadline.reminder", offset, value)


@pytest.mark.parametrize(
    ("values", "parked", "sent"),
    [
        ([b"{not json"], 1, []),
        ([b"{not json", EXAMPLE.read_bytes()], 1, ["a"]),
        ([EXAMPLE.read_bytes(), EXAMPLE.read_bytes()], 0, ["a"]),  # one event twice: once
    ],
)
async def test_a_record_that_is_no_event_is_parked_and_the_rest_goes_on(
    values: list[bytes], parked: int, sent: list[str]
) -> None:
    fake = channel()
    batch = await fake.loop.handle([record(i, v) for i, v in enumerate(values)])
    assert len(on(fake.broker, dead=True)) == parked == batch.unreadable
    assert fake.sent == sent
    assert batch.writes.closed


@pytest.mark.parametrize(
    ("maybe_handled", "asked", "sent"),
    [
        (None, ["a", "b"], ["a"]),  # no fence: every notice looked up, the settled skipped
        ([True], ["a", "b"], ["a"]),
        ([False], [], ["a", "b"]),  # the fence says never handled: no lookup at all
    ],
)
async def test_settled_notices_are_skipped_where_they_may_be(
    maybe_handled: list[bool] | None, asked: list[str], sent: list[str]
) -> None:
    fake = channel(["a", "b"])
    fake.ledger.settled = {(EVENT_ID, "b")}
    await fake.loop.handle([record(0, EXAMPLE.read_bytes())], maybe_handled=maybe_handled)
    assert [r for _e, r in fake.ledger.asked] == asked
    assert fake.sent == sent


@pytest.mark.parametrize(
    ("due", "asked", "sent"),
    [
        ([Due(EXAMPLE.read_bytes(), "b", 2)], ["b"], []),  # settled meanwhile
        ([Due(EXAMPLE.read_bytes(), "resend:b", 1)], [], ["b"]),  # a resend: never looked up
        ([Due(EXAMPLE.read_bytes(), "a", 2), Due(EXAMPLE.read_bytes(), "a", 2)], ["a"], ["a"]),
        ([Due(EXAMPLE.read_bytes(), "b", 2), Due(EXAMPLE.read_bytes(), "resend:b", 1)], [], ["b"]),
    ],
)
async def test_due_records_one_delivery_per_notice(
    due: list[Due], asked: list[str], sent: list[str]
) -> None:
    fake = channel()
    fake.ledger.settled = {(EVENT_ID, "b")}
    await fake.loop.deliver_due(due)
    assert [r for _e, r in fake.ledger.asked] == asked
    assert fake.sent == sent


async def test_an_unreadable_due_record_is_parked() -> None:
    fake = channel()
    batch = await fake.loop.deliver_due([Due(b"{not json", "a", 2)])
    [parked] = on(fake.broker, dead=True)
    assert parked[REASON_HEADER] == UNREADABLE_DUE
    assert parked[RECIPIENT_HEADER] == "a"
    assert fake.sent == []
    assert batch.unreadable == 1


@pytest.mark.parametrize(
    ("how", "attempt", "status", "attempts", "retried", "parked"),
    [
        (Step.DELIVERED, 1, Status.DELIVERED, 1, None, None),
        (Step.DROPPED, 2, Status.DROPPED, 1, None, None),
        (Step.HELD, 1, Status.HELD, 0, None, None),
        (Step.UNSENDABLE, 1, Status.FAILED, 0, None, "why"),
        (Step.EXPIRED, 3, Status.FAILED, 2, None, "gave up after 2 attempts: why"),
        ("transient", 1, Status.RETRYING, 1, "2", None),
        ("transient", 2, Status.FAILED, 2, None, "gave up after 2 attempts: no"),
        ("permanent", 1, Status.FAILED, 1, None, "permanent failure: no"),
    ],
)
async def test_each_outcome_is_a_state_and_a_failure_is_retried_or_parked(
    how: Step | str,
    attempt: int,
    status: Status,
    attempts: int,
    retried: str | None,
    parked: str | None,
) -> None:
    fake = channel(plan={"a": how})
    batch = await fake.loop.deliver_due([Due(EXAMPLE.read_bytes(), "a", attempt)])
    [notice] = batch.writes.notices
    assert (notice.status, notice.attempts) == (status, attempts)
    retries = on(fake.broker, dead=False)
    assert [h[ATTEMPT_HEADER] for h in retries] == ([retried] if retried else [])
    dead = on(fake.broker, dead=True)
    assert [h[REASON_HEADER] for h in dead] == ([parked] if parked else [])
    assert all(h[RECIPIENT_HEADER] == "a" for h in dead)


async def test_a_failed_send_writes_what_was_settled_before_it() -> None:
    seen: list[Batch[Job, Writes]] = []

    class Crashing(FakeChannel):
        async def send(self, batch: Batch[Job, Writes], jobs: Sequence[Job]) -> None:
            seen.append(batch)
            await self.loop.settle(batch, jobs[0], Step.DELIVERED)
            raise RuntimeError("the database is away")

    fake = Crashing(["a", "b"], {})
    with pytest.raises(RuntimeError):
        await fake.loop.handle([record(0, EXAMPLE.read_bytes())])
    [batch] = seen
    assert batch.writes.closed
    assert [n.recipient for n in batch.writes.notices] == ["a"]
