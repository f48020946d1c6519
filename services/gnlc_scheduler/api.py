"""The operator API (bearer token): cities, deadlines, submissions, announcements, what is
scheduled next and what could not be published. Every refusal names the field and why
(``responses``); every body is limited in bytes (``limits``) and every text and list in
length, all checked before anything is stored."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Annotated, Any, TypeVar
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Body, Depends, HTTPException, Path, Query, Request, status
from pydantic import BaseModel, ConfigDict, ValidationError

from gnlc_core.auth import require_token
from gnlc_core.directory import (
    MAX_CITIES,
    MAX_CITY_LANGUAGES,
    City,
    Directory,
    DirectoryError,
)
from gnlc_core.events import Audience, Slug, UtcDatetime
from gnlc_core.settings import Settings
from gnlc_scheduler import store
from gnlc_scheduler.coverage import warnings
from gnlc_scheduler.deadlines import Announcement, AnnouncementPatch, Deadline, DeadlinePatch
from gnlc_scheduler.dispatcher import utc_now
from gnlc_scheduler.imports import read_directory
from gnlc_scheduler.limits import MAX_IMPORT_BODY, MAX_JSON_BODY
from gnlc_scheduler.patch import merge_patch
from gnlc_scheduler.responses import (
    AUTH,
    CONFLICT,
    INVALID,
    NOT_FOUND,
    TOO_LARGE,
    UNSUPPORTED,
    AnnouncementAccepted,
    AnnouncementOut,
    Cancelled,
    DeadlineAccepted,
    DeadlineOut,
    ImportResult,
    NotScheduledStep,
    NotSubmitted,
    OutboxRow,
    PlanCounts,
    Responses,
    ScheduledStep,
    SubmissionAccepted,
    SubmissionOut,
    Upcoming,
    errors_at,
    invalid,
)
from gnlc_scheduler.service import SchedulerService

M = TypeVar("M", bound=BaseModel)
DeadlineId = Annotated[str, Path(pattern=r"^[a-z0-9][a-z0-9-]{0,62}$", max_length=63)]
AnnouncementId = DeadlineId
CityId = DeadlineId
Limit = Annotated[int, Query(ge=1, le=10000)]
DeadlineQuery = Annotated[str | None, Query(max_length=63)]
_IMPORT_TYPES = ("text/csv", "application/yaml", "application/x-yaml", "application/json")
_MERGE_PATCH = "application/merge-patch+json"
_CITY_LIST = {"type": "array", "minItems": 1, "maxItems": MAX_CITIES, "items": {"type": "object"}}
#: A list of cities, or ``{"cities": [...]}``.
_IMPORT_JSON = {
    "anyOf": [
        _CITY_LIST,
        {"type": "object", "required": ["cities"], "properties": {"cities": _CITY_LIST}},
    ]
}


class SubmissionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    city_id: Slug
    submitted_at: UtcDatetime | None = None


def _check_audience(audience: Audience, directory: Directory) -> None:
    unknown = directory.unknown_cities(audience.cities)
    if unknown:
        raise invalid(("body", "audience", "cities"), f"unknown city id(s) {', '.join(unknown)}")
    regions = {city.region for city in directory}
    bad = [region for region in audience.regions if region not in regions]
    if bad:
        raise invalid(
            ("body", "audience", "regions"),
            f"unknown region(s) {', '.join(bad)}; known: {', '.join(sorted(regions))}",
        )
    if not directory.resolve(audience):
        raise invalid(("body", "audience"), "matches no active member city")


def accepted(
    deadline_id: str, planned: store.Planned, gaps: list[str] | None = None
) -> DeadlineAccepted:
    """The answer to a saved deadline: what is scheduled, what is not and why, counted, and
    the audience's languages without a text of their own (``gaps``)."""
    return DeadlineAccepted(
        deadline_id=deadline_id,
        scheduled=[
            ScheduledStep(city_id=r["city_id"], step=r["step"], fire_at=r["fire_at"])
            for r in planned.rows
        ],
        not_scheduled=[
            NotScheduledStep(city_id=d.city_id, step=d.step, reason=d.reason, detail=d.detail)
            for d in planned.not_scheduled
        ],
        counts=PlanCounts(
            scheduled=len(planned.rows),
            not_scheduled=dict(Counter(d.reason for d in planned.not_scheduled)),
        ),
        warnings=gaps or [],
    )


