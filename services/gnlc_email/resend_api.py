"""Resend one email notice (``POST /v1/notices/resend``, the operator token): the console's
delivery page asks for it. The notice must be in the ledger; the contact's choices and
bounces are asked now (a resend never overrides them; required reminders ignore
unsubscribes, as they always do); the resend goes on the retry tiers, where the consumer
sends it once, settled or not (``EmailConsumer._resend``)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Depends, HTTPException
from pydantic import BaseModel, ConfigDict, Field

from gnlc_core.answers import ErrorDetail, InvalidRequest
from gnlc_core.auth import require_token
from gnlc_core.consumer import decode_any as decode
from gnlc_core.logs import get_logger
from gnlc_core.settings import Settings
from gnlc_email.render import Event
from gnlc_email.resend_store import KEPT_DAYS, Resend, ResendStore

log = get_logger(__name__)

PATH = "/v1/notices/resend"
#: Why a resend of an event to a recipient (``city:address``) is refused now, or None.
Refusal = Callable[[Event, str], Awaitable[str | None]]
#: Puts a resend on the retry tiers (the event as on Kafka).
Enqueue = Callable[[Event, bytes, Resend], Awaitable[None]]


class ResendIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    event_id: str = Field(min_length=1, max_length=64, description="The event's id.")
    recipient: str = Field(
        min_length=3,
        max_length=320,
        pattern=r"^[a-z0-9][a-z0-9-]*:[^\s:]+@[^\s@]+$",
        description="As the ledger keys it: `city-id:address`.",
    )


class ResendQueued(BaseModel):
    queued: int = Field(description="1: the resend is queued.")
    resend_id: int = Field(description="The resend request's id.")


@dataclass
class ResendApiState:
    """Filled in when the service has started (after the migrations)."""

    store: ResendStore | None = None
    refusal: Refusal | None = None
    enqueue: Enqueue | None = None


_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorDetail, "description": "Missing or wrong operator token."},
    403: {"model": ErrorDetail, "description": "No operator token is configured: the API is off."},
    503: {"model": ErrorDetail, "description": "The service is starting."},
}


def resend_api_router(state: ResendApiState, settings: Settings) -> APIRouter:
    router = APIRouter(
        prefix="/v1",
        tags=["resend"],
        dependencies=[Depends(require_token(settings.operator_token))],
        responses=_ERRORS,
    )

    @router.post(
        "/notices/resend",
        status_code=202,
        response_model=ResendQueued,
        responses={
            404: {"model": ErrorDetail, "description": "The ledger has no such notice."},
            409: {
                "model": ErrorDetail,
                "description": "The contact refuses it now (unsubscribed, the category off, "
                "bouncing, gone from the directory): the detail says which.",
            },
            410: {
                "model": ErrorDetail,
                "description": f"The event is no longer kept (older than {KEPT_DAYS} days).",
            },
            422: {"model": InvalidRequest, "description": "A bad field, named in `loc`."},
        },
    )
    async def resend(body: ResendIn) -> ResendQueued:
        """Send one notice again to its recipient, whatever became of it before (a new
        Message-ID; its outcome in the ledger, the attempts counted on)."""
        store, refusal, enqueue = state.store, state.refusal, state.enqueue
        if store is None or refusal is None or enqueue is None:
            raise HTTPException(503, "the service is starting")
        if (attempts := await store.attempts(body.event_id, body.recipient)) is None:
            raise HTTPException(
                404, f"no email notice of event {body.event_id!r} to {body.recipient!r}"
            )
        value = (await store.event(body.event_id) or "").encode()
        event = decode(value)
        if isinstance(event, str):  # not kept (a kept one is valid: it was read from Kafka)
            raise HTTPException(410, f"event {body.event_id!r} is no longer kept")
        if why := await refusal(event, body.recipient):
            raise HTTPException(409, why)
        request = await store.request(body.event_id, body.recipient, attempts)
        await enqueue(event, value, request)
        log.info("resend queued", event_id=body.event_id, resend=request.id)
        return ResendQueued(queued=1, resend_id=request.id)

    return router
