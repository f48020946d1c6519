"""The webhook consumer itself, in milliseconds: requests go to an ``httpx.MockTransport``
behind its ``Poster``, Kafka is a fake that keeps what is published, the retry tiers a fake
``Retrier`` that keeps what is scheduled, the ledger and log a real SQLite store, and the
wall clock a fake one. (The real broker and HTTP servers are in the integration tests.)"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from typing import Any, cast

import httpx
import pytest
from aiokafka import ConsumerRecord
from faststream.kafka import KafkaBroker
from faststream.kafka.annotations import KafkaMessage
from opentelemetry.trace import SpanKind, StatusCode
from sqlalchemy import select

from gnlc_core.db import create_engine, migrate
from gnlc_core.kafka import REASON_HEADER, Topics, publish_dead_letter
from gnlc_core.ledger import Ledger, Status, notices
from gnlc_core.retry import Due, Retrier, RetrySchedule
from gnlc_webhook.consumer import RELEASED, WebhookConsumer
from gnlc_webhook.policy import Limits
from gnlc_webhook.registry import Event, Registry
from gnlc_webhook.store import CHANNEL, EndpointRow, State, Store
from gnlc_webhook.transport import Poster
from tests.tracing_support import named, parent_id, recording, span_id, trace_id, traceparent
from tests.unit.kafka_fakes import RecordingBroker, record

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "schemas/examples/deadline.reminder/valid/overdue-minimal.json"
TOPICS = Topics("unit.")
START = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
SCHEDULE = RetrySchedule((5.0, 300.0), jitter=0.0)
SECRET = "whsec_" + "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


def event_value(
    number: int, traceparent: str | None = None, key: str | None = None
) -> tuple[str, bytes]:
    value = json.loads(EXAMPLE.read_text())
    value["id"] = f"00000000-0000-4000-8000-{number:012d}"
    if traceparent is not None:
        value["traceparent"] = traceparent
    if key is not None:
        value["partitionkey"] = key
    return value["id"], json.dumps(value).encode()


class Clock:
    """The consumer's wall clock, moved by hand."""

    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> datetime:
        return self.now


@dataclass
class Scheduled:
    recipient: str
    attempt: int
    delay: float
    reason: str
    value: bytes
    first_attempt: str | None = None


@dataclass
class FakeRetrier:
    """What the consumer asks of the retry tiers, kept; what it parks for good goes to
    ``broker``'s dead-letter topic."""

    broker: RecordingBroker
    scheduled: list[Scheduled] = field(default_factory=list)
    given_up: list[tuple[str, int, str]] = field(default_factory=list)

    follow = Retrier.follow  # what follows a failure: the real decision, carried out here

    async def park(
        self, value: bytes, *, key: bytes | None, recipient: str, reason: str, source_topic: str
    ) -> None:
        await publish_dead_letter(
            cast("KafkaBroker", self.broker),
            TOPICS.webhook_dead_letter,
            value=value,
            key=key,
            reason=reason,
            source_topic=source_topic,
            recipient=recipient,
        )

    async def schedule(
        self,
        value: bytes,
        *,
        key: bytes | None,
        recipient: str,
        attempt: int,
        delay: float,
        reason: str,
        first_attempt: str | None = None,
    ) -> None:
        self.scheduled.append(Scheduled(recipient, attempt, delay, reason, value, first_attempt))

    async def schedule_many(
        self, values: list[bytes], *, recipient: str, attempt: int, delay: float, reason: str
    ) -> None:
        for value in values:
            self.scheduled.append(Scheduled(recipient, attempt, delay, reason, value))

    async def give_up(
        self,
        value: bytes,
        *,
        key: bytes | None,
        recipient: str,
        attempts: int,
        reason: str,
        source_topic: str,
    ) -> None:
        self.given_up.append((recipient, attempts, reason))

    def due(self) -> list[Due]:
        """Everything scheduled, as the tier consumer hands it over when due (and forgets)."""
        due = [Due(s.value, s.recipient, s.attempt, s.first_attempt) for s in self.scheduled]
        self.scheduled.clear()
        return due


class FakeRegistry:
    """The endpoints in memory, every one subscribed to every event."""

    def __init__(self, *rows: EndpointRow) -> None:
        self.rows = {row.id: row for row in rows}

    def get(self, endpoint_id: str) -> EndpointRow | None:
        return self.rows.get(endpoint_id)

    def subscribed(self, event: Event) -> list[EndpointRow]:
        return list(self.rows.values())

    def update(self, endpoint_id: str, **changes: Any) -> EndpointRow | None:
        self.rows[endpoint_id] = replace(self.rows[endpoint_id], **changes)
        return self.rows[endpoint_id]


