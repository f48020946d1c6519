"""Which records of a batch may have been handled before (and so need the ledger check).

A record is read twice only when a member handled it and then lost its partition, or died,
before committing it; the next owner gets the partition at an assignment. Whatever the
earlier owner handled was on the partition *before* that assignment, so below the log end
offset read right after it: the partition's *fence*. Records at or above the fence are new
to the group, and their ledger lookup (a database round trip per batch) can be skipped.

A fence is taken at the first batch of a partition after each assignment (later is only
more careful), for every assigned partition then without one: a request waits behind the
consumer's fetch in flight on the same connection, so one request, not one per partition.
A fence is dropped when the partition is revoked or a batch is rewound (the member itself
may then have handled records above it).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition


class Fence:
    def __init__(self) -> None:
        self._fences: dict[TopicPartition, int] = {}

    async def maybe_handled(self, consumer: AIOKafkaConsumer, records: Sequence[Any]) -> list[bool]:
        """Per record (ConsumerRecords): True if it may have been handled before."""
        partitions = {TopicPartition(r.topic, r.partition) for r in records}
        if any(p not in self._fences for p in partitions):
            # every assigned partition without a fence at once: each request waits behind
            # the consumer's fetch in flight on the same connection (up to its max wait)
            wanted = (partitions | consumer.assignment()) - self._fences.keys()
            self._fences.update(await consumer.end_offsets(list(wanted)))
        return [
            record.offset < self._fences[TopicPartition(record.topic, record.partition)]
            for record in records
        ]

    def drop(self, partitions: Iterable[TopicPartition]) -> None:
        """Forget the fences of ``partitions`` (revoked, assigned anew, or rewound)."""
        for partition in partitions:
            self._fences.pop(partition, None)
