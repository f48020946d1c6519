"""A global send rate limit: at most N sends in any window of the given length.

Sliding windows are exact: a provider's "10,000 per hour" holds for every hour, where a
leaky bucket would let up to twice that through in an hour that starts with a full burst.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable


class SlidingWindow:
    """At most ``limit`` events in any ``period`` seconds."""

    def __init__(self, limit: int, period: float, *, clock: Callable[[], float] = time.monotonic):
        if limit < 1 or period <= 0:
            raise ValueError("a window needs a limit of at least 1 and a positive period")
        self.limit = limit
        self.period = period
        self._clock = clock
        self._times: deque[float] = deque(maxlen=limit)

    def wait(self) -> float:
        """Seconds until one more event fits (0: now)."""
        if len(self._times) < self.limit:
            return 0.0
        return max(0.0, self._times[0] + self.period - self._clock())

    def take(self) -> None:
        self._times.append(self._clock())


def per_second(rate: float) -> SlidingWindow:
    """``rate`` sends a second; below one (0.5) as one send per 1/rate seconds."""
    if rate >= 1:
        return SlidingWindow(int(rate), 1.0)
    return SlidingWindow(1, 1.0 / rate)


class RateLimiter:
    """Waits (in arrival order) until every window has room, then counts the send."""

    def __init__(self, windows: list[SlidingWindow]) -> None:
        self._windows = windows
        self._lock = asyncio.Lock()

    @classmethod
    def from_rates(cls, per_sec: float, per_hour: int) -> RateLimiter:
        """0 disables a limit."""
        windows = []
        if per_sec > 0:
            windows.append(per_second(per_sec))
        if per_hour > 0:
            windows.append(SlidingWindow(per_hour, 3600.0))
        return cls(windows)

    async def acquire(self) -> None:
        if not self._windows:
            return
        async with self._lock:
            # waits for time to pass, not for another task: there is no event to await
            while (wait := max(window.wait() for window in self._windows)) > 0:  # noqa: ASYNC110
                await asyncio.sleep(wait)
            for window in self._windows:
                window.take()
