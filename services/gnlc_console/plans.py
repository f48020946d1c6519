"""What the console shows of the scheduler's data, pure: a deadline's plan per city in
local time (pending rows from ``/v1/schedule``, collapsed steps from the same arithmetic
the scheduler plans with), who has not submitted, and what goes out soon."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any
from zoneinfo import ZoneInfo

from gnlc_core.directory import City
from gnlc_scheduler.deadlines import Deadline, parse_offset
from gnlc_scheduler.plan import city_steps, local_instant, step_label


class StepState(StrEnum):
    SCHEDULED = "scheduled"  # pending in the scheduler's outbox
    COLLAPSED = "collapsed"  # lands on (or after) a later step's instant: only that one goes
    SUBMITTED = "submitted"  # the city has submitted: nothing more is sent
    PASSED = "passed"  # its instant has passed (sent, or skipped when it was missed)
    NOT_SCHEDULED = "not scheduled"  # e.g. the deadline is cancelled


@dataclass(frozen=True)
class PlannedStep:
    label: str
    fire_at: datetime
    state: StepState
    detail: str = ""


@dataclass(frozen=True)
class CityPlanView:
    city: City
    steps: list[PlannedStep]
    submitted_at: str | None

    @property
    def warnings(self) -> list[PlannedStep]:
        return [s for s in self.steps if s.state is StepState.COLLAPSED]


def deadline_model(stored: Mapping[str, Any]) -> Deadline:
    """The stored deadline (``GET /v1/deadlines/{id}``) as the scheduler's model."""
    return Deadline.model_validate({key: stored.get(key) for key in Deadline.model_fields})


def city_plans(
    deadline: Deadline,
    cities: Sequence[City],
    pending: Iterable[Mapping[str, Any]],
    submitted: Mapping[str, str],
    now: datetime,
) -> list[CityPlanView]:
    """Every step of every city of the audience, and what became of it."""
    scheduled = {(row["city_id"], row["step"]) for row in pending}
    offsets = {step_label(o): o for o in (parse_offset(t) for t in deadline.reminders)}
    views = []
    for city in cities:
        zone = ZoneInfo(city.timezone)
        plan = city_steps(deadline, zone)
        steps = []
        for step in plan.steps:
            if (city.id, step.label) in scheduled:
                state = StepState.SCHEDULED
            elif city.id in submitted:
                state = StepState.SUBMITTED
            elif step.fire_at <= now:
                state = StepState.PASSED
            else:
                state = StepState.NOT_SCHEDULED
            steps.append(PlannedStep(step.label, step.fire_at, state))
        for dropped in plan.dropped:
            offset = offsets[dropped.label]
            at = local_instant(deadline.due_at, offset, zone, deadline.delivery_hour)
            steps.append(PlannedStep(dropped.label, at, StepState.COLLAPSED, dropped.detail))
        steps.sort(key=lambda s: offsets[s.label])
        views.append(CityPlanView(city, steps, submitted.get(city.id)))
    return views


@dataclass(frozen=True)
class Outgoing:
    """What goes out within a window, by deadline or announcement."""

    kind: str  # "deadline" or "announcement"
    id: str
    count: int
    first: str


def outgoing(rows: Iterable[Mapping[str, Any]], now: datetime, within: timedelta) -> list[Outgoing]:
    """The schedule's rows due before ``now + within``, grouped, earliest first."""
    end = now + within
    counts: Counter[tuple[str, str]] = Counter()
    first: dict[tuple[str, str], str] = {}
    for row in rows:
        if datetime.fromisoformat(row["fire_at_utc"]) >= end:
            continue
        key = (
            ("deadline", row["deadline_id"])
            if row.get("deadline_id")
            else ("announcement", row.get("announcement_id") or row["event_id"])
        )
        counts[key] += 1
        first.setdefault(key, row["fire_at_utc"])
    return sorted(
        (Outgoing(kind, id_, counts[(kind, id_)], first[(kind, id_)]) for kind, id_ in counts),
        key=lambda o: o.first,
    )
