"""Per-endpoint lanes: how many requests an endpoint may have in flight, how fast, and
whether it asked us to back off. A slow endpoint fills only its own lane.

Concurrency adapts (AIMD): each success widens the lane by one up to its maximum; a
slow-down answer (429/502/503/504) halves it and pauses the lane for ``Retry-After`` or the
configured pause. The rate limit is a token bucket of one second's worth of requests.

Waiting for a slot, first attempts go before retries (each in their order of arrival): an
endpoint that comes back with thousands of retries due takes its new events at once, so
the batches they belong to (and the other endpoints' deliveries in them) are not held up.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable


class Lane:
    def __init__(
        self,
        max_concurrency: int,
        rate: float | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.max_concurrency = max_concurrency
        self.limit = max_concurrency
        self.rate = rate
        self.in_flight = 0
        self.waiting = 0
        self.paused_until = 0.0
        self.slow = False  # the last request took longer than a batch waits (or timed out)
        self._clock = clock
        self._tokens = float(rate or 0)
        self._refilled = clock()
        # FIFO each, woken one at a time: first attempts, then retries
        self._first: deque[asyncio.Future[None]] = deque()
        self._retries: deque[asyncio.Future[None]] = deque()

    def configure(self, max_concurrency: int, rate: float | None) -> None:
        """Follow an endpoint's edited limits."""
        if max_concurrency != self.max_concurrency:
            self.max_concurrency = max_concurrency
            self.limit = min(self.limit, max_concurrency) or 1
        self.rate = rate

    def pause_left(self) -> float:
        """Seconds until the lane may send again after a slow-down (0: now)."""
        return max(0.0, self.paused_until - self._clock())

    def _refill(self) -> None:
        if self.rate is None:
            return
        now = self._clock()
        self._tokens = min(self.rate, self._tokens + (now - self._refilled) * self.rate)
        self._refilled = now

    def rate_wait(self) -> float:
        """Seconds until a request is allowed by the rate limit (0: now); takes the token
        when it is available now."""
        if self.rate is None:
            return 0.0
        self._refill()
        if self._tokens >= 1:
            self._tokens -= 1
            return 0.0
        return (1 - self._tokens) / self.rate

    @property
    def full(self) -> bool:
        return self.in_flight >= self.limit

    async def acquire(self, *, first: bool = True) -> None:
        """Wait for a free slot: first attempts (``first``) before retries, each first come
        first served (the caller bounds the wait)."""
        if self.in_flight < self.limit and not self._first and (first or not self._retries):
            self.in_flight += 1
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        queue = self._first if first else self._retries
        queue.append(future)
        self.waiting += 1
        try:
            await future  # the slot is counted for us by _wake
        except asyncio.CancelledError:
            if future.done() and not future.cancelled():
                self.in_flight -= 1  # woken and cancelled at once: hand the slot on
                self._wake()
            elif future in queue:  # (only a cancelled waiter is still queued)
                queue.remove(future)
            raise
        finally:
            self.waiting -= 1

    def _wake(self) -> None:
        while self.in_flight < self.limit and (self._first or self._retries):
            future = (self._first or self._retries).popleft()
            if not future.done():
                self.in_flight += 1
                future.set_result(None)

    async def release(self, *, ok: bool, slow_down: float | None = None) -> None:
        """Free a slot; ``ok`` widens the lane, ``slow_down`` (seconds) halves and pauses it."""
        self.in_flight -= 1
        if slow_down is not None:
            self.limit = max(1, self.limit // 2)
            self.paused_until = max(self.paused_until, self._clock() + slow_down)
        elif ok and self.limit < self.max_concurrency:
            self.limit += 1
        self._wake()
