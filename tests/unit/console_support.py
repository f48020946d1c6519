"""The console in process over the scheduler's operator API in process (both through
``httpx.ASGITransport``), with an editor and a viewer account."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import httpx
from fastapi import FastAPI
from pydantic import SecretStr

from gnlc_console.accounts import Role, add_user
from gnlc_console.app import create_app
from gnlc_console.web import Console
from gnlc_core.db import migrate
from gnlc_core.settings import Settings
from tests.unit.scheduler_api import TOKEN, OperatorApi, operator_api

ORIGIN = "http://console.test"
PASSWORD = "correct horse battery staple"
_META = re.compile(r'name="csrf-token" content="([^"]*)"')
_SIGNIN = re.compile(r'name="signin_token" value="([^"]+)"')


def _webhooks_down(request: httpx.Request) -> httpx.Response:
    raise httpx.ConnectError("connection refused", request=request)


@dataclass
class ConsoleHarness:
    app: FastAPI
    console: Console
    scheduler: OperatorApi
    tmp: Path

    def client(self, origin: str = ORIGIN) -> httpx.AsyncClient:
        return httpx.AsyncClient(
            transport=httpx.ASGITransport(app=self.app),
            base_url=origin,
            headers={"origin": origin},
            follow_redirects=False,
            timeout=60,
        )


def csrf_of(html: str) -> str:
    match = _META.search(html)
    assert match, "no CSRF token on the page"
    return match.group(1)


async def sign_in(client: httpx.AsyncClient, name: str, password: str = PASSWORD) -> httpx.Response:
    page = await client.get("/signin")
    match = _SIGNIN.search(page.text)
    assert match
    return await client.post(
        "/signin",
        data={"name": name, "password": password, "signin_token": match.group(1), "next": "/"},
    )


async def csrf(client: httpx.AsyncClient, path: str = "/deadlines") -> str:
    page = await client.get(path)
    assert page.status_code == 200, page.text
    return csrf_of(page.text)


def console_settings(tmp: Path, **extra: object) -> Settings:
    fields: dict[str, object] = {
        "operator_token": SecretStr(TOKEN),
        "database_url": SecretStr(f"sqlite+aiosqlite:///{tmp / 'console.db'}"),
        "console_cookie_secure": False,
        **extra,
    }
    return Settings(**fields)  # type: ignore[arg-type]


@asynccontextmanager
async def console_harness(
    tmp: Path,
    *,
    scheduler_down: bool = False,
    webhook_transport: httpx.AsyncBaseTransport | None = None,
    status_transport: httpx.AsyncBaseTransport | None = None,
    email_transport: httpx.AsyncBaseTransport | None = None,
    **extra: object,
) -> AsyncIterator[ConsoleHarness]:
    async with operator_api(tmp) as scheduler:
        transport: httpx.AsyncBaseTransport = (
            httpx.MockTransport(_webhooks_down)
            if scheduler_down
            else httpx.ASGITransport(app=scheduler.app)
        )
        app = create_app(
            console_settings(tmp, **extra),
            scheduler_transport=transport,
            webhook_transport=webhook_transport or httpx.MockTransport(_webhooks_down),
            status_transport=status_transport or httpx.MockTransport(_webhooks_down),
            email_transport=email_transport or httpx.MockTransport(_webhooks_down),
        )
        console: Console = app.state.console
        await migrate(console.engine, "console")
        now = datetime.now(UTC)
        await add_user(console.engine, "ed", PASSWORD, Role.EDITOR, now)
        await add_user(console.engine, "vi", PASSWORD, Role.VIEWER, now)
        try:
            yield ConsoleHarness(app, console, scheduler, tmp)
        finally:
            await console.scheduler.close()
            await console.webhooks.close()
            await console.status.close()
            await console.email.close()
            await console.engine.dispose()
