"""The console in process over the webhook service's API in process (both through
``httpx.ASGITransport``): two partners (``alpha`` and ``beta``) with their tokens and an
endpoint each, and an operator account, for the partner portal's tests."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI
from pydantic import SecretStr

from gnlc_console.accounts import Role, add_user
from gnlc_console.app import create_app
from gnlc_console.web import Console
from gnlc_core.db import migrate
from tests.integration.webhook_api_app import OPERATOR_TOKEN, InProcess, api_client, webhook_api
from tests.unit.console_support import ORIGIN, PASSWORD, console_settings

_SIGNIN = re.compile(r'name="signin_token" value="([^"]+)"')


def _down(request: httpx.Request) -> httpx.Response:
    raise httpx.ConnectError("connection refused", request=request)


@dataclass
class Partner:
    id: str
    token: str
    endpoint: dict[str, Any]


@dataclass
class PortalHarness:
    app: FastAPI
    console: Console
    webhooks: InProcess
    alpha: Partner
    beta: Partner

    def client(self, origin: str = ORIGIN) -> httpx.AsyncClient:
        return httpx.AsyncClient(
            transport=httpx.ASGITransport(app=self.app),
            base_url=origin,
            headers={"origin": origin},
            follow_redirects=False,
            timeout=60,
        )


async def partner_sign_in(
    client: httpx.AsyncClient, token: str, next_: str = "/partner"
) -> httpx.Response:
    page = await client.get("/partner/signin")
    match = _SIGNIN.search(page.text)
    assert match, page.text
    return await client.post(
        "/partner/signin",
        data={"token": token, "signin_token": match.group(1), "next": next_},
    )


async def _partner(api: InProcess, partner_id: str, **endpoint: Any) -> Partner:
    async with api_client(api) as http:
        answer = await http.post("/partners", json={"id": partner_id, "name": f"{partner_id} inc"})
        token = str(answer.json()["token"])
    body = {
        "url": f"https://{partner_id}.example.org/hooks",
        "event_types": ["deadline.reminder", "announcement.published"],
        **endpoint,
    }
    async with api_client(api, token) as http:
        created = await http.post("/endpoints", json=body)
        assert created.status_code == 201, created.text
    return Partner(partner_id, token, dict(created.json()))


@asynccontextmanager
async def portal_harness(tmp: Path, **extra: object) -> AsyncIterator[PortalHarness]:
    webhooks = await webhook_api(tmp)
    app = create_app(
        console_settings(tmp, operator_token=SecretStr(OPERATOR_TOKEN), **extra),
        scheduler_transport=httpx.MockTransport(_down),
        webhook_transport=httpx.ASGITransport(app=webhooks.app),
    )
    console: Console = app.state.console
    await migrate(console.engine, "console")
    await add_user(console.engine, "ed", PASSWORD, Role.EDITOR, datetime.now(UTC))
    alpha = await _partner(webhooks, "alpha")
    beta = await _partner(webhooks, "beta", signature="ed25519")
    try:
        yield PortalHarness(app, console, webhooks, alpha, beta)
    finally:
        await console.scheduler.close()
        await console.webhooks.close()
        await app.state.portal.api.close()
        await console.engine.dispose()
        await webhooks.engine.dispose()
