"""Delayed retries through Kafka, so a failing recipient never blocks the others.

A notice that failed for a transient reason is published to a *retry tier* topic, one per
delay (``<prefix><channel>.retry.300s``), with headers saying for whom it is, which attempt
comes next and when (``x-gnlc-not-before``). Each tier has its own consumer, which reads
by batches and hands the records that are due to the channel together (one database
transaction for a batch, not one per record). A record that is not due yet is not handled:
the consumer seeks back to it, pauses that partition until it is due and then resumes, so
it keeps polling (and keeps its group membership) meanwhile.
Records in one tier become due in the order they were written, so waiting for the head of
a partition never holds back a record that is due earlier. Once the schedule is exhausted
the notice goes to the channel's dead-letter topic with its last reason.

``GNLC_RETRY_TIME_SCALE`` shrinks every delay (tests run a day's schedule in seconds).
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, cast

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from aiokafka.errors import KafkaError
from aiokafka.structs import OffsetAndMetadata
from faststream.kafka import KafkaBroker
from faststream.kafka.annotations import KafkaMessage
from faststream.middlewares import AckPolicy

from gnlc_core.kafka import (
    PRODUCER_BATCH_BYTES,
    RECIPIENT_HEADER,
    Topics,
    publish_dead_letter,
    records_only,
)
from gnlc_core.logs import get_logger

log = get_logger(__name__)

ATTEMPT_HEADER = "x-gnlc-attempt"
NOT_BEFORE_HEADER = "x-gnlc-not-before"
LAST_ERROR_HEADER = "x-gnlc-last-error"


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

    def tier_for(self, delay: float) -> float:
        """The tier (an unscaled delay of the schedule) a scaled ``delay`` is parked in: the
        longest tier not longer than it, so nothing waits behind a later record."""
        unscaled = delay / self.scale if self.scale else delay
        candidates = [d for d in sorted(set(self.delays)) if d <= unscaled + 1e-9]
        return candidates[-1] if candidates else min(self.delays)


def tier_topic(topics: Topics, channel: str, tier: float) -> str:
    return f"{topics.prefix}{channel}.retry.{int(tier)}s"


# under the producer's batch size, with room to spare: each batch is one awaited round trip
_BATCH_BYTES = PRODUCER_BATCH_BYTES * 3 // 4
DeliverOne = Callable[[bytes, str, int], Awaitable[None]]


@dataclass(frozen=True)
class Due:
    """A retry record that is due: its notice, for whom, and which attempt it is."""

    value: bytes
    recipient: str
    attempt: int


DeliverMany = Callable[[Sequence["Due"]], Awaitable[None]]


class Retrier:
    """Publishes retries for one channel and runs the consumers of its tiers."""

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

    @property
    def topic_names(self) -> list[str]:
        return [
            tier_topic(self._topics, self._channel, t) for t in sorted(set(self._schedule.delays))
        ]

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
    ) -> bool:
        """Schedule the next attempt after ``failed_attempt``; returns False (and parks the
        notice on the dead-letter topic) when the schedule is exhausted. ``delay`` (seconds,
        already scaled) overrides the schedule's, e.g. from a ``Retry-After``."""
        next_attempt = failed_attempt + 1
        planned = self._schedule.delay_before(next_attempt)
        if planned is None:
            await publish_dead_letter(
                self._broker,
                self._dead_letter_topic,
                value=value,
                key=key,
                reason=f"gave up after {failed_attempt} attempts: {reason}",
                source_topic=source_topic,
                recipient=recipient,
            )
            return False
        wait = planned if delay is None else max(delay, 0.0)
        await self.schedule(
            value, key=key, recipient=recipient, attempt=next_attempt, delay=wait, reason=reason
        )
        return True

    async def schedule(
        self,
        value: bytes,
        *,
        key: bytes | None,
        recipient: str,
        attempt: int,
        delay: float,
        reason: str,
    ) -> None:
        """Publish ``attempt`` for ``recipient`` to the tier of ``delay`` (seconds, already
        scaled) without counting a failure: a deferral, a hand-off or a resend."""
        wait = max(delay, 0.0)
        topic = tier_topic(self._topics, self._channel, self._schedule.tier_for(wait))
        await self._broker.publish(
            value,
            topic=topic,
            key=key,
            headers={
                RECIPIENT_HEADER: recipient,
                ATTEMPT_HEADER: str(attempt),
                NOT_BEFORE_HEADER: str(int((time.time() + wait) * 1000)),
                LAST_ERROR_HEADER: reason[:500],
            },
        )

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
        topic = tier_topic(self._topics, self._channel, self._schedule.tier_for(wait))
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

    def subscribe(self, deliver: DeliverMany, *, batch_size: int = 500) -> None:
        """Register one consumer per tier. It reads the tier by batches; ``deliver`` gets
        the records that are due (in partition order), then they are committed. A record
        not due yet stops its partition there until it is (see the module's docstring)."""
        for topic in self.topic_names:
            self._broker.subscriber(
                topic,
                group_id=self._topics.group(f"{self._channel}-retry"),
                ack_policy=AckPolicy.MANUAL,
                auto_offset_reset="earliest",
                batch=True,
                max_records=batch_size,
                decoder=records_only,  # the handler reads each record's headers
            )(_tier_handler(deliver))


