"""Every service limits request bodies before reading them (gnlc_core.limits)."""

from __future__ import annotations

import httpx
from fastapi import FastAPI, Request

from gnlc_core.limits import DEFAULT_BODY_LIMIT, BodyLimit


def _app(**limit: object) -> FastAPI:
    app = FastAPI()
    app.add_middleware(BodyLimit, **limit)  # type: ignore[arg-type]

    @app.post("/echo")
    async def echo(request: Request) -> dict[str, int]:
        return {"read": len(await request.body())}

    return app


async def test_a_body_over_the_limit_is_refused_before_it_is_read() -> None:
    transport = httpx.ASGITransport(app=_app())
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        ok = await client.post("/echo", content=b"x" * DEFAULT_BODY_LIMIT)
        assert ok.status_code == 200
        assert ok.json() == {"read": DEFAULT_BODY_LIMIT}
        refused = await client.post("/echo", content=b"x" * (DEFAULT_BODY_LIMIT + 1))
        assert refused.status_code == 413
        assert str(DEFAULT_BODY_LIMIT) in refused.json()["detail"]

        async def chunks() -> object:  # no content-length: counted as it streams
            for _ in range(DEFAULT_BODY_LIMIT // 1024 + 1):
                yield b"y" * 1024

        streamed = await client.post("/echo", content=chunks())  # type: ignore[arg-type]
        assert streamed.status_code == 413


async def test_a_limit_per_path() -> None:
    limits = {"/echo": 10}
    transport = httpx.ASGITransport(app=_app(limit_for=lambda path: limits.get(path, 1)))
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        assert (await client.post("/echo", content=b"x" * 10)).status_code == 200
        assert (await client.post("/echo", content=b"x" * 11)).status_code == 413
