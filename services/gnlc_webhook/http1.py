"""The deliveries' own HTTP/1.1 client: one POST at a time per pooled keep-alive connection,
on asyncio protocols and httptools (the C parser uvicorn uses) for the answers.

Why its own: a delivery is one small POST whose answer is mostly a status line, and
aiohttp's general-purpose ``ClientSession`` spent about 130 to 170 us of CPU per request
on the benchmark machine (cookies, redirects, tracing hooks, its request and response
objects), more than everything else a delivery does but the database; this client spends
about 40 us (``deploy/bench.sh http``).

What it does, and no more:

* POST with the caller's headers, ``host``, ``content-length`` and the body; a header
  name or value holding CR, LF or NUL is refused before anything is sent;
* keep-alive connections pooled per origin (scheme, host, port), at most ``connections``
  open in all and as many requests in flight; an idle one is closed after
  ``keepalive_expiry`` seconds, or when the server closes it or asks to
  (``connection: close``, HTTP/1.0);
* the SSRF guard on every new connection: the host is resolved through the guard, every
  address checked, and the connection made to an address it checked (DNS rebinding
  between check and connect is impossible); TLS verifies the certificate for the URL's
  host name (SNI), not for the address;
* a connect timeout, and a total timeout per request (connection included);
* the answer read up to ``max_body`` bytes: past that the connection is closed, not read
  further; 1xx answers are skipped; an answer ended by the server closing the connection
  counts once its status line and headers have arrived.

No redirects, no proxies, no cookies, no compression. Errors are httpx's, as the other
transports raise them: ``ConnectError`` (refused by the guard, unreachable, TLS),
``ConnectTimeout``, ``ReadTimeout``, ``ReadError`` (closed before an answer),
``RemoteProtocolError`` (not an HTTP/1.1 answer), ``LocalProtocolError`` (a bad header).
"""

from __future__ import annotations

import asyncio
import re
import ssl
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import cast

import httptools
import httpx

from gnlc_webhook.ssrf import Policy, RefusedTarget, Resolver, resolve_checked, system_resolver

MAX_BODY = 64 * 1024
_FORBIDDEN = re.compile(r"[\r\n\0]")  # in a header name or value: refused

Origin = tuple[str, str, int]  # scheme, host, port


class Headers(Mapping[str, str]):
    """An answer's headers as received, looked up without regard to case (latin-1); a name
    sent more than once gives its first value. Decoded only when asked: a delivery reads
    one header at most."""

    __slots__ = ("_raw",)

    def __init__(self, raw: list[tuple[bytes, bytes]]) -> None:
        self._raw = raw

    def __getitem__(self, name: str) -> str:
        wanted = name.lower().encode("latin-1")
        for key, value in self._raw:
            if key.lower() == wanted:
                return value.decode("latin-1")
        raise KeyError(name)

    def __iter__(self) -> Iterator[str]:
        seen: set[bytes] = set()
        for key, _ in self._raw:
            if (lower := key.lower()) not in seen:
                seen.add(lower)
                yield key.decode("latin-1")

    def __len__(self) -> int:
        return len({key.lower() for key, _ in self._raw})


@dataclass(frozen=True, slots=True)
class _Target:
    """A URL as this client sends to it, parsed once: where to connect, and the start of
    every request to it."""

    origin: Origin
    tls: bool
    host: str  # as resolved, and for SNI (no brackets)
    port: int
    head: str  # request line and host header


def _target(url: str) -> _Target:
    parsed = httpx.URL(url)
    if parsed.scheme not in ("http", "https"):
        raise httpx.UnsupportedProtocol(f"only http and https URLs: {url}")
    tls = parsed.scheme == "https"
    host = parsed.host
    port = parsed.port or (443 if tls else 80)
    shown = f"[{host}]" if ":" in host else host  # an IPv6 literal
    if parsed.port is not None:
        shown = f"{shown}:{port}"
    path = parsed.raw_path.decode("ascii") or "/"
    head = f"POST {path} HTTP/1.1\r\nhost: {shown}\r\n"
    return _Target((parsed.scheme, host, port), tls, host, port, head)


