"""Background offset commits and the fence above which records are new to the group."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, cast

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import CommitFailedError

from gnlc_core.commits import Commits, next_offsets
from gnlc_core.fence import Fence

A = TopicPartition("t", 0)
B = TopicPartition("t", 1)


@dataclass
class Record:
    topic: str
    partition: int
    offset: int


@dataclass
class FakeConsumer:
    assigned: set[TopicPartition] = field(default_factory=lambda: {A, B})
    ends: dict[TopicPartition, int] = field(default_factory=dict)
    commits: list[dict[TopicPartition, int]] = field(default_factory=list)
    end_calls: int = 0
    fail: bool = False

    def assignment(self) -> set[TopicPartition]:
        return self.assigned

    async def commit(self, offsets: dict[TopicPartition, Any]) -> None:
        if self.fail:
            raise CommitFailedError("rebalanced")
        self.commits.append({p: o.offset for p, o in offsets.items()})

    async def end_offsets(self, partitions: list[TopicPartition]) -> dict[TopicPartition, int]:
        self.end_calls += 1
        return {p: self.ends[p] for p in partitions}


def test_next_offsets_is_one_past_the_last_record_of_each_partition() -> None:
    records = [Record("t", 0, 5), Record("t", 0, 7), Record("t", 1, 2), Record("t", 0, 6)]
    assert next_offsets(records) == {A: 8, B: 3}


async def test_finished_offsets_are_committed_once_and_only_for_assigned_partitions() -> None:
    consumer = FakeConsumer()
    commits = Commits(interval=3600)
    commits.finish(consumer, {A: 8, B: 3})
    commits.finish(consumer, {A: 6})  # an older mark never moves an offset back
    await commits.commit()
    assert consumer.commits == [{A: 8, B: 3}]
    await commits.commit()  # nothing new: no round trip
    assert len(consumer.commits) == 1

    consumer.assigned = {A}
    commits.finish(consumer, {A: 9, B: 4})
    await commits.commit()  # B moved to another member: not committed, forgotten
    assert consumer.commits[-1] == {A: 9}
    await commits.close()


async def test_a_failed_commit_is_dropped_not_raised() -> None:
    consumer = FakeConsumer(fail=True)
    commits = Commits(interval=3600)
    commits.finish(consumer, {A: 8})
    await commits.commit()  # logged; the records are read again and the ledger skips them
    assert consumer.commits == []
    await commits.close()


async def test_records_below_the_fence_may_have_been_handled_before() -> None:
    consumer = FakeConsumer(ends={A: 10, B: 0})
    fence = Fence()
    live = cast(AIOKafkaConsumer, consumer)
    records = [Record("t", 0, 9), Record("t", 0, 10), Record("t", 1, 0)]
    assert await fence.maybe_handled(live, records) == [True, False, False]
    consumer.ends = {A: 50, B: 50}
    assert await fence.maybe_handled(live, [Record("t", 0, 11)]) == [False]
    assert consumer.end_calls == 1  # one fence per assignment

    fence.drop({A})  # revoked, assigned anew or rewound: the next batch takes a new fence
    assert await fence.maybe_handled(live, [Record("t", 0, 11)]) == [True]
    assert consumer.end_calls == 2


async def test_the_first_batch_fences_every_assigned_partition_in_one_request() -> None:
    consumer = FakeConsumer(ends={A: 10, B: 20})
    fence = Fence()
    live = cast(AIOKafkaConsumer, consumer)
    assert await fence.maybe_handled(live, [Record("t", 0, 3)]) == [True]
    assert await fence.maybe_handled(live, [Record("t", 1, 25)]) == [False]
    assert consumer.end_calls == 1  # B was fenced with A, not at its own first batch
