"""A local webhook receiver that verifies Standard Webhooks signatures like a partner would.

``POST /hooks/{endpoint}`` verifies the body with the endpoint's secret(s) using the official
``standardwebhooks`` package, answers 204 (or 401 when the signature does not verify), and
records the delivery, deduplicated on ``webhook-id`` as the spec asks receivers to do.
``python -m gnlc_devtools.receiver --partners partners.yaml --out received.jsonl``.
"""

from __future__ import annotations

import argparse
import json
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import uvicorn
from fastapi import FastAPI, Request, Response
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from gnlc_devtools.signals import wait_for_signal


@dataclass
class Received:
    endpoint: str
    webhook_id: str
    event: dict[str, Any]
    headers: dict[str, str]
    verified: bool


@dataclass
class Inbox:
    """What arrived, in order; ``unique`` holds each ``webhook-id`` once."""

    deliveries: list[Received] = field(default_factory=list)
    unique: dict[tuple[str, str], Received] = field(default_factory=dict)
    rejected: int = 0
    out: Path | None = None
    _lock: threading.Condition = field(default_factory=threading.Condition)

    def add(self, item: Received) -> None:
        with self._lock:
            if item.verified:
                self.deliveries.append(item)
                self.unique.setdefault((item.endpoint, item.webhook_id), item)
            else:
                self.rejected += 1
            if self.out is not None:
                with self.out.open("a", encoding="utf-8") as handle:
                    handle.write(json.dumps(item.__dict__, ensure_ascii=False) + "\n")
            self._lock.notify_all()

    def wait_for_unique(self, count: int, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        with self._lock:
            while len(self.unique) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._lock.wait(left)
        return True


def receiver_app(secrets: dict[str, list[str]], inbox: Inbox) -> FastAPI:
    """``secrets`` maps an endpoint name to the secrets any of which may sign for it."""
    app = FastAPI(title="Local webhook receiver")
    verifiers = {name: [Webhook(s) for s in keys] for name, keys in secrets.items()}

    @app.post("/hooks/{endpoint}")
    async def hook(endpoint: str, request: Request) -> Response:
        body = (await request.body()).decode()
        headers = {k.lower(): v for k, v in request.headers.items()}
        verified = False
        for verifier in verifiers.get(endpoint, []):
            try:
                verifier.verify(body, headers)
            except WebhookVerificationError:
                continue
            verified = True
            break
        inbox.add(
            Received(
                endpoint=endpoint,
                webhook_id=headers.get("webhook-id", ""),
                event=json.loads(body) if verified else {},
                headers={
                    k: v
                    for k, v in headers.items()
                    if k.startswith("webhook-") or k == "traceparent"
                },
                verified=verified,
            )
        )
        return Response(status_code=204 if verified else 401)

    @app.get("/received")
    async def received() -> list[dict[str, Any]]:
        return [r.__dict__ for r in inbox.unique.values()]

    return app


class BackgroundServer:
    """Serve an ASGI app with uvicorn in a thread on loopback; a context manager."""

    def __init__(self, app: FastAPI, *, host: str = "127.0.0.1", port: int = 0) -> None:
        from gnlc_devtools.mailbox import _free_port

        self.host = host
        self.port = port or _free_port(host)
        config = uvicorn.Config(
            app, host=host, port=self.port, log_config=None, access_log=False, lifespan="off"
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, daemon=True)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def __enter__(self) -> BackgroundServer:
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("the HTTP server did not start")
            time.sleep(0.01)
        return self

    def __exit__(self, *exc: Any) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)


def main() -> None:
    from gnlc_webhook.partners import load_endpoints

    parser = argparse.ArgumentParser(description="A local Standard Webhooks receiver.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8090)
    parser.add_argument("--partners", type=Path, required=True, help="partners YAML")
    parser.add_argument("--out", type=Path, default=Path(".local/webhooks/received.jsonl"))
    args = parser.parse_args()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    secrets = {e.id: [e.secret.get_secret_value()] for e in load_endpoints(args.partners)}
    with BackgroundServer(
        receiver_app(secrets, Inbox(out=args.out)), host=args.host, port=args.port
    ):
        print(
            f"receiver: http://{args.host}:{args.port}/hooks/<endpoint> -> {args.out}", flush=True
        )
        wait_for_signal()


if __name__ == "__main__":
    main()