class _Connection(asyncio.Protocol):
    """One keep-alive connection, one request at a time: ``request`` writes it and returns
    the future of its answer (status, raw headers, body)."""

    def __init__(self, origin: Origin, max_body: int) -> None:
        self.origin = origin
        self.closed = False
        self.reusable = False
        self.idle_since = 0.0
        self._max_body = max_body
        self._transport: asyncio.Transport | None = None
        self._parser = httptools.HttpResponseParser(self)
        self._waiter: asyncio.Future[tuple[int, list[tuple[bytes, bytes]], bytes]] | None = None
        self._status = 0
        self._headers: list[tuple[bytes, bytes]] = []
        self._body: list[bytes] = []
        self._size = 0

    # the caller's side ---------------------------------------------------------------

    def request(
        self, data: bytes, loop: asyncio.AbstractEventLoop
    ) -> asyncio.Future[tuple[int, list[tuple[bytes, bytes]], bytes]]:
        assert self._transport is not None
        assert self._waiter is None
        self.reusable = False
        self._status, self._headers, self._body, self._size = 0, [], [], 0
        waiter = self._waiter = loop.create_future()
        self._transport.write(data)
        return waiter

    def time_out(self, seconds: float) -> None:
        """The request's time is up: fail it and drop the connection."""
        if self._waiter is not None:
            self._fail(httpx.ReadTimeout(f"no answer within {seconds:g}s"))

    def abort(self) -> None:
        self.closed = True
        if self._transport is not None:
            self._transport.abort()

    def close(self) -> None:
        self.closed = True
        if self._transport is not None:
            self._transport.close()

    # asyncio's side ------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast("asyncio.Transport", transport)  # uvloop's is not a subclass

    def data_received(self, data: bytes) -> None:
        if self._waiter is None:  # the server talks out of turn: do not reuse this one
            self.abort()
            return
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._fail(httpx.RemoteProtocolError("the server switched protocols"))
        except httptools.HttpParserError as exc:
            self._fail(httpx.RemoteProtocolError(f"not an HTTP/1.1 answer: {exc}"))

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self._waiter is None:
            return
        if self._status >= 200:  # the answer ended by closing the connection (or cut short)
            self._finish(reusable=False)
        else:
            self._fail(httpx.ReadError("the server closed the connection before answering"))

    # httptools' callbacks ------------------------------------------------------------

    def on_header(self, name: bytes, value: bytes) -> None:
        self._headers.append((name, value))

    def on_headers_complete(self) -> None:
        self._status = self._parser.get_status_code()

    def on_body(self, body: bytes) -> None:
        if self._waiter is None:
            return
        room = self._max_body - self._size
        if len(body) > room:  # too long: keep what the limit allows, read no further
            self._body.append(body[:room])
            self._size += room
            self._finish(reusable=False)
            return
        self._body.append(body)
        self._size += len(body)

    def on_message_complete(self) -> None:
        if self._status < 200:  # an informational answer: the final one follows
            self._status, self._headers, self._body, self._size = 0, [], [], 0
            return
        self._finish(reusable=self._parser.should_keep_alive())

    # ---------------------------------------------------------------------------------

    def _finish(self, *, reusable: bool) -> None:
        waiter, self._waiter = self._waiter, None
        if waiter is None:
            return
        self.reusable = reusable and not self.closed
        if not waiter.done():
            waiter.set_result((self._status, self._headers, b"".join(self._body)))
        if not self.reusable:
            self.close()

    def _fail(self, exc: Exception) -> None:
        waiter, self._waiter = self._waiter, None
        self.reusable = False
        if waiter is not None and not waiter.done():
            waiter.set_exception(exc)
        self.abort()


