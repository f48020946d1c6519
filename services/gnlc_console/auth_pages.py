"""Sign-in and sign-out. The sign-in form is guarded against cross-site posts by its
origin and a one-time token in a cookie of its own (there is no session yet); sign-in opens
a new session (a new id: never one a visitor could have planted), sign-out ends it."""

# No `from __future__ import annotations` here: FastAPI must see the routes' Depends,
# made in the router's closure, when the routes are defined.

import secrets
from typing import Annotated
from urllib.parse import urlsplit

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import RedirectResponse, Response

from gnlc_console.accounts import MAX_PASSWORD, authenticate
from gnlc_console.guards import cross_site_problem
from gnlc_console.sessions import Session, close_session, forget_expired, open_session
from gnlc_console.web import Console, Refused, now, own_origin, reader, set_session_cookie

PRE_COOKIE = "gnlc-console-signin"


def safe_next(target: str | None) -> str:
    """Only a path of this site (never ``//other.example`` or a full URL)."""
    if not target or not target.startswith("/") or target.startswith("//"):
        return "/"
    parts = urlsplit(target)
    return "/" if parts.scheme or parts.netloc else target


def auth_router(console: Console) -> APIRouter:
    router = APIRouter()

    def form(request: Request, *, status: int = 200, error: str = "", name: str = "") -> Response:
        token = secrets.token_urlsafe(32)
        response = console.render(
            request,
            "signin.html",
            status_code=status,
            signin_token=token,
            error=error,
            name=name,
            next=safe_next(request.query_params.get("next")),
        )
        response.set_cookie(
            PRE_COOKIE,
            token,
            max_age=900,
            path="/signin",
            secure=console.secure_cookie,
            httponly=True,
            samesite="strict",
        )
        return response

    @router.get("/signin")
    async def signin_page(request: Request) -> Response:
        return form(request)

    @router.post("/signin")
    async def signin(
        request: Request,
        name: Annotated[str, Form(max_length=63)] = "",
        password: Annotated[str, Form(max_length=MAX_PASSWORD)] = "",
        signin_token: Annotated[str, Form(max_length=100)] = "",
        next: Annotated[str, Form(max_length=2000)] = "/",
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
        name = name.strip().lower()
        wait = console.limiter.wait(name, address, now())
        if wait is not None:
            minutes = max(1, round(wait.total_seconds() / 60))
            return form(
                request,
                status=429,
                name=name,
                error=f"Too many failed sign-ins. Try again in {minutes} minute(s).",
            )
        user = await authenticate(console.engine, name, password) if name and password else None
        if user is None:
            console.limiter.failed(name, address, now())
            return form(request, status=400, name=name, error="Wrong name or password.")
        console.limiter.succeeded(name)
        await forget_expired(console.engine, now(), console.lifetimes)
        session = await open_session(
            console.engine, user, now(), replaces=request.cookies.get(console.cookie)
        )
        response = RedirectResponse(safe_next(next), status_code=303)
        set_session_cookie(console, response, session.id)
        response.delete_cookie(PRE_COOKIE, path="/signin")
        return response

    @router.post("/signout")
    async def signout(
        request: Request, session: Annotated[Session, Depends(reader(console))]
    ) -> Response:
        # signing out is allowed to viewers: only the cross-site checks apply
        token = (await request.form()).get("csrf_token")
        problem = cross_site_problem(
            "POST",
            own_origin=own_origin(request),
            origin=request.headers.get("origin"),
            referer=request.headers.get("referer"),
            expected_token=session.csrf_token,
            given_token=token if isinstance(token, str) else None,
        )
        if problem:
            raise Refused(f"Refused: {problem}.")
        await close_session(console.engine, session.id)
        response = RedirectResponse("/signin", status_code=303)
        response.delete_cookie(
            console.cookie, path="/", secure=console.secure_cookie, httponly=True
        )
        return response

    return router
