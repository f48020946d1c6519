"""Handler logic on FastStream's in-memory test broker (the real broker and a real SMTP
server are in the integration tests)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from faststream.kafka import KafkaBroker, TestKafkaBroker
from faststream.kafka.annotations import KafkaMessage
from opentelemetry.trace import SpanKind, StatusCode
from sqlalchemy import select

from gnlc_core import tracing
from gnlc_core.db import create_engine, migrate
from gnlc_core.directory import City, Directory, load_csv
from gnlc_core.kafka import AT_LEAST_ONCE, REASON_HEADER, RECIPIENT_HEADER, Topics
from gnlc_core.ledger import Ledger, Status, notices
from gnlc_core.retry import Retrier, RetrySchedule
from gnlc_core.settings import SAMPLE_DIRECTORY, Settings
from gnlc_email.bounce_store import BounceStore
from gnlc_email.calendar_book import CalendarBook
from gnlc_email.choices import Choice
from gnlc_email.consumer import CHANNEL, EmailConsumer, Event, Services
from gnlc_email.digest_store import DigestStore
from gnlc_email.render import Renderer
from gnlc_email.resend_store import ResendStore
from gnlc_email.sender import SmtpPool
from gnlc_email.store import Preferences
from gnlc_email.unsubscribe import Tokens
from tests.support import free_port
from tests.tracing_support import named, parent_id, recording, span_id, traceparent

EXAMPLE = (
    Path(__file__).resolve().parents[2]
    / "schemas/examples/deadline.reminder/valid/overdue-minimal.json"
)
TOPICS = Topics("unit.")


class Wired:
    def __init__(self, broker: KafkaBroker, ledger: Ledger, consumer: EmailConsumer) -> None:
        self.broker = broker
        self.ledger = ledger
        self.consumer = consumer
        self.parked: list[dict[str, Any]] = []
        self.retried: list[dict[str, Any]] = []


@pytest.fixture
async def engine(tmp_path: Path) -> AsyncIterator[Any]:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'unit.db'}")
    await migrate(engine, "email")
    yield engine
    await engine.dispose()


def wire(
    engine: Any,
    *,
    renderer: Renderer | None = None,
    should_send: Any = None,
    smtp_port: int | None = None,
    directory: Directory | None = None,
    clock: Callable[[], datetime] | None = None,
    digests: bool = False,
    resends: bool = False,
) -> Wired:
    # nothing listens on this port: a send would fail, so a test that expects none proves it
    settings = Settings(smtp_port=smtp_port or free_port(), smtp_timeout_seconds=2)
    broker = KafkaBroker()
    retrier = Retrier(
        broker, TOPICS, CHANNEL, RetrySchedule((60.0,)), dead_letter_topic=TOPICS.email_dead_letter
    )
    kwargs: dict[str, Any] = {"retrier": retrier, "renderer": renderer}
    if should_send is not None:
        kwargs["should_send"] = should_send
    if clock is not None:
        kwargs["clock"] = clock
    consumer = EmailConsumer(
        settings,
        broker,
        TOPICS,
        directory or load_csv(SAMPLE_DIRECTORY),
        SmtpPool(settings),
        **kwargs,
    )
    ledger = Ledger(engine, CHANNEL)
    consumer.ready(
        Services(
            ledger,
            Preferences(engine),
            Tokens(["unit"]),
            BounceStore(engine),
            CalendarBook(engine),
            preference_tokens=Tokens(["unit"], salt="preferences") if digests else None,
            digests=DigestStore(engine, ledger) if digests else None,
            resends=ResendStore(engine, ledger) if resends else None,
        )
    )
    broker.subscriber(
        *TOPICS.domain,
        *TOPICS.changes,
        group_id="g",
        ack_policy=AT_LEAST_ONCE,
        batch=True,
        max_records=10,
    )(consumer.handle_batch)
    wired = Wired(broker, ledger, consumer)

    @broker.subscriber(TOPICS.email_dead_letter)
    async def collect(message: KafkaMessage) -> None:
        wired.parked.append({"body": message.body, **message.headers})

    @broker.subscriber(*retrier.topic_names)
    async def collect_retries(message: KafkaMessage) -> None:
        wired.retried.append({"body": message.body, **message.headers})

    return wired


async def test_garbage_is_parked_with_its_reason(engine: Any) -> None:
    wired = wire(engine)
    async with TestKafkaBroker(wired.broker) as test_broker:
        await test_broker.publish_batch(b"{not json", topic=TOPICS.deadline_reminder)
    assert len(wired.parked) == 1
    assert wired.parked[0]["body"] == b"{not json"
    assert wired.parked[0][REASON_HEADER].startswith("invalid event: ")


class Broken(Renderer):
    def draft(self, event: Event, chosen: Any) -> Any:
        raise KeyError("missing translation")


async def test_a_render_failure_parks_that_city_and_sends_nothing(engine: Any) -> None:
    """Each notice of a city whose mail does not render is parked and failed in the
    ledger (so it has its receipt), with no attempt counted."""
    wired = wire(engine, renderer=Broken())
    async with TestKafkaBroker(wired.broker) as test_broker:
        await test_broker.publish_batch(EXAMPLE.read_bytes(), topic=TOPICS.deadline_reminder)
    keys = ["kathmandu:lll@kathmandu.example.org", "laval:apprendre@laval.example.org"]
    assert sorted(p[RECIPIENT_HEADER] for p in wired.parked) == keys
    assert all(p[REASON_HEADER].startswith("render: KeyError") for p in wired.parked)
    assert wired.retried == []
    event_id = "1fbcfa17-9717-5eed-b918-c4062534eda3"
    for key in keys:  # no request made
        assert await attempts_of(engine, event_id, key) == (Status.FAILED, 0)


async def test_a_retry_that_does_not_render_is_parked_with_its_failed_row(engine: Any) -> None:
    wired = wire(engine, renderer=Broken())
    laval = "laval:apprendre@laval.example.org"
    async with TestKafkaBroker(wired.broker):
        await wired.consumer.deliver_one(EXAMPLE.read_bytes(), laval, 2)
    assert [p[RECIPIENT_HEADER] for p in wired.parked] == [laval]
    event_id = "1fbcfa17-9717-5eed-b918-c4062534eda3"
    # the first attempt's request made, none at the second
    assert await attempts_of(engine, event_id, laval) == (Status.FAILED, 1)


async def test_should_send_no_is_recorded_as_dropped_and_nothing_is_sent(engine: Any) -> None:
    asked: list[str] = []

    async def already_submitted(event: Event, city: City) -> bool:
        asked.append(city.id)
        return False

    wired = wire(engine, should_send=already_submitted)
    async with TestKafkaBroker(wired.broker) as test_broker:
        await test_broker.publish_batch(EXAMPLE.read_bytes(), topic=TOPICS.deadline_reminder)
    assert sorted(asked) == ["kathmandu", "laval"]
    assert wired.parked == wired.retried == []  # no send was even tried (it would fail)
    event_id = "1fbcfa17-9717-5eed-b918-c4062534eda3"
    assert (
        await wired.ledger.status(event_id, "kathmandu:lll@kathmandu.example.org") is Status.DROPPED
    )
    assert (
        await wired.ledger.status(event_id, "laval:apprendre@laval.example.org") is Status.DROPPED
    )


async def test_settled_notices_are_not_sent_again(engine: Any) -> None:
    wired = wire(engine)
    event_id = "1fbcfa17-9717-5eed-b918-c4062534eda3"
    for key in ("kathmandu:lll@kathmandu.example.org", "laval:apprendre@laval.example.org"):
        await wired.ledger.record(event_id, key, Status.DELIVERED)
    async with TestKafkaBroker(wired.broker) as test_broker:
        await test_broker.publish_batch(EXAMPLE.read_bytes(), topic=TOPICS.deadline_reminder)
    assert wired.parked == wired.retried == []  # a send to the closed port would show


async def test_a_refused_connection_is_retried_later_through_the_retry_topic(engine: Any) -> None:
    wired = wire(engine)
    async with TestKafkaBroker(wired.broker) as test_broker:
        await test_broker.publish_batch(EXAMPLE.read_bytes(), topic=TOPICS.deadline_reminder)
    assert wired.parked == []
    assert sorted(r[RECIPIENT_HEADER] for r in wired.retried) == [
        "kathmandu:lll@kathmandu.example.org",
        "laval:apprendre@laval.example.org",
    ]
    assert all(r["x-gnlc-attempt"] == "2" for r in wired.retried)
    assert all(r["x-gnlc-last-error"].startswith("smtp: ") for r in wired.retried)
    event_id = "1fbcfa17-9717-5eed-b918-c4062534eda3"
    key = "laval:apprendre@laval.example.org"
    assert await wired.ledger.status(event_id, key) is Status.RETRYING


async def test_attempts_count_the_requests_made(engine: Any) -> None:
    """The ledger's ``attempts`` is the number of sends actually tried, as in the webhook
    channel: a refused send counts, a notice dropped before its send does not."""
    wired = wire(engine)  # the SMTP port is closed: every send is refused
    event_id = "1fbcfa17-9717-5eed-b918-c4062534eda3"
    laval, gone = "laval:apprendre@laval.example.org", "nowhere:someone@example.org"
    async with TestKafkaBroker(wired.broker):
        await wired.consumer.deliver_one(EXAMPLE.read_bytes(), laval, 1)
        first = await attempts_of(engine, event_id, laval)
        await wired.consumer.deliver_one(EXAMPLE.read_bytes(), laval, 2)  # the last attempt
        second = await attempts_of(engine, event_id, laval)
        await wired.consumer.deliver_one(EXAMPLE.read_bytes(), gone, 2)  # before its 2nd send
    assert first == (Status.RETRYING, 1)
    assert second == (Status.FAILED, 2)
    assert await attempts_of(engine, event_id, gone) == (Status.DROPPED, 1)
    assert [p[RECIPIENT_HEADER] for p in wired.parked] == [laval]


async def attempts_of(engine: Any, event_id: str, recipient: str) -> tuple[Status, int]:
    query = select(notices.c.status, notices.c.attempts).where(
        notices.c.event_id == event_id, notices.c.recipient == recipient
    )
    async with engine.connect() as connection:
        row = (await connection.execute(query)).one()
    return Status(row.status), row.attempts


async def test_a_bouncing_contact_gets_nothing_and_the_reason_is_recorded(engine: Any) -> None:
    """A reminder (required mail) to a contact marked bouncing is dropped with the reason;
    the city's other contacts would still get it (none here: the send would fail)."""
    await BounceStore(engine).mark("kathmandu", "LLL@kathmandu.example.org", "hard bounce", None)
    await BounceStore(engine).mark("laval", "apprendre@laval.example.org", "hard bounce", None)
    wired = wire(engine)
    async with TestKafkaBroker(wired.broker) as test_broker:
        await test_broker.publish_batch(EXAMPLE.read_bytes(), topic=TOPICS.deadline_reminder)
    assert wired.parked == wired.retried == []  # no send was tried
    async with engine.connect() as connection:
        rows = (
            await connection.execute(
                select(notices.c.recipient, notices.c.status, notices.c.last_error)
            )
        ).all()
    assert sorted(rows) == [
        ("kathmandu:lll@kathmandu.example.org", "dropped", "contact bouncing"),
        ("laval:apprendre@laval.example.org", "dropped", "contact bouncing"),
    ]


