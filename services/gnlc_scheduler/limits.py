"""Request-body limits of the operator API, checked before a byte is parsed or stored.

Every other limit sits on the field it limits (``gnlc_core.events``, ``gnlc_core.directory``,
``gnlc_scheduler.deadlines``) and is in the OpenAPI document; the README lists them all.
"""

from __future__ import annotations

import json
from collections.abc import Callable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

#: Bytes of a JSON request body (deadlines, announcements, submissions, patches).
MAX_JSON_BODY = 1024 * 1024
#: Bytes of a directory import (CSV, YAML or JSON): ``MAX_CITIES`` rows with room to spare.
MAX_IMPORT_BODY = 4 * 1024 * 1024
IMPORT_PATH = "/v1/cities/import"


def body_limit_for(path: str) -> int:
    return MAX_IMPORT_BODY if path == IMPORT_PATH else MAX_JSON_BODY


class BodyLimit:
    """ASGI middleware: a body larger than its path's limit is answered 413 (naming the
    limit) before the application reads any of it; it never reaches a parser."""

    def __init__(self, app: ASGIApp, limit_for: Callable[[str], int] = body_limit_for) -> None:
        self.app = app
        self.limit_for = limit_for

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit_for(scope["path"])
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            await _too_large(send, limit)
            return
        chunks: list[bytes] = []
        size = 0
        more = True
        while more:
            message = await receive()
            if message["type"] != "http.request":
                break
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                await _too_large(send, limit)
                return
            chunks.append(chunk)
            more = message.get("more_body", False)
        body = b"".join(chunks)
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)


async def _too_large(send: Send, limit: int) -> None:
    body = json.dumps(
        {"detail": f"the request body is larger than {limit} bytes, the limit of this operation"}
    ).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
