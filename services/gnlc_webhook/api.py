"""The partner and operator API of the webhook channel (``/v1``).

A partner authenticates with its own bearer token and sees and manages only its own
endpoints and their delivery log (another partner's endpoint is a 404, as if it did not
exist). The operator token sees everything and acts on a partner's behalf.

Errors: a 422 ``detail`` is always a list of ``{loc, msg, type}`` (FastAPI's own shape, for
the checks of the field types and for those that need the directory or DNS alike); every
other error has a string ``detail``. Bodies are read up to ``MAX_BODY_BYTES`` (413 beyond);
every string and list has a limit (``gnlc_webhook.validation``), and nothing is stored
before every check passed. Every time in an answer carries its offset (UTC).

(No ``from __future__ import annotations`` here: FastAPI reads the annotations of the
route functions, which refer to names local to ``api_router``.)
"""

import hmac
import json
import math
import secrets
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Protocol

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request, Response, status
from fastapi.routing import APIRoute
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)
from starlette.types import Receive, Scope, Send

from gnlc_core.answers import AskedInstant, ErrorDetail
from gnlc_core.answers import Instant as Timestamp
from gnlc_core.directory import DirectorySource
from gnlc_core.events import Slug, parse_event
from gnlc_core.ledger import Status
from gnlc_core.settings import Settings
from gnlc_webhook.consumer import RESEND_PREFIX
from gnlc_webhook.health import Health
from gnlc_webhook.health import health as endpoint_health_of
from gnlc_webhook.registry import Registry
from gnlc_webhook.signing import SignatureKind, new_secret, public_key, signature_kind
from gnlc_webhook.ssrf import Policy, Resolver, system_resolver
from gnlc_webhook.store import Attempt, EndpointRow, State, Store, StoredMessage
from gnlc_webhook.test_events import PER_WINDOW, WINDOW, EventBudget, sample_record
from gnlc_webhook.validation import (
    MAX_BODY_BYTES,
    MAX_GRACE_SECONDS,
    MAX_LOG_ROWS,
    Cities,
    Concurrency,
    Description,
    EndpointFields,
    EventId,
    EventTypeName,
    EventTypes,
    Instant,
    Name,
    Ordered,
    Problem,
    Rate,
    Regions,
    WebhookUrl,
    json_number,
    problems,
)

_bearer = HTTPBearer(auto_error=False, description="The operator token or a partner's token.")
_SLUG = r"^[a-z0-9][a-z0-9-]{0,62}$"


# -- the request body limit --------------------------------------------------------------
def _too_large() -> HTTPException:
    return HTTPException(
        status.HTTP_413_CONTENT_TOO_LARGE,
        f"request body larger than {MAX_BODY_BYTES} bytes (the limit of this API)",
    )


def _not_finite(text: str) -> float:
    raise ValueError(f"{text} is not a JSON number")


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"{text} is out of range")
    return value


class _LimitedRequest(Request):
    """A request whose body is read up to ``MAX_BODY_BYTES``: a larger declared
    ``content-length`` is refused before reading, a longer stream as soon as it passes it."""

    async def body(self) -> bytes:
        if not hasattr(self, "_body"):
            declared = self.headers.get("content-length", "")
            if declared.isdigit() and int(declared) > MAX_BODY_BYTES:
                raise _too_large()
            chunks: list[bytes] = []
            size = 0
            async for chunk in self.stream():
                size += len(chunk)
                if size > MAX_BODY_BYTES:
                    raise _too_large()
                chunks.append(chunk)
            self._body = b"".join(chunks)
        return self._body

    async def json(self) -> Any:
        """Strict JSON: no NaN or infinities (which no answer could echo back), and a nesting
        deeper than the parser's stack is a decode error, not a crash."""
        if not hasattr(self, "_json"):
            body = await self.body()
            try:
                self._json = json.loads(body, parse_constant=_not_finite, parse_float=_finite)
            except json.JSONDecodeError:
                raise
            except RecursionError:
                raise json.JSONDecodeError("nested too deeply", "", 0) from None
            except ValueError as exc:
                raise json.JSONDecodeError(str(exc), "", 0) from None
        return self._json


