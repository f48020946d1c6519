"""The scheduler's operator API: add deadlines, see what fires next."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, HTTPException, status
from pydantic import BaseModel, ConfigDict, Field

from gnlc_core.auth import require_token
from gnlc_core.directory import Directory
from gnlc_core.events import AnnouncementPublished, Audience, LocalizedText, Slug
from gnlc_core.settings import Settings
from gnlc_scheduler.deadlines import Deadline
from gnlc_scheduler.scheduler import ReminderScheduler, utc_now


class ScheduledStep(BaseModel):
    step: str
    fire_at: datetime


class DeadlineAccepted(BaseModel):
    deadline_id: str
    scheduled: list[ScheduledStep]


class AnnouncementDraft(BaseModel):
    """An announcement to publish now (scheduled publishing comes with the full scheduler)."""

    model_config = ConfigDict(extra="forbid")

    id: Slug
    category: Literal["event", "award", "workshop", "news", "call", "other"]
    title: LocalizedText
    body: LocalizedText
    audience: Audience
    link: Annotated[str, Field(pattern=r"^https?://")] | None = None

    def published(self, at: datetime) -> AnnouncementPublished:
        return AnnouncementPublished(
            announcement_id=self.id,
            category=self.category,
            title=self.title,
            body=self.body,
            audience=self.audience,
            published_at=at,
            link=self.link,
        )


class UpcomingReminder(BaseModel):
    deadline_id: str
    step: str
    fire_at: datetime


def operator_router(
    settings: Settings, scheduler: ReminderScheduler, directory: Directory
) -> APIRouter:
    router = APIRouter(
        prefix="/v1",
        tags=["operator"],
        dependencies=[Depends(require_token(settings.operator_token))],
    )

    @router.post("/deadlines", status_code=status.HTTP_201_CREATED)
    async def add_deadline(deadline: Deadline) -> DeadlineAccepted:
        unknown = directory.unknown_cities(deadline.audience.cities)
        if unknown:
            raise HTTPException(
                status.HTTP_422_UNPROCESSABLE_CONTENT,
                f"audience.cities: unknown city id(s) {', '.join(unknown)}",
            )
        if deadline.due_at <= utc_now():
            raise HTTPException(
                status.HTTP_422_UNPROCESSABLE_CONTENT,
                f"due_at: {deadline.due_at.isoformat()} is in the past",
            )
        kept = scheduler.add(deadline)
        return DeadlineAccepted(
            deadline_id=deadline.id,
            scheduled=[ScheduledStep(step=p.reminder.step, fire_at=p.fire_at) for p in kept],
        )

    @router.post("/announcements", status_code=status.HTTP_202_ACCEPTED)
    async def publish_announcement(draft: AnnouncementDraft) -> dict[str, str]:
        unknown = directory.unknown_cities(draft.audience.cities)
        if unknown:
            raise HTTPException(
                status.HTTP_422_UNPROCESSABLE_CONTENT,
                f"audience.cities: unknown city id(s) {', '.join(unknown)}",
            )
        event = await scheduler.announce(draft.published(utc_now()))
        return {"announcement_id": draft.id, "event_id": event.id}

    @router.get("/schedule")
    async def schedule() -> list[UpcomingReminder]:
        return [
            UpcomingReminder(deadline_id=u.deadline_id, step=u.step, fire_at=u.fire_at)
            for u in scheduler.upcoming()
        ]

    return router
