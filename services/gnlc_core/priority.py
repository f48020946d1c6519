"""First attempts before retries: a channel's retry tiers yield to its domain consumer.

An endpoint that comes back after an outage may have tens of thousands of retries due at
once. Sent as fast as the tier consumer reads them, they would take the event loop, the
database writer and the endpoint's lane from the first attempts of every other endpoint.
So, while the domain consumer has work (a batch in hand, or one finished within
``LINGER`` seconds), the tier consumer keeps a small *share*: ``YIELDING`` (one delivery
task of at most 25 records at a time, and after each a rest three times as long as it
took, a second at most, so retries take at most a quarter of the time: they still drain,
at about a sixth of what they do alone beside first attempts at 100-500 events/s;
``deploy/bench.sh flood`` measures it; a task of 100 records held the event loop long
enough to triple the first attempts' p99 at 100 events/s), and
``FULL`` otherwise (16 tasks of up to 500 records, no rest). The price: while first attempts
have work, a retry that comes due may wait for the one task in hand and its rest (a few
milliseconds behind a fast endpoint; up to the hand-off time and a second behind a slow
one). Within the channel, the domain batch's writes go
before the retries' (``PriorityLock``) and its deliveries take a lane's free slot before
queued retries (``gnlc_webhook.lanes``).

``retry_share`` is the pure decision; ``FirstAttempts`` tracks the domain consumer's work.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass

#: seconds after a batch during which the domain consumer still counts as busy (the next
#: batch is usually being fetched)
LINGER = 0.5


@dataclass(frozen=True)
class Share:
    """What the retry tiers may have in hand: delivery tasks in flight, records per task,
    and the rest after a task, as a multiple of the time it took."""

    tasks: int
    records: int
    rest: float = 0.0

    def rest_after(self, took: float) -> float:
        """Seconds to rest after a delivery task that took ``took`` seconds."""
        return max(took, 0.0) * self.rest


FULL = Share(tasks=16, records=500)
YIELDING = Share(tasks=1, records=25, rest=3.0)


def retry_share(batches: int, idle_for: float, *, linger: float = LINGER) -> Share:
    """The retry tiers' share while the domain consumer has ``batches`` in hand and
    finished its last one ``idle_for`` seconds ago: YIELDING while it has work, else FULL."""
    if batches > 0 or idle_for < linger:
        return YIELDING
    return FULL


class FirstAttempts:
    """Whether a channel's domain consumer has work (``handling`` wraps each batch)."""

    def __init__(self, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._batches = 0
        self._last = float("-inf")

    @contextmanager
    def handling(self) -> Iterator[None]:
        self._batches += 1
        try:
            yield
        finally:
            self._batches -= 1
            self._last = self._clock()

    def share(self) -> Share:
        """The retry tiers' share now (``retry_share``)."""
        return retry_share(self._batches, self._clock() - self._last)


class PriorityLock:
    """A lock whose urgent waiters go before the others (each first come, first served)."""

    def __init__(self) -> None:
        self._held = False
        self._urgent: deque[asyncio.Future[None]] = deque()
        self._other: deque[asyncio.Future[None]] = deque()

    @property
    def locked(self) -> bool:
        return self._held

    @asynccontextmanager
    async def hold(self, *, urgent: bool = False) -> AsyncIterator[None]:
        await self._acquire(urgent)
        try:
            yield
        finally:
            self._release()

    async def _acquire(self, urgent: bool) -> None:
        if not self._held and not self._urgent and not self._other:
            self._held = True
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        queue = self._urgent if urgent else self._other
        queue.append(future)
        try:
            await future  # the lock is handed to us by _release
        except asyncio.CancelledError:
            if future.done() and not future.cancelled():
                self._release()  # handed over and cancelled at once: pass it on
            elif future in queue:
                queue.remove(future)
            raise

    def _release(self) -> None:
        while self._urgent or self._other:
            future = (self._urgent or self._other).popleft()
            if not future.done():
                future.set_result(None)  # the lock stays held, by the one woken
                return
        self._held = False


__all__ = ["FULL", "YIELDING", "FirstAttempts", "PriorityLock", "Share", "retry_share"]
