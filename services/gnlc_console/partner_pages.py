"""The partner portal (``/partner``): a partner signs in with its webhook API token and
sees its own endpoints and their delivery log (request and response of every attempt), the
event catalog, sends a test event, rotates its signing secret and replays since a time.

Every page calls the webhook API server-side with the partner's own token, so the API's
scoping is what the partner sees (another partner's endpoint is a 404 there, and here).
A partner session (``partner_sessions``) is of its own kind, in its own table and cookie:
it holds no operator rights, an operator page never accepts it and a partner page never
accepts an operator's session. Every change passes the same checks as the operators'
(same origin, the session's CSRF token); sign-in is limited per address."""

# No `from __future__ import annotations` here: FastAPI must see the routes' Depends,
# made in the router's closure, when the routes are defined.

import secrets
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Annotated, Any
from urllib.parse import quote, urlsplit

import httpx
from fastapi import APIRouter, Depends, FastAPI, Form, Path, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from gnlc_console import times
from gnlc_console.backend import NotFound
from gnlc_console.catalog_view import field_rows, pretty, pretty_text
from gnlc_console.forms import Errors, Values, parse_local, zone
from gnlc_console.guards import (
    CSRF_FIELD,
    CSRF_HEADER,
    Limits,
    SignInLimiter,
    cross_site_problem,
)
from gnlc_console.partner_api import PartnerApi, PartnerTokenRefused
from gnlc_console.partner_sessions import (
    PartnerSession,
    close_partner_session,
    find_partner_session,
    forget_expired_partner_sessions,
    open_partner_session,
)
from gnlc_console.web import ASSETS, Console, Refused, now, own_origin
from gnlc_core.catalog import catalog

PREFIX = "/partner"
PRE_COOKIE = "gnlc-partner-signin"
#: Partner tokens are ``gnlcp_`` and 43 characters; room for other issuers, bounded.
MAX_TOKEN = 200
#: The attempts an endpoint's page lists (newest first), and the characters of a response
#: body a page shows (the service keeps at most its own limit).
ATTEMPTS_SHOWN = 50
BODY_SHOWN = 4000
#: Failed sign-ins from one address within 15 minutes (a token has no account to count on).
SIGNIN_LIMITS = Limits(per_account=10, per_address=10)

#: What the portal's forms call their fields (the error summary links to them).
LABELS = {"event_type": "Event type", "since_local": "Since", "zone": "Time zone"}

#: The webhook API's own rules for the ids, so a malformed one is refused here (422).
EndpointId = Annotated[str, Path(max_length=63, pattern=r"^[a-z0-9][a-z0-9-]{0,62}$")]
EventId = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._:-]+$")]


class PartnerSignInNeeded(Exception):
    def __init__(self, target: str) -> None:
        self.target = target


@dataclass
class Portal:
    console: Console
    api: PartnerApi
    limiter: SignInLimiter = field(default_factory=lambda: SignInLimiter(SIGNIN_LIMITS))

    @property
    def cookie(self) -> str:
        # not the operators' cookie: the two kinds of session never meet
        return "__Host-gnlc-partner" if self.console.secure_cookie else "gnlc-partner"

    def render(
        self,
        request: Request,
        template: str,
        status_code: int = 200,
        session: PartnerSession | None = None,
        **context: Any,
    ) -> HTMLResponse:
        viewer = times.viewer_zone(request.cookies.get("tz"))
        flashes = self.console.flashes.pop(session.id, []) if session else []
        html = self.console.env.get_template(template).render(
            request=request,
            partner=session,
            user=None,  # no operator here
            csrf=session.csrf_token if session else "",
            assets=ASSETS,
            label_of=lambda name: LABELS.get(name, name),
            viewer=viewer,
            shown=lambda instant, city_zone=None: times.shown(instant, viewer, city_zone),
            flashes=flashes,
            **context,
        )
        return HTMLResponse(html, status_code=status_code)

    def flash(
        self, session: PartnerSession, kind: str, text: str, items: list[str] | None = None
    ) -> None:
        self.console.flashes.setdefault(session.id, []).append(
            {"kind": kind, "text": text, "items": items or []}
        )


