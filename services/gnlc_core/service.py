"""Running a service: its HTTP surface (health, APIs) under uvicorn, its broker in lifespan."""

from __future__ import annotations

import asyncio
import gc
import os
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Mapping, Sequence
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass
from typing import Any

import uvicorn
from fastapi import APIRouter, FastAPI, Response
from faststream.kafka import KafkaBroker
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from gnlc_core import tracing
from gnlc_core.answers import answer_errors
from gnlc_core.kafka import ensure_topics
from gnlc_core.limits import BodyLimit, default_limit
from gnlc_core.logs import configure, get_logger
from gnlc_core.metrics import HttpMetrics, ServiceMetrics
from gnlc_core.settings import Settings

log = get_logger(__name__)

Hook = Callable[[], Awaitable[None]]


AsyncCheck = Callable[[], Awaitable[bool]]

#: How long one readiness check may take; a probe's own timeout must be longer.
CHECK_TIMEOUT_SECONDS = 2.0


@dataclass(frozen=True)
class Readiness:
    """What ``/health/ready`` answers: 503 when a required check fails; 200 otherwise, with
    failing optional checks (a dependency the service works around) listed as degraded."""

    status_code: int
    body: dict[str, Any]


def readiness(required: Mapping[str, bool], optional: Mapping[str, bool]) -> Readiness:
    ready = all(required.values())
    degraded = sorted(name for name, ok in optional.items() if not ok)
    body: dict[str, Any] = {"ready": ready, "checks": {**required, **optional}}
    if degraded:
        body["degraded"] = degraded
    return Readiness(200 if ready else 503, body)


def database_check(engine: AsyncEngine, timeout: float = CHECK_TIMEOUT_SECONDS) -> AsyncCheck:
    """``SELECT 1`` on the service's database within ``timeout``."""

    async def database() -> bool:
        try:
            async with asyncio.timeout(timeout), engine.connect() as connection:
                await connection.execute(text("SELECT 1"))
        except Exception as exc:  # any failure means "not ready"; the reason goes to the log
            log.warning("readiness: database check failed", error=type(exc).__name__)
            return False
        return True

    return database


def tcp_check(host: str, port: int, timeout: float = CHECK_TIMEOUT_SECONDS) -> AsyncCheck:
    """A TCP connection to ``host:port`` opens within ``timeout`` (and is closed again)."""

    async def reachable() -> bool:
        try:
            async with asyncio.timeout(timeout):
                _reader, writer = await asyncio.open_connection(host, port)
        except (OSError, TimeoutError):
            return False
        writer.close()
        with suppress(OSError):
            await writer.wait_closed()
        return True

    return reachable


def health_router(
    broker: KafkaBroker,
    *extra: Callable[[], bool],
    database: AsyncEngine | None = None,
    degraded: Mapping[str, AsyncCheck] | None = None,
) -> APIRouter:
    """``/health/live`` (the process answers) and ``/health/ready``: Kafka answers, so does
    the service's ``database`` (``SELECT 1``) and every ``extra`` check; the ``degraded``
    checks (e.g. the SMTP server) are reported but leave the service ready."""
    router = APIRouter(prefix="/health", tags=["health"])
    optional = dict(degraded or {})

    async def kafka() -> bool:
        return await broker.ping(timeout=CHECK_TIMEOUT_SECONDS)

    probes: dict[str, AsyncCheck] = {"kafka": kafka}
    if database is not None:
        probes["database"] = database_check(database)

    @router.get("/live", status_code=204)
    async def live() -> Response:
        return Response(status_code=204)

    @router.get("/ready")
    async def ready(response: Response) -> dict[str, Any]:
        names = [*probes, *optional]
        checks = [*probes.values(), *optional.values()]  # each bounded by its own timeout
        results = await asyncio.gather(*(check() for check in checks))
        outcome = dict(zip(names, results, strict=True))
        required = {name: outcome[name] for name in probes}
        required.update({check.__name__: check() for check in extra})
        answer = readiness(required, {name: outcome[name] for name in optional})
        response.status_code = answer.status_code
        return answer.body

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
    body_limit: Callable[[str], int] = default_limit,
    metrics: ServiceMetrics | None = None,
) -> FastAPI:
    """A FastAPI app whose lifespan creates the topics, runs ``before_consuming`` (views that
    handlers need must be ready before the first record), starts the broker, then the
    ``on_startup`` hooks. It serves ``metrics`` (a registry of its own when not given) at
    ``/metrics`` and counts every request in it (``gnlc_core.metrics.HttpMetrics``)."""
    metrics = metrics or ServiceMetrics(title)

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
        await metrics.start()
        # What start-up built lives as long as the process: keep it out of the collector's
        # full passes, which otherwise stall the event loop for tens of milliseconds.
        gc.collect()
        gc.freeze()
        gc.set_threshold(*GC_THRESHOLDS)
        log.info("service started", service=title)
        try:
            yield
        finally:
            await metrics.stop()
            for hook in on_shutdown or []:
                await hook()
            await broker.stop()
            log.info("service stopped", service=title)

    app = FastAPI(title=title, lifespan=lifespan)
    app.state.metrics = metrics
    app.add_middleware(BodyLimit, limit_for=body_limit)
    app.add_middleware(HttpMetrics, families=metrics.http)  # outermost: sees every answer
    answer_errors(app)
    for router in [*routers, metrics.router()]:
        app.include_router(router)
    tracing.instrument_app(app)  # the SERVER span of each API request, when tracing is on
    return app


