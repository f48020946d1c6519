"""Reminder arithmetic, pure: which reminder reaches which city when.

Day-based steps (``-7d``, ``0d``, ``+3d``) go out at the deadline's delivery hour on the
city's own calendar: ``-7d`` is 09:00 local, seven local days before the local due date, so
nobody is woken at 03:00 and daylight-saving changes are absorbed by the zone rules.
Hour-, minute- and second-based steps (``-2h``) go out at exactly that distance from the due
moment. A "before" or "due" step whose local instant would not come before the due moment
moves back one local day; when two steps of one city land on the same instant (or out of
order), only the later step is kept, so no city gets two reminders at once.

Nothing is left out silently: every step not scheduled for a city is reported with a reason
(``NotScheduled``), and the operator API returns them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo

from gnlc_core.localtime import wall_instant
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
    instant = wall_instant(day, delivery_hour, zone)
    if offset <= timedelta(0):
        while instant >= due_at:
            day -= _DAY
            instant = wall_instant(day, delivery_hour, zone)
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


class NotScheduled(StrEnum):
    """Why a step of a plan does not reach a city."""

    #: It would land at (or after) the instant of a later step: only the later one goes.
    COLLAPSED = "collapsed"
    #: Its instant has passed (more than the grace ago, or a "before" step after the due
    #: moment).
    PAST = "past"
    #: The city has already submitted.
    SUBMITTED = "submitted"
    #: It was already sent for this same due moment (an edit does not send it twice).
    ALREADY_SENT = "already_sent"


@dataclass(frozen=True)
class Dropped:
    """A step that does not reach a city, and why."""

    label: str
    reason: NotScheduled
    detail: str


@dataclass(frozen=True)
class CityPlan:
    """What reaches one city (earliest first) and what does not."""

    steps: list[Step]
    dropped: list[Dropped] = field(default_factory=list)


def city_steps(deadline: Deadline, zone: ZoneInfo) -> CityPlan:
    """The steps that reach one city, earliest first, and those collapsed into a later
    step."""
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
    dropped: list[Dropped] = []
    for step in reversed(steps):
        if kept and step.fire_at >= kept[-1].fire_at:
            later = kept[-1]
            dropped.append(
                Dropped(
                    step.label,
                    NotScheduled.COLLAPSED,
                    f"lands at {step.fire_at.isoformat()}, not before {later.label!r} at "
                    f"{later.fire_at.isoformat()}; only {later.label!r} is sent",
                )
            )
            continue
        kept.append(step)
    return CityPlan(kept[::-1], dropped[::-1])


def schedule_for_city(
    deadline: Deadline,
    zone: ZoneInfo,
    *,
    now: datetime,
    grace: timedelta,
    submitted: bool = False,
    already_sent: frozenset[str] = frozenset(),
) -> CityPlan:
    """What to schedule for one city at ``now``: its plan less the steps that are past,
    already sent (labels in ``already_sent``), or not wanted because the city submitted."""
    plan = city_steps(deadline, zone)
    if submitted:
        return CityPlan(
            [],
            [
                *(
                    Dropped(s.label, NotScheduled.SUBMITTED, "the city has submitted")
                    for s in plan.steps
                ),
                *plan.dropped,
            ],
        )
    kept: list[Step] = []
    dropped = list(plan.dropped)
    for step in plan.steps:
        if step.label in already_sent:
            dropped.append(Dropped(step.label, NotScheduled.ALREADY_SENT, "sent before"))
        elif step.fire_at < now and not step.still_useful(now, deadline.due_at, grace):
            dropped.append(
                Dropped(
                    step.label,
                    NotScheduled.PAST,
                    f"was due at {step.fire_at.isoformat()}, before now",
                )
            )
        else:
            kept.append(step)
    return CityPlan(kept, dropped)
