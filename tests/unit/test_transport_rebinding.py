"""DNS rebinding against the clients deliveries use (their own HTTP/1.1 client, and aiohttp
under httpx): each new connection resolves the name again, checks every answer, and
connects to what it checked."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Sequence
from typing import Any

import httpx
import pytest

from gnlc_devtools.receiver import BackgroundServer
from gnlc_webhook.aiohttp_transport import AiohttpTransport
from gnlc_webhook.http1 import Http1Client
from gnlc_webhook.ssrf import IPAddress, Policy

ALLOWED = Policy.parse("127.0.0.1/32")


async def _ok_then_close(scope: dict[str, Any], receive: Any, send: Any) -> None:
    # "connection: close": the next request needs a new connection, hence a new resolution
    await send(
        {"type": "http.response.start", "status": 204, "headers": [(b"connection", b"close")]}
    )
    await send({"type": "http.response.body", "body": b""})


def _rebinding(asked: list[str]) -> Any:
    """A resolver that answers an allowed address first, then a refused one."""
    answers = iter([["127.0.0.1"], ["10.0.0.1"]])

    async def resolve(host: str, port: int) -> Sequence[IPAddress]:
        asked.append(host)
        return [ipaddress.ip_address(a) for a in next(answers)]

    return resolve


async def test_aiohttp_refuses_a_name_that_rebinds_to_a_refused_address() -> None:
    asked: list[str] = []
    limits = httpx.Limits(max_connections=4, max_keepalive_connections=0, keepalive_expiry=0)
    transport = AiohttpTransport(ALLOWED, limits=limits, resolver=_rebinding(asked))
    with BackgroundServer(_ok_then_close) as server:  # type: ignore[arg-type] # a bare ASGI app
        url = f"http://partner.test:{server.port}/hook"
        try:
            async with httpx.AsyncClient(transport=transport) as client:
                first = await client.post(url, content=b"{}")
                assert first.status_code == 204
                transport._client().connector.clear_dns_cache()  # type: ignore[union-attr]
                with pytest.raises(
                    httpx.ConnectError, match=re.escape("10.0.0.1 is a private address")
                ):
                    await client.post(url, content=b"{}")
        finally:
            await transport.aclose()
    assert asked == ["partner.test", "partner.test"]  # resolved for each connection


async def test_the_own_client_refuses_a_name_that_rebinds_to_a_refused_address() -> None:
    asked: list[str] = []
    client = Http1Client(
        ALLOWED, connections=4, connect_timeout=5, timeout=10, resolver=_rebinding(asked)
    )
    with BackgroundServer(_ok_then_close) as server:  # type: ignore[arg-type] # a bare ASGI app
        url = f"http://partner.test:{server.port}/hook"
        try:
            status, _, _ = await client.post(url, content=b"{}", headers={})
            assert status == 204
            with pytest.raises(
                httpx.ConnectError, match=re.escape("10.0.0.1 is a private address")
            ):
                await client.post(url, content=b"{}", headers={})
        finally:
            await client.aclose()
    assert asked == ["partner.test", "partner.test"]  # resolved for each connection