def _merged(model: type[M], stored: dict[str, Any], patch: BaseModel) -> M:
    """``patch`` (only the fields it names) merged into ``stored``, validated as a whole."""
    merged = merge_patch(stored, patch.model_dump(mode="json", exclude_unset=True))
    try:
        return model.model_validate(merged)
    except ValidationError as exc:
        raise errors_at(("body",), exc.errors()) from None


def _same_id(given: str, url: str) -> None:
    if given != url:
        raise invalid(("body", "id"), f"{given!r} does not match the URL ({url!r})")


def operator_router(settings: Settings, service: SchedulerService) -> APIRouter:
    router = APIRouter(
        prefix="/v1",
        tags=["operator"],
        dependencies=[Depends(require_token(settings.operator_token))],
        responses={**AUTH, **INVALID},
    )
    engine = service.engine

    async def guarded(call: Callable[[], Awaitable[Any]]) -> Any:
        try:
            return await call()
        except store.NotFound as exc:
            raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from None
        except store.Conflict as exc:
            raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from None
        except store.TooLarge as exc:
            raise HTTPException(status.HTTP_413_CONTENT_TOO_LARGE, str(exc)) from None

    # -- cities ---------------------------------------------------------------------------

    @router.post(
        "/cities/import",
        summary="Import cities (CSV, YAML or JSON); all or nothing",
        description=(
            f"At most {MAX_IMPORT_BODY} bytes and {MAX_CITIES} cities. A CSV starts with a "
            "header naming the columns (id, name, country, region, timezone, language, "
            "contact_email; active optional; languages, the city's languages in order of "
            f'preference such as "ar;fr", at most {MAX_CITY_LANGUAGES}, may stand for '
            "language, which must then be the first), separated by commas, semicolons or tabs. "
            "Every problem of every row is answered at once (422, loc names the line and "
            "the column). YAML anchors and aliases are refused."
        ),
        openapi_extra={
            "requestBody": {
                "content": {
                    "text/csv": {"schema": {"type": "string"}},
                    "application/yaml": {"schema": {"type": "string"}},
                    "application/json": {"schema": _IMPORT_JSON},
                },
                "required": True,
            }
        },
        responses={**TOO_LARGE, **UNSUPPORTED},
    )
    async def import_cities(request: Request) -> ImportResult:
        content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if content_type not in _IMPORT_TYPES:
            raise HTTPException(
                status.HTTP_415_UNSUPPORTED_MEDIA_TYPE,
                f"content-type {content_type or 'none'!r}: send one of {', '.join(_IMPORT_TYPES)}",
            )
        body = await request.body()
        try:  # parsing and validating thousands of rows: off the event loop
            directory = await asyncio.to_thread(read_directory, body, content_type)
        except DirectoryError as exc:
            raise errors_at(
                ("body",),
                [{"loc": p.where, "msg": p.msg, "type": p.type} for p in exc.problems],
            ) from None
        count = await service.import_cities(directory)
        return ImportResult(imported=count)

    @router.get("/cities")
    async def list_cities() -> list[City]:
        return list(service.directory)

    @router.get("/cities/{city_id}", responses={**NOT_FOUND})
    async def get_city(city_id: CityId) -> City:
        city = service.directory.by_id.get(city_id)
        if city is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"no city {city_id!r}")
        return city

    # -- deadlines ------------------------------------------------------------------------

    async def _save(deadline: Deadline) -> DeadlineAccepted:
        _check_audience(deadline.audience, service.directory)
        if deadline.due_at <= utc_now():
            raise invalid(("body", "due_at"), f"{deadline.due_at.isoformat()} is in the past")
        planned = await guarded(lambda: service.save_deadline(deadline))
        texts = {"title": deadline.title, "description": deadline.description}
        readers = service.directory.resolve(deadline.audience)
        return accepted(deadline.id, planned, warnings({**texts, "link": deadline.link}, readers))

    def _stored_deadline(row: dict[str, Any]) -> dict[str, Any]:
        out = DeadlineOut.model_validate(row).model_dump(mode="json")
        return {key: out[key] for key in Deadline.model_fields}

    saving: Responses = {**CONFLICT, **TOO_LARGE}

    @router.post(
        "/deadlines",
        status_code=status.HTTP_201_CREATED,
        responses=saving,
        description=f"A JSON body of at most {MAX_JSON_BODY} bytes.",
    )
    async def create_deadline(deadline: Deadline) -> DeadlineAccepted:
        if await _exists(lambda: store.get_deadline(engine, deadline.id)):
            raise HTTPException(
                status.HTTP_409_CONFLICT,
                f"id: deadline {deadline.id!r} exists; PUT or PATCH /v1/deadlines/{deadline.id} "
                "edits it",
            )
        return await _save(deadline)

    @router.put("/deadlines/{deadline_id}", responses=saving, summary="Replace a deadline")
    async def replace_deadline(deadline_id: DeadlineId, deadline: Deadline) -> DeadlineAccepted:
        _same_id(deadline.id, deadline_id)
        return await _save(deadline)

    @router.patch(
        "/deadlines/{deadline_id}",
        responses={**NOT_FOUND, **saving},
        summary="Change what the body names (JSON Merge Patch, RFC 7396)",
        description=(
            "The body is a partial deadline: each field given replaces the stored one, an "
            "object (title, description, audience) merges key by key, null removes a key. "
            f"Content type {_MERGE_PATCH} or application/json."
        ),
        openapi_extra={"requestBody": _patch_body("DeadlinePatch")},
    )
    async def patch_deadline(
        deadline_id: DeadlineId, patch: Annotated[DeadlinePatch, Body()]
    ) -> DeadlineAccepted:
        row = await guarded(lambda: store.get_deadline(engine, deadline_id))
        if patch.id is not None:
            _same_id(patch.id, deadline_id)
        return await _save(_merged(Deadline, _stored_deadline(row), patch))

    @router.delete("/deadlines/{deadline_id}", responses={**NOT_FOUND})
    async def cancel_deadline(deadline_id: DeadlineId) -> Cancelled:
        cancelled = await guarded(lambda: service.cancel_deadline(deadline_id))
        return Cancelled(reminders_cancelled=cancelled)

    @router.get("/deadlines", summary="Deadlines with their state: active, past or cancelled")
    async def list_deadlines() -> list[DeadlineOut]:
        return [DeadlineOut.model_validate(row) for row in await store.list_deadlines(engine)]

    @router.get("/deadlines/{deadline_id}", responses={**NOT_FOUND})
    async def get_deadline(deadline_id: DeadlineId) -> DeadlineOut:
        return DeadlineOut.model_validate(
            await guarded(lambda: store.get_deadline(engine, deadline_id))
        )

    @router.post(
        "/deadlines/{deadline_id}/submissions",
        status_code=status.HTTP_201_CREATED,
        responses={**NOT_FOUND, **TOO_LARGE},
    )
    async def submit(deadline_id: DeadlineId, submission: SubmissionIn) -> SubmissionAccepted:
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

    @router.get("/deadlines/{deadline_id}/submissions", responses={**NOT_FOUND})
    async def submissions(deadline_id: DeadlineId) -> list[SubmissionOut]:
        await guarded(lambda: store.get_deadline(engine, deadline_id))
        return [
            SubmissionOut.model_validate(row)
            for row in await store.list_submissions(engine, deadline_id)
        ]

    @router.get(
        "/deadlines/{deadline_id}/not-submitted",
        responses={**NOT_FOUND},
        summary="The cities of a deadline's audience that have not submitted, by id",
    )
    async def not_submitted(deadline_id: DeadlineId) -> list[NotSubmitted]:
        stored = await guarded(lambda: store.get_deadline(engine, deadline_id))
        done = {row["city_id"] for row in await store.list_submissions(engine, deadline_id)}
        audience = Audience.model_validate(stored["audience"])
        return [
            NotSubmitted(city_id=city.id, name=city.name, timezone=city.timezone)
            for city in sorted(service.directory.resolve(audience), key=lambda c: c.id)
            if city.id not in done
        ]

    # -- announcements --------------------------------------------------------------------

    async def _schedule(announcement: Announcement) -> AnnouncementAccepted:
        _check_audience(announcement.audience, service.directory)
        now = utc_now()
        if announcement.publish_at is not None and announcement.publish_at < now - timedelta(
            minutes=1
        ):
            raise invalid(
                ("body", "publish_at"),
                f"{announcement.publish_at.isoformat()} is in the past "
                "(leave it out to publish now)",
            )
        row = await guarded(lambda: service.save_announcement(announcement))
        texts = {"title": announcement.title, "body": announcement.body, "link": announcement.link}
        return AnnouncementAccepted(
            announcement_id=announcement.id,
            event_id=row["event_id"],
            publish_at=row["fire_at"],
            warnings=warnings(texts, service.directory.resolve(announcement.audience)),
        )

    def _stored_announcement(row: dict[str, Any]) -> dict[str, Any]:
        out = AnnouncementOut.model_validate(row).model_dump(mode="json")
        return {key: out[key] for key in Announcement.model_fields}

    @router.post(
        "/announcements",
        status_code=status.HTTP_202_ACCEPTED,
        responses=saving,
        description=f"A JSON body of at most {MAX_JSON_BODY} bytes.",
    )
    async def create_announcement(announcement: Announcement) -> AnnouncementAccepted:
        if await _exists(lambda: store.get_announcement(engine, announcement.id)):
            raise HTTPException(
                status.HTTP_409_CONFLICT,
                f"id: announcement {announcement.id!r} exists; PUT or PATCH edits it while it "
                "is scheduled",
            )
        return await _schedule(announcement)

    @router.get("/announcements", summary="Announcements, latest first, with their state")
    async def list_announcements(limit: Limit = 1000) -> list[AnnouncementOut]:
        return [
            AnnouncementOut.model_validate(row)
            for row in await store.list_announcements(engine, limit=limit)
        ]

    @router.put(
        "/announcements/{announcement_id}",
        status_code=status.HTTP_202_ACCEPTED,
        responses={**NOT_FOUND, **saving},
        summary="Replace a scheduled announcement",
    )
    async def edit_announcement(
        announcement_id: AnnouncementId, announcement: Announcement
    ) -> AnnouncementAccepted:
        _same_id(announcement.id, announcement_id)
        await guarded(lambda: store.get_announcement(engine, announcement_id))
        return await _schedule(announcement)

    @router.patch(
        "/announcements/{announcement_id}",
        status_code=status.HTTP_202_ACCEPTED,
        responses={**NOT_FOUND, **saving},
        summary="Change what the body names (JSON Merge Patch, RFC 7396)",
        description=(
            "The body is a partial announcement: each field given replaces the stored one, "
            "an object (title, body, audience) merges key by key, null removes a key. "
            f"Content type {_MERGE_PATCH} or application/json."
        ),
        openapi_extra={"requestBody": _patch_body("AnnouncementPatch")},
    )
    async def patch_announcement(
        announcement_id: AnnouncementId, patch: Annotated[AnnouncementPatch, Body()]
    ) -> AnnouncementAccepted:
        row = await guarded(lambda: store.get_announcement(engine, announcement_id))
        if patch.id is not None:
            _same_id(patch.id, announcement_id)
        if row["state"] != store.AnnouncementState.SCHEDULED:
            raise HTTPException(
                status.HTTP_409_CONFLICT,
                f"announcement {announcement_id!r} is {row['state']} and cannot change",
            )
        return await _schedule(_merged(Announcement, _stored_announcement(row), patch))

    @router.delete(
        "/announcements/{announcement_id}",
        status_code=status.HTTP_204_NO_CONTENT,
        responses={**NOT_FOUND, **CONFLICT},
    )
    async def withdraw(announcement_id: AnnouncementId) -> None:
        await guarded(lambda: store.withdraw_announcement(engine, announcement_id, utc_now()))

    @router.get("/announcements/{announcement_id}", responses={**NOT_FOUND})
    async def get_announcement(announcement_id: AnnouncementId) -> AnnouncementOut:
        return AnnouncementOut.model_validate(
            await guarded(lambda: store.get_announcement(engine, announcement_id))
        )

    # -- what comes next, and what could not go -------------------------------------------

    @router.get("/schedule", summary="Pending events, earliest first, in UTC and local time")
    async def schedule(limit: Limit = 100, deadline_id: DeadlineQuery = None) -> list[Upcoming]:
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
                attempts=row["attempts"],
                last_error=row["last_error"],
            )
            for row in rows
        ]

    @router.get(
        "/outbox",
        summary="Events by state, earliest first (state=parked: what could not be published)",
    )
    async def outbox(state: store.OutboxState | None = None, limit: Limit = 100) -> list[OutboxRow]:
        rows = await store.list_outbox(engine, state=state, limit=limit)
        return [OutboxRow.model_validate(row) for row in rows]

    return router


def _patch_body(schema: str) -> dict[str, Any]:
    ref = {"schema": {"$ref": f"#/components/schemas/{schema}"}}
    return {"content": {_MERGE_PATCH: ref, "application/json": ref}, "required": True}


async def _exists(lookup: Callable[[], Awaitable[Any]]) -> bool:
    try:
        await lookup()
    except store.NotFound:
        return False
    return True
