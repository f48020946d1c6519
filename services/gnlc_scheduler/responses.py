"""What the operator API answers, and how it refuses.

Every instant in every answer carries its offset (``Instant``: SQLite hands naive values
back, and every stored instant is UTC). Every refusal has one of two shapes: ``422`` with
``detail`` a list of ``{loc, msg, type}`` (``loc`` names the field: ``["body", "due_at"]``,
``["body", "line 5", "timezone"]``), every other error a string ``detail``.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import Request, Response, status
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import AfterValidator, BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match, Route

from gnlc_core.events import Audience
from gnlc_scheduler.plan import NotScheduled
from gnlc_scheduler.store import AnnouncementState, DeadlineState, OutboxState


def _aware(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


#: An instant as answered: always with its offset.
Instant = Annotated[datetime, AfterValidator(_aware)]


# -- errors -------------------------------------------------------------------------------


class ErrorDetail(BaseModel):
    detail: str


class FieldError(BaseModel):
    loc: list[str | int]
    msg: str
    type: str


class InvalidRequest(BaseModel):
    detail: list[FieldError]


def invalid(loc: Sequence[str | int], msg: str, kind: str = "value_error") -> Exception:
    """A 422 naming the field (``loc``), to ``raise``."""
    return RequestValidationError([{"loc": tuple(loc), "msg": msg, "type": kind}])


def errors_at(prefix: Sequence[str | int], errors: Sequence[Any]) -> Exception:
    """A 422 from a model's validation errors, located under ``prefix``."""
    return RequestValidationError(
        [{"loc": (*prefix, *e["loc"]), "msg": e["msg"], "type": e["type"]} for e in errors]
    )


async def validation_error_handler(_request: Request, exc: Exception) -> JSONResponse:
    """Every 422 in one shape: ``{loc, msg, type}`` per problem, without echoing input."""
    assert isinstance(exc, RequestValidationError)
    detail = [
        {
            "loc": [p if isinstance(p, int) else str(p) for p in error.get("loc", ())],
            "msg": str(error.get("msg", "")),
            "type": str(error.get("type", "value_error")),
        }
        for error in exc.errors()
    ]
    return JSONResponse({"detail": detail}, status_code=status.HTTP_422_UNPROCESSABLE_CONTENT)


Responses = dict[int | str, dict[str, Any]]


async def http_error_handler(request: Request, exc: Exception) -> Response:
    """FastAPI's answer to an ``HTTPException``, but: a 405 lists in ``Allow`` every
    method of the path (not only those of the first route that matched it), and a body
    that cannot even be decoded is a 422 like every other invalid body."""
    assert isinstance(exc, StarletteHTTPException)
    if exc.status_code == status.HTTP_400_BAD_REQUEST and "parsing the body" in str(exc.detail):
        return await validation_error_handler(
            request,
            RequestValidationError([{"loc": ("body",), "msg": exc.detail, "type": "json_invalid"}]),
        )
    if exc.status_code == status.HTTP_405_METHOD_NOT_ALLOWED:
        allowed = sorted(
            method
            for route in request.app.router.routes
            if isinstance(route, Route) and route.matches(request.scope)[0] != Match.NONE
            for method in route.methods or ()
        )
        exc = StarletteHTTPException(exc.status_code, exc.detail, {"Allow": ", ".join(allowed)})
    return await http_exception_handler(request, exc)


def _error(description: str) -> dict[str, Any]:
    return {"model": ErrorDetail, "description": description}


AUTH: Responses = {
    401: _error("Missing or wrong bearer token."),
    403: _error("The API is disabled: no operator token is configured."),
}
NOT_FOUND: Responses = {404: _error("No such deadline, announcement or city.")}
CONFLICT: Responses = {
    409: _error("Not allowed in the current state (exists, cancelled, published).")
}
TOO_LARGE: Responses = {
    413: _error(
        "The body is larger than the operation's limit, or an event would not fit on Kafka."
    )
}
INVALID: Responses = {
    422: {"model": InvalidRequest, "description": "A field is invalid; loc names it."}
}
UNSUPPORTED: Responses = {415: _error("The body's content type is not one the operation reads.")}


# -- answers ------------------------------------------------------------------------------


class ScheduledStep(BaseModel):
    city_id: str
    step: str
    fire_at: Instant


class NotScheduledStep(BaseModel):
    city_id: str
    step: str
    reason: NotScheduled
    detail: str


class PlanCounts(BaseModel):
    scheduled: int
    not_scheduled: dict[NotScheduled, int] = Field(
        description="Steps left out, by reason (collapsed, past, submitted, already_sent)."
    )


class DeadlineAccepted(BaseModel):
    deadline_id: str
    scheduled: list[ScheduledStep]
    not_scheduled: list[NotScheduledStep] = Field(
        description="Every step of every city of the audience that is not scheduled, and why."
    )
    counts: PlanCounts


class OutboxRow(BaseModel):
    event_id: str
    type: str
    state: OutboxState
    fire_at: Instant
    deadline_id: str | None
    announcement_id: str | None
    city_id: str | None
    step: str | None
    attempts: int = Field(description="Failed attempts to publish it.")
    next_attempt_at: Instant | None
    last_error: str | None = Field(description="Why the last attempt failed (parked: why).")
    emitted_at: Instant | None


class DeadlineOut(BaseModel):
    id: str
    title: dict[str, str]
    description: dict[str, str] | None
    due_at: Instant
    audience: Audience
    reminders: list[str]
    delivery_hour: int | None
    link: str | None
    state: DeadlineState
    updated_at: Instant
    outbox: dict[OutboxState, int] = Field(description="Reminders by state.")
    parked: list[OutboxRow] = Field(
        default_factory=list, description="Reminders that could not be published, and why."
    )


class AnnouncementOut(BaseModel):
    id: str
    category: str
    title: dict[str, str]
    body: dict[str, str]
    audience: Audience
    link: str | None
    publish_at: Instant
    state: AnnouncementState
    published_at: Instant | None
    updated_at: Instant
    outbox: OutboxRow | None = Field(default=None, description="Its event and its attempts.")
    outbox_state: OutboxState | None = None


class SubmissionOut(BaseModel):
    deadline_id: str
    city_id: str
    submitted_at: Instant
    source: str


class SubmissionAccepted(BaseModel):
    deadline_id: str
    city_id: str
    reminders_cancelled: int


class Cancelled(BaseModel):
    reminders_cancelled: int


class AnnouncementAccepted(BaseModel):
    announcement_id: str
    event_id: str
    publish_at: Instant


class ImportResult(BaseModel):
    imported: int


class Upcoming(BaseModel):
    event_id: str
    type: str
    deadline_id: str | None
    announcement_id: str | None
    city_id: str | None
    step: str | None
    fire_at_utc: Instant
    fire_at_local: Instant | None = Field(description="In the city's own time zone.")
    timezone: str | None
    attempts: int = Field(default=0, description="Failed attempts to publish it so far.")
    last_error: str | None = None