class LimitedBodyRoute(APIRoute):
    """Routes whose handlers read the body through ``_LimitedRequest``, and whose 405
    answers list every method of their path in ``Allow`` (``allowed``, set by the router
    once all its routes exist), not only their own."""

    allowed: frozenset[str] = frozenset()

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.methods and scope["method"] not in self.methods:
            allow = ", ".join(sorted(self.allowed or self.methods))
            raise HTTPException(
                status.HTTP_405_METHOD_NOT_ALLOWED, "method not allowed", {"Allow": allow}
            )
        await super().handle(scope, receive, send)

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def limited(request: Request) -> Response:
            return await handler(_LimitedRequest(request.scope, request.receive))

        return limited


# -- errors, as documented ---------------------------------------------------------------
_ERRORS = {
    401: "No bearer token, or one that is neither the operator's nor a partner's.",
    403: "Operators only.",
    404: "No such partner, endpoint or event (another partner's endpoint is not yours).",
    409: "A partner with this id exists.",
    413: f"The request body is larger than {MAX_BODY_BYTES} bytes.",
}


def _errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    """The ``responses`` of an operation: its error statuses with the error shape (422 is
    FastAPI's ``HTTPValidationError``, added for every operation that takes input)."""
    return {code: {"model": ErrorDetail, "description": _ERRORS[code]} for code in codes}


def _invalid(found: Sequence[Problem]) -> HTTPException:
    """A 422 in FastAPI's own shape, so clients read every validation error the same way."""
    return HTTPException(
        status.HTTP_422_UNPROCESSABLE_CONTENT,
        detail=[{"loc": ["body", p.field], "msg": p.message, "type": "value_error"} for p in found],
    )


# -- models --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Principal:
    """Who calls: the operator (``partner_id`` None) or one partner."""

    partner_id: str | None

    @property
    def operator(self) -> bool:
        return self.partner_id is None


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class PartnerIn(_In):
    id: Slug
    name: Name


class PartnerOut(BaseModel):
    id: str
    name: str
    has_token: bool
    created_at: Timestamp


class PartnerToken(BaseModel):
    id: str
    token: str = Field(description="Shown once; only its hash is stored.")


class EndpointIn(EndpointFields):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "url": "https://hooks.example.org/gnlc",
                    "event_types": ["deadline.reminder", "announcement.published"],
                    "description": "the institute's portal",
                    "partner": "example-institute",
                }
            ]
        },
    )

    partner: Slug | None = Field(
        default=None,
        description="Whose endpoint: required for operators, at most yourself for a partner.",
        examples=["example-institute"],
    )
    signature: SignatureKind = Field(
        default=SignatureKind.HMAC,
        description=(
            "hmac: v1 signatures with a whsec_ secret (shown to you); ed25519: v1a "
            "signatures, verified with the whpk_ public key (the signing key stays here)."
        ),
    )


_NOT_NULLABLE = ("url", "event_types", "description", "ordered")


def _patch_schema(schema: dict[str, Any]) -> None:
    """The document says what validation does: at least one field, and ``null`` only for
    the fields it clears."""
    schema["minProperties"] = 1
    for name in _NOT_NULLABLE:
        field = schema["properties"][name]
        [kept] = [variant for variant in field.pop("anyOf") if variant.get("type") != "null"]
        field.pop("default", None)
        field.update(kept)


