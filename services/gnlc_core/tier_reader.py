"""The consumer of one channel's retry tiers: one Kafka consumer (one group join) for every
tier topic, which follows ``gnlc_core.ladder`` for each record it reads.

- A record not ready yet stops its partition there: the consumer seeks back to it and
  pauses the partition until it is ready, and keeps polling (and its group membership)
  meanwhile.
- Records that are due go to the channel's ``deliver`` in a task of their own, so a slow
  delivery never delays the next due record; at most ``max_in_flight`` such tasks run, and
  fewer, with fewer records each, while the channel's first attempts have work
  (``share``: ``gnlc_core.priority``).
- Records due within the shortest tier wait in memory; records that are ready but not due
  move on to the tier that fits what is left (published, then committed here).

Offsets are committed once what they cover is finished (delivered, moved), never past a
record that is still held or being delivered, so a kill -9 loses nothing: what was not
committed is read again, and the ledger skips what is settled.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from contextlib import suppress
from dataclasses import dataclass, field
from typing import TypeAlias

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, ConsumerRecord, TopicPartition
from aiokafka.errors import KafkaError
from aiokafka.structs import OffsetAndMetadata

from gnlc_core.kafka import (
    FETCH_WAIT_MS,
    GROUP_HEARTBEAT_MS,
    GROUP_SESSION_MS,
    RECIPIENT_HEADER,
)
from gnlc_core.ladder import LADDER, Action, next_step, ready_at, tier_of_topic
from gnlc_core.logs import get_logger
from gnlc_core.priority import Share
from gnlc_core.tracing import FIRST_ATTEMPT_HEADER

log = get_logger(__name__)

ATTEMPT_HEADER = "x-gnlc-attempt"
NOT_BEFORE_HEADER = "x-gnlc-not-before"  # the absolute due time, epoch milliseconds
LAST_ERROR_HEADER = "x-gnlc-last-error"

COMMIT_SECONDS = 0.5
#: the longest rest after a delivery task while first attempts have work (seconds)
MAX_REST = 1.0

Record: TypeAlias = "ConsumerRecord[bytes, bytes]"


@dataclass(frozen=True)
class Due:
    """A retry record that is due: its notice, for whom, and which attempt it is."""

    value: bytes
    recipient: str
    attempt: int
    #: The ``traceparent`` of the first attempt's span (``tracing.FIRST_ATTEMPT_HEADER``).
    first_attempt: str | None = None


DeliverMany = Callable[[Sequence[Due]], Awaitable[None]]
#: publishes ``record`` (value, key, headers) to the tier topic named first
Move = Callable[[str, Record], Awaitable[None]]
#: the name of the tier topic of that many seconds
TierTopic = Callable[[float], str]


def header(record: Record, name: str, default: str) -> str:
    for key, value in record.headers or ():
        if key == name:
            return bytes(value).decode()
    return default


def due_of(record: Record) -> float:
    """The record's due time (epoch seconds); 0 (due now) without one."""
    try:
        return int(header(record, NOT_BEFORE_HEADER, "0")) / 1000
    except ValueError:
        return 0.0


def due_record(record: Record) -> Due:
    return Due(
        record.value or b"",
        header(record, RECIPIENT_HEADER, ""),
        int(header(record, ATTEMPT_HEADER, "2")),
        header(record, FIRST_ATTEMPT_HEADER, "") or None,
    )


@dataclass(eq=False)
class _Partition:
    """Where one assigned partition stands: offsets taken and not finished, the offset after
    the last record taken, and the timers that act on it."""

    frontier: int = -1
    outstanding: set[int] = field(default_factory=set)
    committed: int = -1
    resume: asyncio.TimerHandle | None = None
    holds: dict[int, asyncio.TimerHandle] = field(default_factory=dict)

    def take(self, offset: int) -> None:
        self.outstanding.add(offset)
        self.frontier = max(self.frontier, offset + 1)

    def finish(self, offset: int) -> None:
        self.outstanding.discard(offset)

    def commit_offset(self) -> int | None:
        """The offset to commit: before the first record not finished."""
        if self.outstanding:
            return min(self.outstanding)
        return self.frontier if self.frontier >= 0 else None

    def cancel(self) -> None:
        if self.resume is not None:
            self.resume.cancel()
        for handle in self.holds.values():
            handle.cancel()
        self.holds.clear()


