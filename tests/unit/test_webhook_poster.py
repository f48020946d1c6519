"""``Poster``, the deliveries' HTTP client, on a loopback server: their own HTTP/1.1 client
(the default), straight to aiohttp, and through httpx's own transport, the same request out
and the same answer back (status, headers read case-insensitively, the body up to the
client's limit)."""

from __future__ import annotations

from typing import Any

import pytest

from gnlc_devtools.receiver import BackgroundServer
from gnlc_webhook.aiohttp_transport import MAX_BODY
from gnlc_webhook.http1 import MAX_BODY as HTTP1_MAX_BODY
from gnlc_webhook.ssrf import Policy
from gnlc_webhook.transport import USER_AGENT, make_poster

LOOPBACK = Policy.parse("127.0.0.1/32")


class Partner:
    """A bare ASGI app: answers what the path asks (``/503`` with a Retry-After, ``/big``
    with a large body, else 204) and keeps each request's headers and body."""

    def __init__(self) -> None:
        self.seen: list[tuple[dict[str, str], bytes]] = []

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        headers = {k.decode(): v.decode() for k, v in scope["headers"]}
        self.seen.append((headers, body))
        path = scope["path"]
        status, extra, content = 204, [], b""
        if path == "/503":
            status, extra, content = 503, [(b"Retry-After", b"120")], b"busy"
        elif path == "/big":
            status, content = 200, b"x" * 100_000
        await send({"type": "http.response.start", "status": status, "headers": extra})
        await send({"type": "http.response.body", "body": content})


@pytest.mark.parametrize("kind", ["http1", "aiohttp", "httpx"])
@pytest.mark.parametrize(
    ("path", "status", "retry_after", "body_length"),
    [("/ok", 204, None, 0), ("/503", 503, "120", 4), ("/big", 200, None, None)],
)
async def test_the_same_request_out_and_the_same_answer_back(
    kind: str, path: str, status: int, retry_after: str | None, body_length: int | None
) -> None:
    partner = Partner()
    with BackgroundServer(partner) as server:  # type: ignore[arg-type] # a bare ASGI app
        poster = make_poster(LOOPBACK, connect_timeout=5, timeout=10, connections=4, kind=kind)
        try:
            answer = await poster.post(
                f"{server.url}{path}",
                content=b'{"a":1}',
                headers={"webhook-id": "msg_1", "content-type": "application/json"},
            )
        finally:
            await poster.aclose()
    assert answer.status_code == status
    assert answer.headers.get("retry-after") == retry_after
    assert answer.headers.get("Retry-After") == retry_after
    if body_length is not None:
        assert len(answer.content) == body_length
    elif kind == "aiohttp":  # read up to the transport's limit, not the whole answer
        assert len(answer.content) == MAX_BODY
    elif kind == "http1":
        assert len(answer.content) == HTTP1_MAX_BODY
    else:
        assert 0 < len(answer.content) <= 100_000
    [(headers, body)] = partner.seen
    assert body == b'{"a":1}'
    assert headers["webhook-id"] == "msg_1"
    assert headers["content-type"] == "application/json"
    assert headers["user-agent"] == USER_AGENT
    assert headers["content-length"] == "7"