class EndpointPatch(_In):
    """The fields to change, at least one; a field not given is kept. ``null`` clears the
    filter and limits (``regions``, ``cities``, ``max_concurrency``, ``rate_per_second``)."""

    model_config = ConfigDict(extra="forbid", json_schema_extra=_patch_schema)

    url: WebhookUrl | None = None
    event_types: EventTypes | None = None
    regions: Regions | None = None
    cities: Cities | None = None
    description: Description | None = None
    max_concurrency: Concurrency | None = None
    rate_per_second: Rate | None = None
    ordered: Ordered | None = None

    @field_validator(*_NOT_NULLABLE)
    @classmethod
    def _not_null(cls, value: Any) -> Any:
        if value is None:
            raise ValueError("may not be null")
        return value

    @model_validator(mode="after")
    def _something(self) -> "EndpointPatch":
        if not self.model_fields_set:
            raise ValueError("nothing to change: give at least one field")
        return self


class EndpointOut(BaseModel):
    id: str
    partner: str
    url: str
    event_types: list[str]
    regions: list[str]
    cities: list[str]
    description: str
    signature: SignatureKind
    public_key: str | None = Field(
        description="ed25519 endpoints: the whpk_ key that verifies their deliveries."
    )
    state: State
    state_reason: str | None
    failing_since: Timestamp | None
    max_concurrency: int | None
    rate_per_second: float | None
    ordered: bool = Field(description="One partition key's deliveries in order.")
    previous_secret_expires_at: Timestamp | None
    created_at: Timestamp
    updated_at: Timestamp

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
            signature=signature_kind(row.secret),
            public_key=public_key(row.secret),
            state=row.state,
            state_reason=row.state_reason,
            failing_since=row.failing_since,
            max_concurrency=row.max_concurrency,
            rate_per_second=row.rate_per_second,
            ordered=row.ordered,
            previous_secret_expires_at=row.previous_secret_expires_at,
            created_at=row.created_at,
            updated_at=row.updated_at,
        )


class EndpointCreated(EndpointOut):
    secret: str | None = Field(
        description="hmac: the whsec_ secret (also at GET .../secret); ed25519: none."
    )


class SecretOut(BaseModel):
    """What verifies the endpoint's deliveries: its whsec_ secret (hmac), or its whpk_
    public key (ed25519, whose signing key is never shown); during the grace period after a
    rotation, the previous key still signs too."""

    signature: SignatureKind
    secret: str | None = None
    public_key: str | None = None
    previous_public_key: str | None = None
    previous_secret_expires_at: Timestamp | None = None

    @classmethod
    def of(cls, row: EndpointRow) -> "SecretOut":
        kind = signature_kind(row.secret)
        signing = row.secrets(datetime.now(UTC))
        return cls(
            signature=kind,
            secret=row.secret if kind is SignatureKind.HMAC else None,
            public_key=public_key(row.secret),
            previous_public_key=public_key(signing[-1]) if len(signing) > 1 else None,
            previous_secret_expires_at=row.previous_secret_expires_at,
        )


class RotateIn(_In):
    grace_seconds: (
        Annotated[
            float,
            Field(ge=0, le=MAX_GRACE_SECONDS, allow_inf_nan=False),
            BeforeValidator(json_number),
        ]
        | None
    ) = Field(default=None, description="How long the old secret still signs (default: settings).")


class AttemptOut(BaseModel):
    event_id: str
    attempt: int
    at: Timestamp
    status: Status
    status_code: int | None
    latency_ms: float | None
    response_body: str | None
    error: str | None

    @classmethod
    def of(cls, row: Attempt) -> "AttemptOut":
        return cls(**{k: getattr(row, k) for k in cls.model_fields})


class EndpointHealthOut(BaseModel):
    endpoint_id: str
    since: Timestamp
    requests: int = Field(description="Requests made in the window.")
    delivered: int
    success_rate: float | None = Field(description="delivered / requests; null: none made.")
    p50_ms: float | None
    p95_ms: float | None
    sampled: int = Field(description="The latest requests the percentiles are of (<= 1000).")

    @classmethod
    def of(cls, found: Health, since: datetime) -> "EndpointHealthOut":
        return cls(
            endpoint_id=found.endpoint_id,
            since=since,
            requests=found.requests,
            delivered=found.delivered,
            success_rate=found.success_rate,
            p50_ms=found.p50_ms,
            p95_ms=found.p95_ms,
            sampled=found.sampled,
        )


