"""The webhook service: the consumer group, its retry tiers, the partner/operator API and
the health endpoints, in one process."""

from __future__ import annotations

from fastapi import FastAPI

from gnlc_core.channel import ChannelRuntime
from gnlc_core.db import create_engine, database_url, migrate
from gnlc_core.directory import Directory
from gnlc_core.fence import Fence
from gnlc_core.logs import get_logger
from gnlc_core.retry import RetrySchedule
from gnlc_core.service import worker_settings
from gnlc_core.settings import Settings
from gnlc_webhook.api import api_router
from gnlc_webhook.consumer import Limits, ShouldSend, WebhookConsumer
from gnlc_webhook.metrics import WebhookMetrics
from gnlc_webhook.partners import seed_partners
from gnlc_webhook.registry import Event, Registry
from gnlc_webhook.ssrf import Policy
from gnlc_webhook.store import EndpointRow, Store
from gnlc_webhook.transport import make_poster
from gnlc_webhook.validation import MAX_BODY_BYTES

log = get_logger(__name__)
CHANNEL = "webhook"


def retry_schedule(settings: Settings) -> RetrySchedule:
    return RetrySchedule(
        delays=settings.webhook_retry_delays,
        jitter=settings.webhook_retry_jitter,
        scale=settings.webhook_retry_time_scale,
    )


def limits_of(settings: Settings) -> Limits:
    return Limits(
        timeout=settings.webhook_timeout_seconds,
        handoff=settings.webhook_handoff_seconds,
        endpoint_concurrency=settings.webhook_endpoint_concurrency,
        endpoint_rate=settings.webhook_endpoint_rate,
        workers=settings.webhook_workers,
        hold_check=settings.webhook_hold_check_seconds,
        slow_down=settings.webhook_slow_down_seconds,
        max_retry_after=settings.webhook_max_retry_after_seconds,
        disable_after=settings.webhook_disable_after_seconds,
        body_limit=settings.webhook_response_body_limit,
    )


async def seed(
    store: Store, settings: Settings, policy: Policy, directory: Directory | None = None
) -> None:
    """Endpoints of the partners file go into the database, checked as the API checks
    them (``gnlc_webhook.partners``); an invalid file stops the start, naming what to fix."""
    if settings.partners_path is not None:
        await seed_partners(store, settings.partners_path, policy=policy, directory=directory)


async def prepare(settings: Settings) -> None:
    """Once per start, before the worker processes: the schema and the partners file."""
    engine = create_engine(database_url(settings, CHANNEL))
    try:
        await migrate(engine, "webhook")
        policy = Policy.parse(
            settings.webhook_allowed_networks, https_only=settings.webhook_https_only
        )
        await seed(Store(engine), settings, policy)
    finally:
        await engine.dispose()


def worker_app() -> FastAPI:
    """The app of one worker process (``GNLC_WEBHOOK_WORKERS`` > 1)."""
    return create_app(worker_settings("webhook"))


def create_app(settings: Settings, *, should_send: ShouldSend | None = None) -> FastAPI:
    schedule = retry_schedule(settings)
    runtime = ChannelRuntime(settings, CHANNEL, schedule, title="GNLC Notify webhook service")
    broker, topics, directory = runtime.broker, runtime.topics, runtime.directory
    submissions, retrier = runtime.submissions, runtime.retrier
    engine = create_engine(database_url(settings, CHANNEL))
    store = Store(engine)

    async def not_submitted(event: Event, endpoint: EndpointRow) -> bool:
        """Issue-3 rule: a reminder whose cities have all submitted is dropped, even in flight."""
        return submissions.still_wanted(event, list(event.data.audience.cities))

    registry = Registry(store, directory, refresh_seconds=settings.webhook_endpoint_refresh_seconds)
    policy = Policy.parse(settings.webhook_allowed_networks, https_only=settings.webhook_https_only)
    client = make_poster(
        policy,
        connect_timeout=settings.webhook_connect_timeout_seconds,
        timeout=settings.webhook_timeout_seconds,
        connections=settings.webhook_concurrency,
        kind=settings.webhook_http_transport,
    )
    fence = Fence()  # offsets committed in the background: which records may be handled
    consumer = WebhookConsumer(
        broker,
        topics,
        store,
        registry,
        client,
        retrier,
        schedule,
        limits=limits_of(settings),
        should_send=should_send or not_submitted,
        fence=fence,
    )

    def partner_of(endpoint_id: str) -> dict[str, str]:
        endpoint = registry.get(endpoint_id)
        return {"partner_id": endpoint.partner_id} if endpoint is not None else {}

    for listener in runtime.listeners(consumer.subjects, partner_of):
        consumer.ledger.listen(listener)
    WebhookMetrics(runtime.metrics, registry, store)
    runtime.consume(
        consumer,
        topics=topics.domain,
        batch_size=settings.webhook_batch_size,
        fence=fence,
        first_attempts_first=True,  # the retry tiers yield to them
    )

    async def start() -> None:
        await migrate(engine, "webhook")
        await seed(store, settings, policy, directory.directory)
        await registry.start()
        consumer.start()
        log.info("webhook endpoints loaded", endpoints=len(registry))

    async def stop() -> None:
        await broker.stop()  # no new batch; the one in hand finishes first
        await runtime.written()  # and its write behind
        await consumer.drain()
        await registry.stop()
        await client.aclose()
        await engine.dispose()

    return runtime.app(
        routers=[api_router(settings, store, registry, retrier, directory, policy)],
        start=start,
        stop=stop,
        database=engine,
        extra_topics=[consumer.operations_topic],
        body_limit=lambda _path: MAX_BODY_BYTES,
    )
