"""The SSRF guard: pure address checks, and the transport connecting only where it checked."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Sequence
from typing import Any

import httpx
import pytest

from gnlc_devtools.receiver import BackgroundServer
from gnlc_webhook.ssrf import (
    IPAddress,
    Policy,
    RefusedTarget,
    check_target,
    check_url,
    refusal,
)
from gnlc_webhook.transport import make_poster

NOBODY = Policy()


@pytest.mark.parametrize(
    ("address", "why"),
    [
        ("127.0.0.1", "loopback"),
        ("::1", "loopback"),
        ("10.1.2.3", "private"),
        ("172.16.0.9", "private"),
        ("192.168.1.1", "private"),
        ("fd12::1", "private"),
        ("169.254.169.254", "cloud metadata"),
        ("fd00:ec2::254", "cloud metadata"),
        ("100.100.100.200", "cloud metadata"),
        ("169.254.10.10", "link-local"),
        ("fe80::1", "link-local"),
        ("224.0.0.1", "multicast"),
        ("ff02::1", "multicast"),
        ("0.0.0.0", "unspecified"),  # noqa: S104 - checked, never bound
        ("100.64.0.1", "not a public address"),
        ("::ffff:10.0.0.1", "private"),
        ("64:ff9b::7f00:1", "loopback"),
    ],
)
def test_refused_addresses(address: str, why: str) -> None:
    reason = refusal(ipaddress.ip_address(address), NOBODY)
    assert reason is not None
    assert why in reason


def test_public_addresses_pass_and_the_allowlist_is_explicit() -> None:
    assert refusal(ipaddress.ip_address("93.184.215.14"), NOBODY) is None
    assert refusal(ipaddress.ip_address("2606:4700::1"), NOBODY) is None
    loopback = Policy.parse("127.0.0.0/8, ::1/128")
    assert refusal(ipaddress.ip_address("127.0.0.1"), loopback) is None
    assert refusal(ipaddress.ip_address("10.0.0.1"), loopback) is not None
    with pytest.raises(ValueError, match="not a network"):
        Policy.parse("127.0.0.1/40")


def test_url_rules() -> None:
    assert check_url("https://hooks.example.org/x", NOBODY) == ("hooks.example.org", 443)
    assert check_url("http://hooks.example.org:8080/x", NOBODY) == ("hooks.example.org", 8080)
    for url, message in [
        ("ftp://example.org/", "http:// or https://"),
        ("http://user:pw@example.org/", "credentials"),
        ("http:///nohost", "no host"),
        ("http://example.org:99999/", "not a valid URL"),
    ]:
        with pytest.raises(RefusedTarget, match=message):
            check_url(url, NOBODY)
    with pytest.raises(RefusedTarget, match="only https"):
        check_url("http://example.org/", Policy(https_only=True))


async def test_a_name_resolving_to_loopback_is_refused_without_the_allowlist() -> None:
    # localhost resolves through the hosts file, no outside DNS involved
    with pytest.raises(RefusedTarget, match=r"localhost resolves to .*loopback"):
        await check_target("http://localhost:9/hook", NOBODY)
    await check_target("http://localhost:9/hook", Policy.parse("127.0.0.0/8,::1/128"))


async def test_one_bad_answer_among_good_ones_is_refused() -> None:
    async def mixed(host: str, port: int) -> Sequence[IPAddress]:
        return [ipaddress.ip_address("93.184.215.14"), ipaddress.ip_address("10.0.0.7")]

    with pytest.raises(RefusedTarget, match=re.escape("10.0.0.7 is a private address")):
        await check_target("https://partner.example/hook", NOBODY, mixed)


async def _ok(scope: dict[str, Any], receive: Any, send: Any) -> None:
    await send({"type": "http.response.start", "status": 204, "headers": []})
    await send({"type": "http.response.body", "body": b""})


async def test_the_transport_refuses_before_connecting_and_connects_where_it_checked() -> None:
    with BackgroundServer(_ok) as server:  # type: ignore[arg-type] # a bare ASGI app
        url = f"{server.url}/hook"
        for kind in ("http1", "aiohttp", "httpx"):
            poster = make_poster(NOBODY, connect_timeout=5, timeout=10, connections=4, kind=kind)
            try:
                with pytest.raises(httpx.ConnectError, match="refused by the SSRF guard"):
                    await poster.post(url, content=b"{}", headers={})
                with pytest.raises(
                    httpx.ConnectError, match=re.escape("169.254.169.254 is a cloud metadata")
                ):
                    await poster.post(
                        "http://169.254.169.254/latest/meta-data/", content=b"{}", headers={}
                    )
            finally:
                await poster.aclose()

        # DNS rebinding: the name first resolves to an allowed address, then to a refused
        # one; the connection uses the answer it checked, each time it connects
        answers = iter([["127.0.0.1"], ["10.0.0.1"]])

        async def rebinding(host: str, port: int) -> Sequence[IPAddress]:
            return [ipaddress.ip_address(a) for a in next(answers)]

        from gnlc_webhook.transport import GuardedTransport

        allowed = Policy.parse("127.0.0.1/32")
        transport = GuardedTransport(
            allowed, limits=httpx.Limits(max_keepalive_connections=0), resolver=rebinding
        )
        async with httpx.AsyncClient(transport=transport) as rebound:
            first = await rebound.post(f"http://partner.test:{server.port}/hook", content=b"{}")
            assert first.status_code == 204
            with pytest.raises(
                httpx.ConnectError, match=re.escape("10.0.0.1 is a private address")
            ):
                await rebound.post(f"http://partner.test:{server.port}/hook", content=b"{}")
