"""The status API: every notice's state, by deadline, announcement, city, endpoint, and
counts by channel and state. Operators see everything (the operator token); a partner
(its webhook token) sees only its own endpoints' deliveries.

(No ``from __future__ import annotations``: FastAPI reads the dependencies' annotations,
some of which are local to ``status_router``.)"""

import hmac
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

import httpx
from fastapi import APIRouter, Depends, HTTPException, Query, status
from fastapi import Path as PathParam
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, Field

from gnlc_core.answers import ErrorDetail, Instant
from gnlc_core.errors import invalid_query
from gnlc_core.events import UtcDatetime
from gnlc_core.ledger import Status
from gnlc_core.settings import Settings
from gnlc_status import history, view
from gnlc_status.partners import PartnerDirectory, PartnerUnknown

_bearer = HTTPBearer(auto_error=False)
_SLUG = r"^[a-z0-9][a-z0-9-]{0,62}$"
Id = Annotated[str, PathParam(pattern=_SLUG, max_length=63)]
Limit = Annotated[int, Query(ge=1, le=1000, description="Rows per page (at most 1000).")]
Offset = Annotated[int, Query(ge=0, le=1_000_000, description="Rows to skip (paging).")]
CityQuery = Annotated[str | None, Query(pattern=_SLUG, max_length=63)]
StepQuery = Annotated[
    str | None, Query(pattern=r"^(due|\d+[dhms]-(before|overdue))$", max_length=32)
]
ChannelQuery = Annotated[str | None, Query(pattern=r"^[a-z][a-z0-9-]{0,15}$", max_length=16)]
EventQuery = Annotated[str | None, Query(min_length=1, max_length=64)]
Since = Annotated[
    UtcDatetime | None,
    Query(description="From this instant (RFC 3339 with its offset; 2000 to before 2200)."),
]
Until = Annotated[
    UtcDatetime | None, Query(description="Before this instant (RFC 3339 with its offset).")
]
#: The longest window one query may ask for.
MAX_WINDOW = timedelta(days=366)


class NoticeOut(BaseModel):
    """One notice's state that stands, and what it was about."""

    event_id: str
    channel: str = Field(description="schedule (the plan), email or webhook")
    recipient: str = Field(description="the city (schedule), city:address, or the endpoint id")
    state: Status
    reason: str | None
    attempts: int
    state_time: Instant
    event_type: str | None
    event_time: Instant | None
    deadline_id: str | None
    step: str | None
    announcement_id: str | None
    city_id: str | None
    partner_id: str | None
    send_at: Instant | None


class Page(BaseModel):
    items: list[NoticeOut]
    next_offset: int | None = Field(description="The offset of the next page; null: no more.")


class HistoryRow(BaseModel):
    """One state a notice went through, as its receipt told it."""

    state: Status
    attempts: int = Field(description="Requests made by then")
    reason: str | None
    state_time: Instant = Field(description="When the notice reached this state")
    received_at: Instant = Field(description="When the status view read the receipt")


class History(BaseModel):
    event_id: str
    channel: str
    recipient: str
    items: list[HistoryRow] = Field(
        description=f"Latest first; the view keeps the latest {history.KEPT} per notice."
    )


class Summary(BaseModel):
    since: Instant
    until: Instant
    counts: dict[str, dict[str, int]] = Field(description="channel -> state -> notices")


@dataclass(frozen=True)
class Caller:
    """An operator (``endpoints`` None) or a partner and the endpoints it owns."""

    endpoints: tuple[str, ...] | None = None

    @property
    def operator(self) -> bool:
        return self.endpoints is None


AUTH: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorDetail, "description": "Missing or unknown bearer token."},
    403: {"model": ErrorDetail, "description": "Operators only, or no operator token set."},
    503: {"model": ErrorDetail, "description": "A partner token cannot be checked now."},
}


