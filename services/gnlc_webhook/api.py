"""The partner and operator API of the webhook channel (``/v1``).

A partner authenticates with its own bearer token and sees and manages only its own
endpoints and their delivery log (another partner's endpoint is a 404, as if it did not
exist). The operator token sees everything and acts on a partner's behalf. Invalid input is
a 422 naming the field; a URL the SSRF guard refuses is a 422 on ``url`` saying why.

(No ``from __future__ import annotations`` here: FastAPI reads the annotations of the
route functions, which refer to names local to ``api_router``.)
"""

import hmac
import secrets
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Response, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, ConfigDict, Field

from gnlc_core.directory import DirectorySource
from gnlc_core.events import EVENT_TYPES, Slug, parse_event
from gnlc_core.ledger import Status
from gnlc_core.retry import Retrier
from gnlc_core.settings import Settings
from gnlc_webhook.consumer import RESEND_PREFIX
from gnlc_webhook.partners import new_secret
from gnlc_webhook.registry import Registry
from gnlc_webhook.ssrf import Policy, RefusedTarget, check_target
from gnlc_webhook.store import Attempt, EndpointRow, State, Store, StoredMessage

_bearer = HTTPBearer(auto_error=False)


@dataclass(frozen=True)
class Principal:
    """Who calls: the operator (``partner_id`` None) or one partner."""

    partner_id: str | None

    @property
    def operator(self) -> bool:
        return self.partner_id is None


def _invalid(field: str, message: str) -> HTTPException:
    """A 422 in FastAPI's own shape, so clients read every validation error the same way."""
    return HTTPException(
        status.HTTP_422_UNPROCESSABLE_CONTENT,
        detail=[{"loc": ["body", field], "msg": message, "type": "value_error"}],
    )


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class PartnerIn(_In):
    id: Slug
    name: Annotated[str, Field(min_length=1, max_length=200)]


class PartnerOut(BaseModel):
    id: str
    name: str
    has_token: bool
    created_at: datetime


class PartnerToken(BaseModel):
    id: str
    token: str = Field(description="Shown once; only its hash is stored.")


EventTypes = Annotated[list[str], Field(min_length=1)]


class EndpointIn(_In):
    url: Annotated[str, Field(max_length=2000)]
    event_types: EventTypes
    regions: list[str] = []
    cities: list[Slug] = []
    description: Annotated[str, Field(max_length=1000)] = ""
    partner: Slug | None = Field(default=None, description="Operator only: whose endpoint.")
    max_concurrency: Annotated[int, Field(ge=1, le=256)] | None = None
    rate_per_second: Annotated[float, Field(gt=0, le=10_000)] | None = None


class EndpointPatch(_In):
    url: Annotated[str, Field(max_length=2000)] | None = None
    event_types: EventTypes | None = None
    regions: list[str] | None = None
    cities: list[Slug] | None = None
    description: Annotated[str, Field(max_length=1000)] | None = None
    max_concurrency: Annotated[int, Field(ge=1, le=256)] | None = None
    rate_per_second: Annotated[float, Field(gt=0, le=10_000)] | None = None


class EndpointOut(BaseModel):
    id: str
    partner: str
    url: str
    event_types: list[str]
    regions: list[str]
    cities: list[str]
    description: str
    state: State
    state_reason: str | None
    failing_since: datetime | None
    max_concurrency: int | None
    rate_per_second: float | None
    previous_secret_expires_at: datetime | None
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, row: EndpointRow) -> "EndpointOut":
        return cls(
            id=row.id,
            partner=row.partner_id,
            url=row.url,
            event_types=list(row.event_types),
            regions=list(row.regions),
            cities=list(row.cities),
            description=row.description,
            state=row.state,
            state_reason=row.state_reason,
            failing_since=row.failing_since,
            max_concurrency=row.max_concurrency,
            rate_per_second=row.rate_per_second,
            previous_secret_expires_at=row.previous_secret_expires_at,
            created_at=row.created_at,
            updated_at=row.updated_at,
        )


