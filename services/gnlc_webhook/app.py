"""The webhook service: the consumer group, its retry tiers, the partner/operator API and
the health endpoints, in one process."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import cast

from aiokafka import ConsumerRecord
from fastapi import FastAPI
from faststream.kafka.annotations import KafkaMessage
from faststream.middlewares import AckPolicy

from gnlc_core.commits import Commits, next_offsets
from gnlc_core.db import create_engine, database_url, migrate
from gnlc_core.directory import Directory
from gnlc_core.fence import Fence
from gnlc_core.kafka import (
    GROUP_HEARTBEAT_MS,
    GROUP_SESSION_MS,
    make_broker,
    records_only,
    topics_for,
)
from gnlc_core.lag import Group, watch_lag
from gnlc_core.logs import get_logger
from gnlc_core.membership import Membership
from gnlc_core.metrics import NoticeMetrics, ServiceMetrics
from gnlc_core.priority import FirstAttempts
from gnlc_core.receipts import ReceiptPublisher
from gnlc_core.retry import Due, Retrier, RetrySchedule
from gnlc_core.service import build_app, health_router, worker_settings
from gnlc_core.settings import Settings
from gnlc_core.views import DirectoryView, SubmissionView
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
    metrics = ServiceMetrics("webhook")
    broker = make_broker(
        settings, client_id="gnlc-webhook", middlewares=metrics.broker_middlewares()
    )
    topics = topics_for(settings)
    engine = create_engine(database_url(settings, CHANNEL))
    store = Store(engine)
    directory = DirectoryView(settings.kafka_bootstrap_servers, topics.directory)
    submissions = SubmissionView(settings.kafka_bootstrap_servers, topics.deadline_submitted)

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
    schedule = retry_schedule(settings)
    retrier = Retrier(
        broker, topics, CHANNEL, schedule, dead_letter_topic=topics.webhook_dead_letter
    )
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
    )

    def partner_of(endpoint_id: str) -> dict[str, str]:
        endpoint = registry.get(endpoint_id)
        return {"partner_id": endpoint.partner_id} if endpoint is not None else {}

    consumer.ledger.listen(
        ReceiptPublisher(
            broker,
            topics,
            source="/gnlc-notify/webhook",
            subjects=consumer.subjects,
            recipient_facts=partner_of,
        )
    )
    consumer.ledger.listen(NoticeMetrics(metrics.registry))
    WebhookMetrics(metrics, registry, store)
    watch_lag(
        metrics,
        settings.kafka_bootstrap_servers,
        [
            Group(topics.group(CHANNEL), topics.domain),
            Group(topics.group(f"{CHANNEL}-retry"), retrier.topic_names, retry_channel=CHANNEL),
        ],
    )
    ready = asyncio.Event()  # the broker starts before the hooks: handlers wait for them

    commits = Commits()
    fence = Fence()
    first_attempts = FirstAttempts()  # the retry tiers yield to them
    membership = Membership(commits.listener(also=fence.drop))

    async def handle_batch(message: KafkaMessage) -> None:
        await ready.wait()
        records = cast("tuple[ConsumerRecord[bytes, bytes], ...]", message.raw_message)
        offsets = next_offsets(records)
        try:
            with first_attempts.handling():
                await consumer.handle_batch(message, fence)
        except Exception:
            fence.drop(offsets)  # some of the batch may be handled: check it all next time
            await message.nack()  # read the batch again rather than commit past it
            raise
        commits.finish(message.consumer, offsets)

    async def deliver_due(due: Sequence[Due]) -> None:
        await ready.wait()
        await consumer.deliver_due(due)

    broker.subscriber(
        *topics.domain,
        group_id=topics.group(CHANNEL),
        ack_policy=AckPolicy.MANUAL,  # committed by `commits` once finished
        auto_offset_reset="earliest",
        batch=True,
        max_records=settings.webhook_batch_size,
        listener=membership,
        decoder=records_only,
        session_timeout_ms=GROUP_SESSION_MS,
        heartbeat_interval_ms=GROUP_HEARTBEAT_MS,
    )(handle_batch)
    retrier.subscribe(
        deliver_due,
        bootstrap_servers=settings.kafka_bootstrap_servers,
        share=first_attempts.share,
    )

    async def start() -> None:
        tiers = asyncio.create_task(retrier.start())  # joins its group meanwhile
        await migrate(engine, "webhook")
        await seed(store, settings, policy, directory.directory)
        await registry.start()
        consumer.start()
        ready.set()
        await tiers
        log.info("webhook endpoints loaded", endpoints=len(registry))

    async def start_views() -> None:
        await directory.start()
        await submissions.start()

    def views_ready() -> bool:
        return directory.ready and submissions.ready

    def consuming() -> bool:
        return membership.joined and retrier.joined

    async def stop() -> None:
        await retrier.stop()  # its deliveries in flight finish first (briefly)
        await directory.stop()
        await submissions.stop()
        await commits.close()
        await broker.stop()  # no new batch; the one in hand finishes first
        await consumer.drain()
        await registry.stop()
        await client.aclose()
        await engine.dispose()

    return build_app(
        title="GNLC Notify webhook service",
        settings=settings,
        broker=broker,
        routers=[
            health_router(broker, views_ready, consuming, database=engine),
            api_router(settings, store, registry, retrier, directory, policy),
        ],
        before_consuming=[start_views],
        on_startup=[start],
        on_shutdown=[stop],
        extra_topics=[*retrier.topic_names, consumer.operations_topic],
        body_limit=lambda _path: MAX_BODY_BYTES,
        metrics=metrics,
    )