async def test_a_due_retry_honours_the_latest_choices(engine: Any) -> None:
    """A retry that comes due after the contact turned the category off (or unsubscribed)
    is dropped with the reason, without a send."""
    example = EXAMPLE.parents[2] / "announcement.published/valid/event-for-regions.json"
    value = example.read_bytes()
    kathmandu = "kathmandu:lll@kathmandu.example.org"
    preferences = Preferences(engine)
    await preferences.save(
        "lll@kathmandu.example.org", "kathmandu", Choice(frozenset({"event"})), subscribed=True
    )
    wired = wire(engine)
    async with TestKafkaBroker(wired.broker):
        await wired.consumer.deliver_one(value, kathmandu, attempt=2)
    assert wired.parked == wired.retried == []
    async with engine.connect() as connection:
        rows = (await connection.execute(select(notices.c.recipient, notices.c.last_error))).all()
    assert rows == [(kathmandu, "category off: event")]


PRODUCER = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


async def test_smtp_sends_are_spans_and_a_retry_links_to_its_first_attempt(engine: Any) -> None:
    """Tracing on: the event's CONSUMER span is the child of its ``traceparent``; each SMTP
    transaction a CLIENT span under it (failed here: the port is closed); the retry record
    carries the first attempt's span, which the retry's SMTP span links to."""
    wired = wire(engine)
    value = json.loads(EXAMPLE.read_text())
    value["traceparent"] = PRODUCER
    traced = json.dumps(value).encode()
    laval = "laval:apprendre@laval.example.org"
    with recording() as exporter:
        async with TestKafkaBroker(wired.broker) as test_broker:
            await test_broker.publish_batch(traced, topic=TOPICS.deadline_reminder)
            retried = next(r for r in wired.retried if r[RECIPIENT_HEADER] == laval)
            first_attempt = retried[tracing.FIRST_ATTEMPT_HEADER]
            await wired.consumer.deliver_one(traced, laval, 2, first_attempt)
    spans = exporter.get_finished_spans()
    [process] = named(spans, "process unit.deadline.reminder")
    assert process.kind is SpanKind.CONSUMER
    assert parent_id(process) == 0x00F067AA0BA902B7
    sends = named(spans, "smtp send")
    firsts = [s for s in sends if parent_id(s) == span_id(process)]
    assert len(firsts) == 2  # one per contact, the address itself not recorded
    assert {s.attributes["gnlc.city_id"] for s in firsts if s.attributes} == {"kathmandu", "laval"}
    assert all(s.status.status_code is StatusCode.ERROR for s in firsts)
    assert all("apprendre@laval.example.org" not in str(s.attributes) for s in sends)
    assert first_attempt in {traceparent(s) for s in firsts}
    [retry] = named(spans, "process unit.email.retry")
    assert parent_id(retry) == 0x00F067AA0BA902B7
    [second] = [s for s in sends if parent_id(s) == span_id(retry)]
    [link] = second.links
    assert traceparent(next(s for s in firsts if span_id(s) == link.context.span_id)) == (
        first_attempt
    )
