"""First attempts before retries (``gnlc_core.priority``): the share the retry tiers keep,
table-driven, and the lock whose urgent waiters go first."""

from __future__ import annotations

import asyncio

import pytest

from gnlc_core.priority import (
    FULL,
    LINGER,
    YIELDING,
    FirstAttempts,
    PriorityLock,
    Share,
    retry_share,
)


@pytest.mark.parametrize(
    ("batches", "idle_for", "expected"),
    [
        (0, float("inf"), FULL),  # nothing ever came: the retries have it all
        (0, 10.0, FULL),
        (0, LINGER, FULL),
        (0, LINGER - 0.01, YIELDING),  # a batch just finished: the next is coming
        (1, 10.0, YIELDING),  # a batch in hand
        (2, 0.0, YIELDING),
    ],
)
def test_retry_share(batches: int, idle_for: float, expected: Share) -> None:
    assert retry_share(batches, idle_for) == expected


@pytest.mark.parametrize(
    ("share", "took", "rest"),
    [
        (FULL, 2.0, 0.0),  # alone: no rest
        (YIELDING, 0.1, 0.3),  # a quarter of the time at most
        (YIELDING, 0.0, 0.0),
        (YIELDING, -1.0, 0.0),  # a clock step back is no rest
    ],
)
def test_the_rest_after_a_task(share: Share, took: float, rest: float) -> None:
    assert share.rest_after(took) == pytest.approx(rest)


def test_the_yielding_share_still_drains_retries() -> None:
    assert YIELDING.tasks >= 1
    assert YIELDING.records >= 1
    assert YIELDING.tasks * YIELDING.records < FULL.tasks * FULL.records


def test_first_attempts_are_busy_while_handling_and_a_little_after() -> None:
    now = [100.0]
    first = FirstAttempts(clock=lambda: now[0])
    assert first.share() == FULL
    with first.handling():
        now[0] += 30  # a long batch
        assert first.share() == YIELDING
    now[0] += LINGER / 2
    assert first.share() == YIELDING
    now[0] += LINGER
    assert first.share() == FULL


async def test_urgent_waiters_take_the_lock_first() -> None:
    lock = PriorityLock()
    order: list[str] = []

    async def take(name: str, urgent: bool) -> None:
        async with lock.hold(urgent=urgent):
            order.append(name)
            await asyncio.sleep(0)

    async with lock.hold():
        tasks = [
            asyncio.create_task(take(name, urgent))
            for name, urgent in (("retry-1", False), ("first-1", True), ("retry-2", False))
        ]
        await asyncio.sleep(0)
        tasks.append(asyncio.create_task(take("first-2", True)))
        await asyncio.sleep(0)
    await asyncio.wait_for(asyncio.gather(*tasks), 5)
    assert order == ["first-1", "first-2", "retry-1", "retry-2"]
    assert not lock.locked


async def test_a_cancelled_waiter_passes_the_lock_on() -> None:
    lock = PriorityLock()
    got: list[str] = []

    async def take(name: str) -> None:
        async with lock.hold(urgent=True):
            got.append(name)

    async with lock.hold():
        gone = asyncio.create_task(take("gone"))
        kept = asyncio.create_task(take("kept"))
        await asyncio.sleep(0)
        gone.cancel()
        await asyncio.sleep(0)
    await asyncio.wait_for(kept, 5)
    assert got == ["kept"]
    assert gone.cancelled()
    assert not lock.locked
