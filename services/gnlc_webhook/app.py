"""The webhook service: a Kafka consumer group plus its health endpoints."""

from __future__ import annotations

import httpx
from fastapi import FastAPI

from gnlc_core.kafka import AT_LEAST_ONCE, make_broker, topics_for
from gnlc_core.service import build_app, health_router
from gnlc_core.settings import Settings
from gnlc_webhook.consumer import WebhookConsumer
from gnlc_webhook.partners import load_endpoints


def create_app(settings: Settings) -> FastAPI:
    broker = make_broker(settings, client_id="gnlc-webhook")
    topics = topics_for(settings)
    endpoints = load_endpoints(settings.partners_path) if settings.partners_path else []
    client = httpx.AsyncClient(
        timeout=httpx.Timeout(
            settings.webhook_timeout_seconds, connect=settings.webhook_connect_timeout_seconds
        ),
        limits=httpx.Limits(
            max_connections=settings.webhook_concurrency,
            max_keepalive_connections=settings.webhook_concurrency,
        ),
        follow_redirects=False,
        headers={"user-agent": "gnlc-notify-webhooks/0.1"},
    )
    consumer = WebhookConsumer(broker, topics, endpoints, client)
    broker.subscriber(
        *topics.domain,
        group_id=topics.group("webhook"),
        ack_policy=AT_LEAST_ONCE,
        auto_offset_reset="earliest",
    )(consumer.handle)

    return build_app(
        title="GNLC Notify webhook consumer",
        settings=settings,
        broker=broker,
        routers=[health_router(broker)],
        on_shutdown=[client.aclose],
    )