# -- pure decisions -------------------------------------------------------------------------


def safe_partner_next(target: str | None) -> str:
    """Only a portal path (never an operator page, another site or ``//host``)."""
    if not target or target.startswith("//"):
        return PREFIX
    parts = urlsplit(target)
    if parts.scheme or parts.netloc:
        return PREFIX
    if parts.path != PREFIX and not parts.path.startswith(f"{PREFIX}/"):
        return PREFIX
    return target


def replay_since(values: Values, moment: datetime) -> tuple[str | None, Errors]:
    """The instant to replay from (RFC 3339), from a local date and time in a zone; or the
    errors, by field (the form is shown again with what was typed)."""
    errors: Errors = {}
    text = str(values.get("since_local", "")).strip()
    zone_name = str(values.get("zone", "")).strip()
    if zone(zone_name) is None:
        errors["zone"] = [
            f"{zone_name!r} is not a time zone (e.g. Europe/Paris, Asia/Kathmandu)"
            if zone_name
            else "give a time zone (e.g. Europe/Paris)"
        ]
    if not text:
        errors["since_local"] = ["give a date and time, e.g. 2027-01-17T09:00"]
    if errors:
        return None, errors
    try:
        since = parse_local(text, zone_name)
    except ValueError as exc:
        return None, {"since_local": [str(exc)]}
    if since > moment:
        return None, {"since_local": ["that is in the future: nothing failed since then yet"]}
    if since < moment - timedelta(days=366):
        return None, {"since_local": ["at most a year back"]}
    return since.isoformat(), {}


def signature_header(kind: str) -> str:
    """What the ``webhook-signature`` header of an endpoint of this kind carries."""
    if kind == "ed25519":
        return "v1a,<base64 ed25519 signature of id.timestamp.body; verify with your whpk_ key>"
    return "v1,<base64 HMAC-SHA256 of id.timestamp.body under your whsec_ secret>"


def request_headers(event_id: str, attempt_at: str | None, kind: str) -> list[tuple[str, str]]:
    """The headers of a delivery (names and what they held; never a secret)."""
    stamp = (
        str(int(datetime.fromisoformat(attempt_at).timestamp())) if attempt_at else "<unix time>"
    )
    return [
        ("content-type", "application/json"),
        ("webhook-id", event_id),
        ("webhook-timestamp", stamp),
        ("webhook-signature", signature_header(kind)),
    ]


def bounded(text: str | None, limit: int = BODY_SHOWN) -> str:
    if not text:
        return ""
    return text if len(text) <= limit else f"{text[:limit]}… ({len(text) - limit} more characters)"


def _problems(answer_body: Any) -> Errors:
    """A webhook API 422 by form field (``["body", "event_type"]``: ``event_type``)."""
    detail = answer_body.get("detail") if isinstance(answer_body, Mapping) else None
    errors: Errors = {}
    for item in detail if isinstance(detail, list) else [{"loc": [], "msg": str(detail)}]:
        loc = [str(part) for part in item.get("loc") or []]
        name = loc[-1] if loc and loc[-1] in ("event_type", "since") else ""
        errors.setdefault("since_local" if name == "since" else name, []).append(
            str(item.get("msg", "invalid"))
        )
    return errors


# -- guards ---------------------------------------------------------------------------------


def partner_reader(portal: Portal) -> Callable[[Request], Awaitable[PartnerSession]]:
    """A dependency: the request's active partner session, else a redirect to sign in."""

    async def current(request: Request) -> PartnerSession:
        session_id = request.cookies.get(portal.cookie)
        session = (
            await find_partner_session(
                portal.console.engine, session_id, now(), portal.console.lifetimes
            )
            if session_id
            else None
        )
        if session is None:
            raise PartnerSignInNeeded(request.url.path if request.method == "GET" else PREFIX)
        return session

    return current


