"""Local wall-clock arithmetic shared by the services: an hour of a city's own day as an
instant (the scheduler's reminder steps, the email service's daily digests)."""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from zoneinfo import ZoneInfo


def wall_instant(day: date, hour: int | time, zone: ZoneInfo) -> datetime:
    """``hour`` o'clock on ``day`` in ``zone`` (UTC), always on that local day. An hour the
    clocks skip is read with the offset before the change, so it goes out later by the gap
    (02:30 on a spring-forward day at 02:00 is 03:30); when that would be the next day (a
    change at the end of the day, as America/Nuuk's at 23:00), with the offset after it,
    earlier by the gap (22:00). An hour that happens twice goes out the first time.
    ``hour``: o'clock, or a wall time of day (minutes, seconds)."""
    wall = datetime.combine(day, hour if isinstance(hour, time) else time(hour), tzinfo=zone)
    instant = wall.astimezone(UTC)
    if instant.astimezone(zone).date() != day:
        instant = wall.replace(fold=1).astimezone(UTC)
    return instant
