"""SSRF guard: which URLs and addresses a webhook may be sent to.

Pure checks (``check_url``, ``refusal``) plus one resolver step (``resolve_checked``) used at
registration and again at send time by the transport, which then connects to the address it
validated, so a DNS answer that changes between the two (rebinding) never gets through.

Refused: loopback, private, link-local, multicast, unspecified, reserved, shared (CGNAT) and
every other non-global address, IPv4 inside IPv6 (mapped, NAT64) by its IPv4 meaning, and
the cloud metadata addresses. ``GNLC_WEBHOOK_ALLOWED_NETWORKS`` exempts explicit networks
(``127.0.0.0/8`` for local development and tests); nothing is exempt by default.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

#: Instance metadata services (AWS/GCP/Azure/OpenStack, Alibaba, Oracle, Azure wireserver).
METADATA_ADDRESSES: frozenset[IPAddress] = frozenset(
    ipaddress.ip_address(a)
    for a in ("169.254.169.254", "fd00:ec2::254", "100.100.100.200", "192.0.0.192", "168.63.129.16")
)
_NAT64 = ipaddress.ip_network("64:ff9b::/96")


class RefusedTarget(ValueError):
    """The URL or one of its addresses may not receive webhooks; the message says why."""


@dataclass(frozen=True)
class Policy:
    """What the guard allows: explicit exempt networks and whether plain http is allowed."""

    allowed: tuple[IPNetwork, ...] = ()
    https_only: bool = False

    @classmethod
    def parse(cls, allowed: str, *, https_only: bool = False) -> Policy:
        """``allowed`` is a comma-separated CIDR list; raises ``ValueError`` naming a bad one."""
        networks: list[IPNetwork] = []
        for part in (p.strip() for p in allowed.split(",")):
            if not part:
                continue
            try:
                networks.append(ipaddress.ip_network(part, strict=False))
            except ValueError:
                raise ValueError(f"not a network (CIDR): {part!r}") from None
        return cls(tuple(networks), https_only)


def _category(address: IPAddress) -> str | None:
    """Why ``address`` is not a public unicast address, or None when it is."""
    if address in METADATA_ADDRESSES:
        return "a cloud metadata address"
    if isinstance(address, ipaddress.IPv6Address):
        embedded = address.ipv4_mapped or (
            ipaddress.IPv4Address(int(address) & 0xFFFFFFFF) if address in _NAT64 else None
        )
        if embedded is not None:
            reason = _category(embedded)
            return f"{reason} (as {embedded})" if reason else None
    checks = (
        ("is_loopback", "a loopback address"),
        ("is_unspecified", "the unspecified address"),
        ("is_link_local", "a link-local address"),
        ("is_multicast", "a multicast address"),
        ("is_private", "a private address"),
        ("is_reserved", "a reserved address"),
    )
    for attribute, reason in checks:
        if getattr(address, attribute):
            return reason
    if not address.is_global:
        return "not a public address"
    return None


def refusal(address: IPAddress, policy: Policy) -> str | None:
    """Why webhooks may not go to ``address`` under ``policy``; None when they may."""
    if any(address in network for network in policy.allowed):
        return None
    reason = _category(address)
    if reason is None:
        return None
    return f"{address} is {reason}"


def check_url(url: str, policy: Policy) -> tuple[str, int]:
    """Syntax and scheme of a webhook URL; returns (host, port). Raises ``RefusedTarget``."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise RefusedTarget(f"not a valid URL: {exc}") from None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise RefusedTarget("the URL must start with http:// or https://")
    if policy.https_only and scheme != "https":
        raise RefusedTarget("only https:// URLs are accepted (GNLC_WEBHOOK_HTTPS_ONLY)")
    if parts.username is not None or parts.password is not None:
        raise RefusedTarget("credentials in the URL are not accepted")
    host = parts.hostname
    if not host:
        raise RefusedTarget("the URL has no host")
    return host, port or (443 if scheme == "https" else 80)


Resolver = Callable[[str, int], Awaitable[Sequence[IPAddress]]]


async def system_resolver(host: str, port: int) -> list[IPAddress]:
    """The addresses ``host`` resolves to, in the resolver's order, each once."""
    infos = await asyncio.get_running_loop().getaddrinfo(
        host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP
    )
    seen: dict[IPAddress, None] = {}
    for _family, _type, _proto, _name, sockaddr in infos:
        seen.setdefault(ipaddress.ip_address(str(sockaddr[0]).split("%", 1)[0]), None)
    return list(seen)


async def resolve_checked(
    host: str, port: int, policy: Policy, resolver: Resolver = system_resolver
) -> list[IPAddress]:
    """Resolve ``host`` and check every address; raises ``RefusedTarget`` if any is refused
    (one bad answer among good ones is refused too) or nothing resolves."""
    try:
        literal: IPAddress | None = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        literal = None
    if literal is not None:
        addresses: Sequence[IPAddress] = [literal]
    else:
        try:
            addresses = await resolver(host, port)
        except OSError as exc:
            raise RefusedTarget(f"cannot resolve {host}: {exc}") from None
    if not addresses:
        raise RefusedTarget(f"{host} resolves to no address")
    for address in addresses:
        reason = refusal(address, policy)
        if reason is not None:
            where = "" if literal is not None else f"{host} resolves to {address}: "
            raise RefusedTarget(f"{where}{reason}; webhooks are not sent there")
    return list(addresses)


async def check_target(url: str, policy: Policy, resolver: Resolver = system_resolver) -> None:
    """The full registration check of a URL; raises ``RefusedTarget``."""
    host, port = check_url(url, policy)
    await resolve_checked(host, port, policy, resolver)