class EndpointCreated(EndpointOut):
    secret: str = Field(description="The whsec_ signing secret (also at GET .../secret).")


class SecretOut(BaseModel):
    secret: str
    previous_secret_expires_at: datetime | None = None


class RotateIn(_In):
    grace_seconds: Annotated[float, Field(ge=0, le=30 * 86400)] | None = Field(
        default=None, description="How long the old secret still signs (default: settings)."
    )


class AttemptOut(BaseModel):
    event_id: str
    attempt: int
    at: datetime
    status: Status
    status_code: int | None
    latency_ms: float | None
    response_body: str | None
    error: str | None

    @classmethod
    def of(cls, row: Attempt) -> "AttemptOut":
        return cls(**{k: getattr(row, k) for k in cls.model_fields})


class ReplayIn(_In):
    since: datetime


class Queued(BaseModel):
    queued: int


def api_router(
    settings: Settings,
    store: Store,
    registry: Registry,
    retrier: Retrier,
    directories: DirectorySource,
    policy: Policy,
) -> APIRouter:
    router = APIRouter(prefix="/v1", tags=["webhooks"])
    operator_token = settings.operator_token

    async def principal(
        credentials: HTTPAuthorizationCredentials | None = Depends(_bearer),  # noqa: B008
    ) -> Principal:
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
            return Principal(None)
        partner = await store.partner_for_token(token)
        if partner is None:
            raise HTTPException(
                status.HTTP_401_UNAUTHORIZED,
                "unknown bearer token",
                headers={"WWW-Authenticate": "Bearer"},
            )
        return Principal(partner)

    Caller = Annotated[Principal, Depends(principal)]

    def operator_only(who: Principal) -> None:
        if not who.operator:
            raise HTTPException(status.HTTP_403_FORBIDDEN, "operators only")

    async def owned(endpoint_id: str, who: Principal) -> EndpointRow:
        row = await store.endpoint(endpoint_id)
        if row is None or (not who.operator and row.partner_id != who.partner_id):
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"no endpoint {endpoint_id!r}")
        return row

    async def checked_url(url: str) -> str:
        try:
            await check_target(url, policy)
        except RefusedTarget as exc:
            raise _invalid("url", f"refused: {exc}") from None
        return url

    def checked_filter(event_types: list[str], cities: list[str], wanted: list[str]) -> None:
        directory = directories.directory
        regions = {city.region for city in directory}
        unknown = sorted(set(event_types) - set(EVENT_TYPES))
        if unknown:
            raise _invalid("event_types", f"unknown event type(s) {unknown}")
        unknown = directory.unknown_cities(cities)
        if unknown:
            raise _invalid("cities", f"unknown city id(s) {sorted(unknown)}")
        unknown = sorted(set(wanted) - regions)
        if unknown:
            raise _invalid("regions", f"unknown region(s) {unknown}; known: {sorted(regions)}")

    # partners (operator) --------------------------------------------------------------

    @router.post("/partners", status_code=201, response_model=PartnerToken)
    async def create_partner(body: PartnerIn, who: Caller) -> PartnerToken:
        """Register a partner; its API token is in the answer, once."""
        operator_only(who)
        token = f"gnlcp_{secrets.token_urlsafe(32)}"
        if not await store.create_partner(body.id, body.name, token):
            raise HTTPException(status.HTTP_409_CONFLICT, f"partner {body.id!r} exists")
        return PartnerToken(id=body.id, token=token)

    @router.get("/partners", response_model=list[PartnerOut])
    async def list_partners(who: Caller) -> list[PartnerOut]:
        operator_only(who)
        return [PartnerOut(**p.__dict__) for p in await store.partners()]

    @router.post("/partners/{partner_id}/token", response_model=PartnerToken)
    async def new_partner_token(partner_id: str, who: Caller) -> PartnerToken:
        """Issue a new token to a partner; the old one stops working."""
        operator_only(who)
        token = f"gnlcp_{secrets.token_urlsafe(32)}"
        if not await store.set_partner_token(partner_id, token):
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"no partner {partner_id!r}")
        return PartnerToken(id=partner_id, token=token)

    # endpoints -----------------------------------------------------------------------

    @router.get("/endpoints", response_model=list[EndpointOut])
    async def list_endpoints(
        who: Caller, partner: Annotated[str | None, Query()] = None
    ) -> list[EndpointOut]:
        """Your endpoints (operators: every partner's, or one partner's)."""
        scope = partner if who.operator else who.partner_id
        return [EndpointOut.of(row) for row in await store.endpoints(scope)]

    @router.post("/endpoints", status_code=201, response_model=EndpointCreated)
    async def create_endpoint(body: EndpointIn, who: Caller) -> EndpointCreated:
        """Subscribe a URL to event types; the answer holds its new whsec_ secret."""
        if who.operator:
            if body.partner is None:
                raise _invalid("partner", "operators must say whose endpoint this is")
            owner = body.partner
        else:
            if body.partner not in (None, who.partner_id):
                raise _invalid("partner", "a partner registers endpoints only for itself")
            owner = who.partner_id or ""
        if not await store.partner_exists(owner):
            raise _invalid("partner", f"no partner {owner!r}")
        checked_filter(body.event_types, body.cities, body.regions)
        await checked_url(body.url)
        row = EndpointRow(
            id=f"ep-{secrets.token_hex(8)}",
            partner_id=owner,
            url=body.url,
            event_types=tuple(dict.fromkeys(body.event_types)),
            regions=tuple(body.regions),
            cities=tuple(body.cities),
            description=body.description,
            secret=new_secret(),
            max_concurrency=body.max_concurrency,
            rate_per_second=body.rate_per_second,
        )
        await store.insert_endpoint(row)
        await registry.refresh()
        return EndpointCreated(**EndpointOut.of(row).model_dump(), secret=row.secret)

    @router.get("/endpoints/{endpoint_id}", response_model=EndpointOut)
    async def get_endpoint(endpoint_id: str, who: Caller) -> EndpointOut:
        return EndpointOut.of(await owned(endpoint_id, who))

    @router.patch("/endpoints/{endpoint_id}", response_model=EndpointOut)
    async def edit_endpoint(endpoint_id: str, body: EndpointPatch, who: Caller) -> EndpointOut:
        """Change the URL, event types, filter, description or limits."""
        row = await owned(endpoint_id, who)
        changes: dict[str, Any] = body.model_dump(exclude_unset=True)
        for name in ("url", "event_types"):
            if name in changes and changes[name] is None:
                raise _invalid(name, "may not be null")
        checked_filter(
            changes.get("event_types") or [],
            changes.get("cities") or [],
            changes.get("regions") or [],
        )
        if "url" in changes:
            await checked_url(changes["url"])
        for name in ("event_types", "regions", "cities"):
            if name in changes:
                changes[name] = tuple(changes[name] or ())
        if changes.get("description") is None:
            changes.pop("description", None)
        row = await store.save_endpoint(replace(row, **changes))
        await registry.refresh()
        return EndpointOut.of(row)

    @router.delete("/endpoints/{endpoint_id}", status_code=204)
    async def delete_endpoint(endpoint_id: str, who: Caller) -> Response:
        """Delete the endpoint; what was still due for it is dropped."""
        await owned(endpoint_id, who)
        await store.delete_endpoint(endpoint_id)
        await registry.refresh()
        return Response(status_code=204)

    async def set_state(endpoint_id: str, who: Caller, state: State) -> EndpointOut:
        row = await owned(endpoint_id, who)
        row = await store.save_endpoint(
            replace(row, state=state, state_reason=None, failing_since=None)
        )
        await registry.refresh()
        return EndpointOut.of(row)

    @router.post("/endpoints/{endpoint_id}/pause", response_model=EndpointOut)
    async def pause(endpoint_id: str, who: Caller) -> EndpointOut:
        """Stop sending; what arrives meanwhile is dropped and can be replayed later."""
        return await set_state(endpoint_id, who, State.PAUSED)

    @router.post("/endpoints/{endpoint_id}/resume", response_model=EndpointOut)
    async def resume(endpoint_id: str, who: Caller) -> EndpointOut:
        """Send again (also re-enables an endpoint that was disabled)."""
        return await set_state(endpoint_id, who, State.ACTIVE)

    @router.get("/endpoints/{endpoint_id}/secret", response_model=SecretOut)
    async def get_secret(endpoint_id: str, who: Caller) -> SecretOut:
        row = await owned(endpoint_id, who)
        return SecretOut(
            secret=row.secret, previous_secret_expires_at=row.previous_secret_expires_at
        )

    @router.post("/endpoints/{endpoint_id}/rotate-secret", response_model=SecretOut)
    async def rotate_secret(
        endpoint_id: str, who: Caller, body: RotateIn | None = None
    ) -> SecretOut:
        """A new secret; during the grace period both secrets sign every delivery."""
        row = await owned(endpoint_id, who)
        grace = settings.webhook_secret_grace_seconds
        if body is not None and body.grace_seconds is not None:
            grace = body.grace_seconds
        expires = datetime.now(UTC) + timedelta(seconds=grace)
        row = await store.save_endpoint(
            replace(
                row,
                secret=new_secret(),
                previous_secret=row.secret,
                previous_secret_expires_at=expires,
            )
        )
        await registry.refresh()
        return SecretOut(secret=row.secret, previous_secret_expires_at=expires)

    # delivery log and replay -----------------------------------------------------------

    @router.get("/endpoints/{endpoint_id}/attempts", response_model=list[AttemptOut])
    async def list_attempts(
        endpoint_id: str,
        who: Caller,
        since: datetime | None = None,
        event_id: str | None = None,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    ) -> list[AttemptOut]:
        """Every attempt (newest first): time, status code, latency, response, error."""
        await owned(endpoint_id, who)
        if since is not None:
            since = (since if since.tzinfo else since.replace(tzinfo=UTC)).astimezone(UTC)
        rows = await store.attempts(endpoint_id, since=since, event_id=event_id, limit=limit)
        return [AttemptOut.of(row) for row in rows]

    async def enqueue(endpoint_id: str, messages: list[StoredMessage]) -> None:
        for message in messages:
            event = parse_event(message.body)
            await retrier.schedule(
                message.body.encode(),
                key=event.partitionkey.encode(),
                recipient=f"{RESEND_PREFIX}{endpoint_id}",
                attempt=1,
                delay=0.0,
                reason="resend requested",
            )

    @router.post(
        "/endpoints/{endpoint_id}/messages/{event_id}/resend",
        status_code=202,
        response_model=Queued,
    )
    async def resend(endpoint_id: str, event_id: str, who: Caller) -> Queued:
        """Send one event to this endpoint again, whatever became of it before."""
        await owned(endpoint_id, who)
        message = await store.message_for(endpoint_id, event_id)
        if message is None:
            raise HTTPException(
                status.HTTP_404_NOT_FOUND, f"no event {event_id!r} for endpoint {endpoint_id!r}"
            )
        await enqueue(endpoint_id, [message])
        return Queued(queued=1)

    @router.post("/endpoints/{endpoint_id}/replay", status_code=202, response_model=Queued)
    async def replay(endpoint_id: str, body: ReplayIn, who: Caller) -> Queued:
        """Send again every event whose delivery here failed or was dropped since ``since``."""
        await owned(endpoint_id, who)
        since = (body.since if body.since.tzinfo else body.since.replace(tzinfo=UTC)).astimezone(
            UTC
        )
        messages = await store.unsuccessful_since(endpoint_id, since)
        await enqueue(endpoint_id, messages)
        return Queued(queued=len(messages))

    return router