def one_at_a_time(deliver_one: DeliverOne) -> DeliverMany:
    """A ``DeliverMany`` that hands the due records to ``deliver_one`` one by one."""

    async def deliver(due: Sequence[Due]) -> None:
        for record in due:
            await deliver_one(record.value, record.recipient, record.attempt)

    return deliver


def _header(record: ConsumerRecord[Any, Any], name: str, default: str) -> str:
    for key, value in record.headers or ():
        if key == name:
            return bytes(value).decode()
    return default


def _tier_handler(deliver: DeliverMany) -> Callable[[KafkaMessage], Awaitable[None]]:
    async def handle(message: KafkaMessage) -> None:
        records = cast("tuple[ConsumerRecord[bytes, bytes], ...]", message.raw_message)
        consumer = cast("AIOKafkaConsumer", message.consumer)
        now = time.time()
        due: list[Due] = []
        done: dict[TopicPartition, int] = {}
        waiting: set[TopicPartition] = set()
        for record in records:  # in offset order within each partition
            partition = TopicPartition(record.topic, record.partition)
            if partition in waiting:
                continue
            not_before = int(_header(record, NOT_BEFORE_HEADER, "0")) / 1000
            if not_before > now:
                waiting.add(partition)
                _park_until_due(consumer, partition, record.offset, not_before - now)
                continue
            due.append(
                Due(
                    record.value or b"",
                    _header(record, RECIPIENT_HEADER, ""),
                    int(_header(record, ATTEMPT_HEADER, "2")),
                )
            )
            done[partition] = record.offset + 1
        if not due:
            return
        try:
            await deliver(due)
        except Exception:
            # unexpected: rewind so the records are tried again rather than lost
            for partition in waiting:
                consumer.resume(partition)
            await message.nack()
            raise
        assigned = consumer.assignment()
        offsets = {p: OffsetAndMetadata(o, "") for p, o in done.items() if p in assigned}
        if offsets:
            try:
                await consumer.commit(offsets)
            except KafkaError as exc:  # rebalanced: read again, and the ledger skips them
                log.warning("retry tier commit failed", error=str(exc))

    return handle


def _park_until_due(
    consumer: AIOKafkaConsumer, partition: TopicPartition, offset: int, wait: float
) -> None:
    consumer.seek(partition, offset)
    consumer.pause(partition)

    def resume() -> None:
        if partition in consumer.assignment():
            consumer.resume(partition)

    asyncio.get_running_loop().call_later(min(wait, 3600.0), resume)
