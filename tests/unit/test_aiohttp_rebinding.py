"""DNS rebinding against the transport deliveries use (aiohttp under httpx): each new
connection resolves the name again, checks every answer, and connects to what it checked."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Sequence
from typing import Any

import httpx
import pytest

from gnlc_devtools.receiver import BackgroundServer
from gnlc_webhook.aiohttp_transport import AiohttpTransport
from gnlc_webhook.ssrf import IPAddress, Policy


async def _ok_then_close(scope: dict[str, Any], receive: Any, send: Any) -> None:
    # "connection: close": the next request needs a new connection, hence a new resolution
    await send(
        {"type": "http.response.start", "status": 204, "headers": [(b"connection", b"close")]}
    )
    await send({"type": "http.response.body", "body": b""})


async def test_a_name_that_rebinds_to_a_refused_address_is_refused() -> None:
    answers = iter([["127.0.0.1"], ["10.0.0.1"]])
    asked: list[str] = []

    async def rebinding(host: str, port: int) -> Sequence[IPAddress]:
        asked.append(host)
        return [ipaddress.ip_address(a) for a in next(answers)]

    limits = httpx.Limits(max_connections=4, max_keepalive_connections=0, keepalive_expiry=0)
    transport = AiohttpTransport(Policy.parse("127.0.0.1/32"), limits=limits, resolver=rebinding)
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
