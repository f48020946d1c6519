"""Write-behind: a batch's notices are written while the next batch is sent.

A batch of the domain topics goes in two parts: sending (every delivery settled, or on a
retry tier) and writing (ledger rows, the channel's own rows, receipts: one transaction).
Writing took about a third of a batch's time with the event loop mostly waiting (SQLite's
writer thread, PostgreSQL's round trips, the receipts' acknowledgements). Here the write of
batch N runs while batch N+1 is sent; at most one write is behind: N+1's handler waits for
N's before it starts its own.

What it keeps:

* nothing is committed before it is written: a batch's offsets are marked finished
  (``gnlc_core.commits``) only once its write is done;
* a write that fails reads the batch again: its partitions are rewound to its first
  records, with the next batch's (already sent, its write dropped) when they share one,
  and their fences dropped so the ledger is asked about every record (those sent twice
  are the at-least-once kind, as after a crash);
* before partitions are revoked, and at shutdown, the write behind is awaited first.

A crash with a write behind is a crash after sending and before writing, as before, only
for two batches at most: they are read again, and sent again where nothing was written.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine, Iterable, Sequence
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition

from gnlc_core.commits import Commits, next_offsets
from gnlc_core.fence import Fence
from gnlc_core.logs import get_logger

log = get_logger(__name__)

Records = Sequence[Any]  # ConsumerRecords of one batch
Write = Coroutine[Any, Any, None]


def first_offsets(records: Iterable[Any]) -> dict[TopicPartition, int]:
    """The offset of the first record per partition: where to read a batch again."""
    firsts: dict[TopicPartition, int] = {}
    for record in records:
        partition = TopicPartition(record.topic, record.partition)
        if record.offset < firsts.get(partition, record.offset + 1):
            firsts[partition] = record.offset
    return firsts


class WriteBehind:
    """The one write behind of a consumer (see the module)."""

    def __init__(self, commits: Commits, fence: Fence) -> None:
        self._commits = commits
        self._fence = fence
        self._pending: tuple[asyncio.Task[None], AIOKafkaConsumer, Records] | None = None

    def start(self, consumer: AIOKafkaConsumer, records: Records, write: Write) -> None:
        """Start ``write``, the writes of ``records`` (sent); the one before is settled.
        Once written its offsets are marked finished (committed with the next interval's);
        if it fails its records are read again."""
        assert self._pending is None, "settle the write behind first"
        task = asyncio.ensure_future(write)
        task.add_done_callback(lambda done: self._written(done, consumer, records))
        self._pending = (task, consumer, records)

    def _written(
        self, task: asyncio.Future[None], consumer: AIOKafkaConsumer, records: Records
    ) -> None:
        if task.cancelled():
            self.rewind(consumer, records)
            return
        if (error := task.exception()) is not None:
            log.error(
                "writing a batch failed; it will be read again",
                records=len(records),
                error=f"{type(error).__name__}: {error}",
            )
            self.rewind(consumer, records)
            return
        self._commits.finish(consumer, next_offsets(records))

    async def settle(self) -> Records | None:
        """Wait for the write behind (if any); its records if it failed (they are read
        again: rewound, and the caller rewinds the batch it sent since with them)."""
        if self._pending is None:
            return None
        task, _, records = self._pending
        self._pending = None
        try:
            await asyncio.shield(task)  # the caller cancelled: the write goes on
        except asyncio.CancelledError:
            if not task.cancelled():
                raise
            return records
        except Exception:
            return records
        return None

    def rewind(self, consumer: AIOKafkaConsumer, *batches: Records) -> None:
        """Read ``batches`` again: each assigned partition goes back to its first record
        among them, and the fences of them all are dropped."""
        firsts: dict[TopicPartition, int] = {}
        for records in batches:
            self._fence.drop(next_offsets(records))
            for partition, offset in first_offsets(records).items():
                firsts[partition] = min(offset, firsts.get(partition, offset))
        assigned = consumer.assignment()
        for partition, offset in firsts.items():
            if partition in assigned:
                consumer.seek(partition, offset)

    async def wait(self) -> None:
        """Wait for the write behind (before a revocation, at shutdown); once done it is
        marked finished, or read again if it failed (``start``)."""
        await self.settle()
