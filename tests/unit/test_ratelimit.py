"""The global send rate limit."""

from __future__ import annotations

import time

import pytest

from gnlc_email.ratelimit import RateLimiter, SlidingWindow, per_second


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_sliding_window_counts_every_window_of_that_length() -> None:
    clock = Clock()
    window = SlidingWindow(3, 3600.0, clock=clock)
    for _ in range(3):
        assert window.wait() == 0
        window.take()
    assert window.wait() == 3600.0
    clock.now += 1800
    assert window.wait() == 1800.0  # a leaky bucket would let one through by now
    clock.now += 1800
    assert window.wait() == 0


def test_rates_below_one_per_second() -> None:
    window = per_second(0.5)
    assert (window.limit, window.period) == (1, 2.0)
    assert (per_second(25).limit, per_second(25).period) == (25, 1.0)


async def test_limiter_spaces_sends_and_never_lets_one_through_early() -> None:
    limiter = RateLimiter.from_rates(per_sec=10, per_hour=0)
    started = time.monotonic()
    for _ in range(25):
        await limiter.acquire()
    # 10 at once, then 10 a second: the 25th cannot go before 2 seconds have passed
    assert time.monotonic() - started >= 2.0 - 0.01


class Slept(Exception):
    """The limiter asked to wait."""


async def test_no_limits_no_waiting(monkeypatch: pytest.MonkeyPatch) -> None:
    async def sleep(seconds: float) -> None:
        raise Slept(seconds)

    monkeypatch.setattr("gnlc_email.ratelimit.asyncio.sleep", sleep)
    limiter = RateLimiter.from_rates(per_sec=0, per_hour=0)
    for _ in range(1000):
        await limiter.acquire()  # never waits
    limited = RateLimiter.from_rates(per_sec=10, per_hour=0)  # the same check, with a limit
    for _ in range(10):
        await limited.acquire()
    with pytest.raises(Slept):
        await limited.acquire()
