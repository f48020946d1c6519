"""Delayed retries through Kafka, so a failing recipient never blocks the others, and no
retry is late.

A notice that failed for a transient reason (or is deferred, handed off, resent) is
published with its absolute due time (``x-gnlc-not-before``), for whom it is and which
attempt comes next, to the tier topic of the *ladder* (``gnlc_core.ladder``: 1 s, 5 s, 30 s,
5 min, 30 min, 2 h, 10 h, ``<prefix><channel>.retry.<n>s``) that is the longest not longer
than its delay (a delay under a second goes to the ``0s`` topic, read at once). One
consumer per channel (``gnlc_core.tier_reader``) reads every tier topic: a record not ready
yet pauses its partition until it is; a ready record is delivered if it is due, waits in
memory if it is due within the shortest tier, or else moves on to the tier that fits what
is left. The ladder does not depend on the retry schedule, so changing
``GNLC_*_RETRY_DELAYS`` strands nothing; tier topics of an older ladder or schedule are
read too (the consumer subscribes to every ``<prefix><channel>.retry.<n>s``). Once the
schedule is exhausted the notice goes to the channel's dead-letter topic with its last
reason.

``GNLC_*_RETRY_TIME_SCALE`` shrinks every delay of a schedule (tests run a day in seconds);
the ladder stays in real seconds.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from faststream.kafka import KafkaBroker

from gnlc_core.events import MAX_TRACEPARENT_CHARS
from gnlc_core.kafka import PRODUCER_BATCH_BYTES, RECIPIENT_HEADER, Topics, publish_dead_letter
from gnlc_core.ladder import LADDER, tier_for
from gnlc_core.logs import get_logger
from gnlc_core.notices import AfterFailure, Step, after_failure
from gnlc_core.priority import Share
from gnlc_core.tier_reader import (
    ATTEMPT_HEADER,
    LAST_ERROR_HEADER,
    NOT_BEFORE_HEADER,
    DeliverMany,
    Due,
    Record,
    TierReader,
)
from gnlc_core.tracing import FIRST_ATTEMPT_HEADER

log = get_logger(__name__)

__all__ = [
    "ATTEMPT_HEADER",
    "LAST_ERROR_HEADER",
    "NOT_BEFORE_HEADER",
    "DeliverMany",
    "Due",
    "Retrier",
    "RetrySchedule",
    "concurrently",
]


@dataclass(frozen=True)
class RetrySchedule:
    """Delays (seconds) before attempt 2, 3, ...; ``jitter`` spreads each by ±that share."""

    delays: tuple[float, ...]
    jitter: float = 0.1
    scale: float = 1.0

    @property
    def max_attempts(self) -> int:
        return len(self.delays) + 1

    def delay_before(self, attempt: int, *, rng: random.Random | None = None) -> float | None:
        """Seconds to wait before ``attempt`` (2 = first retry); None once exhausted."""
        if attempt < 2 or attempt > self.max_attempts:
            return None
        base = self.delays[attempt - 2]
        spread = (rng or random).uniform(-self.jitter, self.jitter) if self.jitter else 0.0
        return max(0.0, base * (1 + spread)) * self.scale


# under the producer's batch size, with room to spare: each batch is one awaited round trip
_BATCH_BYTES = PRODUCER_BATCH_BYTES * 3 // 4
#: (value, recipient, attempt, the first attempt's ``traceparent`` or None)
DeliverOne = Callable[[bytes, str, int, str | None], Awaitable[None]]


def tier_of_delay(delay: float, ladder: tuple[float, ...] = LADDER) -> float:
    """The tier a retry ``delay`` seconds away is published to: the longest not longer than
    ``delay``, or for less than the shortest the 0 s tier (read at once, then kept in memory
    until due)."""
    return tier_for(delay, ladder) or 0.0


class Retrier:
    """Publishes retries for one channel and runs the consumer of its tiers."""

    def __init__(
        self,
        broker: KafkaBroker,
        topics: Topics,
        channel: str,
        schedule: RetrySchedule,
        *,
        dead_letter_topic: str,
    ) -> None:
        self._broker = broker
        self._topics = topics
        self._channel = channel
        self._schedule = schedule
        self._dead_letter_topic = dead_letter_topic
        self._ladder = LADDER
        self._reader: TierReader | None = None

    @property
    def topic_names(self) -> list[str]:
        """The tier topics: 0 s and the ladder's (the services create them)."""
        return [self._tier_topic(tier) for tier in (0.0, *self._ladder)]

    def _tier_topic(self, tier: float) -> str:
        return self._topics.retry_tier(self._channel, tier)

    def _topic_for(self, delay: float) -> str:
        return self._tier_topic(tier_of_delay(delay, self._ladder))

    @property
    def retry_schedule(self) -> RetrySchedule:
        return self._schedule

    async def retry_or_give_up(
        self,
        value: bytes,
        *,
        key: bytes | None,
        recipient: str,
        failed_attempt: int,
        reason: str,
        source_topic: str,
        delay: float | None = None,
        first_attempt: str | None = None,
    ) -> bool:
        """Schedule the next attempt after ``failed_attempt``; returns False (and parks the
        notice on the dead-letter topic) when the schedule is exhausted. ``delay`` (seconds,
        already scaled) overrides the schedule's, e.g. from a ``Retry-After``.
        ``first_attempt`` (a ``traceparent``) goes with the record: the retry's span links
        to the first attempt's."""
        after = after_failure(failed_attempt, self._schedule, retry_after=delay)
        await self.follow(
            after,
            value,
            key=key,
            recipient=recipient,
            attempt=failed_attempt,
            reason=reason,
            source_topic=source_topic,
            first_attempt=first_attempt,
        )
        return after.step is Step.RETRY

    async def follow(
        self,
        after: AfterFailure,
        value: bytes,
        *,
        key: bytes | None,
        recipient: str,
        attempt: int,
        reason: str,
        source_topic: str,
        first_attempt: str | None = None,
    ) -> None:
        """Carry out what follows the failed request of ``attempt``
        (``gnlc_core.notices.after_failure``): RETRY schedules the next attempt after its
        delay; GIVE_UP parks the notice with the requests made; REFUSED parks it with
        ``reason``. Every channel settles a failure through here."""
        if after.step is Step.RETRY:
            await self.schedule(
                value,
                key=key,
                recipient=recipient,
                attempt=attempt + 1,
                delay=after.delay,
                reason=reason,
                first_attempt=first_attempt,
            )
        elif after.step is Step.GIVE_UP:
            await self.give_up(
                value,
                key=key,
                recipient=recipient,
                attempts=attempt,
                reason=reason,
                source_topic=source_topic,
            )
        else:
            await self.park(
                value, key=key, recipient=recipient, reason=reason, source_topic=source_topic
            )

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
        """Park the notice on the dead-letter topic after ``attempts`` requests."""
        await self.park(
            value,
            key=key,
            recipient=recipient,
            reason=f"gave up after {attempts} attempts: {reason}",
            source_topic=source_topic,
        )

    async def park(
        self, value: bytes, *, key: bytes | None, recipient: str, reason: str, source_topic: str
    ) -> None:
        """Park the notice on the channel's dead-letter topic with ``reason``."""
        await publish_dead_letter(
            self._broker,
            self._dead_letter_topic,
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
        """Publish ``attempt`` for ``recipient`` to the tier of ``delay`` (seconds, already
        scaled) without counting a failure: a deferral, a hand-off or a resend.
        ``first_attempt``: the ``traceparent`` of the first attempt's span, if traced."""
        wait = max(delay, 0.0)
        topic = self._topic_for(wait)
        headers = {
            RECIPIENT_HEADER: recipient,
            ATTEMPT_HEADER: str(attempt),
            NOT_BEFORE_HEADER: str(int((time.time() + wait) * 1000)),
            LAST_ERROR_HEADER: reason[:500],
        }
        if first_attempt:
            headers[FIRST_ATTEMPT_HEADER] = first_attempt[:MAX_TRACEPARENT_CHARS]
        await self._broker.publish(value, topic=topic, key=key, headers=headers)

    async def schedule_many(
        self,
        values: Sequence[bytes],
        *,
        recipient: str,
        attempt: int,
        delay: float,
        reason: str,
    ) -> None:
        """``schedule`` for many notices to one recipient with the same attempt and delay,
        as Kafka batches (one partition each), much cheaper than one publish per notice.
        Batches stay under the producer's batch size (a record that would not fit is not
        appended to a batch, so larger ones are published one by one)."""
        wait = max(delay, 0.0)
        topic = self._topic_for(wait)
        headers = {
            RECIPIENT_HEADER: recipient,
            ATTEMPT_HEADER: str(attempt),
            NOT_BEFORE_HEADER: str(int((time.time() + wait) * 1000)),
            LAST_ERROR_HEADER: reason[:500],
        }
        overhead = 100 + sum(len(k) + len(v) for k, v in headers.items())
        chunk: list[bytes] = []
        size = 0
        for value in values:
            if len(value) + overhead > _BATCH_BYTES // 2:
                await self._broker.publish(value, topic=topic, headers=headers)
                continue
            if size + len(value) + overhead > _BATCH_BYTES:
                await self._broker.publish_batch(*chunk, topic=topic, headers=headers)
                chunk, size = [], 0
            chunk.append(value)
            size += len(value) + overhead
        if chunk:
            await self._broker.publish_batch(*chunk, topic=topic, headers=headers)

    def subscribe(
        self,
        deliver: DeliverMany,
        *,
        bootstrap_servers: str,
        batch_size: int = 500,
        share: Callable[[], Share] | None = None,
    ) -> None:
        """Set up the consumer of every tier topic of the channel (``start`` starts it):
        ``deliver`` gets the records that are due, and they are committed once it returns;
        ``share`` bounds what it has in hand (``gnlc_core.priority``: less while the
        channel's first attempts have work)."""
        self._reader = TierReader(
            bootstrap_servers=bootstrap_servers,
            group_id=self._topics.group(f"{self._channel}-retry"),
            pattern=self._topics.retry_tiers_pattern(self._channel),
            deliver=deliver,
            move=self._move,
            tier_topic=self._tier_topic,
            ladder=self._ladder,
            batch_size=batch_size,
            share=share,
        )

    async def start(self) -> None:
        if self._reader is not None:
            await self._reader.start()

    async def stop(self) -> None:
        if self._reader is not None:
            await self._reader.stop()

    @property
    def joined(self) -> bool:
        """The tier consumer has joined its group (and is reading)."""
        return self._reader is not None and self._reader.joined

    async def wait_joined(self) -> None:
        if self._reader is not None:
            await self._reader.wait_joined()

    async def _move(self, topic: str, record: Record) -> None:
        headers = {key: bytes(value).decode() for key, value in record.headers or ()}
        await self._broker.publish(record.value, topic=topic, key=record.key, headers=headers)


def concurrently(deliver_one: DeliverOne, *, limit: int = 16) -> DeliverMany:
    """A ``DeliverMany`` that hands the due records to ``deliver_one``, up to ``limit`` at a
    time, so one slow notice does not make the others of its batch late."""
    gate = asyncio.Semaphore(limit)

    async def one(record: Due) -> None:
        async with gate:
            await deliver_one(record.value, record.recipient, record.attempt, record.first_attempt)

    async def deliver(due: Sequence[Due]) -> None:
        async with asyncio.TaskGroup() as group:
            for record in due:
                group.create_task(one(record))

    return deliver