Answer = Callable[[httpx.Request], Awaitable[httpx.Response]]


class Partner:
    """The endpoint's side: answers each request with ``answer`` and counts them."""

    def __init__(self, answer: Answer) -> None:
        self.answer = answer
        self.requests: list[httpx.Request] = []

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return await self.answer(request)


def status(code: int, **headers: str) -> Answer:
    async def answer(_request: httpx.Request) -> httpx.Response:
        return httpx.Response(code, headers=headers)

    return answer


@dataclass
class Rig:
    consumer: WebhookConsumer
    partner: Partner
    broker: RecordingBroker
    retrier: FakeRetrier
    registry: FakeRegistry
    ledger: Ledger
    clock: Clock
    engine: Any

    async def batch(
        self,
        *numbers: int,
        garbage: bytes | None = None,
        traceparent: str | None = None,
        keys: dict[int, str] | None = None,
    ) -> list[str]:
        """One batch of events from the domain topic (``garbage`` first, when given; the
        first event with ``traceparent``, when given; partition keys by number from
        ``keys``); returns their ids."""
        ids: list[str] = []
        values = [
            event_value(number, traceparent if i == 0 else None, (keys or {}).get(number))
            for i, number in enumerate(numbers)
        ]
        if garbage is not None:
            values.insert(0, ("", garbage))
        records = []
        for offset, (event_id, value) in enumerate(values):
            if event_id:
                ids.append(event_id)
            records.append(record(TOPICS.deadline_reminder, offset, value, key=b"k"))
        await self.consumer.handle_batch(cast("KafkaMessage", Message(tuple(records))))
        return ids

    async def row(self, event_id: str, recipient: str = "e1") -> tuple[Status, int, str | None]:
        query = select(notices.c.status, notices.c.attempts, notices.c.last_error).where(
            notices.c.event_id == event_id,
            notices.c.channel == CHANNEL,
            notices.c.recipient == recipient,
        )
        async with self.engine.connect() as connection:
            found = (await connection.execute(query)).one()
        return Status(found.status), found.attempts, found.last_error


@dataclass
class Message:
    raw_message: tuple[ConsumerRecord[bytes, bytes], ...]


def endpoint(**changes: Any) -> EndpointRow:
    row = EndpointRow(
        "e1", "p1", "https://partner.example/hook", ("deadline.reminder",), secret=SECRET
    )
    return replace(row, **changes)


@pytest.fixture
async def engine(tmp_path: Path) -> AsyncIterator[Any]:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'unit.db'}")
    await migrate(engine, "webhook")
    yield engine
    await engine.dispose()


RigOf = Callable[..., Rig]


@pytest.fixture
def rig(engine: Any) -> RigOf:
    def make(
        answer: Answer,
        *,
        row: EndpointRow | None = None,
        schedule: RetrySchedule = SCHEDULE,
        **limits: Any,
    ) -> Rig:
        partner = Partner(answer)
        poster = Poster(httpx.MockTransport(partner), connect_timeout=1.0, timeout=5.0)
        broker, clock = RecordingBroker(), Clock()
        retrier = FakeRetrier(broker)
        registry = FakeRegistry(row or endpoint())
        consumer = WebhookConsumer(
            cast("KafkaBroker", broker),
            TOPICS,
            Store(engine),
            cast("Registry", registry),
            poster,
            cast("Retrier", retrier),
            schedule,
            limits=Limits(**{"handoff": 0.05, "timeout": 5.0, **limits}),
            clock=clock,
        )
        return Rig(
            consumer, partner, broker, retrier, registry, Ledger(engine, CHANNEL), clock, engine
        )

    return make


async def test_a_delivery_is_signed_and_recorded_with_one_request(rig: RigOf) -> None:
    r = rig(status(204))
    [event_id] = await r.batch(1)
    [request] = r.partner.requests
    assert request.headers["webhook-id"] == event_id
    assert request.headers["webhook-signature"].startswith("v1,")
    assert await r.row(event_id) == (Status.DELIVERED, 1, None)
    await r.batch(1)  # the same record again (a redelivery): settled, not sent
    assert len(r.partner.requests) == 1