def partner_changer(portal: Portal) -> Callable[[Request], Awaitable[PartnerSession]]:
    """A dependency for every change: a partner session, from this site, with its token."""
    current = partner_reader(portal)

    async def check(request: Request) -> PartnerSession:
        session = await current(request)
        given = request.headers.get(CSRF_HEADER)
        if given is None and request.headers.get("content-type", "").startswith(
            ("application/x-www-form-urlencoded", "multipart/form-data")
        ):
            value = (await request.form()).get(CSRF_FIELD)
            given = value if isinstance(value, str) else None
        problem = cross_site_problem(
            request.method,
            own_origin=own_origin(request),
            origin=request.headers.get("origin"),
            referer=request.headers.get("referer"),
            expected_token=session.csrf_token,
            given_token=given,
        )
        if problem:
            raise Refused(f"Refused: {problem}.")
        return session

    return check


# -- pages ----------------------------------------------------------------------------------


def partner_router(portal: Portal) -> APIRouter:
    router = APIRouter(prefix=PREFIX)
    console, api = portal.console, portal.api
    Reader = Annotated[PartnerSession, Depends(partner_reader(portal))]
    Changer = Annotated[PartnerSession, Depends(partner_changer(portal))]

    def signin_form(
        request: Request, *, status: int = 200, error: str = "", next_: str | None = None
    ) -> Response:
        token = secrets.token_urlsafe(32)
        ended = request.query_params.get("ended") == "1"
        response = portal.render(
            request,
            "partner_signin.html",
            status_code=status,
            signin_token=token,
            error=error
            or ("Your token is no longer accepted: sign in with your new one." if ended else ""),
            next=safe_partner_next(next_ or request.query_params.get("next")),
        )
        response.set_cookie(
            PRE_COOKIE,
            token,
            max_age=900,
            path=f"{PREFIX}/signin",
            secure=console.secure_cookie,
            httponly=True,
            samesite="strict",
        )
        return response

    @router.get("/signin")
    async def signin_page(request: Request) -> Response:
        return signin_form(request)

    @router.post("/signin")
    async def signin(
        request: Request,
        token: Annotated[str, Form(max_length=MAX_TOKEN)] = "",
        signin_token: Annotated[str, Form(max_length=100)] = "",
        next: Annotated[str, Form(max_length=2000)] = PREFIX,
    ) -> Response:
        expected = request.cookies.get(PRE_COOKIE, "")
        problem = cross_site_problem(
            "POST",
            own_origin=own_origin(request),
            origin=request.headers.get("origin"),
            referer=request.headers.get("referer"),
            expected_token=expected or secrets.token_urlsafe(16),
            given_token=signin_token,
        )
        if problem:
            raise Refused(f"Refused: {problem}.")
        address = request.client.host if request.client else "unknown"
        wait = portal.limiter.wait(address, address, now())
        if wait is not None:
            minutes = max(1, round(wait.total_seconds() / 60))
            return signin_form(
                request,
                status=429,
                next_=next,
                error=f"Too many failed sign-ins. Try again in {minutes} minute(s).",
            )
        token = token.strip()
        who = await _whoami(api, token) if token else None
        if who is None or who.get("operator") or not who.get("partner_id"):
            portal.limiter.failed(address, address, now())
            message = (
                "That is the operator token: operators sign in at /signin."
                if who and who.get("operator")
                else "This token is not a partner's token of this service."
            )
            return signin_form(request, status=400, next_=next, error=message)
        portal.limiter.succeeded(address)
        await forget_expired_partner_sessions(console.engine, now(), console.lifetimes)
        session = await open_partner_session(
            console.engine,
            str(who["partner_id"]),
            str(who.get("partner_name") or who["partner_id"]),
            token,
            now(),
            replaces=request.cookies.get(portal.cookie),
        )
        response = RedirectResponse(safe_partner_next(next), status_code=303)
        response.set_cookie(
            portal.cookie,
            session.id,
            max_age=int(console.lifetimes.absolute.total_seconds()),
            path="/",
            secure=console.secure_cookie,
            httponly=True,
            samesite="lax",
        )
        response.delete_cookie(PRE_COOKIE, path=f"{PREFIX}/signin")
        return response

    @router.post("/signout")
    async def signout(session: Changer) -> Response:
        await close_partner_session(console.engine, session.id)
        response = RedirectResponse(f"{PREFIX}/signin", status_code=303)
        response.delete_cookie(portal.cookie, path="/", secure=console.secure_cookie, httponly=True)
        return response

    @router.get("")
    async def endpoints(request: Request, session: Reader) -> Response:
        found: list[dict[str, Any]] = await api.get(session.token, "/v1/endpoints")
        return portal.render(request, "partner_endpoints.html", session=session, endpoints=found)

    async def endpoint_page(
        request: Request,
        session: PartnerSession,
        endpoint_id: str,
        *,
        status: int = 200,
        values: Values | None = None,
        errors: Errors | None = None,
    ) -> Response:
        endpoint = await api.get(session.token, f"/v1/endpoints/{endpoint_id}")
        attempts = await api.get(
            session.token, f"/v1/endpoints/{endpoint_id}/attempts", limit=ATTEMPTS_SHOWN
        )
        viewer = times.viewer_zone(request.cookies.get("tz"))
        return portal.render(
            request,
            "partner_endpoint.html",
            status_code=status,
            session=session,
            endpoint=endpoint,
            attempts=attempts,
            values={"zone": viewer.key, **(values or {})},
            errors=errors or {},
            event_types=list(catalog()),
            shown_limit=ATTEMPTS_SHOWN,
        )

    @router.get("/endpoints/{endpoint_id}")
    async def endpoint(request: Request, endpoint_id: EndpointId, session: Reader) -> Response:
        return await endpoint_page(request, session, endpoint_id)

    @router.get("/endpoints/{endpoint_id}/events/{event_id}")
    async def event(
        request: Request, endpoint_id: EndpointId, event_id: EventId, session: Reader
    ) -> Response:
        endpoint = await api.get(session.token, f"/v1/endpoints/{endpoint_id}")
        message = await api.call(
            session.token, "GET", f"/v1/endpoints/{endpoint_id}/messages/{event_id}"
        )
        attempts = await api.get(
            session.token,
            f"/v1/endpoints/{endpoint_id}/attempts",
            event_id=event_id,
            limit=ATTEMPTS_SHOWN,
        )
        if not message.ok and not attempts:
            raise NotFound(f"no event {event_id!r} for endpoint {endpoint_id!r}")
        body = message.body.get("body") if message.ok and message.body else None
        return portal.render(
            request,
            "partner_event.html",
            session=session,
            endpoint=endpoint,
            event_id=event_id,
            body=pretty_text(body) if body else None,
            attempts=[
                {
                    **a,
                    "headers": request_headers(event_id, a.get("at"), endpoint["signature"]),
                    "response": bounded(a.get("response_body")),
                }
                for a in attempts
            ],
            headers=request_headers(event_id, None, endpoint["signature"]),
        )

    @router.post("/endpoints/{endpoint_id}/test")
    async def send_test(
        request: Request,
        endpoint_id: EndpointId,
        session: Changer,
        event_type: Annotated[str, Form(max_length=64)] = "",
    ) -> Response:
        answer = await api.call(
            session.token,
            "POST",
            f"/v1/endpoints/{endpoint_id}/test",
            json={"event_type": event_type},
        )
        if answer.status == 404:
            raise NotFound(f"no endpoint {endpoint_id!r}")
        if answer.status == 422:
            return await endpoint_page(
                request,
                session,
                endpoint_id,
                status=422,
                values={"event_type": event_type},
                errors=_problems(answer.body),
            )
        if not answer.ok:
            portal.flash(session, "error", f"No test event sent: {answer.errors()[0]['msg']}.")
        else:
            portal.flash(
                session,
                "ok",
                f"Test event {answer.body['event_type']} queued for {endpoint_id} "
                f"(webhook-id {answer.body['event_id']}). Its attempts show below once sent.",
            )
        return RedirectResponse(f"{PREFIX}/endpoints/{endpoint_id}", status_code=303)

    @router.post("/endpoints/{endpoint_id}/rotate-secret")
    async def rotate(request: Request, endpoint_id: EndpointId, session: Changer) -> Response:
        answer = await api.call(
            session.token, "POST", f"/v1/endpoints/{endpoint_id}/rotate-secret", json={}
        )
        if answer.status in (404, 422):
            raise NotFound(f"no endpoint {endpoint_id!r}")
        body = answer.body or {}
        key = body.get("secret") or body.get("public_key") or ""
        until = times.shown(
            body.get("previous_secret_expires_at"),
            times.viewer_zone(request.cookies.get("tz")),
        )
        what = "secret" if body.get("secret") else "public key (verify with it)"
        portal.flash(
            session,
            "ok",
            f"New signing {what} for {endpoint_id}, shown this once: copy it now. "
            f"The old one signs too until {until.main if until else 'the grace period ends'}.",
            [key],
        )
        return RedirectResponse(f"{PREFIX}/endpoints/{endpoint_id}", status_code=303)

    @router.post("/endpoints/{endpoint_id}/replay")
    async def replay(
        request: Request,
        endpoint_id: EndpointId,
        session: Changer,
        since_local: Annotated[str, Form(max_length=40)] = "",
        zone: Annotated[str, Form(max_length=64)] = "",
    ) -> Response:
        values: Values = {"since_local": since_local, "zone": zone}
        since, errors = replay_since(values, now())
        if since is not None:
            answer = await api.call(
                session.token, "POST", f"/v1/endpoints/{endpoint_id}/replay", json={"since": since}
            )
            if answer.status == 404:
                raise NotFound(f"no endpoint {endpoint_id!r}")
            if answer.ok:
                count = int(answer.body["queued"])
                when = times.shown(since, times.viewer_zone(request.cookies.get("tz")))
                portal.flash(
                    session,
                    "ok",
                    f"Replay queued: {count} event(s) that failed or were dropped since "
                    f"{when.main if when else since}."
                    if count
                    else "Nothing to replay: no delivery failed or was dropped since then.",
                )
                return RedirectResponse(f"{PREFIX}/endpoints/{endpoint_id}", status_code=303)
            errors = _problems(answer.body)
        return await endpoint_page(
            request, session, endpoint_id, status=422, values=values, errors=errors
        )

    @router.get("/events")
    async def events(request: Request, session: Reader) -> Response:
        kinds = [
            {
                "type": kind.type,
                "description": kind.description,
                "rows": field_rows(kind.schema),
                "example": pretty(kind.example),
                "schema": pretty(kind.schema),
            }
            for kind in catalog().values()
        ]
        return portal.render(request, "partner_catalog.html", session=session, kinds=kinds)

    return router