#: The collector's thresholds once started: gen0 as Python's default (700), a middle
#: generation collected every 100 young passes instead of 10. A batch's objects (its jobs,
#: tasks, notices: thousands) live for a few hundred milliseconds; collected every 10 young
#: passes, the middle generation caught them alive twice a batch and moved them to the old
#: one, and those promotions set off a full pass every few thousand deliveries. Measured on
#: a 40,000-event webhook backlog drain (``deploy/bench.sh webhook``, one worker): 1.04-1.08
#: s in the collector and 14 full passes (SQLite) against 0.45-0.48 s and 2, with the
#: longest middle pass at 8-13 ms either way; CPU per delivery 338-344 us against 292-296
#: us (PostgreSQL: 254 against 229 us). Cyclic garbage waits a little longer for its pass.
GC_THRESHOLDS = (700, 100, 10)


def serve(app: FastAPI, *, host: str, port: int) -> None:
    """Run until SIGINT/SIGTERM on uvloop (uvicorn's ``auto`` loop; asyncio's where uvloop is
    not installed); uvicorn's own logging is routed into ours."""
    config = uvicorn.Config(
        app, host=host, port=port, log_config=None, access_log=False, lifespan="on", loop="auto"
    )
    uvicorn.Server(config).run()


#: Shortest operator token a service accepts.
MIN_OPERATOR_TOKEN_LENGTH = 16


def operator_token_problem(settings: Settings, service: str) -> str | None:
    """Why ``service``, which serves the operator API, must not start with these settings:
    no default secrets, so no token (or a short one) is a refusal naming the variable."""
    token = settings.operator_token.get_secret_value().strip() if settings.operator_token else ""
    fix = (
        "set it to a long random value, e.g. "
        "python -c 'import secrets; print(secrets.token_urlsafe(32))'"
    )
    if not token:
        return (
            f"GNLC_OPERATOR_TOKEN is not set: the {service} serves the operator API and has "
            f"no default token; {fix}"
        )
    if len(token) < MIN_OPERATOR_TOKEN_LENGTH:
        return (
            f"GNLC_OPERATOR_TOKEN is too short ({len(token)} characters, at least "
            f"{MIN_OPERATOR_TOKEN_LENGTH}); {fix}"
        )
    return None


def run(
    name: str,
    create_app: Callable[[Settings], FastAPI],
    port: Callable[[Settings], int],
    *,
    operator_api: bool = False,
    workers: Callable[[Settings], int] = lambda _settings: 1,
    worker_factory: str | None = None,
    prepare: Callable[[Settings], Coroutine[Any, Any, None]] | None = None,
) -> None:
    """The ``python -m`` entry point of a service: settings, logs, serve.

    With more than one worker (a service that allows it names a ``worker_factory``,
    ``module:function`` building its app from the environment), ``prepare`` runs once here
    (migrations, seeding), then uvicorn runs that many worker processes on one port, each a
    member of the service's consumer groups; a worker that dies is replaced.

    A service with an ``operator_api`` refuses to start without ``GNLC_OPERATOR_TOKEN``."""
    settings = Settings()
    configure(name, level=settings.log_level, fmt=settings.log_format)
    start_tracing(name)
    problem = operator_token_problem(settings, name) if operator_api else None
    if problem is not None:
        log.error("refusing to start", service=name, reason=problem)
        raise SystemExit(f"{name}: {problem}")
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
    start_tracing(name)
    return settings


def start_tracing(name: str) -> None:
    """This process's tracer provider from the ``OTEL_*`` variables (off by default); a
    setting it cannot honour stops the service, naming the variable."""
    try:
        on = tracing.configure(name)
    except tracing.ConfigError as exc:
        log.error("refusing to start", service=name, reason=str(exc))
        raise SystemExit(f"{name}: {exc}") from None
    if on:
        log.info("tracing on", service=name, exporter=tracing.config_from(os.environ).exporter)
