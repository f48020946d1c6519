"""The console's web plumbing: pages rendered from autoescaped Jinja2 templates, security
headers on every answer, the signed-in operator of a request, and the checks every change
passes (same origin, the session's CSRF token, the editor role)."""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, FileSystemLoader, StrictUndefined
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.middleware.base import BaseHTTPMiddleware, RequestResponseEndpoint

from gnlc_console import times
from gnlc_console.backend import Backend
from gnlc_console.forms import label_of
from gnlc_console.guards import CSRF_FIELD, CSRF_HEADER, SignInLimiter, cross_site_problem
from gnlc_console.sessions import Lifetimes, Session, find_session

PACKAGE = Path(__file__).resolve().parent
STATIC = PACKAGE / "static"
HTMX = "htmx-2.0.11.min.js"
#: A versioned static file is kept by the browser until a release changes it; any other
#: static request revalidates (ETag); pages and API answers are never stored.
STATIC_KEPT = "public, max-age=31536000, immutable"
STATIC_CHECKED = "no-cache"
PAGE_CACHE = "no-store"


def _versioned(name: str) -> str:
    digest = hashlib.sha256((STATIC / name).read_bytes()).hexdigest()
    return f"/static/{name}?v={digest[:16]}"


#: The URLs of the console's own files (what pages link to: ``assets.css`` ...), each naming
#: its content (``?v=`` the start of its SHA-256): a page view fetches none of them again,
#: and a release's changes are never read from an old copy.
ASSETS = {
    role: _versioned(name)
    for role, name in (("css", "console.css"), ("js", "console.js"), ("htmx", HTMX))
}
_CURRENT = {url.partition("?")[0]: url for url in ASSETS.values()}


def cache_control(path: str, version: str | None) -> str:
    """The ``Cache-Control`` of an answer to ``path`` (with ``?v=version``) (pure): kept
    for good when it asks for the current version of a static file, revalidated for any
    other static file, never stored otherwise."""
    if not path.startswith("/static/"):
        return PAGE_CACHE
    return STATIC_KEPT if _CURRENT.get(path) == f"{path}?v={version}" else STATIC_CHECKED


#: No inline script or style anywhere; frames only of the console's own previews.
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; frame-src 'self'; form-action 'self'; base-uri 'none'; "
    "frame-ancestors 'none'"
)
#: An email preview: its inline styles, nothing else; framed by the console alone.
PREVIEW_CSP = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src data:; frame-ancestors 'self'; sandbox"
)


def now() -> datetime:
    return datetime.now(UTC)


@dataclass
class Console:
    """What every page needs."""

    engine: AsyncEngine
    scheduler: Backend
    webhooks: Backend
    status: Backend
    email: Backend
    lifetimes: Lifetimes
    secure_cookie: bool
    limiter: SignInLimiter = field(default_factory=SignInLimiter)
    env: Environment = field(
        default_factory=lambda: Environment(
            loader=FileSystemLoader(PACKAGE / "templates"),
            autoescape=True,
            undefined=StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
        )
    )
    #: One message per session for the next page (after a redirect), in this process.
    flashes: dict[str, list[dict[str, Any]]] = field(default_factory=dict)

    @property
    def cookie(self) -> str:
        # __Host-: only over HTTPS, for this host and path / alone
        return "__Host-gnlc-console" if self.secure_cookie else "gnlc-console"

    def render(
        self,
        request: Request,
        template: str,
        status_code: int = 200,
        session: Session | None = None,
        **context: Any,
    ) -> HTMLResponse:
        viewer = times.viewer_zone(request.cookies.get("tz"))
        html = self.env.get_template(template).render(
            request=request,
            session=session,
            user=session.user if session else None,
            csrf=session.csrf_token if session else "",
            assets=ASSETS,
            label_of=label_of,
            viewer=viewer,
            shown=lambda instant, city_zone=None: times.shown(instant, viewer, city_zone),
            flashes=self.flashes.pop(session.id, []) if session else [],
            **context,
        )
        return HTMLResponse(html, status_code=status_code)

    def flash(self, session: Session, kind: str, text: str, items: list[str] | None = None) -> None:
        self.flashes.setdefault(session.id, []).append(
            {"kind": kind, "text": text, "items": items or []}
        )


class SecurityHeaders(BaseHTTPMiddleware):
    async def dispatch(self, request: Request, call_next: RequestResponseEndpoint) -> Response:
        response = await call_next(request)
        headers = response.headers
        headers.setdefault("content-security-policy", CSP)
        headers.setdefault("x-frame-options", "DENY")
        headers["x-content-type-options"] = "nosniff"
        headers["referrer-policy"] = "same-origin"
        headers["cross-origin-opener-policy"] = "same-origin"
        headers.setdefault(
            "cache-control", cache_control(request.url.path, request.query_params.get("v"))
        )
        return response


class SignInNeeded(Exception):
    def __init__(self, target: str) -> None:
        self.target = target


class Refused(Exception):
    """A change refused (403): a cross-site request or a viewer's."""

    def __init__(self, reason: str) -> None:
        self.reason = reason


def signin_redirect(request: Request, target: str) -> Response:
    url = f"/signin?next={quote(target, safe='/')}"
    if request.headers.get("hx-request"):
        return Response(status_code=204, headers={"hx-redirect": url})
    return RedirectResponse(url, status_code=303)


def own_origin(request: Request) -> str:
    return f"{request.url.scheme}://{request.url.netloc}".lower()


def reader(console: Console) -> Callable[[Request], Awaitable[Session]]:
    """A dependency: the request's active session, else a redirect to sign in."""

    async def current(request: Request) -> Session:
        session_id = request.cookies.get(console.cookie)
        session = (
            await find_session(console.engine, session_id, now(), console.lifetimes)
            if session_id
            else None
        )
        if session is None:
            target = request.url.path if request.method == "GET" else "/"
            raise SignInNeeded(target)
        return session

    return current


def editor(console: Console) -> Callable[[Request], Awaitable[Session]]:
    """A dependency for every change: a session, from this site, with its CSRF token, of
    an editor."""
    current = reader(console)

    async def check(request: Request) -> Session:
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
        if not session.user.can_edit:
            raise Refused(f"Refused: {session.user.name} is a viewer and cannot change anything.")
        return session

    return check


def set_session_cookie(console: Console, response: Response, session_id: str) -> None:
    response.set_cookie(
        console.cookie,
        session_id,
        max_age=int(console.lifetimes.absolute.total_seconds()),
        path="/",
        secure=console.secure_cookie,
        httponly=True,
        samesite="lax",
    )


def lifetimes(idle_seconds: int, max_seconds: int) -> Lifetimes:
    return Lifetimes(timedelta(seconds=idle_seconds), timedelta(seconds=max_seconds))
