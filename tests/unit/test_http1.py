"""The deliveries' own HTTP/1.1 client against raw loopback servers that answer as a partner's
server might: keep-alive or not, chunked, ended by closing, too long, informational first,
never, garbage; and TLS with the certificate checked for the URL's host name."""

from __future__ import annotations

import asyncio
import datetime as dt
import ipaddress
import re
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest
import uvloop
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from gnlc_webhook.http1 import Headers, Http1Client
from gnlc_webhook.ssrf import IPAddress, Policy

LOOPBACK = Policy.parse("127.0.0.1/32")
OK = b"HTTP/1.1 204 No Content\r\n\r\n"

#: What a server does with one request: (the request's head and body) -> bytes to answer,
#: or None to close the connection without an answer; "hang" never answers.
Answer = Callable[[bytes, bytes], Awaitable[bytes | None]]


class Server:
    """A raw HTTP/1.1 server on loopback: reads each request (head, content-length body) and
    writes what ``answer`` gives; counts connections and requests."""

    def __init__(self, answer: Answer) -> None:
        self.answer = answer
        self.connections = 0
        self.open = 0
        self.most_open = 0
        self.requests: list[tuple[bytes, bytes]] = []
        self.port = 0

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self.open += 1
        self.most_open = max(self.most_open, self.open)
        try:
            for _ in range(1000):  # requests on one connection, bounded
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except (asyncio.IncompleteReadError, ConnectionError):
                    return
                length = 0
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":", 1)[1])
                body = await reader.readexactly(length)
                self.requests.append((head, body))
                answer = await self.answer(head, body)
                if answer is None:
                    return
                writer.write(answer)
                await writer.drain()
        finally:
            self.open -= 1
            writer.close()


@asynccontextmanager
async def serving(answer: Answer, tls: ssl.SSLContext | None = None) -> AsyncIterator[Server]:
    server = Server(answer)
    listener = await asyncio.start_server(server.handle, "127.0.0.1", 0, ssl=tls)
    server.port = listener.sockets[0].getsockname()[1]
    try:
        yield server
    finally:
        listener.close()


def fixed(data: bytes) -> Answer:
    async def answer(head: bytes, body: bytes) -> bytes | None:
        return data

    return answer


def silent_at_first() -> Answer:
    """No answer to the first request (it hangs), 204 to the others."""
    calls = 0

    async def answer(head: bytes, body: bytes) -> bytes | None:
        nonlocal calls
        calls += 1
        if calls == 1:
            await asyncio.sleep(30)
        return OK

    return answer


def client(**options: object) -> Http1Client:
    settings: dict[str, object] = {"connections": 4, "connect_timeout": 2, "timeout": 5}
    settings.update(options)
    return Http1Client(LOOPBACK, **settings)  # type: ignore[arg-type]


async def post(c: Http1Client, url: str, **headers: str) -> tuple[int, Headers, bytes]:
    return await c.post(url, content=b'{"a":1}', headers=headers)


async def test_the_request_goes_out_whole_and_keep_alive_reuses_one_connection() -> None:
    answer = b"HTTP/1.1 503 Busy\r\nRetry-After: 120\r\nContent-Length: 4\r\n\r\nbusy"
    async with serving(fixed(answer)) as server:
        c = client()
        try:
            for _ in range(3):
                status, headers, body = await post(
                    c, f"http://127.0.0.1:{server.port}/hooks/x?token=t", **{"webhook-id": "m1"}
                )
                assert (status, body) == (503, b"busy")
                assert headers["retry-after"] == headers.get("RETRY-AFTER") == "120"
                assert "content-length" in headers
                assert len(headers) == 2
        finally:
            await c.aclose()
    assert server.connections == 1
    head, body = server.requests[0]
    lines = head.decode().split("\r\n")
    assert lines[0] == "POST /hooks/x?token=t HTTP/1.1"
    assert f"host: 127.0.0.1:{server.port}" in lines
    assert "webhook-id: m1" in lines
    assert "content-length: 7" in lines
    assert body == b'{"a":1}'


