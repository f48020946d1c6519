"""What a partner's answer means for the delivery and the endpoint, pure.

2xx is delivered. 410 Gone disables the endpoint and fails the delivery for good. Every
other answer (3xx included: redirects are not followed) and every transport error is a
failure to retry. 429, 502, 503 and 504 also ask us to slow down. ``Retry-After`` (seconds
or an HTTP date) sets the delay before the next attempt, capped.
"""

from __future__ import annotations

from datetime import datetime
from email.utils import parsedate_to_datetime
from enum import StrEnum
from typing import NamedTuple

SLOW_DOWN_STATUSES = frozenset({429, 502, 503, 504})


class Verdict(StrEnum):
    DELIVERED = "delivered"
    RETRY = "retry"
    GONE = "gone"  # 410: the endpoint is disabled, nothing more goes there


class Outcome(NamedTuple):
    verdict: Verdict
    error: str | None = None
    retry_after: float | None = None  # seconds, when the partner said so
    slow_down: bool = False


def parse_retry_after(value: str | None, now: datetime, *, cap: float) -> float | None:
    """Seconds to wait from a ``Retry-After`` value (delta-seconds or HTTP date), in
    ``[0, cap]``; None when absent or unreadable."""
    if value is None:
        return None
    value = value.strip()
    if value.isdigit():
        return min(float(value), cap)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        return None
    return min(max((when - now).total_seconds(), 0.0), cap)


def classify(status: int, retry_after: str | None, now: datetime, *, cap: float) -> Outcome:
    """The outcome of an HTTP answer with ``status`` (and its ``Retry-After`` header)."""
    if 200 <= status < 300:
        return Outcome(Verdict.DELIVERED)
    if status == 410:
        return Outcome(Verdict.GONE, error="http 410: the endpoint is gone")
    delay = parse_retry_after(retry_after, now, cap=cap)
    error = f"http {status}" + (" (redirects are not followed)" if 300 <= status < 400 else "")
    return Outcome(
        Verdict.RETRY, error=error, retry_after=delay, slow_down=status in SLOW_DOWN_STATUSES
    )


def transport_failure(exc: BaseException, *, timed_out: bool = False) -> Outcome:
    """The outcome of a request that got no answer (refused, reset ...); a timeout also
    asks us to slow down."""
    detail = str(exc) or "no detail"
    return Outcome(Verdict.RETRY, error=f"{type(exc).__name__}: {detail}", slow_down=timed_out)
