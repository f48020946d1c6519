"""What the operator API answers, and how it refuses: its answer models, and the statuses
each operation documents. The shapes themselves (``Instant``, the two error shapes) are
every API's, in ``gnlc_core.answers``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, Field

from gnlc_core.answers import ErrorDetail, Instant, InvalidRequest
from gnlc_core.events import Audience
from gnlc_scheduler.plan import NotScheduled
from gnlc_scheduler.store import AnnouncementState, DeadlineState, OutboxState


def invalid(loc: Sequence[str | int], msg: str, kind: str = "value_error") -> Exception:
    """A 422 naming the field (``loc``), to ``raise``."""
    return RequestValidationError([{"loc": tuple(loc), "msg": msg, "type": kind}])


def errors_at(prefix: Sequence[str | int], errors: Sequence[Any]) -> Exception:
    """A 422 from a model's validation errors, located under ``prefix``."""
    return RequestValidationError(
        [{"loc": (*prefix, *e["loc"]), "msg": e["msg"], "type": e["type"]} for e in errors]
    )


Responses = dict[int | str, dict[str, Any]]


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
    warnings: list[str] = Field(
        default_factory=list,
        description=(
            "Languages of the audience (each city's first, along the cities' chains) with no "
            "text of their own, and what their readers get instead: 'no title in ar "
            "(3 cities: aswan, amman, chefchaouen), they get fr'."
        ),
    )


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
    link: str | dict[str, str] | None = Field(description="One link, or a link per language.")
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
    link: str | dict[str, str] | None = Field(description="One link, or a link per language.")
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


class NotSubmitted(BaseModel):
    """A city of a deadline's audience that has not submitted."""

    city_id: str
    name: str
    timezone: str


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
    warnings: list[str] = Field(
        default_factory=list,
        description=(
            "Languages of the audience (each city's first, along the cities' chains) with no "
            "text of their own, and what their readers get instead: 'no title in ar "
            "(3 cities: aswan, amman, chefchaouen), they get fr'."
        ),
    )


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
