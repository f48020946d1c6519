from __future__ import annotations

import asyncio

from gnlc_webhook.lanes import Lane


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


async def test_concurrency_halves_on_slow_down_and_grows_back() -> None:
    clock = Clock()
    lane = Lane(4, clock=clock)
    for _ in range(4):
        await lane.acquire()
    assert lane.full
    waiter = asyncio.create_task(lane.acquire())
    await asyncio.sleep(0)
    assert not waiter.done()
    await lane.release(ok=False, slow_down=30)
    assert lane.limit == 2
    assert lane.pause_left() == 30
    await asyncio.sleep(0)
    assert not waiter.done()  # 3 in flight, limit 2
    await lane.release(ok=True)
    await lane.release(ok=True)
    await asyncio.wait_for(waiter, 5)
    assert lane.limit == 4  # two successes widened it again
    clock.now += 31
    assert lane.pause_left() == 0


def test_rate_limit_is_a_token_bucket() -> None:
    clock = Clock()
    lane = Lane(4, rate=2, clock=clock)
    assert lane.rate_wait() == 0
    assert lane.rate_wait() == 0
    assert lane.rate_wait() == 0.5
    clock.now += 0.5
    assert lane.rate_wait() == 0
    assert Lane(4).rate_wait() == 0


async def test_first_attempts_take_a_free_slot_before_retries() -> None:
    lane = Lane(1)
    await lane.acquire()
    woken: list[str] = []

    async def wait(name: str, first: bool) -> None:
        await lane.acquire(first=first)
        woken.append(name)
        await lane.release(ok=True)

    waiters = [
        asyncio.create_task(wait(name, first))
        for name, first in (("retry-1", False), ("retry-2", False), ("first-1", True))
    ]
    await asyncio.sleep(0)
    late = asyncio.create_task(wait("first-2", True))  # comes last, still before retries
    await asyncio.sleep(0)
    assert lane.waiting == 4
    await lane.release(ok=True)
    await asyncio.wait_for(asyncio.gather(*waiters, late), 5)
    assert woken == ["first-1", "first-2", "retry-1", "retry-2"]


async def test_a_retry_does_not_jump_queued_retries_nor_a_cancelled_waiter_keep_a_slot() -> None:
    lane = Lane(1)
    await lane.acquire()
    queued = asyncio.create_task(lane.acquire(first=False))
    cancelled = asyncio.create_task(lane.acquire(first=True))
    await asyncio.sleep(0)
    cancelled.cancel()
    await asyncio.sleep(0)
    assert lane.waiting == 1
    await lane.release(ok=True)
    await asyncio.wait_for(queued, 5)  # the slot went to the queued retry
    assert lane.in_flight == 1
