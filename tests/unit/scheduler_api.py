"""The scheduler's operator API in process: a SQLite file of the test's own (or the
database named by ``database_url``, e.g. a scratch PostgreSQL database), the sample
directory, and FastStream's in-memory test broker in place of Kafka (nothing here needs a
consumer); requests go through ``httpx.ASGITransport``."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
from fastapi import FastAPI
from faststream.kafka import TestKafkaBroker
from pydantic import SecretStr

from gnlc_core.db import create_engine, migrate
from gnlc_core.directory import load_csv
from gnlc_core.kafka import make_broker, topics_for
from gnlc_core.service import health_router
from gnlc_core.settings import SAMPLE_DIRECTORY, Settings
from gnlc_scheduler import store
from gnlc_scheduler.api import operator_router
from gnlc_scheduler.app import harden
from gnlc_scheduler.dispatcher import utc_now
from gnlc_scheduler.service import SchedulerService

TOKEN = "test-operator-token"
AUTH = {"authorization": f"Bearer {TOKEN}"}


@dataclass
class OperatorApi:
    app: FastAPI
    client: httpx.AsyncClient
    service: SchedulerService


def scheduler_app(
    tmp: Path, database_url: str | None = None
) -> tuple[FastAPI, SchedulerService, Settings]:
    settings = Settings(
        operator_token=SecretStr(TOKEN),
        database_url=SecretStr(database_url or f"sqlite+aiosqlite:///{tmp / 'scheduler.db'}"),
        topic_prefix="test.",
    )
    assert settings.database_url is not None
    broker = make_broker(settings, client_id="test")
    engine = create_engine(settings.database_url.get_secret_value())
    service = SchedulerService(settings, broker, topics_for(settings), engine)
    app = FastAPI(title="GNLC Notify scheduler")
    app.include_router(health_router(broker))
    app.include_router(operator_router(settings, service))
    harden(app)
    return app, service, settings


async def prepare(service: SchedulerService) -> None:
    """The schema and the sample directory (no dispatcher: nothing is emitted)."""
    await migrate(service.engine, "scheduler")
    await store.import_cities(service.engine, load_csv(SAMPLE_DIRECTORY), utc_now())
    service.directory = await store.load_directory(service.engine)


@asynccontextmanager
async def operator_api(tmp: Path, database_url: str | None = None) -> AsyncIterator[OperatorApi]:
    app, service, _settings = scheduler_app(tmp, database_url)
    async with TestKafkaBroker(service._broker):
        await prepare(service)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://scheduler", headers=AUTH, timeout=60
        ) as client:
            yield OperatorApi(app, client, service)
        await service.engine.dispose()
