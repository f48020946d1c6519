"""Prometheus metrics shared by every service: one ``CollectorRegistry`` per service (never
the process-wide default, so services run in one process never see each other's series),
served at ``GET /metrics`` by ``build_app``.

What lives here:

- ``ServiceMetrics``: the registry, what runs before each scrape (``refresh``: values read
  at scrape time, such as consumer lag or rows waiting in a table) and the ``/metrics`` route;
- ``HttpMetrics``: an ASGI middleware counting API requests by route *template* (never the
  raw path) and status, with a duration histogram;
- ``NoticeMetrics``: a ``gnlc_core.ledger`` listener: notices by channel, state and reason,
  delivery latency (event time to delivered) and attempts per terminal outcome;
- ``DeadLetters``: a FastStream middleware counting what is published to dead-letter topics;
- ``reason_of``: the free-text reasons of the ledger mapped to a small, bounded set.

Labels stay bounded: no event ids, city ids or recipients. The one exception is the webhook
endpoint id on the endpoint-health gauges (endpoints are few, and configured by operators).
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from fastapi import APIRouter, Response
from faststream import BaseMiddleware
from faststream.kafka.prometheus import KafkaPrometheusMiddleware
from faststream.response import PublishCommand
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gnlc_core.ledger import TERMINAL, Notice, Status
from gnlc_core.logs import get_logger

log = get_logger(__name__)

PREFIX = "gnlc"
#: How long everything that runs before a scrape may take together; a scrape never hangs.
REFRESH_TIMEOUT_SECONDS = 2.0

#: Delivery latency, event time to delivered: from a fast send to a retry many hours later.
LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 1800, 7200, 36000, 86400)
#: API request durations.
HTTP_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
#: Requests made for a notice (the retry schedules have at most 8 attempts).
ATTEMPT_BUCKETS = (0, 1, 2, 3, 4, 5, 6, 7, 8, 10)
#: Scheduler lateness, due time to published.
LATENESS_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 300, 3600)

Refresh = Callable[[], Awaitable[None]]


class ServiceMetrics:
    """A service's registry and what must run before each scrape."""

    def __init__(self, service: str) -> None:
        self.service = service
        self.registry = CollectorRegistry(auto_describe=True)
        self._refreshers: list[Refresh] = []
        self._starters: list[Refresh] = []
        self._stoppers: list[Refresh] = []
        self.http = HttpFamilies(self.registry)

    def before_scrape(self, refresh: Refresh) -> None:
        """Run ``refresh`` before every scrape (with the others, bounded in time)."""
        self._refreshers.append(refresh)

    def on_start(self, start: Refresh, stop: Refresh | None = None) -> None:
        """Run ``start`` when the service has started (``build_app``'s lifespan), ``stop``
        when it stops. A failing start is logged: metrics never stop a service."""
        self._starters.append(start)
        if stop is not None:
            self._stoppers.append(stop)

    async def start(self) -> None:
        for start in self._starters:
            try:
                await start()
            except Exception as exc:
                log.warning("metrics start failed", error=f"{type(exc).__name__}: {exc}")

    async def stop(self) -> None:
        for stop in self._stoppers:
            try:
                await stop()
            except Exception as exc:
                log.warning("metrics stop failed", error=f"{type(exc).__name__}: {exc}")

    async def refresh(self) -> None:
        async def guarded(refresh: Refresh) -> None:
            try:
                await refresh()
            except Exception as exc:  # a scrape shows the last values, never an error
                log.warning("metrics refresh failed", error=f"{type(exc).__name__}: {exc}")

        if not self._refreshers:
            return
        tasks = [asyncio.ensure_future(guarded(r)) for r in self._refreshers]
        _done, pending = await asyncio.wait(tasks, timeout=REFRESH_TIMEOUT_SECONDS)
        for task in pending:
            task.cancel()
        if pending:
            log.warning("metrics refresh timed out", pending=len(pending))

    async def exposition(self) -> bytes:
        await self.refresh()
        return generate_latest(self.registry)

    def router(self) -> APIRouter:
        router = APIRouter(tags=["metrics"])

        @router.get("/metrics", response_class=Response, include_in_schema=False)
        async def metrics() -> Response:
            return Response(await self.exposition(), media_type=CONTENT_TYPE_LATEST)

        return router

    def broker_middlewares(self) -> tuple[Any, ...]:
        """FastStream middlewares for the service's broker: FastStream's own Kafka metrics
        (``gnlc_kafka_*``: messages received, processed, published, by topic) and the
        dead-letter counter."""
        return (
            KafkaPrometheusMiddleware(
                registry=self.registry, app_name=self.service, metrics_prefix=f"{PREFIX}_kafka"
            ),
            DeadLetters(self.registry, channels=[self.service]),
        )