async def test_a_hanging_request_is_handed_off_and_settles_later(rig: RigOf) -> None:
    answered = asyncio.Event()

    async def hang(_request: httpx.Request) -> httpx.Response:
        await answered.wait()
        return httpx.Response(200)

    r = rig(hang)
    started = time.monotonic()
    [event_id] = await r.batch(1)
    assert time.monotonic() - started < 1.0  # the batch did not wait for the request
    [handoff] = r.retrier.scheduled
    assert (handoff.attempt, handoff.reason) == (2, "handed off while in flight")
    assert handoff.delay > 5.0  # after the timeout, plus the schedule's delay
    answered.set()
    await r.consumer.drain()  # the request in the background finishes
    assert await r.row(event_id) == (Status.DELIVERED, 1, None)
    await r.consumer.deliver_due(r.retrier.due())  # the hand-off's retry: settled already
    assert len(r.partner.requests) == 1


async def test_deliveries_are_held_while_the_endpoint_hangs_then_released(rig: RigOf) -> None:
    answered = asyncio.Event()

    async def hang_first(request: httpx.Request) -> httpx.Response:
        if len(r.partner.requests) == 1:
            await answered.wait()
        return httpx.Response(200)

    r = rig(hang_first, row=endpoint(max_concurrency=1), hold_check=0.01)
    [first] = await r.batch(1)  # handed off: the lane is slow and full
    r.retrier.scheduled.clear()
    held = await r.batch(2, 3)
    for event_id in held:  # put aside without a request, an attempt or a Kafka record
        assert await r.row(event_id) == (Status.HELD, 0, "held: 1 requests in flight")
    assert r.retrier.scheduled == []
    assert len(r.partner.requests) == 1

    r.consumer.start()  # the sweeper: nothing released while the endpoint hangs
    await asyncio.sleep(0.05)
    assert r.retrier.scheduled == []
    answered.set()  # it answers: one probe, then (the lane fast again) the rest
    deadline = time.monotonic() + 10  # bounded; about 50 ms on a quiet machine
    while len(r.partner.requests) < 3 and time.monotonic() < deadline:
        await asyncio.sleep(0.01)
        if r.retrier.scheduled:
            await r.consumer.deliver_due(r.retrier.due())
    await r.consumer.drain()
    for event_id in (first, *held):
        assert await r.row(event_id) == (Status.DELIVERED, 1, None)
    assert len(r.partner.requests) == 3


async def test_released_deliveries_go_at_the_attempt_they_were_held_at(rig: RigOf) -> None:
    r = rig(status(200), hold_check=0.01)
    [event_id] = await r.batch(7)  # the payload is stored with the batch
    assert await r.row(event_id) == (Status.DELIVERED, 1, None)
    await r.ledger.record(event_id, "e1", Status.HELD, attempts=2, error="held: x")
    r.consumer.start()
    for _ in range(100):  # scheduled again, then marked retrying through the ledger
        await asyncio.sleep(0.01)
        if r.retrier.scheduled and (await r.row(event_id))[0] is Status.RETRYING:
            break
    await r.consumer.drain()
    [released] = r.retrier.scheduled
    assert (released.attempt, released.reason) == (3, RELEASED)  # two requests were made
    assert (await r.row(event_id))[:2] == (Status.RETRYING, 2)


async def test_410_disables_the_endpoint_and_parks_the_notice(rig: RigOf) -> None:
    r = rig(status(410))
    [event_id] = await r.batch(1)
    assert await r.row(event_id) == (Status.FAILED, 1, "http 410: the endpoint is gone")
    row = r.registry.get("e1")
    assert row is not None
    assert row.state is State.DISABLED
    assert row.state_reason == "the endpoint answered 410 Gone"
    [(_, parked)] = r.broker.on(TOPICS.webhook_dead_letter)
    assert parked[REASON_HEADER] == "http 410: the endpoint is gone"
    [(operation, _)] = r.broker.on(f"{TOPICS.prefix}webhook.operations")
    assert "disabled" in str(operation)
    assert r.retrier.scheduled == []
    [later] = await r.batch(2)  # nothing more goes there
    assert len(r.partner.requests) == 1
    assert (await r.row(later))[:2] == (Status.DROPPED, 0)


async def test_a_failure_is_retried_and_the_last_attempt_gives_up(rig: RigOf) -> None:
    r = rig(status(500), schedule=RetrySchedule((5.0,), jitter=0.0))
    [event_id] = await r.batch(1)
    [retry] = r.retrier.scheduled
    assert (retry.attempt, retry.delay, retry.reason) == (2, 5.0, "http 500")
    assert await r.row(event_id) == (Status.RETRYING, 1, "http 500")
    await r.consumer.deliver_due(r.retrier.due())  # attempt 2 is the last one
    assert r.retrier.given_up == [("e1", 2, "http 500")]
    assert r.retrier.scheduled == []
    assert await r.row(event_id) == (Status.FAILED, 2, "gave up: http 500")
    assert len(r.partner.requests) == 2


