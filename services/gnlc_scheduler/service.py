"""The scheduler service's core: state, dispatcher, and what it tells the other services."""

from __future__ import annotations

import os
import socket
import uuid
from datetime import datetime, timedelta
from typing import Any

from faststream.kafka import KafkaBroker
from faststream.kafka.annotations import KafkaMessage
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncEngine

from gnlc_core.consumer import describe
from gnlc_core.db import migrate
from gnlc_core.directory import Directory, load_csv
from gnlc_core.events import DeadlineSubmitted, parse_submission, submission_event
from gnlc_core.kafka import Topics, publish_dead_letter, publish_event
from gnlc_core.logs import get_logger
from gnlc_core.settings import Settings
from gnlc_scheduler import store
from gnlc_scheduler.deadlines import Announcement, Deadline, load_deadlines
from gnlc_scheduler.dispatcher import Dispatcher, OnEmitted, utc_now

log = get_logger(__name__)
SOURCE = "/gnlc-notify/scheduler"


def instance_id() -> str:
    return f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"


class SchedulerService:
    def __init__(
        self,
        settings: Settings,
        broker: KafkaBroker,
        topics: Topics,
        engine: AsyncEngine,
        *,
        on_emitted: OnEmitted | None = None,
    ) -> None:
        self.settings = settings
        self.engine = engine
        self._broker = broker
        self._topics = topics
        self._grace = timedelta(seconds=settings.misfire_grace_seconds)
        self.dispatcher = Dispatcher(
            engine,
            broker,
            topics,
            bootstrap_servers=settings.kafka_bootstrap_servers,
            instance=instance_id(),
            grace=self._grace,
            claim_timeout=timedelta(seconds=settings.claim_timeout_seconds),
            sweep_seconds=settings.sweep_seconds,
            on_emitted=on_emitted,
        )
        self.directory = Directory(())

    async def start(self) -> None:
        await migrate(self.engine, "scheduler")
        self.directory = await store.load_directory(self.engine)
        if not len(self.directory) and self.settings.directory_path.exists():
            await self.import_cities(load_csv(self.settings.directory_path))
        else:
            await self._publish_directory(self.directory)
        if self.settings.deadlines_path is not None:
            for deadline in load_deadlines(self.settings.deadlines_path):
                await self.save_deadline(deadline)
        await self.dispatcher.start()

    async def stop(self) -> None:
        self.dispatcher.shutdown()
        await self.engine.dispose()

    @property
    def ready(self) -> bool:
        return self.dispatcher.running

    async def import_cities(self, directory: Directory) -> int:
        count = await store.import_cities(self.engine, directory, utc_now())
        self.directory = await store.load_directory(self.engine)
        await self._publish_directory(directory)
        log.info("cities imported", count=count)
        return count

    async def _publish_directory(self, directory: Directory) -> None:
        for city in directory:
            await self._broker.publish(
                city.model_dump_json().encode(), topic=self._topics.directory, key=city.id.encode()
            )

    async def save_deadline(self, deadline: Deadline) -> store.Planned:
        now = utc_now()
        planned = await store.save_deadline(self.engine, deadline, now=now, grace=self._grace)
        self.dispatcher.expect(now)  # the plan's receipts
        if planned.rows:
            self.dispatcher.expect(min(row["fire_at"] for row in planned.rows))
        log.info(
            "deadline saved",
            deadline=deadline.id,
            reminders=len(planned.rows),
            not_scheduled=len(planned.not_scheduled),
        )
        return planned

    async def record_submission(
        self, deadline_id: str, city_id: str, *, at: datetime, source: str
    ) -> int:
        """Record it, then tell the consumers (the submissions topic), so that a reminder
        already on its way is dropped before it is sent."""
        cancelled = await store.record_submission(
            self.engine,
            deadline_id,
            city_id,
            at=at,
            source=source,
            cancel_calendar=self.settings.calendar_cancel_on_submission,
        )
        self.dispatcher.expect(at)
        if cancelled:
            self.dispatcher.expect(utc_now())  # their receipts
        event = submission_event(
            DeadlineSubmitted(
                deadline_id=deadline_id, city_id=city_id, submitted_at=at, source=source
            ),
            source=SOURCE,
        )
        await publish_event(self._broker, self._topics, event)
        log.info("submission recorded", deadline=deadline_id, city=city_id, cancelled=cancelled)
        return cancelled

    async def cancel_deadline(self, deadline_id: str) -> int:
        """Cancel it; its ``deadline.cancelled`` event goes out at once."""
        now = utc_now()
        cancelled = await store.cancel_deadline(self.engine, deadline_id, now)
        self.dispatcher.expect(now)
        return cancelled

    async def on_submission(self, message: KafkaMessage) -> None:
        """A submission from the topic (a partner system, or this API's own echo)."""
        reason: str | None = None
        try:
            data = parse_submission(message.body).data
            await store.record_submission(
                self.engine,
                data.deadline_id,
                data.city_id,
                at=data.submitted_at,
                source=data.source,
                cancel_calendar=self.settings.calendar_cancel_on_submission,
            )
            self.dispatcher.expect(data.submitted_at)
        except ValidationError as exc:
            reason = f"invalid event: {describe(exc)}"
        except store.NotFound as exc:
            reason = f"unknown: {exc}"
        if reason is not None:
            await publish_dead_letter(
                self._broker,
                self._topics.scheduler_dead_letter,
                value=message.body,
                key=getattr(message.raw_message, "key", None),
                reason=reason,
                source_topic=self._topics.deadline_submitted,
            )
            log.warning("submission dead-lettered", reason=reason)

    async def save_announcement(self, announcement: Announcement) -> dict[str, Any]:
        row = await store.save_announcement(self.engine, announcement, now=utc_now())
        self.dispatcher.expect(row["fire_at"])
        log.info("announcement scheduled", announcement=announcement.id, at=row["fire_at"])
        return row
