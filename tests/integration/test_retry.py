"""Delayed retry tiers on the real broker: order, timing, give-up to the dead-letter topic."""

from __future__ import annotations

import asyncio
import itertools
import time
import uuid
from collections import Counter
from datetime import datetime
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer

from gnlc_core.kafka import (
    REASON_HEADER,
    RECIPIENT_HEADER,
    Topics,
    ensure_topics,
    make_broker,
)
from gnlc_core.retry import (
    ATTEMPT_HEADER,
    NOT_BEFORE_HEADER,
    Retrier,
    RetrySchedule,
    concurrently,
    tier_of_delay,
)
from gnlc_core.settings import Settings
from tests.integration.conftest import System
from tests.integration.hooks import Answer
from tests.integration.kafka_io import consume, headers_of
from tests.integration.webhook_support import event, hooks_server, start_webhook
from tests.support import eventually, free_port

pytestmark = pytest.mark.integration
FIRST_ATTEMPT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


async def test_retries_wait_their_turn_and_then_give_up(kafka: str) -> None:
    settings = Settings(KAFKA_BOOTSTRAP_SERVERS=kafka, topic_prefix=f"t{uuid.uuid4().hex[:8]}.")
    topics = Topics(settings.topic_prefix)
    broker = make_broker(settings, client_id="retry-test")
    schedule = RetrySchedule(delays=(1.0, 3.0), jitter=0.0)
    retrier = Retrier(broker, topics, "probe", schedule, dead_letter_topic=topics.email_dead_letter)
    calls: list[tuple[str, int, float]] = []
    firsts: list[str | None] = []
    all_seen = asyncio.Event()
    started = time.monotonic()

    async def deliver_one(
        value: bytes, recipient: str, attempt: int, first_attempt: str | None
    ) -> None:
        calls.append((recipient, attempt, time.monotonic() - started))
        firsts.append(first_attempt)
        if len(calls) == 4:
            all_seen.set()
        await retrier.retry_or_give_up(
            value,
            key=None,
            recipient=recipient,
            failed_attempt=attempt,
            reason=f"still down at attempt {attempt}",
            source_topic="origin",
            first_attempt=first_attempt,
        )

    retrier.subscribe(concurrently(deliver_one), bootstrap_servers=kafka)
    await ensure_topics(settings, retrier.topic_names)
    await broker.start()
    await retrier.start()
    try:
        await retrier.wait_joined()  # as a service is ready only once it consumes
        started = time.monotonic()
        for who in ("a", "b"):
            await retrier.retry_or_give_up(
                b"payload-" + who.encode(),
                key=None,
                recipient=who,
                failed_attempt=1,
                reason="first failure",
                source_topic="origin",
                first_attempt=FIRST_ATTEMPT,
            )
        await asyncio.wait_for(all_seen.wait(), timeout=40)
    finally:
        await retrier.stop()
        await broker.stop()

    assert sorted((who, attempt) for who, attempt, _ in calls) == [
        ("a", 2),
        ("a", 3),
        ("b", 2),
        ("b", 3),
    ]
    for _who, attempt, at in calls:
        assert at >= {2: 1.0, 3: 4.0}[attempt] - 0.2  # never early
        assert at <= {2: 1.0, 3: 4.0}[attempt] + 1.0  # nor late
    # the first attempt's span travels with every retry record, tier moves included
    assert firsts == [FIRST_ATTEMPT] * 4
    parked = await consume(kafka, topics.email_dead_letter, 2)
    assert len(parked) == 2
    assert all(
        headers_of(r)[REASON_HEADER] == "gave up after 3 attempts: still down at attempt 3"
        for r in parked
    )


def test_schedule_arithmetic() -> None:
    schedule = RetrySchedule(delays=(5, 300, 1800), jitter=0.0)
    assert schedule.max_attempts == 4
    assert schedule.delay_before(2) == 5
    assert schedule.delay_before(4) == 1800
    assert schedule.delay_before(5) is None
    scaled = RetrySchedule(delays=(5, 300), jitter=0.0, scale=0.01)
    assert scaled.delay_before(3) == pytest.approx(3.0)
    # the tier a delay is published to depends on the ladder alone, never on the schedule
    assert [tier_of_delay(d) for d in (0.2, 3.0, 5.0, 299.9, 300.0, 86400.0)] == [
        0.0,
        1.0,
        5.0,
        30.0,
        300.0,
        36000.0,
    ]


#: the default webhook schedule (5 s, 300 s, 1800 s ...) 200 times faster: attempts 2, 3, 4
#: of one event come 25 ms, 1.5 s and 9 s after the one before, ± 10 % jitter
SCENARIO_SCALE = 0.005
DEFAULT_DELAYS = (5, 300, 1800, 7200, 18000, 36000, 36000)
JITTER = 0.1
LATE = 1.0  # the bound: attempted at most this long after the due time


