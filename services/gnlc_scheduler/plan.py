"""Reminder arithmetic, pure: which reminder reaches which city when.

Day-based steps (``-7d``, ``0d``, ``+3d``) go out at the deadline's delivery hour on the
city's own calendar: ``-7d`` is 09:00 local, seven local days before the local due date, so
nobody is woken at 03:00 and daylight-saving changes are absorbed by the zone rules.
Hour-, minute- and second-based steps (``-2h``) go out at exactly that distance from the due
moment. A "before" or "due" step whose local instant would not come before the due moment
moves back one local day; when two steps of one city land on the same instant (or out of
order), only the later step is kept, so no city gets two reminders at once.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

from gnlc_scheduler.deadlines import Deadline, parse_offset

_DAY = timedelta(days=1)


def step_label(offset: timedelta) -> str:
    """``-7d`` → ``7d-before``, ``0d`` → ``due``, ``+3d`` → ``3d-overdue``."""
    seconds = int(offset.total_seconds())
    if seconds == 0:
        return "due"
    magnitude = abs(seconds)
    unit, size = next(
        (unit, size)
        for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1))
        if magnitude % size == 0
    )
    return f"{magnitude // size}{unit}-{'before' if seconds < 0 else 'overdue'}"


def local_instant(
    due_at: datetime, offset: timedelta, zone: ZoneInfo, delivery_hour: int | None
) -> datetime:
    """When a step reaches a city in ``zone`` (UTC)."""
    if delivery_hour is None or offset % _DAY:
        return (due_at + offset).astimezone(UTC)
    due_day = due_at.astimezone(zone).date()
    day = due_day + timedelta(days=offset.days)
    instant = datetime.combine(day, time(delivery_hour), tzinfo=zone).astimezone(UTC)
    if offset <= timedelta(0):
        while instant >= due_at:
            day -= _DAY
            instant = datetime.combine(day, time(delivery_hour), tzinfo=zone).astimezone(UTC)
    return instant


@dataclass(frozen=True)
class Step:
    """One step of a plan for one city."""

    label: str
    offset: timedelta
    fire_at: datetime

    def still_useful(self, now: datetime, due_at: datetime, grace: timedelta) -> bool:
        """Worth sending at ``now``: not missed by more than ``grace``, and a "before"
        step is never sent once the due moment has passed."""
        if now - self.fire_at > grace:
            return False
        return not (self.offset < timedelta(0) and now >= due_at)


def city_steps(deadline: Deadline, zone: ZoneInfo) -> list[Step]:
    """The steps that reach one city, earliest first."""
    steps = sorted(
        (
            Step(
                label=step_label(offset),
                offset=offset,
                fire_at=local_instant(deadline.due_at, offset, zone, deadline.delivery_hour),
            )
            for offset in (parse_offset(text) for text in deadline.reminders)
        ),
        key=lambda s: s.offset,
    )
    kept: list[Step] = []
    for step in reversed(steps):
        if kept and step.fire_at >= kept[-1].fire_at:
            continue
        kept.append(step)
    return kept[::-1]
