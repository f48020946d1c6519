"""Local views of compacted Kafka topics: the city directory and the submissions.

The scheduler owns the directory and the submissions; every other service keeps an
in-memory copy by reading the topic from the beginning (no consumer group: each instance
reads everything) and following it. ``start`` returns once the view has caught up with the
end of the topic as it was when it started, so a service is not ready before its view is.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Sequence
from typing import Generic, TypeVar

from aiokafka import AIOKafkaConsumer, TopicPartition
from pydantic import ValidationError

from gnlc_core.directory import City, Directory
from gnlc_core.events import CloudEvent, DeadlineReminderEvent, parse_submission
from gnlc_core.kafka import partitions_of
from gnlc_core.logs import get_logger

log = get_logger(__name__)
T = TypeVar("T")


class CompactedView(Generic[T]):
    """Latest value per key of a topic; ``parse`` turns a record value into a value (or
    None for a tombstone or a value to ignore)."""

    def __init__(
        self, bootstrap_servers: str, topic: str, parse: Callable[[bytes], T | None]
    ) -> None:
        self._bootstrap = bootstrap_servers
        self._topic = topic
        self._parse = parse
        self._values: dict[bytes, T] = {}
        self._consumer: AIOKafkaConsumer | None = None
        self._task: asyncio.Task[None] | None = None
        self.version = 0
        self.ready = False

    def get(self, key: bytes) -> T | None:
        return self._values.get(key)

    def values(self) -> list[T]:
        return list(self._values.values())

    def __len__(self) -> int:
        return len(self._values)

    async def start(self, catch_up_seconds: float = 60.0) -> None:
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self._bootstrap, enable_auto_commit=False, group_id=None
        )
        await consumer.start()
        self._consumer = consumer
        partitions = await partitions_of(consumer, [self._topic])
        if not partitions:
            raise LookupError(f"topic {self._topic} does not exist")
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        ends = await consumer.end_offsets(partitions) if partitions else {}
        deadline = time.monotonic() + catch_up_seconds
        while await self._behind(consumer, ends):
            if time.monotonic() > deadline:
                raise TimeoutError(f"view of {self._topic} did not catch up in {catch_up_seconds}s")
            await self._poll(consumer, 200)
        self.ready = True
        self._task = asyncio.create_task(self._follow(consumer))

    @staticmethod
    async def _behind(consumer: AIOKafkaConsumer, ends: dict[TopicPartition, int]) -> bool:
        for partition, end in ends.items():
            if await consumer.position(partition) < end:
                return True
        return False

    async def _follow(self, consumer: AIOKafkaConsumer) -> None:
        while True:
            await self._poll(consumer, 1000)

    async def _poll(self, consumer: AIOKafkaConsumer, timeout_ms: int) -> None:
        batches = await consumer.getmany(timeout_ms=timeout_ms, max_records=5000)
        for records in batches.values():
            for record in records:
                if record.key is None:
                    continue
                value = None
                if record.value is not None:
                    try:
                        value = self._parse(record.value)
                    except (ValidationError, ValueError) as exc:
                        log.warning("view record ignored", topic=self._topic, error=str(exc))
                        continue
                if value is None:
                    self._values.pop(record.key, None)
                else:
                    self._values[record.key] = value
                self.version += 1

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._consumer is not None:
            await self._consumer.stop()


def _city(value: bytes) -> City:
    return City.model_validate_json(value)


class DirectoryView:
    """The member-city directory as the scheduler last published it."""

    def __init__(self, bootstrap_servers: str, topic: str) -> None:
        self._view: CompactedView[City] = CompactedView(bootstrap_servers, topic, _city)
        self._cache: tuple[int, Directory] = (-1, Directory(()))

    @property
    def directory(self) -> Directory:
        version, directory = self._cache
        if version != self._view.version:
            cities = sorted(self._view.values(), key=lambda c: c.id)
            directory = Directory(tuple(cities))
            self._cache = (self._view.version, directory)
        return directory

    @property
    def ready(self) -> bool:
        return self._view.ready

    async def start(self) -> None:
        await self._view.start()

    async def stop(self) -> None:
        await self._view.stop()


class SubmissionView:
    """Which cities have submitted for which deadline: consumers ask it before sending."""

    def __init__(self, bootstrap_servers: str, topic: str) -> None:
        self._view: CompactedView[bool] = CompactedView(
            bootstrap_servers, topic, lambda value: bool(parse_submission(value))
        )

    def submitted(self, deadline_id: str, city_id: str) -> bool:
        return self._view.get(f"{deadline_id}/{city_id}".encode()) is not None

    def still_wanted(self, event: CloudEvent, city_ids: Sequence[str]) -> bool:
        """False for a reminder every one of whose cities has already submitted."""
        if not isinstance(event, DeadlineReminderEvent):
            return True
        deadline_id = event.data.deadline_id
        return not city_ids or not all(self.submitted(deadline_id, c) for c in city_ids)

    @property
    def ready(self) -> bool:
        return self._view.ready

    async def start(self) -> None:
        await self._view.start()

    async def stop(self) -> None:
        await self._view.stop()