def _window(
    since: datetime | None, until: datetime | None, *, default: timedelta = timedelta(days=1)
) -> tuple[datetime, datetime]:
    """The window asked for (default: the ``default`` before ``until`` or now)."""
    end = (until or datetime.now(UTC)).astimezone(UTC)
    start = (since or end - default).astimezone(UTC)
    if start >= end:
        raise invalid_query("since", "since must be before until")
    if end - start > MAX_WINDOW:
        raise invalid_query("since", f"the window is at most {MAX_WINDOW.days} days")
    return start, end


def caller_of(settings: Settings, partners: PartnerDirectory) -> Callable[..., Awaitable[Caller]]:
    """The dependency that tells who calls: the operator token, or a partner's token (as
    the webhook API knows it)."""
    operator_token = settings.operator_token

    async def caller(
        credentials: HTTPAuthorizationCredentials | None = Depends(_bearer),  # noqa: B008
    ) -> Caller:
        if credentials is None:
            raise HTTPException(
                status.HTTP_401_UNAUTHORIZED,
                "missing bearer token",
                headers={"WWW-Authenticate": "Bearer"},
            )
        token = credentials.credentials
        if operator_token is not None and hmac.compare_digest(
            token.encode(), operator_token.get_secret_value().encode()
        ):
            return Caller()
        if len(token) > 200:
            raise HTTPException(status.HTTP_401_UNAUTHORIZED, "unknown bearer token")
        try:
            return Caller(await partners.endpoints_of(token))
        except PartnerUnknown:
            raise HTTPException(
                status.HTTP_401_UNAUTHORIZED,
                "unknown bearer token",
                headers={"WWW-Authenticate": "Bearer"},
            ) from None
        except httpx.HTTPError:
            raise HTTPException(
                status.HTTP_503_SERVICE_UNAVAILABLE,
                "partner tokens cannot be checked now: the webhook API does not answer",
            ) from None

    return caller


def operators(who: Caller) -> None:
    if not who.operator:
        raise HTTPException(status.HTTP_403_FORBIDDEN, "operators only")