@pytest.mark.parametrize(
    "answer",
    [
        b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok",
        b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok",
    ],
)
async def test_a_server_that_closes_gets_a_new_connection_each_time(answer: bytes) -> None:
    async with serving(fixed(answer)) as server:
        c = client()
        try:
            for _ in range(2):
                assert (await post(c, f"http://127.0.0.1:{server.port}/"))[::2] == (200, b"ok")
        finally:
            await c.aclose()
    assert server.connections == 2


async def test_a_chunked_answer_is_read_and_its_connection_kept() -> None:
    chunked = (
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n"
    )
    async with serving(fixed(chunked)) as server:
        c = client()
        try:
            for _ in range(2):
                assert (await post(c, f"http://127.0.0.1:{server.port}/"))[::2] == (200, b"abcde")
        finally:
            await c.aclose()
    assert server.connections == 1


async def test_an_answer_without_a_length_ends_when_the_server_closes() -> None:
    async def answer_and_close(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        await reader.readexactly(7)
        writer.write(b"HTTP/1.1 202 Accepted\r\n\r\nall of it")
        await writer.drain()
        writer.close()

    listener = await asyncio.start_server(answer_and_close, "127.0.0.1", 0)
    port = listener.sockets[0].getsockname()[1]
    c = client()
    try:
        assert (await post(c, f"http://127.0.0.1:{port}/"))[::2] == (202, b"all of it")
    finally:
        await c.aclose()
        listener.close()


async def test_an_informational_answer_is_skipped() -> None:
    answer = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n"
    async with serving(fixed(answer)) as server:
        c = client()
        try:
            assert (await post(c, f"http://127.0.0.1:{server.port}/"))[0] == 201
        finally:
            await c.aclose()


async def test_a_long_answer_is_cut_at_the_limit_and_its_connection_dropped() -> None:
    answer = b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n" + b"x" * 100_000
    async with serving(fixed(answer)) as server:
        c = client(max_body=1000)
        try:
            for _ in range(2):
                status, _, body = await post(c, f"http://127.0.0.1:{server.port}/")
                assert (status, len(body)) == (200, 1000)
        finally:
            await c.aclose()
    assert server.connections == 2


async def test_no_answer_times_out_and_the_next_request_goes_on_a_new_connection() -> None:
    async with serving(silent_at_first()) as server:
        c = client(timeout=0.3)
        try:
            loop = asyncio.get_running_loop()
            started = loop.time()
            with pytest.raises(httpx.ReadTimeout, match=re.escape("no answer within 0.3s")):
                await post(c, f"http://127.0.0.1:{server.port}/")
            assert 0.25 < loop.time() - started < 2
            assert (await post(c, f"http://127.0.0.1:{server.port}/"))[0] == 204
        finally:
            await c.aclose()
    assert server.connections == 2


async def test_closed_before_answering_garbage_and_refused_are_errors() -> None:
    async def close(head: bytes, body: bytes) -> bytes | None:
        return None

    async with serving(close) as server:
        c = client()
        try:
            with pytest.raises(httpx.ReadError, match="closed the connection before answering"):
                await post(c, f"http://127.0.0.1:{server.port}/")
        finally:
            await c.aclose()
    async with serving(fixed(b"SMTP ready\r\n\r\n")) as server:
        c = client()
        try:
            garbage = re.escape("not an HTTP/1.1 answer")
            with pytest.raises(httpx.RemoteProtocolError, match=garbage):
                await post(c, f"http://127.0.0.1:{server.port}/")
        finally:
            await c.aclose()
    async with serving(fixed(OK)) as server:
        port = server.port
    c = client()
    try:
        with pytest.raises(httpx.ConnectError, match=f"cannot connect to 127.0.0.1:{port}"):
            await post(c, f"http://127.0.0.1:{port}/")
    finally:
        await c.aclose()


async def test_a_header_that_would_split_the_request_is_refused_before_sending() -> None:
    async with serving(fixed(OK)) as server:
        c = client()
        try:
            for name, value in [("x-a", "1\r\nx-b: 2"), ("x-a", "1\n"), ("x\r\na", "1")]:
                with pytest.raises(httpx.LocalProtocolError, match="CR, LF and NUL"):
                    await c.post(
                        f"http://127.0.0.1:{server.port}/", content=b"", headers={name: value}
                    )
        finally:
            await c.aclose()
    assert server.requests == []


async def test_connections_and_requests_in_flight_stay_within_the_limit() -> None:
    async def slow(head: bytes, body: bytes) -> bytes | None:
        await asyncio.sleep(0.05)
        return OK

    async with serving(slow) as server:
        c = client(connections=2)
        try:
            url = f"http://127.0.0.1:{server.port}/"
            statuses = await asyncio.gather(*(post(c, url) for _ in range(10)))
        finally:
            await c.aclose()
    assert [s for s, _, _ in statuses] == [204] * 10
    assert server.most_open == 2
    assert server.connections == 2


async def test_an_idle_connection_past_its_expiry_is_not_reused() -> None:
    async with serving(fixed(OK)) as server:
        c = client(keepalive_expiry=0.05)
        try:
            await post(c, f"http://127.0.0.1:{server.port}/")
            await asyncio.sleep(0.1)
            await post(c, f"http://127.0.0.1:{server.port}/")
        finally:
            await c.aclose()
    assert server.connections == 2


async def test_a_cancelled_request_drops_its_connection_and_the_client_goes_on() -> None:
    async with serving(silent_at_first()) as server:
        c = client()
        url = f"http://127.0.0.1:{server.port}/"
        try:
            task = asyncio.create_task(post(c, url))
            for _ in range(100):
                if server.requests:
                    break
                await asyncio.sleep(0.01)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            assert (await post(c, url))[0] == 204
        finally:
            await c.aclose()
    assert server.connections == 2


def test_on_uvloop_whose_transports_are_its_own_classes() -> None:
    async def three() -> tuple[list[int], int]:
        async with serving(fixed(OK)) as server:
            c = client()
            try:
                url = f"http://127.0.0.1:{server.port}/"
                return [(await post(c, url))[0] for _ in range(3)], server.connections
            finally:
                await c.aclose()

    assert uvloop.run(three()) == ([204, 204, 204], 1)


# TLS ---------------------------------------------------------------------------------


def _certificate(tmp: Path, name: str) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    """A self-signed certificate for ``name``: the server's context, and a client context
    that trusts it (and checks host names)."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    pem = cert.public_bytes(serialization.Encoding.PEM)
    (tmp / "cert.pem").write_bytes(pem)
    (tmp / "key.pem").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server.load_cert_chain(tmp / "cert.pem", tmp / "key.pem")
    trusting = ssl.create_default_context(cadata=pem.decode())
    return server, trusting


async def _to_loopback(host: str, port: int) -> Sequence[IPAddress]:
    return [ipaddress.ip_address("127.0.0.1")]


async def test_tls_checks_the_certificate_for_the_urls_host_name(tmp_path: Path) -> None:
    server_tls, trusting = _certificate(tmp_path, "partner.test")
    async with serving(fixed(OK), tls=server_tls) as server:
        good = client(ssl_context=trusting, resolver=_to_loopback)
        other = client(ssl_context=trusting, resolver=_to_loopback)
        untrusted = client(resolver=_to_loopback)
        try:
            status, _, _ = await post(good, f"https://partner.test:{server.port}/hook")
            assert status == 204
            with pytest.raises(httpx.ConnectError, match="certificate"):
                await post(other, f"https://elsewhere.test:{server.port}/hook")
            with pytest.raises(httpx.ConnectError, match="certificate"):
                await post(untrusted, f"https://partner.test:{server.port}/hook")
        finally:
            for c in (good, other, untrusted):
                await c.aclose()
    head, _ = server.requests[0]
    assert f"host: partner.test:{server.port}".encode() in head
