"""The reminder scheduler: APScheduler decides when, Kafka carries what.

State is in memory for now: deadlines come from the deadlines file at start and from the
operator API while running. Event ids are deterministic, so a reminder fired again after a
restart is recognisable downstream as the same one.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.date import DateTrigger
from faststream.kafka import KafkaBroker

from gnlc_core.events import (
    AnnouncementPublished,
    AnnouncementPublishedEvent,
    DeadlineReminder,
    announcement_event,
    reminder_event,
)
from gnlc_core.kafka import Topics, publish_event
from gnlc_core.logs import get_logger
from gnlc_scheduler.deadlines import Deadline
from gnlc_scheduler.plan import PlannedReminder, plan

log = get_logger(__name__)


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class Upcoming:
    job_id: str
    deadline_id: str
    step: str
    fire_at: datetime


class ReminderScheduler:
    """Schedules each useful step of each deadline and publishes it when it fires."""

    def __init__(
        self,
        broker: KafkaBroker,
        topics: Topics,
        *,
        grace: timedelta,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self._broker = broker
        self._topics = topics
        self._grace = grace
        self._clock = clock
        self._scheduler = AsyncIOScheduler(timezone=UTC)

    @property
    def running(self) -> bool:
        return bool(self._scheduler.running)

    def start(self) -> None:
        self._scheduler.start()

    def shutdown(self) -> None:
        if self._scheduler.running:
            self._scheduler.shutdown(wait=False)

    def add(self, deadline: Deadline) -> list[PlannedReminder]:
        """Schedule (or reschedule) a deadline; returns the steps that will still fire."""
        now = self._clock()
        for job in self._scheduler.get_jobs():
            if job.id.startswith(f"{deadline.id}/"):
                job.remove()
        kept = [p for p in plan(deadline) if p.still_useful(now, self._grace)]
        for planned in kept:
            self._scheduler.add_job(
                self._fire,
                trigger=DateTrigger(run_date=max(planned.fire_at, now)),
                args=[planned.reminder],
                id=f"{deadline.id}/{planned.reminder.step}",
                name=f"{deadline.id} {planned.reminder.step}",
                replace_existing=True,
                misfire_grace_time=int(self._grace.total_seconds()) or 1,
                coalesce=True,
            )
        log.info("deadline scheduled", deadline=deadline.id, steps=[p.reminder.step for p in kept])
        return kept

    def upcoming(self) -> list[Upcoming]:
        result = []
        for job in self._scheduler.get_jobs():
            reminder: DeadlineReminder = job.args[0]
            result.append(Upcoming(job.id, reminder.deadline_id, reminder.step, job.next_run_time))
        return sorted(result, key=lambda u: u.fire_at)

    async def announce(self, announcement: AnnouncementPublished) -> AnnouncementPublishedEvent:
        """Publish an announcement now."""
        event = announcement_event(announcement)
        await publish_event(self._broker, self._topics, event)
        log.info("announcement published", announcement=announcement.announcement_id)
        return event

    async def _fire(self, reminder: DeadlineReminder) -> None:
        event = reminder_event(reminder, fired_at=self._clock())
        await publish_event(self._broker, self._topics, event)
        log.info(
            "reminder published",
            deadline=reminder.deadline_id,
            step=reminder.step,
            event_id=event.id,
        )
