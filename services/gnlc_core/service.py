"""Running a service: its HTTP surface (health, APIs) under uvicorn, its broker in lifespan."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Sequence
from contextlib import asynccontextmanager
from typing import Any

import uvicorn
from fastapi import APIRouter, FastAPI, Response
from faststream.kafka import KafkaBroker

from gnlc_core.answers import answer_errors
from gnlc_core.kafka import ensure_topics
from gnlc_core.logs import configure, get_logger
from gnlc_core.settings import Settings

log = get_logger(__name__)

Hook = Callable[[], Awaitable[None]]


def health_router(broker: KafkaBroker, *extra: Callable[[], bool]) -> APIRouter:
    """``/health/live`` (the process answers) and ``/health/ready`` (Kafka answers, and so
    does every extra check)."""
    router = APIRouter(prefix="/health", tags=["health"])

    @router.get("/live", status_code=204)
    async def live() -> Response:
        return Response(status_code=204)

    @router.get("/ready")
    async def ready(response: Response) -> dict[str, Any]:
        kafka_ok = await broker.ping(timeout=3.0)
        checks = {"kafka": kafka_ok, **{check.__name__: check() for check in extra}}
        if not all(checks.values()):
            response.status_code = 503
        return {"ready": all(checks.values()), "checks": checks}

    return router


def build_app(
    *,
    title: str,
    settings: Settings,
    broker: KafkaBroker,
    routers: list[APIRouter],
    on_startup: list[Hook] | None = None,
    on_shutdown: list[Hook] | None = None,
    extra_topics: Sequence[str] = (),
    before_consuming: list[Hook] | None = None,
) -> FastAPI:
    """A FastAPI app whose lifespan creates the topics, runs ``before_consuming`` (views that
    handlers need must be ready before the first record), starts the broker, then the
    ``on_startup`` hooks."""

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        created = await ensure_topics(settings, extra_topics)
        if created:
            log.info("topics created", topics=created)
        for hook in before_consuming or []:
            await hook()
        await broker.start()
        for hook in on_startup or []:
            await hook()
        # What start-up built lives as long as the process: keep it out of the collector's
        # full passes, which otherwise stall the event loop for tens of milliseconds.
        gc.collect()
        gc.freeze()
        log.info("service started", service=title)
        try:
            yield
        finally:
            for hook in on_shutdown or []:
                await hook()
            await broker.stop()
            log.info("service stopped", service=title)

    app = FastAPI(title=title, lifespan=lifespan)
    answer_errors(app)
    for router in routers:
        app.include_router(router)
    return app


def serve(app: FastAPI, *, host: str, port: int) -> None:
    """Run until SIGINT/SIGTERM on uvloop (uvicorn's ``auto`` loop; asyncio's where uvloop is
    not installed); uvicorn's own logging is routed into ours."""
    config = uvicorn.Config(
        app, host=host, port=port, log_config=None, access_log=False, lifespan="on", loop="auto"
    )
    uvicorn.Server(config).run()


def run(
    name: str,
    create_app: Callable[[Settings], FastAPI],
    port: Callable[[Settings], int],
    *,
    workers: Callable[[Settings], int] = lambda _settings: 1,
    worker_factory: str | None = None,
    prepare: Callable[[Settings], Coroutine[Any, Any, None]] | None = None,
) -> None:
    """The ``python -m`` entry point of a service: settings, logs, serve.

    With more than one worker (a service that allows it names a ``worker_factory``,
    ``module:function`` building its app from the environment), ``prepare`` runs once here
    (migrations, seeding), then uvicorn runs that many worker processes on one port, each a
    member of the service's consumer groups; a worker that dies is replaced."""
    settings = Settings()
    configure(name, level=settings.log_level, fmt=settings.log_format)
    try:
        _run(name, create_app, port, settings, workers, worker_factory, prepare)
    except KeyboardInterrupt:  # SIGINT outside uvicorn's own handling (start-up, workers)
        log.info("interrupted; stopped", service=name)


def _run(
    name: str,
    create_app: Callable[[Settings], FastAPI],
    port: Callable[[Settings], int],
    settings: Settings,
    workers: Callable[[Settings], int],
    worker_factory: str | None,
    prepare: Callable[[Settings], Coroutine[Any, Any, None]] | None,
) -> None:
    count = workers(settings)
    if count <= 1 or worker_factory is None:
        serve(create_app(settings), host=settings.http_host, port=port(settings))
        return
    if prepare is not None:
        asyncio.run(prepare(settings))
    log.info("starting workers", service=name, workers=count)
    uvicorn.run(
        worker_factory,
        factory=True,
        workers=count,
        host=settings.http_host,
        port=port(settings),
        log_config=None,
        access_log=False,
        lifespan="on",
        loop="auto",
    )


def worker_settings(name: str) -> Settings:
    """Settings and logs inside a worker process (spawned: nothing is inherited)."""
    settings = Settings()
    configure(name, level=settings.log_level, fmt=settings.log_format)
    return settings
