"""Delayed retry tiers on the real broker: order, timing, give-up to the dead-letter topic."""

from __future__ import annotations

import asyncio
import time
import uuid

import pytest

from gnlc_core.kafka import REASON_HEADER, Topics, ensure_topics, make_broker
from gnlc_core.retry import Retrier, RetrySchedule, concurrently, tier_of_delay
from gnlc_core.settings import Settings
from tests.integration.kafka_io import consume, headers_of

pytestmark = pytest.mark.integration


async def test_retries_wait_their_turn_and_then_give_up(kafka: str) -> None:
    settings = Settings(KAFKA_BOOTSTRAP_SERVERS=kafka, topic_prefix=f"t{uuid.uuid4().hex[:8]}.")
    topics = Topics(settings.topic_prefix)
    broker = make_broker(settings, client_id="retry-test")
    schedule = RetrySchedule(delays=(1.0, 3.0), jitter=0.0)
    retrier = Retrier(broker, topics, "probe", schedule, dead_letter_topic=topics.email_dead_letter)
    calls: list[tuple[str, int, float]] = []
    all_seen = asyncio.Event()
    started = time.monotonic()

    async def deliver_one(value: bytes, recipient: str, attempt: int) -> None:
        calls.append((recipient, attempt, time.monotonic() - started))
        if len(calls) == 4:
            all_seen.set()
        await retrier.retry_or_give_up(
            value,
            key=None,
            recipient=recipient,
            failed_attempt=attempt,
            reason=f"still down at attempt {attempt}",
            source_topic="origin",
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