async def test_the_final_check_of_a_handed_off_last_attempt_gives_up_without_a_request(
    rig: RigOf,
) -> None:
    r = rig(status(500), schedule=RetrySchedule((5.0,), jitter=0.0))
    event_id, value = event_value(3)
    await r.consumer.deliver_due([Due(value, "e1", 1)])
    r.retrier.scheduled.clear()
    await r.consumer.deliver_due([Due(value, "e1", 3)])  # one past the schedule
    assert len(r.partner.requests) == 1
    assert r.retrier.given_up == [("e1", 2, "http 500")]
    assert await r.row(event_id) == (Status.FAILED, 2, "gave up: http 500")


@pytest.mark.parametrize(
    ("retry_after", "delay"),
    [
        ("42", 42.0),
        (format_datetime(START + timedelta(seconds=90), usegmt=True), 90.0),  # the fake clock
        ("999999", 3600.0),  # capped
    ],
)
async def test_retry_after_is_honoured(rig: RigOf, retry_after: str, delay: float) -> None:
    r = rig(status(503, **{"retry-after": retry_after}), max_retry_after=3600.0)
    [event_id] = await r.batch(1)
    [retry] = r.retrier.scheduled
    assert (retry.attempt, retry.delay) == (2, delay)
    assert await r.row(event_id) == (Status.RETRYING, 1, "http 503")
    [second] = await r.batch(2)  # the lane is paused that long: deferred, no request
    assert len(r.partner.requests) == 1
    assert await r.row(second) == (Status.RETRYING, 0, "the endpoint asked us to slow down")
    deferred = r.retrier.scheduled[-1]
    assert deferred.attempt == 1
    assert deferred.delay == pytest.approx(delay, abs=0.5)


async def test_over_the_rate_limit_the_same_attempt_goes_later(rig: RigOf) -> None:
    r = rig(status(200), row=endpoint(rate_per_second=1.0))
    ids = await r.batch(1, 2, 3)
    assert len(r.partner.requests) == 1  # one token; the next in a second > the hand-off
    rows = [await r.row(event_id) for event_id in ids]
    assert rows.count((Status.DELIVERED, 1, None)) == 1
    busy = "endpoint busy: over the endpoint's rate limit"
    assert rows.count((Status.RETRYING, 0, busy)) == 2
    assert [(s.attempt, s.delay) for s in r.retrier.scheduled] == [(1, 5.0), (1, 5.0)]


@pytest.mark.parametrize(
    ("row", "reason"),
    [
        (endpoint(state=State.PAUSED), "the endpoint is paused"),
        (endpoint(state=State.DISABLED, state_reason="ops"), "the endpoint is disabled (ops)"),
    ],
)
async def test_an_endpoint_not_active_drops_without_a_request(
    rig: RigOf, row: EndpointRow, reason: str
) -> None:
    r = rig(status(200), row=row)
    event_id, value = event_value(5)
    await r.consumer.deliver_due([Due(value, "e1", 3)])  # a retry: two requests were made
    assert r.partner.requests == []
    assert await r.row(event_id) == (Status.DROPPED, 2, reason)


async def test_an_endpoint_failing_too_long_is_disabled(rig: RigOf) -> None:
    r = rig(status(500), disable_after=3600.0)
    await r.batch(1)
    row = r.registry.get("e1")
    assert row is not None
    assert row.failing_since == START
    assert row.state is State.ACTIVE
    r.clock.now = START + timedelta(hours=2)
    await r.batch(2)
    row = r.registry.get("e1")
    assert row is not None
    assert row.state is State.DISABLED
    assert row.state_reason == "failing continuously for 7200s"


@pytest.mark.parametrize(
    ("garbage", "reason"),
    [
        (b"{not json", "invalid event: value: Invalid JSON"),
        (b"\xff\xfe", "invalid event: value: Invalid JSON"),
        (b'{"specversion": "1.0"}', "invalid event: "),
    ],
)
async def test_a_poison_record_is_parked_and_the_batch_goes_on(
    rig: RigOf, garbage: bytes, reason: str
) -> None:
    r = rig(status(200))
    [event_id] = await r.batch(1, garbage=garbage)
    [(value, headers)] = r.broker.on(TOPICS.webhook_dead_letter)
    assert value == garbage
    assert headers[REASON_HEADER].startswith(reason)
    assert await r.row(event_id) == (Status.DELIVERED, 1, None)


