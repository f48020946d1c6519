"""The email service's operator API for one city's contacts (``/v1``, the operator token):
what each contact of the directory chose (announcements or not, categories switched off,
the digest) and whether it is marked bouncing, with when each last changed. The console's
city page shows it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Path, Query
from pydantic import BaseModel, Field

from gnlc_core.answers import ErrorDetail, InvalidRequest
from gnlc_core.auth import require_token
from gnlc_core.directory import MAX_CONTACTS, DirectorySource
from gnlc_core.settings import Settings
from gnlc_email.bounce_store import BounceStore, Bouncing
from gnlc_email.choices import CATEGORIES, Digest
from gnlc_email.store import Preferences, Recorded


class BouncingMark(BaseModel):
    reason: str = Field(max_length=2000)
    event_id: str | None = Field(max_length=64)
    since: datetime


class ContactChoices(BaseModel):
    """One contact of the city, as the email service treats it."""

    address: str = Field(max_length=320, description="As the directory spells it.")
    unsubscribed: bool = Field(description="Opted out of announcements (reminders still go).")
    unsubscribed_at: datetime | None = Field(description="When it opted out; None if it did not.")
    categories_off: list[str] = Field(
        max_length=len(CATEGORIES), description="Announcement categories it switched off."
    )
    digest: Digest = Field(description="Its digest choice: as the city decides, on or off.")
    digest_wanted: bool = Field(description="Whether its mail waits for the daily digest now.")
    choices_at: datetime | None = Field(
        description="When it last saved its choices; None if it never did (the defaults)."
    )
    bouncing: BouncingMark | None = Field(description="Its bouncing mark; None if it has none.")


class CityContacts(BaseModel):
    city_id: str
    digest: bool = Field(description="The city's own digest setting (the directory's).")
    contacts: list[ContactChoices] = Field(max_length=MAX_CONTACTS)


@dataclass
class ContactsApiState:
    """Filled in when the service has started (after the migrations)."""

    preferences: Preferences | None = None
    bounces: BounceStore | None = None


CityId = Annotated[
    str,
    Path(max_length=63, pattern=r"^[a-z0-9][a-z0-9-]*$", description="The city's id."),
]
Limit = Annotated[
    int, Query(ge=1, le=MAX_CONTACTS, description="At most this many, in directory order.")
]

_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorDetail, "description": "Missing or wrong operator token."},
    403: {"model": ErrorDetail, "description": "No operator token is configured: the API is off."},
    404: {"model": ErrorDetail, "description": "The directory has no such city."},
    422: {"model": InvalidRequest, "description": "A bad city id or limit, named in `loc`."},
    503: {"model": ErrorDetail, "description": "The service is starting."},
}


def contact_choices(
    address: str, city_digest: bool, recorded: Recorded | None, mark: Bouncing | None
) -> ContactChoices:
    """One contact's row from what the stores keep of it (nothing kept: the defaults)."""
    kept = recorded or Recorded()
    return ContactChoices(
        address=address,
        unsubscribed=kept.unsubscribed_at is not None,
        unsubscribed_at=kept.unsubscribed_at,
        categories_off=[c for c in CATEGORIES if c in kept.choice.categories_off],
        digest=kept.choice.digest,
        digest_wanted=kept.choice.digest.wanted(city_digest),
        choices_at=kept.choice_at,
        bouncing=BouncingMark(reason=mark.reason, event_id=mark.event_id, since=mark.since)
        if mark
        else None,
    )


def contacts_api_router(
    state: ContactsApiState, settings: Settings, directory: DirectorySource
) -> APIRouter:
    router = APIRouter(
        prefix="/v1",
        tags=["contacts"],
        dependencies=[Depends(require_token(settings.operator_token))],
        responses=_ERRORS,
    )

    @router.get("/cities/{city_id}/contacts", response_model=CityContacts)
    async def city_contacts(city_id: CityId, limit: Limit = MAX_CONTACTS) -> CityContacts:
        """A city's contacts (the directory's, in its order) with their choices and
        bouncing marks: what decides whether an announcement reaches each."""
        if state.preferences is None or state.bounces is None:
            raise HTTPException(503, "the service is starting")
        city = directory.directory.by_id.get(city_id)
        if city is None:
            raise HTTPException(404, f"the directory has no city {city_id!r}")
        addresses = [str(a) for a in city.contacts[:limit]]
        recorded = await state.preferences.recorded(addresses)
        marks = await state.bounces.marks_of(city_id, addresses)
        return CityContacts(
            city_id=city_id,
            digest=city.digest,
            contacts=[
                contact_choices(a, city.digest, recorded.get(a.lower()), marks.get(a.lower()))
                for a in addresses
            ],
        )

    return router
