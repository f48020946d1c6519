"""Write-behind: a batch's offsets are marked finished only once its write is done; a write
that fails has its batch read again (each partition rewound to its first record, the
earliest of the batches read again, fences dropped); the write goes on when its waiter is
cancelled."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import pytest
from aiokafka import TopicPartition

from gnlc_core.commits import Commits
from gnlc_core.fence import Fence
from gnlc_core.write_behind import WriteBehind, first_offsets

A, B = TopicPartition("t", 0), TopicPartition("t", 1)


@dataclass
class Record:
    topic: str
    partition: int
    offset: int


class Consumer:
    """What write-behind asks of a consumer: its assignment, and seeking."""

    def __init__(self) -> None:
        self.seeks: dict[TopicPartition, int] = {}

    def assignment(self) -> set[TopicPartition]:
        return {A, B}

    def seek(self, partition: TopicPartition, offset: int) -> None:
        self.seeks[partition] = offset

    async def commit(self, offsets: object) -> None:
        self.committed = offsets


def batch(*where: tuple[int, int]) -> list[Record]:
    return [Record("t", partition, offset) for partition, offset in where]


def parts() -> tuple[Commits, Fence, Consumer, WriteBehind]:
    commits, fence, consumer = Commits(), Fence(), Consumer()
    fence._fences.update({A: 100, B: 100})
    return commits, fence, consumer, WriteBehind(commits, fence)


async def test_offsets_are_finished_once_written_not_before() -> None:
    commits, _, consumer, behind = parts()
    gate = asyncio.Event()

    async def write() -> None:
        await gate.wait()

    behind.start(consumer, batch((0, 5), (0, 6), (1, 9)), write())
    await asyncio.sleep(0.01)
    assert commits._finished == {}  # sent, not written: nothing may be committed
    gate.set()
    assert await behind.settle() is None
    assert commits._finished == {A: 7, B: 10}
    assert consumer.seeks == {}
    await commits.close()


async def test_a_failed_write_reads_its_batch_again_and_the_next_with_it() -> None:
    commits, fence, consumer, behind = parts()

    async def broken() -> None:
        raise OSError("database away")

    first, second = batch((0, 5), (0, 6)), batch((0, 7), (1, 3))
    behind.start(consumer, first, broken())
    failed = await behind.settle()
    assert failed == first
    assert consumer.seeks == {A: 5}  # rewound as soon as it failed
    behind.rewind(consumer, second, failed)  # the one sent since
    assert consumer.seeks == {A: 5, B: 3}  # the earliest of both per partition
    assert commits._finished == {}
    assert fence._fences == {}  # every record of both is asked about in the ledger again


async def test_the_write_goes_on_when_its_waiter_is_cancelled() -> None:
    commits, _, consumer, behind = parts()
    gate = asyncio.Event()
    done: list[str] = []

    async def write() -> None:
        await gate.wait()
        done.append("written")

    behind.start(consumer, batch((1, 4)), write())
    waiter = asyncio.create_task(behind.settle())
    await asyncio.sleep(0.01)
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    gate.set()
    await asyncio.sleep(0.01)
    assert done == ["written"]
    assert commits._finished == {B: 5}
    await commits.close()


def test_first_offsets_per_partition() -> None:
    assert first_offsets(batch((0, 9), (1, 4), (0, 3), (1, 8))) == {A: 3, B: 4}
