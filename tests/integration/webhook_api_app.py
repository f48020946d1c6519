"""The webhook service's API in process: the real router, store (SQLite, Alembic) and
registry on a real directory; resends recorded instead of published; DNS answered by a
table so that URL checks never leave the machine."""

from __future__ import annotations

import ipaddress
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from fastapi import FastAPI
from pydantic import SecretStr
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import NullPool

from gnlc_core.answers import answer_errors
from gnlc_core.db import migrate
from gnlc_core.directory import Directory, load_csv
from gnlc_core.settings import SAMPLE_DIRECTORY, Settings
from gnlc_webhook import ssrf
from gnlc_webhook.api import api_router
from gnlc_webhook.registry import Registry
from gnlc_webhook.ssrf import IPAddress, Policy
from gnlc_webhook.store import Store

ROOT = Path(__file__).resolve().parents[2]
OPERATOR_TOKEN = "operator-token-for-tests"
#: Every network: the URL syntax is what an in-process test checks, not where a name points.
EVERYWHERE = Policy.parse("0.0.0.0/0,::/0")
PUBLIC = ipaddress.ip_address("93.184.215.14")


def directory() -> Directory:
    return load_csv(SAMPLE_DIRECTORY)


@dataclass
class Resent:
    """What the API handed to the retry tiers."""

    calls: list[tuple[str, bytes]] = field(default_factory=list)

    async def schedule(
        self,
        value: bytes,
        *,
        key: bytes | None,
        recipient: str,
        attempt: int,
        delay: float,
        reason: str,
    ) -> None:
        self.calls.append((recipient, value))


@dataclass
class Resolver:
    """DNS by table: a name resolves to its entry, every other name to one public address."""

    names: dict[str, list[IPAddress]] = field(default_factory=dict)

    async def __call__(self, host: str, port: int) -> Sequence[IPAddress]:
        return self.names.get(host, [PUBLIC])


@dataclass
class InProcess:
    app: FastAPI
    store: Store
    engine: AsyncEngine
    resent: Resent
    resolver: Resolver


def engine_for(path: Path) -> AsyncEngine:
    """No pooled connections: the app may run on another event loop than the setup."""
    return create_async_engine(f"sqlite+aiosqlite:///{path}", poolclass=NullPool)


async def webhook_api(
    tmp: Path,
    *,
    policy: Policy = EVERYWHERE,
    settings: Settings | None = None,
    resolve: ssrf.Resolver | None = None,
) -> InProcess:
    """The API on a migrated database of its own under ``tmp``; names resolve by the table
    of ``InProcess.resolver`` unless ``resolve`` is given (e.g. the system's resolver)."""
    engine = engine_for(tmp / "webhook.db")
    await migrate(engine, "webhook")
    store = Store(engine)
    cities = directory()
    resent, resolver = Resent(), Resolver()
    settings = settings or Settings(operator_token=SecretStr(OPERATOR_TOKEN))
    app = FastAPI(title="GNLC Notify webhook service")
    answer_errors(app)  # as build_app does for the service
    registry = Registry(store, cities, refresh_seconds=60)
    app.include_router(
        api_router(settings, store, registry, resent, cities, policy, resolve or resolver)
    )
    return InProcess(app, store, engine, resent, resolver)


@asynccontextmanager
async def api_client(
    api: InProcess, token: str = OPERATOR_TOKEN
) -> AsyncIterator[httpx.AsyncClient]:
    """A client of the in-process API under ``/v1``, with a bearer token."""
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=api.app),
        base_url="http://webhook.test/v1",
        headers={"authorization": f"Bearer {token}"},
    ) as http:
        yield http


@asynccontextmanager
async def in_process_api(tmp_path: Path) -> AsyncIterator[InProcess]:
    """``webhook_api`` for the length of a ``with``: the engine is disposed after."""
    made = await webhook_api(tmp_path)
    try:
        yield made
    finally:
        await made.engine.dispose()