def status_router(settings: Settings, engine: Any, partners: PartnerDirectory) -> APIRouter:
    router = APIRouter(prefix="/v1/status", tags=["status"], responses=AUTH)
    caller = caller_of(settings, partners)

    Who = Annotated[Caller, Depends(caller)]

    async def page(filters: view.Filters, limit: int, offset: int, order: str = "plan") -> Page:
        rows = await view.notices(engine, filters, limit=limit + 1, offset=offset, order=order)
        more = len(rows) > limit
        return Page(
            items=[NoticeOut.model_validate(row) for row in rows[:limit]],
            next_offset=offset + limit if more else None,
        )

    @router.get(
        "/deadlines/{deadline_id}",
        summary="A deadline's notices per city x step: the plan, then each channel",
    )
    async def by_deadline(
        deadline_id: Id,
        who: Who,
        city: CityQuery = None,
        step: StepQuery = None,
        channel: ChannelQuery = None,
        state: Status | None = None,
        limit: Limit = 200,
        offset: Offset = 0,
    ) -> Page:
        operators(who)
        filters = view.Filters(
            deadline_id=deadline_id,
            city_id=city,
            step=step,
            channel=channel,
            state=state.value if state else None,
        )
        return await page(filters, limit, offset)

    @router.get("/announcements/{announcement_id}", summary="An announcement's notices per city")
    async def by_announcement(
        announcement_id: Id,
        who: Who,
        city: CityQuery = None,
        channel: ChannelQuery = None,
        state: Status | None = None,
        limit: Limit = 200,
        offset: Offset = 0,
    ) -> Page:
        operators(who)
        filters = view.Filters(
            announcement_id=announcement_id,
            city_id=city,
            channel=channel,
            state=state.value if state else None,
        )
        return await page(filters, limit, offset)

    @router.get(
        "/cities/{city_id}",
        summary="A city's notices over time, latest first (default: the last 30 days)",
    )
    async def by_city(
        city_id: Id,
        who: Who,
        since: Since = None,
        until: Until = None,
        channel: ChannelQuery = None,
        state: Status | None = None,
        limit: Limit = 200,
        offset: Offset = 0,
    ) -> Page:
        operators(who)
        start, end = _window(since, until, default=timedelta(days=30))
        filters = view.Filters(
            city_id=city_id,
            channel=channel,
            state=state.value if state else None,
            since=start,
            until=end,
        )
        return await page(filters, limit, offset, order="recent")

    @router.get(
        "/endpoints/{endpoint_id}",
        summary="A webhook endpoint's deliveries per event, latest first (partners: their own)",
        responses={404: {"model": ErrorDetail, "description": "No such endpoint of yours."}},
    )
    async def by_endpoint(
        endpoint_id: Id,
        who: Who,
        event_id: EventQuery = None,
        state: Status | None = None,
        limit: Limit = 200,
        offset: Offset = 0,
    ) -> Page:
        if who.endpoints is not None and endpoint_id not in who.endpoints:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"no endpoint {endpoint_id!r} of yours")
        filters = view.Filters(
            channel="webhook",
            recipient=endpoint_id,
            event_id=event_id,
            state=state.value if state else None,
        )
        return await page(filters, limit, offset, order="recent")

    @router.get(
        "/notices",
        summary="Search every notice: by city, event, recipient, channel, state; latest first",
    )
    async def search(
        who: Who,
        city: CityQuery = None,
        event: Annotated[
            str | None,
            Query(
                min_length=1,
                max_length=64,
                description="A deadline id, an announcement id or an event id.",
            ),
        ] = None,
        recipient: Annotated[
            str | None,
            Query(
                min_length=1,
                max_length=320,
                description="An endpoint id, a city (schedule) or city:address (email).",
            ),
        ] = None,
        channel: ChannelQuery = None,
        state: Status | None = None,
        since: Since = None,
        until: Until = None,
        limit: Limit = 200,
        offset: Offset = 0,
    ) -> Page:
        operators(who)
        start, end = _window(since, until, default=timedelta(days=30))
        filters = view.Filters(
            city_id=city,
            subject=event,
            recipient=recipient,
            channel=channel,
            state=state.value if state else None,
            since=start,
            until=end,
        )
        return await page(filters, limit, offset, order="recent")

    @router.get(
        "/notices/history",
        summary=(
            f"Every state one notice went through, latest first (the latest {history.KEPT} "
            "kept); partners: their own endpoints'"
        ),
        responses={404: {"model": ErrorDetail, "description": "No such endpoint of yours."}},
    )
    async def notice_history(
        who: Who,
        event_id: Annotated[str, Query(min_length=1, max_length=64, description="The event id.")],
        channel: Annotated[
            str, Query(pattern=r"^(schedule|email|webhook)$", description="The notice's channel.")
        ],
        recipient: Annotated[
            str,
            Query(
                min_length=1,
                max_length=320,
                description="An endpoint id (webhook), city:address (email) or a city.",
            ),
        ],
        limit: Annotated[
            int,
            Query(ge=1, le=history.KEPT, description=f"Rows (at most {history.KEPT})."),
        ] = history.KEPT,
    ) -> History:
        if who.endpoints is not None and (channel != "webhook" or recipient not in who.endpoints):
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"no endpoint {recipient!r} of yours")
        notice = history.NoticeKey(event_id, channel, recipient)
        rows = await history.of(engine, notice, limit=limit)
        return History(
            event_id=event_id,
            channel=channel,
            recipient=recipient,
            items=[HistoryRow.model_validate(row) for row in rows],
        )

    @router.get(
        "/summary",
        summary="Notices by channel and state whose state changed in a window (default 24 h)",
    )
    async def summary(
        who: Who, since: Since = None, until: Until = None, channel: ChannelQuery = None
    ) -> Summary:
        start, end = _window(since, until)
        filters = view.Filters(channel=channel, since=start, until=end)
        if who.endpoints is not None:  # a partner: its own deliveries alone
            filters = view.Filters(
                channel="webhook", recipients=who.endpoints, since=start, until=end
            )
        return Summary(since=start, until=end, counts=await view.summary(engine, filters))

    return router