PRODUCER = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


async def test_each_event_is_a_span_and_a_retry_links_to_its_first_attempt(rig: RigOf) -> None:
    """Tracing on: one CONSUMER span per event of the batch, the child of the event's
    ``traceparent``; the POST a CLIENT span with its status, whose context goes to the
    partner; the retry record carries the first attempt's span, which the retry's links to."""
    answers = iter([500, 204, 204])

    async def answer(_request: httpx.Request) -> httpx.Response:
        return httpx.Response(next(answers))

    r = rig(answer)
    with recording() as exporter:
        first_id, _second_id = await r.batch(1, 2, traceparent=PRODUCER)
        [retry] = r.retrier.scheduled
        await r.consumer.deliver_due(r.retrier.due())
    assert await r.row(first_id) == (Status.DELIVERED, 2, None)
    spans = exporter.get_finished_spans()
    processed = named(spans, "process unit.deadline.reminder")
    assert len(processed) == 2  # one per event
    traced = next(
        s for s in processed if s.attributes and s.attributes["cloudevents.event_id"] == first_id
    )
    assert parent_id(traced) == 0x00F067AA0BA902B7
    assert trace_id(traced) == 0x4BF92F3577B34DA6A3CE929D0E0E4736
    posts = named(spans, "POST")
    first = next(s for s in posts if parent_id(s) == span_id(traced))
    assert first.kind is SpanKind.CLIENT
    assert first.attributes is not None
    assert first.attributes["http.response.status_code"] == 500
    assert first.attributes["error.type"] == "500"
    assert first.status.status_code is StatusCode.ERROR
    assert retry.first_attempt == traceparent(first)
    assert r.partner.requests[0].headers["traceparent"] in {traceparent(p) for p in posts}
    [retried] = named(spans, "process unit.webhook.retry")
    assert retried.attributes is not None
    assert retried.attributes["gnlc.attempt"] == 2
    assert parent_id(retried) == 0x00F067AA0BA902B7  # still the event's trace
    [second] = [s for s in posts if parent_id(s) == span_id(retried)]
    assert second.status.status_code is StatusCode.UNSET
    [link] = second.links
    assert link.context.span_id == span_id(first)


async def test_an_ordered_endpoint_takes_each_keys_deliveries_one_at_a_time(rig: RigOf) -> None:
    """Key a's first event fails once: a's later events wait (held, no request) until it
    is delivered, then go one by one, also after a restart; key b's is not held up."""
    keys = {1: "a", 2: "a", 3: "b", 4: "a"}
    sent: list[str] = []  # webhook ids, in the order the partner received them

    async def fail_a_once(request: httpx.Request) -> httpx.Response:
        sent.append(request.headers["webhook-id"])
        return httpx.Response(500 if sent == [a1] else 204)

    a1 = event_value(1)[0]
    r = rig(fail_a_once, row=endpoint(ordered=True))
    a1, a2, b1, a3 = await r.batch(1, 2, 3, 4, keys=keys)
    assert sent == [a1, b1]
    assert await r.row(a1) == (Status.RETRYING, 1, "http 500")
    assert await r.row(b1) == (Status.DELIVERED, 1, None)
    waiting = (Status.HELD, 0, "held: waiting for an earlier delivery of its key")
    assert await r.row(a2) == waiting
    assert await r.row(a3) == waiting
    [retry] = r.retrier.scheduled
    assert (retry.attempt, retry.delay) == (2, 5.0)

    # a restart reads the batch again (its offsets were not committed): a1 is still the
    # first of its key and goes again; a2 is released only once a1 is delivered
    restarted = rig(fail_a_once, row=endpoint(ordered=True))
    await restarted.batch(1, 2, 3, 4, keys=keys)
    assert sent == [a1, b1, a1]
    assert await r.row(a1) == (Status.DELIVERED, 1, None)
    assert (await r.row(a2))[:2] == (Status.RETRYING, 0)  # released: on the retry tier
    [released] = restarted.retrier.scheduled
    assert (json.loads(released.value)["id"], released.attempt) == (a2, 1)
    assert await r.row(a3) == waiting
    for _ in range(5):  # each one delivered releases the next of its key
        due = r.retrier.due() + restarted.retrier.due()
        if not due:
            break
        await restarted.consumer.deliver_due(due)
    assert sent == [a1, b1, a1, a2, a3]  # a1's own retry found it settled
    for event_id in (a2, a3):
        assert await r.row(event_id) == (Status.DELIVERED, 1, None)