class Http1Client:
    """POSTs over pooled HTTP/1.1 connections, with the SSRF guard (see the module)."""

    def __init__(
        self,
        policy: Policy,
        *,
        connections: int,
        connect_timeout: float,
        timeout: float,
        keepalive_expiry: float = 30.0,
        resolver: Resolver = system_resolver,
        ssl_context: ssl.SSLContext | None = None,
        max_body: int = MAX_BODY,
    ) -> None:
        self._policy = policy
        self._resolver = resolver
        self._limit = connections
        self._connect_timeout = connect_timeout
        self.timeout = timeout
        self._keepalive = keepalive_expiry
        self._ssl = ssl_context
        self._max_body = max_body
        self._slots = asyncio.Semaphore(connections)
        self._open: set[_Connection] = set()
        self._idle: dict[Origin, list[_Connection]] = {}
        self._targets: dict[str, _Target] = {}

    async def post(
        self, url: str, *, content: bytes, headers: Mapping[str, str]
    ) -> tuple[int, Headers, bytes]:
        """The status, headers and body (up to ``max_body`` bytes) of the answer."""
        target = self._targets.get(url)
        if target is None:
            if len(self._targets) > 10_000:  # endpoints come and go; keep it bounded
                self._targets.clear()
            target = self._targets[url] = _target(url)
        lines = [target.head]
        forbidden = _FORBIDDEN.search
        for name, value in headers.items():
            if forbidden(name) or forbidden(value):
                raise httpx.LocalProtocolError(f"header {name!r}: CR, LF and NUL are not allowed")
            lines.append(f"{name}: {value}\r\n")
        lines.append(f"content-length: {len(content)}\r\n\r\n")
        data = "".join(lines).encode("latin-1") + content
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.timeout
        async with self._slots:
            connection = self._pooled(target.origin) or await self._connect(target, deadline)
            waiter = connection.request(data, loop)
            timer = loop.call_at(deadline, connection.time_out, self.timeout)
            try:
                status, raw, body = await waiter
            finally:
                timer.cancel()
                self._put_back(connection)
        return status, Headers(raw), body

    async def aclose(self) -> None:
        for connection in list(self._open):
            connection.close()
        self._open.clear()
        self._idle.clear()

    # the pool ------------------------------------------------------------------------

    def _pooled(self, origin: Origin) -> _Connection | None:
        """The most recently used idle connection to ``origin`` still open."""
        idle = self._idle.get(origin)
        now = time.monotonic()
        while idle:
            connection = idle.pop()
            if not connection.closed and now - connection.idle_since < self._keepalive:
                return connection
            self._forget(connection)
        return None

    def _put_back(self, connection: _Connection) -> None:
        if connection.reusable and not connection.closed:
            connection.reusable = False
            connection.idle_since = time.monotonic()
            self._idle.setdefault(connection.origin, []).append(connection)
        else:  # failed, cancelled, cut short or asked to close
            self._forget(connection)

    def _forget(self, connection: _Connection) -> None:
        if not connection.closed:
            connection.abort()
        self._open.discard(connection)

    def _make_room(self) -> None:
        """At the limit, close the idle connection unused the longest (the caller holds a
        slot, so with every connection open one at least is idle)."""
        if len(self._open) < self._limit:
            return
        oldest: _Connection | None = None
        for idle in self._idle.values():
            for connection in idle:
                if oldest is None or connection.idle_since < oldest.idle_since:
                    oldest = connection
        if oldest is not None:
            self._idle[oldest.origin].remove(oldest)
            self._forget(oldest)

    async def _connect(self, target: _Target, deadline: float) -> _Connection:
        """A new connection to an address of ``target``'s host that the guard allows."""
        self._make_room()
        loop = asyncio.get_running_loop()
        until = min(deadline, loop.time() + self._connect_timeout)
        host, port = target.host, target.port
        last: OSError | None = None
        try:
            async with asyncio.timeout_at(until):
                try:
                    addresses = await resolve_checked(host, port, self._policy, self._resolver)
                except RefusedTarget as exc:
                    raise httpx.ConnectError(f"refused by the SSRF guard: {exc}") from None
                for address in addresses:
                    try:
                        _, connection = await loop.create_connection(
                            lambda: _Connection(target.origin, self._max_body),
                            str(address),
                            port,
                            ssl=self._tls() if target.tls else None,
                            server_hostname=host if target.tls else None,
                        )
                    except OSError as exc:  # refused, unreachable, TLS: the next address
                        last = exc
                        continue
                    self._open.add(connection)
                    return connection
        except TimeoutError:
            raise httpx.ConnectTimeout(f"cannot connect to {host}:{port} in time") from None
        detail = f"{type(last).__name__}: {last}" if last is not None else "no address"
        raise httpx.ConnectError(f"cannot connect to {host}:{port}: {detail}")

    def _tls(self) -> ssl.SSLContext:
        if self._ssl is None:
            self._ssl = ssl.create_default_context()
        return self._ssl