class TierReader:
    """Reads every tier topic matching ``pattern`` in group ``group_id``."""

    def __init__(
        self,
        *,
        bootstrap_servers: str,
        group_id: str,
        pattern: str,
        deliver: DeliverMany,
        move: Move,
        tier_topic: TierTopic,
        ladder: tuple[float, ...] = LADDER,
        batch_size: int = 500,
        max_in_flight: int = 16,
        share: Callable[[], Share] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._bootstrap = bootstrap_servers
        self._group_id = group_id
        self._pattern = pattern
        self._deliver_many = deliver
        self._move_one = move
        self._tier_topic = tier_topic
        self._ladder = ladder
        self._batch_size = batch_size
        self._max_in_flight = max_in_flight
        self._share = share or (lambda: Share(max_in_flight, batch_size))
        self._clock = clock
        self._consumer: AIOKafkaConsumer | None = None
        self._loop_task: asyncio.Task[None] | None = None
        self._partitions: dict[TopicPartition, _Partition] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._held_due: list[tuple[_Partition, Record]] = []
        self._last_commit = 0.0
        self._joined = asyncio.Event()

    @property
    def joined(self) -> bool:
        """The consumer has joined its group (had its first assignment, maybe empty)."""
        return self._joined.is_set()

    async def wait_joined(self) -> None:
        await self._joined.wait()

    # lifecycle -----------------------------------------------------------------------

    async def start(self) -> None:
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self._bootstrap,
            group_id=self._group_id,
            client_id=f"{self._group_id}-tiers",
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            session_timeout_ms=GROUP_SESSION_MS,
            heartbeat_interval_ms=GROUP_HEARTBEAT_MS,
            fetch_max_wait_ms=FETCH_WAIT_MS,
            max_poll_records=self._batch_size,
        )
        consumer.subscribe(pattern=self._pattern, listener=_Listener(self))
        await consumer.start()
        self._consumer = consumer
        self._loop_task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        """Stop reading, let deliveries in flight finish (a little while), commit what is
        finished and leave the group (its partitions move at once)."""
        if self._loop_task is not None:
            self._loop_task.cancel()
            with suppress(asyncio.CancelledError):
                await self._loop_task
            self._loop_task = None
        for state in self._partitions.values():
            state.cancel()
        await self._settle_in_flight(seconds=5.0)
        if self._consumer is not None:
            with suppress(KafkaError):
                await self._commit(None)
            await self._consumer.stop()
            self._consumer = None

    # the loop ------------------------------------------------------------------------

    async def _run(self) -> None:
        while True:
            try:
                await self._poll_once()
            except asyncio.CancelledError:
                raise
            except Exception:  # the broker away, a bug: log, and go on after a pause
                log.exception("retry tier consumer failed; going on", group=self._group_id)
                await asyncio.sleep(1.0)

    async def _poll_once(self) -> None:
        consumer = self._consumer
        assert consumer is not None
        share = self._share()
        while len(self._tasks) >= min(share.tasks, self._max_in_flight):  # back-pressure
            await asyncio.wait(list(self._tasks), return_when=asyncio.FIRST_COMPLETED)
            share = self._share()
        batch: dict[TopicPartition, list[Record]] = await consumer.getmany(
            timeout_ms=500, max_records=min(share.records, self._batch_size)
        )
        now = self._clock()
        due: list[tuple[_Partition, Record]] = []
        moves: list[tuple[_Partition, Record, str]] = []
        for partition, records in batch.items():
            state = self._partitions.setdefault(partition, _Partition())
            for record in records:
                record_due = due_of(record)
                ready = ready_at(record.timestamp / 1000, tier_of_topic(record.topic), record_due)
                step = next_step(now, ready=ready, due=record_due, ladder=self._ladder)
                if step.action is Action.WAIT:
                    self._wait(consumer, partition, state, record.offset, step.at - now)
                    break
                state.take(record.offset)
                if step.action is Action.DELIVER:
                    due.append((state, record))
                elif step.action is Action.HOLD:
                    self._hold(state, record, step.at - now)
                else:
                    moves.append((state, record, self._tier_topic(step.tier)))
        if due:
            self._deliver(due)
        if moves:
            await self._move(moves)
        if self._clock() - self._last_commit >= COMMIT_SECONDS:
            await self._commit(None)

    def _wait(
        self,
        consumer: AIOKafkaConsumer,
        partition: TopicPartition,
        state: _Partition,
        offset: int,
        wait: float,
    ) -> None:
        """Read ``partition`` again from ``offset`` once it is ready, in ``wait`` seconds."""
        consumer.seek(partition, offset)
        consumer.pause(partition)

        def resume() -> None:
            state.resume = None
            if self._partitions.get(partition) is state and partition in consumer.assignment():
                consumer.resume(partition)

        if state.resume is not None:
            state.resume.cancel()
        state.resume = asyncio.get_running_loop().call_later(max(wait, 0.0), resume)

    def _hold(self, state: _Partition, record: Record, wait: float) -> None:
        """Keep a record due within the shortest tier in memory until it is due."""

        def due_now() -> None:
            state.holds.pop(record.offset, None)
            if not self._held_due:
                asyncio.get_running_loop().call_soon(self._deliver_held)
            self._held_due.append((state, record))

        state.holds[record.offset] = asyncio.get_running_loop().call_later(wait, due_now)

    def _deliver_held(self) -> None:
        held, self._held_due = self._held_due, []
        if held:
            self._deliver(held)

    def _deliver(self, items: list[tuple[_Partition, Record]]) -> None:
        task = asyncio.create_task(self._deliver_task(items))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _deliver_task(self, items: list[tuple[_Partition, Record]]) -> None:
        """Hand due records to the channel (once each: a record read twice after a crash is
        one delivery), trying again after a pause if it fails (the database or the broker
        away): the records stay uncommitted until it succeeds."""
        unique = {(d.recipient, d.attempt, d.value): d for d in (due_record(r) for _, r in items)}
        due = list(unique.values())
        started = time.monotonic()
        pause = 1.0
        while True:
            try:
                await self._deliver_many(due)
                break
            except Exception:
                log.exception("delivering due retries failed; trying again", count=len(due))
                await asyncio.sleep(pause)
                pause = min(pause * 2, 30.0)
        for state, record in items:
            state.finish(record.offset)
        # while the channel's first attempts have work, the task keeps its slot a while
        # longer: the retries take only their share of the time (gnlc_core.priority)
        rest = self._share().rest_after(time.monotonic() - started)
        if rest > 0:
            await asyncio.sleep(min(rest, MAX_REST))

    async def _move(self, moves: list[tuple[_Partition, Record, str]]) -> None:
        """Publish ready records to the tier that fits them, then mark them finished."""
        pause = 1.0
        pending = moves
        while pending:
            results = await asyncio.gather(
                *(self._move_one(topic, record) for _, record, topic in pending),
                return_exceptions=True,
            )
            failed = []
            for move, result in zip(pending, results, strict=True):
                if isinstance(result, BaseException):
                    failed.append(move)
                else:
                    move[0].finish(move[1].offset)
            if failed:
                log.warning(
                    "moving retries to their next tier failed; trying again", count=len(failed)
                )
                await asyncio.sleep(pause)
                pause = min(pause * 2, 30.0)
            pending = failed

    # commits and rebalances ------------------------------------------------------------

    async def _commit(self, partitions: Iterable[TopicPartition] | None) -> None:
        consumer = self._consumer
        if consumer is None:
            return
        self._last_commit = self._clock()
        wanted = set(partitions) if partitions is not None else set(self._partitions)
        assigned = consumer.assignment()
        offsets: dict[TopicPartition, OffsetAndMetadata] = {}
        for partition in wanted & assigned:
            state = self._partitions.get(partition)
            offset = state.commit_offset() if state is not None else None
            if state is not None and offset is not None and offset > state.committed:
                offsets[partition] = OffsetAndMetadata(offset, "")
        if not offsets:
            return
        try:
            await consumer.commit(offsets)
        except KafkaError as exc:  # rebalanced meanwhile: read again, the ledger skips them
            log.warning("retry tier commit failed", error=str(exc))
            return
        for partition, meta in offsets.items():
            self._partitions[partition].committed = meta.offset

    async def _settle_in_flight(self, seconds: float) -> None:
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=seconds)

    async def _revoked(self, revoked: set[TopicPartition]) -> None:
        """Before partitions move: stop their timers, let deliveries finish (briefly), commit
        what is finished. Records held in memory are read again by the next owner."""
        for partition in revoked:
            state = self._partitions.get(partition)
            if state is not None:
                state.cancel()
        await self._settle_in_flight(seconds=2.0)
        with suppress(KafkaError):
            await self._commit(revoked)
        for partition in revoked:
            self._partitions.pop(partition, None)

    def _assigned(self, _assigned: set[TopicPartition]) -> None:
        self._joined.set()


class _Listener(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, reader: TierReader) -> None:
        self._reader = reader

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        await self._reader._revoked(revoked)

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        self._reader._assigned(assigned)


__all__ = [
    "ATTEMPT_HEADER",
    "LAST_ERROR_HEADER",
    "NOT_BEFORE_HEADER",
    "DeliverMany",
    "Due",
    "TierReader",
]
