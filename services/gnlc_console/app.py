"""The console service: pages, its own database (accounts, sessions), the services' APIs."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import PlainTextResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from gnlc_console.announcement_pages import announcement_router
from gnlc_console.auth_pages import auth_router
from gnlc_console.backend import Backend, BackendDown, BackendFailed, NotFound
from gnlc_console.dashboard import dashboard_router
from gnlc_console.dead_letter_pages import dead_letter_router
from gnlc_console.deadline_pages import deadline_router
from gnlc_console.delivery_pages import delivery_router
from gnlc_console.directory_pages import MAX_IMPORT, directory_router
from gnlc_console.endpoint_pages import endpoint_router
from gnlc_console.partner_pages import install as install_partner_portal
from gnlc_console.sessions import forget_expired
from gnlc_console.web import (
    STATIC,
    Console,
    Refused,
    SecurityHeaders,
    SignInNeeded,
    lifetimes,
    now,
    signin_redirect,
)
from gnlc_core.db import create_engine, database_url, migrate
from gnlc_core.limits import BodyLimit
from gnlc_core.logs import get_logger
from gnlc_core.service import database_check, readiness
from gnlc_core.settings import Settings

log = get_logger(__name__)
#: Forms carry texts in up to 16 languages of up to 20,000 characters.
MAX_FORM_BODY = 1024 * 1024


def create_app(
    settings: Settings,
    *,
    scheduler_transport: httpx.AsyncBaseTransport | None = None,
    webhook_transport: httpx.AsyncBaseTransport | None = None,
    status_transport: httpx.AsyncBaseTransport | None = None,
    email_transport: httpx.AsyncBaseTransport | None = None,
) -> FastAPI:
    token = settings.operator_token.get_secret_value() if settings.operator_token else ""
    console = Console(
        engine=create_engine(database_url(settings, "console")),
        scheduler=Backend("scheduler", settings.console_scheduler_url, token, scheduler_transport),
        webhooks=Backend("webhook service", settings.console_webhook_url, token, webhook_transport),
        status=Backend("status service", settings.console_status_url, token, status_transport),
        email=Backend("email service", settings.console_email_url, token, email_transport),
        lifetimes=lifetimes(
            settings.console_session_idle_seconds, settings.console_session_max_seconds
        ),
        secure_cookie=settings.console_cookie_secure,
    )

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        await migrate(console.engine, "console")
        await forget_expired(console.engine, now(), console.lifetimes)
        log.info("service started", service="console")
        try:
            yield
        finally:
            await console.scheduler.close()
            await console.webhooks.close()
            await portal.api.close()
            await console.status.close()
            await console.email.close()
            await console.engine.dispose()
            log.info("service stopped", service="console")

    app = FastAPI(
        title="GNLC Notify console",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    app.state.console = console
    app.add_middleware(SecurityHeaders)
    app.add_middleware(BodyLimit, limit_for=body_limit)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    for router in (
        auth_router(console),
        dashboard_router(console),
        deadline_router(console),
        announcement_router(console, settings),
        endpoint_router(console),
        directory_router(console),
        delivery_router(console),
        dead_letter_router(console),
    ):
        app.include_router(router)
    portal = install_partner_portal(app, console, settings.console_webhook_url, webhook_transport)
    _health(app, console)
    _error_pages(app, console)
    return app


def body_limit(path: str) -> int:
    """Forms: 1 MiB; a directory upload: the scheduler's limit and room for the form."""
    return MAX_IMPORT + 64 * 1024 if path == "/directory/import" else MAX_FORM_BODY


def _health(app: FastAPI, console: Console) -> None:
    @app.get("/health/live", status_code=204)
    async def live() -> Response:
        return Response(status_code=204)

    database = database_check(console.engine)

    @app.get("/health/ready")
    async def ready(response: Response) -> dict[str, Any]:
        """Ready with its database; the scheduler not answering leaves it ready but
        degraded (its pages then say so)."""
        answer = readiness(
            {"database": await database()}, {"scheduler": await console.scheduler.reachable()}
        )
        response.status_code = answer.status_code
        return answer.body


def _error_pages(app: FastAPI, console: Console) -> None:
    """Every failure is a page saying what happened, never a traceback."""

    def page(request: Request, status: int, title: str, message: str) -> Response:
        if request.url.path.startswith(("/health", "/static")):
            return PlainTextResponse(message, status_code=status)
        return console.render(
            request, "error.html", status_code=status, title=title, message=message
        )

    @app.exception_handler(SignInNeeded)
    async def sign_in(request: Request, exc: SignInNeeded) -> Response:
        return signin_redirect(request, exc.target)

    @app.exception_handler(Refused)
    async def refused(request: Request, exc: Refused) -> Response:
        return page(request, 403, "Not allowed", exc.reason)

    @app.exception_handler(NotFound)
    async def not_found(request: Request, exc: NotFound) -> Response:
        return page(request, 404, "Not found", str(exc))

    @app.exception_handler(BackendDown)
    async def down(request: Request, exc: BackendDown) -> Response:
        return page(
            request,
            503,
            "A service does not answer",
            f"The {exc.service} {exc.message}. Nothing was changed; try again when it is back.",
        )

    @app.exception_handler(BackendFailed)
    async def failed(request: Request, exc: BackendFailed) -> Response:
        return page(request, 502, "A service failed", f"The {exc.service} {exc.message}.")

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        titles = {404: "Not found", 405: "Not allowed", 413: "Too large"}
        return page(
            request, exc.status_code, titles.get(exc.status_code, "Refused"), str(exc.detail)
        )

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> Response:
        problems: list[Any] = list(exc.errors())
        text_ = "; ".join(
            f"{'.'.join(str(p) for p in e.get('loc', [])[1:])}: {e.get('msg')}" for e in problems
        )
        return page(request, 422, "Invalid request", text_)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> Response:
        log.error("console: unexpected error", error=type(exc).__name__, path=request.url.path)
        logging.getLogger(__name__).debug("unexpected", exc_info=exc)
        return page(request, 500, "Something went wrong", "The error is in the console's log.")
