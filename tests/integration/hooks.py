"""A scriptable partner receiver on loopback for the webhook tests.

Each endpoint name (``/hooks/<name>``) has the keys it verifies with (``whsec_`` secrets
through the official ``standardwebhooks`` package, ``whpk_`` ed25519 public keys through
libsodium), a script of answers (status, headers, hang) used in order
and then 204, and the list of every request it got, verified or not. ``unique`` is what a
receiver deduplicating on ``webhook-id`` keeps.
"""

from __future__ import annotations

import asyncio
import base64
import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from nacl.exceptions import BadSignatureError
from nacl.signing import VerifyKey
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from gnlc_devtools.receiver import BackgroundServer


def _verifies(key: str, body: bytes, headers: dict[str, str]) -> bool:
    """A ``whsec_`` secret verifies through the official ``standardwebhooks`` package; a
    ``whpk_`` public key through libsodium (PyNaCl), over ``id.timestamp.body``."""
    if not key.startswith("whpk_"):
        try:
            Webhook(key).verify(body.decode(), headers)
        except WebhookVerificationError:
            return False
        return True
    content = f"{headers.get('webhook-id')}.{headers.get('webhook-timestamp')}.".encode() + body
    verifier = VerifyKey(base64.b64decode(key.removeprefix("whpk_")))
    for part in headers.get("webhook-signature", "").split(" "):
        if part.startswith("v1a,"):
            try:
                verifier.verify(content, base64.b64decode(part.removeprefix("v1a,")))
            except BadSignatureError:
                continue
            return True
    return False


@dataclass(frozen=True)
class Answer:
    status: int = 204
    headers: tuple[tuple[str, str], ...] = ()
    hang: float = 0.0  # seconds before answering (bounded)


@dataclass
class Hit:
    name: str
    webhook_id: str
    at: float
    verified: bool
    body: bytes
    headers: dict[str, str]

    @property
    def event(self) -> dict[str, Any]:
        return dict(json.loads(self.body))


@dataclass
class Hooks:
    secrets: dict[str, list[str]] = field(default_factory=dict)
    scripts: dict[str, list[Answer]] = field(default_factory=dict)
    #: the answer to the first request of each event (webhook-id), before any script
    first: dict[str, Answer] = field(default_factory=dict)
    hits: list[Hit] = field(default_factory=list)
    release: threading.Event = field(default_factory=threading.Event)  # ends hangs early
    _lock: threading.Condition = field(default_factory=threading.Condition)

    def of(self, name: str, *, verified: bool = True) -> list[Hit]:
        with self._lock:
            return [h for h in self.hits if h.name == name and (h.verified or not verified)]

    def unique(self, name: str) -> dict[str, Hit]:
        out: dict[str, Hit] = {}
        for hit in self.of(name):
            out.setdefault(hit.webhook_id, hit)
        return out

    def wait(self, name: str, count: int, timeout: float, *, unique: bool = False) -> bool:
        deadline = time.monotonic() + timeout
        with self._lock:
            while True:
                have = len(self.unique(name)) if unique else len(self.of(name))
                if have >= count:
                    return True
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._lock.wait(min(left, 0.5))

    def _answer(self, name: str, webhook_id: str) -> Answer:
        with self._lock:
            seen = [h.webhook_id for h in self.hits if h.name == name]
            if name in self.first and seen.count(webhook_id) == 1:
                return self.first[name]
            script = self.scripts.get(name)
            return script.pop(0) if script else Answer()

    def _add(self, hit: Hit) -> None:
        with self._lock:
            self.hits.append(hit)
            self._lock.notify_all()

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        body = b""
        more = True
        while more:
            message = await receive()
            body += message.get("body", b"")
            more = message.get("more_body", False)
        name = scope["path"].rsplit("/", 1)[-1]
        headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
        verified = any(_verifies(key, body, headers) for key in self.secrets.get(name, []))
        self._add(
            Hit(
                name=name,
                webhook_id=headers.get("webhook-id", ""),
                at=time.time(),
                verified=verified,
                body=body,
                headers={k: v for k, v in headers.items() if k.startswith("webhook-")},
            )
        )
        answer = self._answer(name, headers.get("webhook-id", "")) if verified else Answer(401)
        deadline = time.monotonic() + answer.hang
        # a threading.Event (set from the test's thread) cannot be awaited: poll it
        while time.monotonic() < deadline and not self.release.is_set():  # noqa: ASYNC110
            await asyncio.sleep(0.05)
        await send(
            {
                "type": "http.response.start",
                "status": answer.status,
                "headers": [(k.encode(), v.encode()) for k, v in answer.headers],
            }
        )
        await send({"type": "http.response.body", "body": b""})


@contextmanager
def serving(hooks: Hooks) -> Iterator[BackgroundServer]:
    server = BackgroundServer(hooks)  # type: ignore[arg-type] # a bare ASGI app
    with server:
        try:
            yield server
        finally:
            hooks.release.set()  # no hang outlives the test
