"""The email service: a Kafka consumer group plus its health endpoints."""

from __future__ import annotations

from fastapi import FastAPI

from gnlc_core.directory import load_csv
from gnlc_core.kafka import AT_LEAST_ONCE, make_broker, topics_for
from gnlc_core.service import build_app, health_router
from gnlc_core.settings import Settings
from gnlc_email.consumer import EmailConsumer
from gnlc_email.sender import SmtpPool


def create_app(settings: Settings) -> FastAPI:
    broker = make_broker(settings, client_id="gnlc-email")
    topics = topics_for(settings)
    pool = SmtpPool(settings)
    consumer = EmailConsumer(settings, broker, topics, load_csv(settings.directory_path), pool)
    broker.subscriber(
        *topics.domain,
        group_id=topics.group("email"),
        ack_policy=AT_LEAST_ONCE,
        auto_offset_reset="earliest",
    )(consumer.handle)

    return build_app(
        title="GNLC Notify email consumer",
        settings=settings,
        broker=broker,
        routers=[health_router(broker)],
        on_shutdown=[pool.close],
    )