class ReplayIn(_In):
    since: Instant


class Queued(BaseModel):
    queued: int


class Me(BaseModel):
    """Who the token is: the operator, or one partner (its id and name)."""

    operator: bool
    partner_id: str | None
    partner_name: str | None


class MessageOut(BaseModel):
    """An event as it was sent to the endpoint (the signed body, the same at each attempt)."""

    event_id: str
    event_type: str
    body: str


class EventTestIn(_In):
    event_type: EventTypeName = Field(
        description="Any type an endpoint can receive (a test may come before a subscription)."
    )


class EventTestQueued(Queued):
    event_id: str = Field(description="The test event's id (its webhook-id header).")
    event_type: str


class Resender(Protocol):
    """Where resends and replays go: the channel's retry tiers (``gnlc_core.retry``)."""

    async def schedule(
        self,
        value: bytes,
        *,
        key: bytes | None,
        recipient: str,
        attempt: int,
        delay: float,
        reason: str,
    ) -> None: ...


EndpointId = Annotated[str, Path(pattern=_SLUG, description="An endpoint id.")]
PartnerId = Annotated[str, Path(pattern=_SLUG, description="A partner id.")]


def api_router(
    settings: Settings,
    store: Store,
    registry: Registry,
    retrier: Resender,
    directories: DirectorySource,
    policy: Policy,
    resolver: Resolver = system_resolver,
) -> APIRouter:
    router = APIRouter(prefix="/v1", tags=["webhooks"], route_class=LimitedBodyRoute)
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

    async def refuse_problems(
        *,
        url: str | None,
        regions: Sequence[str] = (),
        cities: Sequence[str] = (),
        also: Sequence[Problem] = (),
    ) -> None:
        found = [
            *also,
            *await problems(
                url=url,
                regions=regions,
                cities=cities,
                directory=directories.directory,
                policy=policy,
                resolver=resolver,
            ),
        ]
        if found:
            raise _invalid(found)

    # partners (operator) --------------------------------------------------------------

    @router.post(
        "/partners",
        status_code=201,
        response_model=PartnerToken,
        responses=_errors(401, 403, 409, 413),
    )
    async def create_partner(body: PartnerIn, who: Caller) -> PartnerToken:
        """Register a partner; its API token is in the answer, once."""
        operator_only(who)
        token = f"gnlcp_{secrets.token_urlsafe(32)}"
        if not await store.create_partner(body.id, body.name, token):
            raise HTTPException(status.HTTP_409_CONFLICT, f"partner {body.id!r} exists")
        return PartnerToken(id=body.id, token=token)

    @router.get("/partners", response_model=list[PartnerOut], responses=_errors(401, 403))
    async def list_partners(who: Caller) -> list[PartnerOut]:
        operator_only(who)
        return [PartnerOut(**p.__dict__) for p in await store.partners()]

    @router.post(
        "/partners/{partner_id}/token",
        response_model=PartnerToken,
        responses=_errors(401, 403, 404),
    )
    async def new_partner_token(partner_id: PartnerId, who: Caller) -> PartnerToken:
        """Issue a new token to a partner; the old one stops working."""
        operator_only(who)
        token = f"gnlcp_{secrets.token_urlsafe(32)}"
        if not await store.set_partner_token(partner_id, token):
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"no partner {partner_id!r}")
        return PartnerToken(id=partner_id, token=token)

    # endpoints -----------------------------------------------------------------------

    @router.get("/endpoints", response_model=list[EndpointOut], responses=_errors(401))
    async def list_endpoints(
        who: Caller,
        partner: Annotated[
            str | None, Query(pattern=_SLUG, description="Operators: one partner's only.")
        ] = None,
    ) -> list[EndpointOut]:
        """Your endpoints (operators: every partner's, or one partner's)."""
        scope = partner if who.operator else who.partner_id
        return [EndpointOut.of(row) for row in await store.endpoints(scope)]

    @router.post(
        "/endpoints",
        status_code=201,
        response_model=EndpointCreated,
        responses=_errors(401, 413),
    )
    async def create_endpoint(body: EndpointIn, who: Caller) -> EndpointCreated:
        """Subscribe a URL to event types; the answer holds its new whsec_ secret (hmac) or
        the whpk_ public key that verifies its deliveries (ed25519)."""
        owner = body.partner if who.operator else who.partner_id
        wrong: list[Problem] = []
        if who.operator and owner is None:
            wrong.append(Problem("partner", "operators must say whose endpoint this is"))
        elif not who.operator and body.partner not in (None, who.partner_id):
            wrong.append(Problem("partner", "a partner registers endpoints only for itself"))
        elif owner is not None and not await store.partner_exists(owner):
            wrong.append(Problem("partner", f"no partner {owner!r}"))
        await refuse_problems(url=body.url, regions=body.regions, cities=body.cities, also=wrong)
        row = EndpointRow(
            id=f"ep-{secrets.token_hex(8)}",
            partner_id=owner or "",
            url=body.url,
            event_types=tuple(dict.fromkeys(body.event_types)),
            regions=body.regions,
            cities=body.cities,
            description=body.description,
            secret=new_secret(body.signature),
            max_concurrency=body.max_concurrency,
            rate_per_second=body.rate_per_second,
            ordered=body.ordered,
        )
        await store.insert_endpoint(row)
        await registry.refresh()
        return EndpointCreated(**EndpointOut.of(row).model_dump(), secret=SecretOut.of(row).secret)

    @router.get("/endpoints/{endpoint_id}", response_model=EndpointOut, responses=_errors(401, 404))
    async def get_endpoint(endpoint_id: EndpointId, who: Caller) -> EndpointOut:
        return EndpointOut.of(await owned(endpoint_id, who))

    @router.patch(
        "/endpoints/{endpoint_id}",
        response_model=EndpointOut,
        responses=_errors(401, 404, 413),
    )
    async def edit_endpoint(
        endpoint_id: EndpointId, body: EndpointPatch, who: Caller
    ) -> EndpointOut:
        """Change the URL, event types, filter, description, limits or order (switched off,
        no delivery waits for another any more)."""
        row = await owned(endpoint_id, who)
        changes: dict[str, Any] = body.model_dump(exclude_unset=True)
        await refuse_problems(
            url=changes.get("url"),
            regions=changes.get("regions") or (),
            cities=changes.get("cities") or (),
        )
        for name in ("event_types", "regions", "cities"):
            if name in changes:
                changes[name] = tuple(dict.fromkeys(changes[name] or ()))
        unordered = row.ordered and changes.get("ordered") is False
        row = await store.save_endpoint(replace(row, **changes))
        if unordered:
            await store.clear_order(endpoint_id)
        await registry.refresh()
        return EndpointOut.of(row)

    @router.delete("/endpoints/{endpoint_id}", status_code=204, responses=_errors(401, 404))
    async def delete_endpoint(endpoint_id: EndpointId, who: Caller) -> Response:
        """Delete the endpoint; what was still due for it is dropped."""
        await owned(endpoint_id, who)
        await store.delete_endpoint(endpoint_id)
        await registry.refresh()
        return Response(status_code=204)

    async def set_state(endpoint_id: str, who: Principal, state: State) -> EndpointOut:
        row = await owned(endpoint_id, who)
        row = await store.save_endpoint(
            replace(row, state=state, state_reason=None, failing_since=None)
        )
        await registry.refresh()
        return EndpointOut.of(row)

    @router.post(
        "/endpoints/{endpoint_id}/pause", response_model=EndpointOut, responses=_errors(401, 404)
    )
    async def pause(endpoint_id: EndpointId, who: Caller) -> EndpointOut:
        """Stop sending; what arrives meanwhile is dropped and can be replayed later."""
        return await set_state(endpoint_id, who, State.PAUSED)

    @router.post(
        "/endpoints/{endpoint_id}/resume", response_model=EndpointOut, responses=_errors(401, 404)
    )
    async def resume(endpoint_id: EndpointId, who: Caller) -> EndpointOut:
        """Send again (also re-enables an endpoint that was disabled)."""
        return await set_state(endpoint_id, who, State.ACTIVE)

    @router.get(
        "/endpoints/{endpoint_id}/secret", response_model=SecretOut, responses=_errors(401, 404)
    )
    async def get_secret(endpoint_id: EndpointId, who: Caller) -> SecretOut:
        return SecretOut.of(await owned(endpoint_id, who))

    @router.post(
        "/endpoints/{endpoint_id}/rotate-secret",
        response_model=SecretOut,
        responses=_errors(401, 404, 413),
    )
    async def rotate_secret(endpoint_id: EndpointId, body: RotateIn, who: Caller) -> SecretOut:
        """A new secret (or ed25519 key); during the grace period both sign every delivery
        (the body is an object: ``{}`` for the default grace period)."""
        row = await owned(endpoint_id, who)
        grace = settings.webhook_secret_grace_seconds
        if body.grace_seconds is not None:
            grace = body.grace_seconds
        expires = datetime.now(UTC) + timedelta(seconds=grace)
        row = await store.save_endpoint(
            replace(
                row,
                secret=new_secret(signature_kind(row.secret)),
                previous_secret=row.secret,
                previous_secret_expires_at=expires,
            )
        )
        await registry.refresh()
        return SecretOut.of(row)

    # delivery log and replay -----------------------------------------------------------

    @router.get(
        "/endpoints/{endpoint_id}/attempts",
        response_model=list[AttemptOut],
        responses=_errors(401, 404),
    )
    async def list_attempts(
        endpoint_id: EndpointId,
        who: Caller,
        since: Annotated[Instant | None, Query(description="Attempts at or after.")] = None,
        event_id: Annotated[EventId | None, Query(description="One event's only.")] = None,
        limit: Annotated[int, Query(ge=1, le=MAX_LOG_ROWS)] = 100,
    ) -> list[AttemptOut]:
        """Every attempt (newest first): time, status code, latency, response, error."""
        await owned(endpoint_id, who)
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
        responses=_errors(401, 404),
    )
    async def resend(
        endpoint_id: EndpointId,
        event_id: Annotated[EventId, Path(description="The event's id.")],
        who: Caller,
    ) -> Queued:
        """Send one event to this endpoint again, whatever became of it before."""
        await owned(endpoint_id, who)
        message = await store.message_for(endpoint_id, event_id)
        if message is None:
            raise HTTPException(
                status.HTTP_404_NOT_FOUND, f"no event {event_id!r} for endpoint {endpoint_id!r}"
            )
        await enqueue(endpoint_id, [message])
        return Queued(queued=1)

    @router.post(
        "/endpoints/{endpoint_id}/replay",
        status_code=202,
        response_model=Queued,
        responses=_errors(401, 404, 413),
    )
    async def replay(endpoint_id: EndpointId, body: ReplayIn, who: Caller) -> Queued:
        """Send again every event whose delivery here failed or was dropped since ``since``."""
        await owned(endpoint_id, who)
        messages = await store.unsuccessful_since(endpoint_id, body.since)
        await enqueue(endpoint_id, messages)
        return Queued(queued=len(messages))

    # who am I, what was sent, test events ----------------------------------------------

    @router.get("/me", response_model=Me, responses=_errors(401))
    async def me(who: Caller) -> Me:
        """Whose token this is (the partner portal signs a partner in with it)."""
        if who.operator:
            return Me(operator=True, partner_id=None, partner_name=None)
        names = {p.id: p.name for p in await store.partners()}
        return Me(
            operator=False, partner_id=who.partner_id, partner_name=names.get(who.partner_id or "")
        )

    @router.get(
        "/endpoints/{endpoint_id}/messages/{event_id}",
        response_model=MessageOut,
        responses=_errors(401, 404),
    )
    async def get_message(
        endpoint_id: EndpointId,
        event_id: Annotated[EventId, Path(description="The event's id.")],
        who: Caller,
    ) -> MessageOut:
        """The body this endpoint was sent for the event (what its signatures cover)."""
        await owned(endpoint_id, who)
        message = await store.message_for(endpoint_id, event_id)
        if message is None:
            raise HTTPException(
                status.HTTP_404_NOT_FOUND, f"no event {event_id!r} for endpoint {endpoint_id!r}"
            )
        return MessageOut(
            event_id=message.event_id, event_type=message.event_type, body=message.body
        )

    budget = EventBudget()

    @router.post(
        "/endpoints/{endpoint_id}/test",
        status_code=202,
        response_model=EventTestQueued,
        responses={
            **_errors(401, 404, 413),
            409: {"model": ErrorDetail, "description": "The endpoint is paused or disabled."},
            429: {
                "model": ErrorDetail,
                "description": (
                    f"More than {PER_WINDOW} test events to this endpoint within "
                    f"{WINDOW.total_seconds():g} s (Retry-After says when to try again)."
                ),
            },
        },
    )
    async def send_test_event(
        endpoint_id: EndpointId, body: EventTestIn, who: Caller
    ) -> EventTestQueued:
        """Send a test event of any known type to this endpoint alone: the
        example of the type from the event catalog (``schemas/examples``) with a fresh id,
        the time now, ``source`` ``/gnlc-notify/webhook/test`` and its deadline or
        announcement id prefixed with ``test-``; queued like a resend, signed like every
        delivery, in its delivery log."""
        row = await owned(endpoint_id, who)
        if row.state is not State.ACTIVE:
            raise HTTPException(
                status.HTTP_409_CONFLICT,
                f"endpoint {endpoint_id!r} is {row.state.value}: resume it to send a test event",
            )
        now = datetime.now(UTC)
        wait = budget.wait(endpoint_id, now)
        if wait is not None:
            seconds = max(1, math.ceil(wait.total_seconds()))
            raise HTTPException(
                status.HTTP_429_TOO_MANY_REQUESTS,
                f"at most {PER_WINDOW} test events per {WINDOW.total_seconds():g} s to an "
                f"endpoint; try again in {seconds} s",
                headers={"Retry-After": str(seconds)},
            )
        event_id, value = sample_record(body.event_type, now)
        await enqueue(endpoint_id, [StoredMessage(event_id, body.event_type, value.decode())])
        budget.spend(endpoint_id, now)
        return EventTestQueued(queued=1, event_id=event_id, event_type=body.event_type)

    @router.get(
        "/endpoint-health",
        response_model=list[EndpointHealthOut],
        responses=_errors(401, 403),
    )
    async def endpoint_health(
        who: Caller,
        since: Annotated[
            AskedInstant | None,
            Query(
                description=(
                    "From (default: 24 hours ago); an earlier time counts from 7 days ago, "
                    "the longest window, and a later one than now gives empty figures."
                )
            ),
        ] = None,
    ) -> list[EndpointHealthOut]:
        """Every endpoint's requests, success rate and latency (p50, p95 of its latest
        1000 requests) since ``since`` (operators only)."""
        operator_only(who)
        until = datetime.now(UTC)
        start = min(max(since or until - timedelta(hours=24), until - timedelta(days=7)), until)
        ids = [row.id for row in await store.endpoints()]
        found = await endpoint_health_of(store.engine, ids, start, until)
        return [EndpointHealthOut.of(h, start) for h in found]

    methods: dict[str, set[str]] = {}
    for route in router.routes:
        if isinstance(route, APIRoute):
            methods.setdefault(route.path, set()).update(route.methods or ())
    for route in router.routes:
        if isinstance(route, LimitedBodyRoute):
            route.allowed = frozenset(methods[route.path])
    return router
