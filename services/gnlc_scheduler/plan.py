"""Reminder arithmetic, pure: which reminder goes out when, and which still makes sense."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from gnlc_core.events import DeadlineReminder
from gnlc_scheduler.deadlines import Deadline, parse_offset


def step_label(offset: timedelta) -> str:
    """``-7d`` → ``7d-before``, ``0d`` → ``due``, ``+3d`` → ``3d-overdue``."""
    seconds = int(offset.total_seconds())
    if seconds == 0:
        return "due"
    magnitude = abs(seconds)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if magnitude % size == 0:
            amount = f"{magnitude // size}{unit}"
            break
    return f"{amount}-{'before' if seconds < 0 else 'overdue'}"


@dataclass(frozen=True)
class PlannedReminder:
    """A reminder step and the instant it fires."""

    fire_at: datetime
    reminder: DeadlineReminder

    def still_useful(self, now: datetime, grace: timedelta) -> bool:
        """Worth sending at ``now``: not missed by more than ``grace``, and a "before"
        reminder is never sent once the due moment has passed."""
        if now - self.fire_at > grace:
            return False
        return not (self.reminder.offset_seconds < 0 and now >= self.reminder.due_at)


def plan(deadline: Deadline) -> list[PlannedReminder]:
    """Every step of a deadline's plan, earliest first."""
    planned = []
    for text in deadline.reminders:
        offset = parse_offset(text)
        planned.append(
            PlannedReminder(
                fire_at=deadline.due_at + offset,
                reminder=DeadlineReminder(
                    deadline_id=deadline.id,
                    title=deadline.title,
                    description=deadline.description,
                    due_at=deadline.due_at,
                    step=step_label(offset),
                    offset_seconds=int(offset.total_seconds()),
                    audience=deadline.audience,
                    link=deadline.link,
                ),
            )
        )
    return sorted(planned, key=lambda p: p.fire_at)
