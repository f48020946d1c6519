"""The HTTP client of the deliveries: by default their own HTTP/1.1 client
(``gnlc_webhook.http1``); or an httpx transport (aiohttp's, or httpx's own over a connection
pool whose network backend resolves each host once, checks every address against the SSRF
policy and connects to an address it checked, so DNS rebinding between check and connect is
impossible). TLS still verifies the certificate for the URL's host name (SNI), not for the
address.

No redirects, no proxies from the environment, pooled keep-alive connections.
"""

from __future__ import annotations

import ssl
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any, NamedTuple

import httpcore
import httpx
from httpcore import AsyncNetworkBackend, AsyncNetworkStream
from httpcore._backends.auto import AutoBackend

from gnlc_webhook.http1 import Http1Client
from gnlc_webhook.ssrf import Policy, RefusedTarget, Resolver, resolve_checked, system_resolver

if TYPE_CHECKING:
    from gnlc_webhook.aiohttp_transport import AiohttpTransport

USER_AGENT = "gnlc-notify-webhooks/0.1"


class Answer(NamedTuple):
    """What a delivery reads of a response: the status, the headers (case-insensitive) and
    the body (at most what the transport reads)."""

    status_code: int
    headers: Mapping[str, str]
    content: bytes


class RefusedConnection(httpcore.ConnectError):
    """The SSRF guard refused every address of the host (httpx raises it as ConnectError)."""


class GuardedBackend(AsyncNetworkBackend):
    """An httpcore network backend that only connects to addresses the policy allows."""

    def __init__(
        self,
        policy: Policy,
        *,
        resolver: Resolver = system_resolver,
        inner: AsyncNetworkBackend | None = None,
    ) -> None:
        self._policy = policy
        self._resolver = resolver
        self._inner = inner or AutoBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore's interface
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> AsyncNetworkStream:
        try:
            addresses = await resolve_checked(host, port, self._policy, self._resolver)
        except RefusedTarget as exc:
            raise RefusedConnection(f"refused by the SSRF guard: {exc}") from None
        last: Exception | None = None
        for address in addresses:
            try:
                return await self._inner.connect_tcp(
                    str(address),
                    port,
                    timeout=timeout,
                    local_address=local_address,
                    socket_options=socket_options,
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                last = exc
        assert last is not None
        raise last

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore's interface
        socket_options: Iterable[Any] | None = None,
    ) -> AsyncNetworkStream:
        raise RefusedConnection("unix sockets are not webhook targets")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


class GuardedTransport(httpx.AsyncHTTPTransport):
    """httpx's own transport, its pool built on ``GuardedBackend``."""

    def __init__(
        self,
        policy: Policy,
        *,
        limits: httpx.Limits,
        resolver: Resolver = system_resolver,
        verify: ssl.SSLContext | bool = True,
    ) -> None:
        super().__init__(verify=verify, limits=limits, trust_env=False)
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=httpx.create_ssl_context(verify=verify, trust_env=False),
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            network_backend=GuardedBackend(policy, resolver=resolver),
        )


class Poster:
    """One POST, the way deliveries send: through the deliveries' own client
    (``Http1Client``, the default: about a quarter of aiohttp's CPU per request), or an
    httpx transport.

    httpx's ``AsyncClient`` request pipeline (header merging, cookies, auth, redirect
    handling, none of which a webhook uses) costs about 160 us of CPU per request on the
    benchmark machine, more than the aiohttp transport under it; so deliveries build the
    ``httpx.Request`` themselves and hand it to the transport; over the aiohttp transport they
    skip httpx's objects altogether (``AiohttpTransport.post``: the request and response
    objects cost about a third of a request's CPU there). The answer is read whole (the
    transports read at most ``MAX_BODY`` bytes of it) and the connection goes back to the pool.
    """

    def __init__(
        self,
        transport: httpx.AsyncBaseTransport | Http1Client,
        *,
        connect_timeout: float,
        timeout: float,
    ) -> None:
        self.transport = transport
        self._timeouts = {
            "connect": connect_timeout,
            "read": timeout,
            "write": timeout,
            "pool": timeout,
        }
        self._urls: dict[str, httpx.URL] = {}
        from gnlc_webhook.aiohttp_transport import AiohttpTransport

        self._direct: AiohttpTransport | None = None
        self._own: Http1Client | None = None
        #: Seconds after which ``post`` gives up on its own, the whole request included
        #: (None: the caller bounds it). A client's own total timeout costs less than an
        #: ``asyncio.timeout`` around each request.
        self.total_timeout: float | None = None
        if isinstance(transport, Http1Client):
            self._own = transport
            self.total_timeout = transport.timeout
        elif isinstance(transport, AiohttpTransport):
            import aiohttp

            self._direct = transport
            self._direct_timeouts = aiohttp.ClientTimeout(
                total=timeout, sock_connect=connect_timeout, sock_read=timeout
            )
            self.total_timeout = timeout

    def _url(self, url: str) -> httpx.URL:
        parsed = self._urls.get(url)
        if parsed is None:
            if len(self._urls) > 10_000:  # endpoints come and go; keep the cache bounded
                self._urls.clear()
            parsed = self._urls[url] = httpx.URL(url)
        return parsed

    async def post(self, url: str, *, content: bytes, headers: dict[str, str]) -> Answer:
        headers = {**headers, "user-agent": USER_AGENT}
        if self._own is not None:
            status, own_headers, body = await self._own.post(url, content=content, headers=headers)
            return Answer(status, own_headers, body)
        assert not isinstance(self.transport, Http1Client)
        if self._direct is not None:
            status, answer_headers, body = await self._direct.post(
                url, content=content, headers=headers, timeouts=self._direct_timeouts
            )
            return Answer(status, answer_headers, body)
        request = httpx.Request(
            "POST",
            self._url(url),
            headers=headers,
            content=content,
            extensions={"timeout": self._timeouts},
        )
        response = await self.transport.handle_async_request(request)
        try:
            await response.aread()
        finally:
            await response.aclose()
        return Answer(response.status_code, response.headers, response.content)

    async def aclose(self) -> None:
        await self.transport.aclose()


def make_poster(
    policy: Policy,
    *,
    connect_timeout: float,
    timeout: float,
    connections: int,
    kind: str = "http1",
) -> Poster:
    """The delivery client, guarded (``kind``: ``http1``, the deliveries' own client;
    ``aiohttp``, or ``httpx`` for httpx's own transport), pooled keep-alive connections, no
    redirects, no proxies."""
    limits = httpx.Limits(
        max_connections=connections, max_keepalive_connections=connections, keepalive_expiry=30
    )
    transport: httpx.AsyncBaseTransport | Http1Client
    if kind == "http1":
        transport = Http1Client(
            policy,
            connections=connections,
            connect_timeout=connect_timeout,
            timeout=timeout,
            keepalive_expiry=30,
        )
    elif kind == "aiohttp":
        from gnlc_webhook.aiohttp_transport import AiohttpTransport

        transport = AiohttpTransport(policy, limits=limits)
    else:
        transport = GuardedTransport(policy, limits=limits)
    return Poster(transport, connect_timeout=connect_timeout, timeout=timeout)
