"""The operator API (bearer token): cities, deadlines, submissions, announcements and what
is scheduled next. Every refusal says which field is wrong and why."""

from __future__ import annotations

import csv
import io
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Annotated, Any
from zoneinfo import ZoneInfo

import yaml
from fastapi import APIRouter, Depends, HTTPException, Query, Request, status
from pydantic import BaseModel, ConfigDict, Field

from gnlc_core.auth import require_token
from gnlc_core.directory import City, Directory, DirectoryError, parse_rows
from gnlc_core.events import Audience, Slug, UtcDatetime
from gnlc_core.settings import Settings
from gnlc_scheduler import store
from gnlc_scheduler.deadlines import Announcement, Deadline
from gnlc_scheduler.dispatcher import utc_now
from gnlc_scheduler.service import SchedulerService

UNPROCESSABLE = status.HTTP_422_UNPROCESSABLE_CONTENT


class ScheduledStep(BaseModel):
    city_id: str
    step: str
    fire_at: datetime


class DeadlineAccepted(BaseModel):
    deadline_id: str
    scheduled: list[ScheduledStep]


class ImportResult(BaseModel):
    imported: int


class SubmissionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    city_id: Slug
    submitted_at: UtcDatetime | None = None


class SubmissionAccepted(BaseModel):
    deadline_id: str
    city_id: str
    reminders_cancelled: int


class AnnouncementAccepted(BaseModel):
    announcement_id: str
    event_id: str
    publish_at: datetime


class Upcoming(BaseModel):
    event_id: str
    type: str
    deadline_id: str | None
    announcement_id: str | None
    city_id: str | None
    step: str | None
    fire_at_utc: datetime
    fire_at_local: datetime | None = Field(description="In the city's own time zone.")
    timezone: str | None


def _check_audience(audience: Audience, directory: Directory) -> None:
    unknown = directory.unknown_cities(audience.cities)
    if unknown:
        raise HTTPException(
            UNPROCESSABLE, f"audience.cities: unknown city id(s) {', '.join(unknown)}"
        )
    regions = {city.region for city in directory}
    bad = [region for region in audience.regions if region not in regions]
    if bad:
        raise HTTPException(
            UNPROCESSABLE,
            f"audience.regions: unknown region(s) {', '.join(bad)}; "
            f"known: {', '.join(sorted(regions))}",
        )
    if not directory.resolve(audience):
        raise HTTPException(UNPROCESSABLE, "audience: matches no active member city")


def parse_directory(body: bytes, content_type: str) -> Directory:
    """A directory upload as CSV (``text/csv``) or YAML/JSON (a list of cities)."""
    text = body.decode("utf-8-sig")
    if "csv" in content_type:
        return parse_rows(csv.DictReader(io.StringIO(text)))
    try:
        loaded = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise DirectoryError(f"body is not valid YAML or JSON: {exc}") from None
    items = loaded.get("cities") if isinstance(loaded, dict) else loaded
    if not isinstance(items, list):
        raise DirectoryError("body must be a list of cities (or {cities: [...]})")
    rows = []
    for item in items:
        if not isinstance(item, dict):
            raise DirectoryError("every city must be a mapping of column to value")
        contacts = item.get("contacts", item.get("contact_email", ""))
        if isinstance(contacts, list):
            contacts = ";".join(str(c) for c in contacts)
        rows.append({**{k: str(v) for k, v in item.items()}, "contact_email": str(contacts)})
    return parse_rows(rows, first_line=1)