async def spaced(
    bootstrap: str, topic: str, events: list[tuple[str, bytes]], seconds: float
) -> None:
    """One event every ``seconds``, through one producer."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=True)
    await producer.start()
    try:
        for _, value in events:
            await producer.send_and_wait(topic, value)
            await asyncio.sleep(seconds)
    finally:
        await producer.stop()


def test_no_retry_is_late_beside_an_endpoint_that_refuses_connections(system: System) -> None:
    """The reported scenario: one endpoint refuses every connection (its retries pile up on
    every tier), another answers 500 to the first request of each event. Each retry of
    either comes at most a second after it is due."""
    _service, api = start_webhook(system, GNLC_WEBHOOK_RETRY_TIME_SCALE=str(SCENARIO_SCALE))
    with hooks_server() as (hooks, base):
        token = api.partner("partner-late")
        refused = api.endpoint(token, f"http://127.0.0.1:{free_port()}/hooks/refused")
        flaky = api.endpoint(token, f"{base}/flaky")
        hooks.secrets["flaky"] = [flaky["secret"]]
        hooks.first["flaky"] = Answer(500)
        events = [event() for _ in range(12)]
        ids = [event_id for event_id, _ in events]
        asyncio.run(spaced(system.kafka, f"{system.prefix}deadline.reminder", events, 0.3))
        assert hooks.wait("flaky", 24, timeout=30), len(hooks.of("flaky"))
        # the refused endpoint's fourth attempt comes about 10.5 s after its first
        wanted_attempts = 4
        path = f"/endpoints/{refused['id']}/attempts?limit=1000"

        def attempted() -> list[dict[str, Any]]:
            rows: list[dict[str, Any]] = api.call("GET", path, token).json()
            return rows

        def all_attempted() -> bool:
            counts = Counter(row["event_id"] for row in attempted())
            return len(counts) == len(ids) and min(counts.values()) >= wanted_attempts

        eventually(all_attempted, timeout=30, what="every event's attempts in the log")

        # the flaky endpoint: its one retry per event, 25 ms (± 10 %) after the 500
        for event_id in ids:
            first, second = [h for h in hooks.of("flaky") if h.webhook_id == event_id]
            gap = second.at - first.at
            delay = DEFAULT_DELAYS[0] * SCENARIO_SCALE
            assert delay * (1 - JITTER) - 0.01 <= gap <= delay * (1 + JITTER) + LATE, gap

        # the refused endpoint: every attempt of every event, from its delivery log
        by_event: dict[str, list[dict[str, Any]]] = {}
        for row in attempted():
            by_event.setdefault(row["event_id"], []).append(row)
        assert set(by_event) == set(ids)
        lateness = []
        for event_id in ids:
            attempts = sorted(by_event[event_id], key=lambda row: row["attempt"])
            assert [row["attempt"] for row in attempts][:wanted_attempts] == [1, 2, 3, 4]
            for before, after in itertools.pairwise(attempts):
                failed = (
                    datetime.fromisoformat(before["at"]).timestamp()
                    + (before["latency_ms"] or 0) / 1000
                )
                delay = DEFAULT_DELAYS[before["attempt"] - 1] * SCENARIO_SCALE
                earliest, latest = failed + delay * (1 - JITTER), failed + delay * (1 + JITTER)
                at = datetime.fromisoformat(after["at"]).timestamp()
                assert at >= earliest - 0.01, (event_id, after["attempt"], at - earliest)
                lateness.append(at - latest)
        assert len(lateness) >= len(ids) * (wanted_attempts - 1)
        assert max(lateness) <= LATE, sorted(lateness)[-5:]


async def test_records_in_the_tiers_of_an_older_schedule_are_still_delivered_on_time(
    kafka: str,
) -> None:
    """A schedule change strands nothing: a record left in a tier topic that the ladder
    does not have (here 21,600 s, of an older email schedule) is read, and delivered when
    it is due rather than after its tier's wait."""
    settings = Settings(KAFKA_BOOTSTRAP_SERVERS=kafka, topic_prefix=f"t{uuid.uuid4().hex[:8]}.")
    topics = Topics(settings.topic_prefix)
    legacy = topics.retry_tier("probe", 21600)
    broker = make_broker(settings, client_id="retry-legacy-test")
    retrier = Retrier(
        broker, topics, "probe", RetrySchedule((60.0,)), dead_letter_topic=topics.email_dead_letter
    )
    delivered: list[tuple[str, int, float]] = []
    seen = asyncio.Event()

    async def deliver_one(
        value: bytes, recipient: str, attempt: int, _first_attempt: str | None
    ) -> None:
        delivered.append((recipient, attempt, time.time()))
        seen.set()

    retrier.subscribe(concurrently(deliver_one), bootstrap_servers=kafka)
    await ensure_topics(settings, [*retrier.topic_names, legacy])
    await broker.start()
    due = time.time() + 3.0
    await broker.publish(
        b"left-over",
        topic=legacy,
        headers={
            RECIPIENT_HEADER: "old",
            ATTEMPT_HEADER: "3",
            NOT_BEFORE_HEADER: str(int(due * 1000)),
        },
    )
    await retrier.start()
    try:
        await asyncio.wait_for(seen.wait(), timeout=30)
    finally:
        await retrier.stop()
        await broker.stop()
    ((recipient, attempt, at),) = delivered
    assert (recipient, attempt) == ("old", 3)
    assert due - 0.01 <= at <= due + LATE
