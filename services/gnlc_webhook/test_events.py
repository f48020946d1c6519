"""Test events a partner sends to one of its endpoints (``POST /v1/endpoints/{id}/test``):
an example of the event type from ``schemas/examples`` with a fresh id
(``gnlc_core.catalog``), queued like a resend; at most ``PER_WINDOW`` per endpoint in
``WINDOW`` (in each process)."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from gnlc_core.catalog import new_test_event
from gnlc_core.events import encode_event, parse_event

PER_WINDOW = 10
WINDOW = timedelta(minutes=1)
#: Endpoints whose recent test events are remembered; the oldest are forgotten beyond it.
MAX_TRACKED = 10_000


@dataclass
class EventBudget:
    """Test events sent in a sliding window, per endpoint."""

    per_window: int = PER_WINDOW
    window: timedelta = WINDOW
    _sent: dict[str, deque[datetime]] = field(default_factory=dict)

    def wait(self, endpoint_id: str, now: datetime) -> timedelta | None:
        """How long until the endpoint may get another test event (``None``: now)."""
        times = self._sent.get(endpoint_id)
        if times is None:
            return None
        while times and now - times[0] >= self.window:
            times.popleft()
        if not times:
            del self._sent[endpoint_id]
            return None
        if len(times) < self.per_window:
            return None
        return times[0] + self.window - now

    def spend(self, endpoint_id: str, now: datetime) -> None:
        if endpoint_id not in self._sent and len(self._sent) >= MAX_TRACKED:
            del self._sent[next(iter(self._sent))]
        self._sent.setdefault(endpoint_id, deque()).append(now)


def sample_record(event_type: str, now: datetime) -> tuple[str, bytes]:
    """A test event of ``event_type``: its id and its record value (the body the endpoint
    gets, encoded like every event)."""
    event = parse_event(new_test_event(event_type, now))
    return event.id, encode_event(event)