# -- HTTP -------------------------------------------------------------------------------

#: The route label of a request that matched no route (so unknown paths add no series).
UNMATCHED = "<unmatched>"


class HttpFamilies:
    """``gnlc_http_requests_total{route,method,status}`` and
    ``gnlc_http_request_duration_seconds{route,method}``, counted by ``HttpMetrics``."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.requests = Counter(
            f"{PREFIX}_http_requests",
            "HTTP requests answered, by route template, method and status code",
            ["route", "method", "status"],
            registry=registry,
        )
        self.duration = Histogram(
            f"{PREFIX}_http_request_duration_seconds",
            "Time to answer an HTTP request, by route template and method",
            ["route", "method"],
            buckets=HTTP_BUCKETS,
            registry=registry,
        )


class HttpMetrics:
    """ASGI middleware counting every request into ``families`` by the matched route's
    template (``/v1/deadlines/{deadline_id}``), never the raw path."""

    def __init__(self, app: ASGIApp, families: HttpFamilies) -> None:
        self.app = app
        self.requests = families.requests
        self.duration = families.duration

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 500
        started = time.perf_counter()

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            route = route_template(scope)
            method = scope.get("method", "GET")
            self.requests.labels(route, method, str(status)).inc()
            self.duration.labels(route, method).observe(time.perf_counter() - started)


def route_template(scope: Scope) -> str:
    """The path template of the route that answered (set by the router), or ``UNMATCHED``."""
    route = scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) else UNMATCHED


# -- notices -----------------------------------------------------------------------------


class Reason(StrEnum):
    """Why a notice is in its state, bounded (the ledger's text is free)."""

    NONE = "none"
    UNSUBSCRIBED = "unsubscribed"
    CATEGORY_OFF = "category_off"  # the contact turned the announcement's category off
    CONTACT_BOUNCING = "contact_bouncing"  # dropped: the address bounced before
    HARD_BOUNCE = "hard_bounce"
    SOFT_BOUNCES = "soft_bounces"  # the threshold of soft bounces reached
    NOT_WANTED = "not_wanted"  # should_send said no (e.g. the city has submitted)
    NOT_IN_DIRECTORY = "not_in_directory"
    ENDPOINT_INACTIVE = "endpoint_inactive"  # paused, disabled or deleted
    ENDPOINT_GONE = "endpoint_gone"  # HTTP 410
    ENDPOINT_SLOW = "endpoint_slow"  # held, deferred, handed off, slowed down, busy
    RELEASED = "released"
    SMTP_TRANSIENT = "smtp_transient"  # an SMTP 4xx
    SMTP_PERMANENT = "smtp_permanent"  # an SMTP 5xx
    INVALID_ADDRESS = "invalid_address"
    HTTP_REDIRECT = "http_3xx"
    HTTP_CLIENT_ERROR = "http_4xx"
    HTTP_RATE_LIMITED = "http_429"
    HTTP_SERVER_ERROR = "http_5xx"
    TIMEOUT = "timeout"
    CONNECTION = "connection"
    OTHER = "other"


#: Ordered rules: the first pattern found in the reason (lower case) names it.
_RULES: tuple[tuple[re.Pattern[str], Reason], ...] = tuple(
    (re.compile(pattern), reason)
    for pattern, reason in (
        (r"contact bouncing", Reason.CONTACT_BOUNCING),
        (r"^hard bounce", Reason.HARD_BOUNCE),
        (r"soft bounces? ", Reason.SOFT_BOUNCES),
        (r"unsubscribed", Reason.UNSUBSCRIBED),
        (r"^category off", Reason.CATEGORY_OFF),
        (r"should_send|no longer applies", Reason.NOT_WANTED),
        (r"no longer in the directory", Reason.NOT_IN_DIRECTORY),
        (r"endpoint (is paused|is disabled|was deleted)", Reason.ENDPOINT_INACTIVE),
        (r"http 410|410 gone|endpoint is gone", Reason.ENDPOINT_GONE),
        (r"^released", Reason.RELEASED),
        (
            r"^held|handed off|slow down|endpoint busy|lane is paused|free slot",
            Reason.ENDPOINT_SLOW,
        ),
        (r"invalid address", Reason.INVALID_ADDRESS),
        (r"smtp 4\d\d", Reason.SMTP_TRANSIENT),
        (r"smtp 5\d\d", Reason.SMTP_PERMANENT),
        (r"http 429", Reason.HTTP_RATE_LIMITED),
        (r"http 3\d\d", Reason.HTTP_REDIRECT),
        (r"http 4\d\d", Reason.HTTP_CLIENT_ERROR),
        (r"http 5\d\d", Reason.HTTP_SERVER_ERROR),
        (r"timeout|timed out|no answer before", Reason.TIMEOUT),
        (
            r"connect|refused|disconnected|reset|unreachable|oserror|ssl|tls|"
            r"name resolution|nodename|dns|ssrf",
            Reason.CONNECTION,
        ),
    )
)


def reason_of(error: str | None) -> Reason:
    """The bounded reason label of a ledger row's free-text ``error`` (pure)."""
    if not error:
        return Reason.NONE
    text = error.lower()
    for pattern, reason in _RULES:
        if pattern.search(text):
            return reason
    return Reason.OTHER


class NoticeMetrics:
    """Follows the ledger (``Ledger.listen``): every notice state it records."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.notices = Counter(
            f"{PREFIX}_notices",
            "Notice states recorded in the ledger, by channel, state and bounded reason",
            ["channel", "state", "reason"],
            registry=registry,
        )
        self.latency = Histogram(
            f"{PREFIX}_delivery_latency_seconds",
            "Time from the event's time to its notice being delivered, by channel",
            ["channel"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.attempts = Histogram(
            f"{PREFIX}_notice_attempts",
            "Requests made for a notice (SMTP sends, HTTP POSTs) by the time it reached a "
            "terminal state, by channel and that state",
            ["channel", "state"],
            buckets=ATTEMPT_BUCKETS,
            registry=registry,
        )

        # the labelled children, looked up once each (``labels`` costs more than ``inc``)
        self._counted: dict[tuple[str, str, str], Any] = {}
        self._attempted: dict[tuple[str, str], Any] = {}

    async def __call__(self, channel: str, rows: Sequence[Notice]) -> None:
        now = datetime.now(UTC)
        latency = None
        counts: dict[tuple[str, str, str], int] = {}  # one increment per series and batch
        for row in rows:
            state = row.status.value
            key = (channel, state, reason_of(row.error).value)
            counts[key] = counts.get(key, 0) + 1
            if row.status in TERMINAL:
                if (attempts := self._attempted.get((channel, state))) is None:
                    attempts = self._attempted[(channel, state)] = self.attempts.labels(
                        channel, state
                    )
                attempts.observe(row.attempts)
            if row.status is Status.DELIVERED and row.event_time is not None:
                latency = latency or self.latency.labels(channel)
                latency.observe(max((now - row.event_time).total_seconds(), 0.0))
        for key, count in counts.items():
            if (counter := self._counted.get(key)) is None:
                counter = self._counted[key] = self.notices.labels(*key)
            counter.inc(count)


# -- dead letters ---------------------------------------------------------------------------

DEAD_LETTER_SUFFIX = ".dead-letter"


def dead_letter_channel(topic: str) -> str | None:
    """``email`` for ``<prefix>email.dead-letter``; None for a topic that is not one (pure).
    The channel is the last dotted name before the suffix, so the prefix never shows."""
    if not topic.endswith(DEAD_LETTER_SUFFIX):
        return None
    stem = topic[: -len(DEAD_LETTER_SUFFIX)]
    return stem.rsplit(".", 1)[-1]


class DeadLetters:
    """A FastStream broker middleware (factory): ``gnlc_dead_letters_total{channel}``
    counts every record published to a dead-letter topic, whoever publishes it."""

    def __init__(self, registry: CollectorRegistry, *, channels: Sequence[str] = ()) -> None:
        self.counter = Counter(
            f"{PREFIX}_dead_letters",
            "Records parked on a dead-letter topic, by channel (email, webhook, scheduler)",
            ["channel"],
            registry=registry,
        )
        for channel in channels:  # shown from the start, so increase() sees the first one
            self.counter.labels(channel)

    def __call__(self, msg: Any, /, **kwargs: Any) -> BaseMiddleware:
        return _DeadLetterScope(msg, counter=self.counter, **kwargs)


class _DeadLetterScope(BaseMiddleware):
    def __init__(self, msg: Any, /, *, counter: Counter, **kwargs: Any) -> None:
        super().__init__(msg, **kwargs)
        self._counter = counter

    async def publish_scope(
        self, call_next: Callable[[PublishCommand], Awaitable[Any]], cmd: PublishCommand
    ) -> Any:
        result = await call_next(cmd)
        channel = dead_letter_channel(str(cmd.destination))
        if channel is not None:
            self._counter.labels(channel).inc(max(len(cmd.batch_bodies), 1))
        return result
