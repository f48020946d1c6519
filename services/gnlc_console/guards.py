"""Pure decisions that guard the console: cross-site requests (CSRF) and sign-in attempts."""

from __future__ import annotations

import hmac
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from urllib.parse import urlsplit

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
CSRF_HEADER = "x-csrf-token"
CSRF_FIELD = "csrf_token"


def origin_of(url: str) -> str | None:
    """``scheme://host[:port]`` of a URL, or ``None`` when it has none."""
    parts = urlsplit(url)
    if not parts.scheme or not parts.netloc:
        return None
    return f"{parts.scheme}://{parts.netloc}".lower()


def cross_site_problem(
    method: str,
    *,
    own_origin: str,
    origin: str | None,
    referer: str | None,
    expected_token: str,
    given_token: str | None,
) -> str | None:
    """Why an unsafe request must be refused as possibly cross-site, or ``None``.

    It must come from the console's own origin (``Origin``, else ``Referer``; a request with
    neither is refused, as browsers send one on every POST) and carry the session's
    synchronizer token (a form field, or the ``X-CSRF-Token`` header for htmx)."""
    if method.upper() in SAFE_METHODS:
        return None
    source = origin if origin and origin != "null" else None
    if source is None and referer:
        source = origin_of(referer)
    if source is None:
        return "the request names no origin (Origin or Referer)"
    if source.lower() != own_origin.lower():
        return f"the request comes from another site ({source})"
    if not given_token:
        return "the form's security token is missing"
    if not hmac.compare_digest(given_token.encode(), expected_token.encode()):
        return "the form's security token is not this session's (reload the page)"
    return None


@dataclass(frozen=True)
class Limits:
    """At most ``per_account`` failed sign-ins for one name and ``per_address`` from one
    address within ``window``."""

    per_account: int = 5
    per_address: int = 20
    window: timedelta = timedelta(minutes=15)


@dataclass
class SignInLimiter:
    """Failed sign-ins in a sliding window, per account and per address (in this process:
    each replica counts its own)."""

    limits: Limits = field(default_factory=Limits)
    _failures: dict[str, deque[datetime]] = field(default_factory=dict)

    def _recent(self, key: str, now: datetime) -> deque[datetime]:
        times = self._failures.setdefault(key, deque())
        while times and now - times[0] >= self.limits.window:
            times.popleft()
        if not times:
            del self._failures[key]
            return deque()
        return times

    def wait(self, name: str, address: str, now: datetime) -> timedelta | None:
        """How long until a sign-in may be tried again, or ``None`` if it may now."""
        waits = []
        for key, limit in (
            (f"name:{name}", self.limits.per_account),
            (f"addr:{address}", self.limits.per_address),
        ):
            times = self._recent(key, now)
            if len(times) >= limit:
                waits.append(times[len(times) - limit] + self.limits.window - now)
        return max(waits) if waits else None

    def failed(self, name: str, address: str, now: datetime) -> None:
        for key in (f"name:{name}", f"addr:{address}"):
            self._failures.setdefault(key, deque()).append(now)

    def succeeded(self, name: str) -> None:
        self._failures.pop(f"name:{name}", None)