async def _whoami(api: PartnerApi, token: str) -> dict[str, Any] | None:
    try:
        answer = await api.call(token, "GET", "/v1/me")
    except PartnerTokenRefused:
        return None
    return dict(answer.body) if answer.ok and isinstance(answer.body, dict) else None


def install(
    app: FastAPI,
    console: Console,
    webhook_url: str,
    transport: httpx.AsyncBaseTransport | None = None,
) -> Portal:
    """The portal's pages on ``app``, with what sends a signed-out partner to its own
    sign-in (not the operators')."""
    portal = Portal(console, PartnerApi(webhook_url, transport))
    app.state.portal = portal
    app.include_router(partner_router(portal))

    async def sign_in(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, PartnerSignInNeeded)
        url = f"{PREFIX}/signin?next={quote(exc.target, safe='/')}"
        if request.headers.get("hx-request"):
            return Response(status_code=204, headers={"hx-redirect": url})
        return RedirectResponse(url, status_code=303)

    async def token_refused(request: Request, _exc: Exception) -> Response:
        session_id = request.cookies.get(portal.cookie)
        if session_id:
            await close_partner_session(console.engine, session_id)
        response = RedirectResponse(f"{PREFIX}/signin?ended=1", status_code=303)
        response.delete_cookie(portal.cookie, path="/", secure=console.secure_cookie, httponly=True)
        return response

    app.add_exception_handler(PartnerSignInNeeded, sign_in)
    app.add_exception_handler(PartnerTokenRefused, token_refused)
    return portal
