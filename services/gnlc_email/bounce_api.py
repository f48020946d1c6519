"""The email service's operator API (``/v1``, the operator token): contacts marked
bouncing, clearing one, and the alerts (a city with no deliverable contact left, a
complaint about required mail)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Response
from pydantic import BaseModel

from gnlc_core.auth import require_token
from gnlc_core.directory import DirectorySource
from gnlc_core.logs import get_logger
from gnlc_core.settings import Settings
from gnlc_email.bounce_store import BounceStore

log = get_logger(__name__)


class BouncingContact(BaseModel):
    city_id: str
    address: str
    reason: str
    event_id: str | None
    since: datetime
    in_directory: bool  # False once the city's address changed: the mark no longer matters


class AlertOut(BaseModel):
    id: int
    kind: str
    city_id: str
    address: str | None
    event_id: str | None
    detail: str
    created_at: datetime


@dataclass
class BounceApiState:
    store: BounceStore | None = None


Limit = Annotated[int, Query(ge=1, le=1000, description="At most this many, newest first.")]
CityId = Annotated[str, Path(max_length=63, pattern=r"^[a-z0-9][a-z0-9-]*$")]
Address = Annotated[str, Path(max_length=254, min_length=3)]

_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"description": "Missing or wrong operator token."},
    403: {"description": "No operator token is configured: the API is off."},
    503: {"description": "The service is starting."},
}


def bounce_api_router(
    state: BounceApiState, settings: Settings, directory: DirectorySource
) -> APIRouter:
    router = APIRouter(
        prefix="/v1",
        tags=["bounces"],
        dependencies=[Depends(require_token(settings.operator_token))],
        responses=_ERRORS,
    )

    def store() -> BounceStore:
        if state.store is None:
            raise HTTPException(503, "the service is starting")
        return state.store

    @router.get("/bouncing", response_model=list[BouncingContact])
    async def list_bouncing(limit: Limit = 1000) -> list[BouncingContact]:
        """Contacts marked bouncing: they get no mail until cleared (or their city's address
        changes)."""
        cities = directory.directory.by_id
        return [
            BouncingContact(
                city_id=b.city_id,
                address=b.address,
                reason=b.reason,
                event_id=b.event_id,
                since=b.since,
                in_directory=b.city_id in cities
                and b.address in {a.lower() for a in cities[b.city_id].contacts},
            )
            for b in await store().bouncing(limit)
        ]

    @router.delete(
        "/bouncing/{city_id}/{address}",
        status_code=204,
        responses={404: {"description": "That contact is not marked bouncing."}},
    )
    async def clear(city_id: CityId, address: Address) -> Response:
        """Clear a contact's bouncing mark: the next notices go to it again."""
        if not await store().clear(city_id, address):
            raise HTTPException(404, f"{address} of {city_id} is not marked bouncing")
        log.info("bouncing mark cleared", city=city_id)
        return Response(status_code=204)

    @router.get("/alerts", response_model=list[AlertOut])
    async def list_alerts(limit: Limit = 1000) -> list[AlertOut]:
        """Cities with no deliverable contact left; complaints about required mail."""
        return [
            AlertOut(
                id=a.id,
                kind=a.kind.value,
                city_id=a.city_id,
                address=a.address,
                event_id=a.event_id,
                detail=a.detail,
                created_at=a.created_at,
            )
            for a in await store().alerts(limit)
        ]

    return router