def operator_router(settings: Settings, service: SchedulerService) -> APIRouter:
    router = APIRouter(
        prefix="/v1",
        tags=["operator"],
        dependencies=[Depends(require_token(settings.operator_token))],
    )
    engine = service.engine

    async def guarded(call: Callable[[], Awaitable[Any]]) -> Any:
        try:
            return await call()
        except store.NotFound as exc:
            raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from None
        except store.Conflict as exc:
            raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from None

    # -- cities ---------------------------------------------------------------------------

    @router.post(
        "/cities/import",
        summary="Import cities (CSV, YAML or JSON); all or nothing",
        openapi_extra={
            "requestBody": {
                "content": {
                    "text/csv": {"schema": {"type": "string"}},
                    "application/yaml": {"schema": {"type": "string"}},
                    "application/json": {"schema": {"type": "array", "items": {}}},
                },
                "required": True,
            }
        },
    )
    async def import_cities(request: Request) -> ImportResult:
        try:
            directory = parse_directory(
                await request.body(), request.headers.get("content-type", "")
            )
        except (DirectoryError, UnicodeDecodeError) as exc:
            raise HTTPException(UNPROCESSABLE, str(exc)) from None
        count = await service.import_cities(directory)
        return ImportResult(imported=count)

    @router.get("/cities")
    async def list_cities() -> list[City]:
        return list(service.directory)

    @router.get("/cities/{city_id}")
    async def get_city(city_id: str) -> City:
        city = service.directory.by_id.get(city_id)
        if city is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"no city {city_id!r}")
        return city

    # -- deadlines ------------------------------------------------------------------------

    async def _save(deadline: Deadline) -> DeadlineAccepted:
        _check_audience(deadline.audience, service.directory)
        if deadline.due_at <= utc_now():
            raise HTTPException(
                UNPROCESSABLE, f"due_at: {deadline.due_at.isoformat()} is in the past"
            )
        rows = await guarded(lambda: service.save_deadline(deadline))
        return DeadlineAccepted(
            deadline_id=deadline.id,
            scheduled=[
                ScheduledStep(city_id=r["city_id"], step=r["step"], fire_at=r["fire_at"])
                for r in rows
            ],
        )

    @router.post("/deadlines", status_code=status.HTTP_201_CREATED)
    async def create_deadline(deadline: Deadline) -> DeadlineAccepted:
        if await _exists(lambda: store.get_deadline(engine, deadline.id)):
            raise HTTPException(
                status.HTTP_409_CONFLICT,
                f"id: deadline {deadline.id!r} exists; PUT /v1/deadlines/{deadline.id} edits it",
            )
        return await _save(deadline)

    @router.put("/deadlines/{deadline_id}")
    async def replace_deadline(deadline_id: str, deadline: Deadline) -> DeadlineAccepted:
        if deadline.id != deadline_id:
            raise HTTPException(UNPROCESSABLE, f"id: {deadline.id!r} does not match the URL")
        return await _save(deadline)

    @router.delete("/deadlines/{deadline_id}")
    async def cancel_deadline(deadline_id: str) -> dict[str, int]:
        cancelled = await guarded(lambda: store.cancel_deadline(engine, deadline_id, utc_now()))
        return {"reminders_cancelled": cancelled}

    @router.get("/deadlines")
    async def list_deadlines() -> list[dict[str, Any]]:
        return await store.list_deadlines(engine)

    @router.get("/deadlines/{deadline_id}")
    async def get_deadline(deadline_id: str) -> dict[str, Any]:
        return dict(await guarded(lambda: store.get_deadline(engine, deadline_id)))

    @router.post("/deadlines/{deadline_id}/submissions", status_code=status.HTTP_201_CREATED)
    async def submit(deadline_id: str, submission: SubmissionIn) -> SubmissionAccepted:
        cancelled = await guarded(
            lambda: service.record_submission(
                deadline_id,
                submission.city_id,
                at=submission.submitted_at or utc_now(),
                source="operator",
            )
        )
        return SubmissionAccepted(
            deadline_id=deadline_id, city_id=submission.city_id, reminders_cancelled=cancelled
        )

    @router.get("/deadlines/{deadline_id}/submissions")
    async def submissions(deadline_id: str) -> list[dict[str, Any]]:
        await guarded(lambda: store.get_deadline(engine, deadline_id))
        return await store.list_submissions(engine, deadline_id)

    # -- announcements --------------------------------------------------------------------

    async def _schedule(announcement: Announcement) -> AnnouncementAccepted:
        _check_audience(announcement.audience, service.directory)
        now = utc_now()
        if announcement.publish_at is not None and announcement.publish_at < now - timedelta(
            minutes=1
        ):
            raise HTTPException(
                UNPROCESSABLE,
                f"publish_at: {announcement.publish_at.isoformat()} is in the past "
                "(leave it out to publish now)",
            )
        row = await guarded(lambda: service.save_announcement(announcement))
        return AnnouncementAccepted(
            announcement_id=announcement.id, event_id=row["event_id"], publish_at=row["fire_at"]
        )

    @router.post("/announcements", status_code=status.HTTP_202_ACCEPTED)
    async def create_announcement(announcement: Announcement) -> AnnouncementAccepted:
        if await _exists(lambda: store.get_announcement(engine, announcement.id)):
            raise HTTPException(
                status.HTTP_409_CONFLICT,
                f"id: announcement {announcement.id!r} exists; PUT edits it while it is scheduled",
            )
        return await _schedule(announcement)

    @router.put("/announcements/{announcement_id}", status_code=status.HTTP_202_ACCEPTED)
    async def edit_announcement(
        announcement_id: str, announcement: Announcement
    ) -> AnnouncementAccepted:
        if announcement.id != announcement_id:
            raise HTTPException(UNPROCESSABLE, f"id: {announcement.id!r} does not match the URL")
        await guarded(lambda: store.get_announcement(engine, announcement_id))
        return await _schedule(announcement)

    @router.delete("/announcements/{announcement_id}", status_code=status.HTTP_204_NO_CONTENT)
    async def withdraw(announcement_id: str) -> None:
        await guarded(lambda: store.withdraw_announcement(engine, announcement_id, utc_now()))

    @router.get("/announcements/{announcement_id}")
    async def get_announcement(announcement_id: str) -> dict[str, Any]:
        return dict(await guarded(lambda: store.get_announcement(engine, announcement_id)))

    # -- what comes next ------------------------------------------------------------------

    @router.get("/schedule", summary="Pending events, earliest first, in UTC and local time")
    async def schedule(
        limit: Annotated[int, Query(ge=1, le=10000)] = 100,
        deadline_id: str | None = None,
    ) -> list[Upcoming]:
        rows = await store.upcoming(engine, limit=limit, deadline_id=deadline_id)
        return [
            Upcoming(
                event_id=row["event_id"],
                type=row["type"],
                deadline_id=row["deadline_id"],
                announcement_id=row["announcement_id"],
                city_id=row["city_id"],
                step=row["step"],
                fire_at_utc=row["fire_at"],
                fire_at_local=(
                    row["fire_at"].astimezone(ZoneInfo(row["timezone"]))
                    if row["timezone"]
                    else None
                ),
                timezone=row["timezone"],
            )
            for row in rows
        ]

    return router


async def _exists(lookup: Callable[[], Awaitable[Any]]) -> bool:
    try:
        await lookup()
    except store.NotFound:
        return False
    return True
