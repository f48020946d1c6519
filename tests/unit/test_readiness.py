"""Readiness: Kafka, the database (``SELECT 1``) and the service's own checks are required;
the SMTP server is reported as degraded, never as down."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any, cast

import httpx
import pytest
from fastapi import FastAPI
from faststream.kafka import KafkaBroker

from gnlc_core.db import create_engine
from gnlc_core.service import (
    AsyncCheck,
    Readiness,
    database_check,
    health_router,
    readiness,
    tcp_check,
)


@pytest.mark.parametrize(
    ("required", "optional", "expected"),
    [
        (
            {"kafka": True, "database": True},
            {},
            Readiness(200, {"ready": True, "checks": {"kafka": True, "database": True}}),
        ),
        (
            {"kafka": True, "database": False},
            {},
            Readiness(503, {"ready": False, "checks": {"kafka": True, "database": False}}),
        ),
        (
            {"kafka": True, "database": True},
            {"smtp": False},
            Readiness(
                200,
                {
                    "ready": True,
                    "checks": {"kafka": True, "database": True, "smtp": False},
                    "degraded": ["smtp"],
                },
            ),
        ),
        (
            {"kafka": False},
            {"smtp": False},
            Readiness(
                503,
                {"ready": False, "checks": {"kafka": False, "smtp": False}, "degraded": ["smtp"]},
            ),
        ),
        (
            {"kafka": True},
            {"smtp": True},
            Readiness(200, {"ready": True, "checks": {"kafka": True, "smtp": True}}),
        ),
    ],
)
def test_readiness_decision(
    required: dict[str, bool], optional: dict[str, bool], expected: Readiness
) -> None:
    assert readiness(required, optional) == expected


@contextmanager
def silent_server() -> Iterator[int]:
    """A TCP port that accepts connections and never says a word (a hanging database)."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(8)
        yield int(server.getsockname()[1])


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_database_check_on_sqlite(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'ready.db'}")
    try:
        assert await database_check(engine)() is True
    finally:
        await engine.dispose()


async def test_database_check_refused_is_not_ready() -> None:
    engine = create_engine(f"postgresql+asyncpg://gnlc@127.0.0.1:{closed_port()}/gnlc")
    try:
        assert await database_check(engine)() is False
    finally:
        await engine.dispose()


async def test_database_check_that_hangs_ends_at_its_timeout() -> None:
    with silent_server() as port:
        engine = create_engine(f"postgresql+asyncpg://gnlc@127.0.0.1:{port}/gnlc")
        try:
            started = time.monotonic()
            assert await database_check(engine, timeout=0.5)() is False
            assert time.monotonic() - started < 2
        finally:
            await engine.dispose()


async def test_tcp_check() -> None:
    with silent_server() as port:
        assert await tcp_check("127.0.0.1", port)() is True
    assert await tcp_check("127.0.0.1", closed_port())() is False


class StubBroker:
    """What the health router asks of the broker."""

    def __init__(self, answers: bool) -> None:
        self.answers = answers

    async def ping(self, timeout: float | None) -> bool:  # noqa: ASYNC109 - the broker's signature
        return self.answers


@asynccontextmanager
async def app_with(
    tmp_path: Path,
    *,
    kafka: bool = True,
    database_ok: bool = True,
    smtp_ok: bool = True,
    own: bool = True,
) -> AsyncIterator[httpx.AsyncClient]:
    url = (
        f"sqlite+aiosqlite:///{tmp_path / 'ready.db'}"
        if database_ok
        else f"postgresql+asyncpg://gnlc@127.0.0.1:{closed_port()}/gnlc"
    )
    engine = create_engine(url)

    def views_ready() -> bool:
        return own

    async def smtp() -> bool:
        await asyncio.sleep(0)
        return smtp_ok

    degraded: dict[str, AsyncCheck] = {"smtp": smtp}
    app = FastAPI()
    broker = cast("KafkaBroker", StubBroker(kafka))
    app.include_router(health_router(broker, views_ready, database=engine, degraded=degraded))
    transport = httpx.ASGITransport(app=app)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://service") as client:
            yield client
    finally:
        await engine.dispose()


@pytest.mark.parametrize(
    ("conditions", "status", "body"),
    [
        (
            {},
            200,
            {
                "ready": True,
                "checks": {"kafka": True, "database": True, "views_ready": True, "smtp": True},
            },
        ),
        (
            {"smtp_ok": False},
            200,
            {
                "ready": True,
                "checks": {"kafka": True, "database": True, "views_ready": True, "smtp": False},
                "degraded": ["smtp"],
            },
        ),
        (
            {"database_ok": False},
            503,
            {
                "ready": False,
                "checks": {"kafka": True, "database": False, "views_ready": True, "smtp": True},
            },
        ),
        (
            {"kafka": False, "smtp_ok": False},
            503,
            {
                "ready": False,
                "checks": {"kafka": False, "database": True, "views_ready": True, "smtp": False},
                "degraded": ["smtp"],
            },
        ),
        (
            {"own": False},
            503,
            {
                "ready": False,
                "checks": {"kafka": True, "database": True, "views_ready": False, "smtp": True},
            },
        ),
    ],
)
async def test_ready_endpoint(
    tmp_path: Path, conditions: dict[str, Any], status: int, body: dict[str, Any]
) -> None:
    async with app_with(tmp_path, **conditions) as client:
        answer = await client.get("/health/ready")
        assert answer.status_code == status
        assert answer.json() == body
        assert (await client.get("/health/live")).status_code == 204
