"""The status service: a consumer group on ``notice.status`` folding receipts into its own
database, and the status API over it."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from aiokafka import ConsumerRecord
from fastapi import FastAPI
from faststream.kafka.annotations import KafkaMessage
from pydantic import ValidationError

from gnlc_core.db import create_engine, database_url, migrate
from gnlc_core.events import NoticeStatus, NoticeStatusEvent
from gnlc_core.kafka import (
    AT_LEAST_ONCE,
    CHANNELS,
    GROUP_HEARTBEAT_MS,
    GROUP_SESSION_MS,
    make_broker,
    records_only,
    topics_for,
)
from gnlc_core.logs import get_logger
from gnlc_core.membership import Membership
from gnlc_core.service import build_app, health_router
from gnlc_core.settings import Settings
from gnlc_status import dead_letters, view
from gnlc_status.api import caller_of, status_router
from gnlc_status.dead_letter_api import dead_letter_router
from gnlc_status.partners import PartnerDirectory

log = get_logger(__name__)
SERVICE = "status"


def parse_receipts(
    records: Sequence[ConsumerRecord[Any, Any]],
) -> tuple[list[NoticeStatus], int]:
    """The receipts among ``records``, and how many records were not receipts (skipped,
    with a warning: a view must not stop on one bad record)."""
    receipts: list[NoticeStatus] = []
    bad = 0
    for record in records:
        try:
            receipts.append(NoticeStatusEvent.model_validate_json(record.value or b"").data)
        except ValidationError as exc:
            bad += 1
            log.warning(
                "not a receipt: skipped",
                topic=record.topic,
                partition=record.partition,
                offset=record.offset,
                error=str(exc.errors(include_url=False)[:1])[:300],
            )
    return receipts, bad


def create_app(settings: Settings) -> FastAPI:
    broker = make_broker(settings, client_id="gnlc-status")
    topics = topics_for(settings)
    engine = create_engine(database_url(settings, SERVICE))
    partners = PartnerDirectory(settings.status_webhook_api_url)
    membership = Membership()
    migrated = False

    async def handle_batch(message: KafkaMessage) -> None:
        raw = message.raw_message
        records: Sequence[ConsumerRecord[Any, Any]] = (
            raw if isinstance(raw, tuple | list) else (raw,)
        )
        started = time.monotonic()
        receipts, bad = parse_receipts(records)
        touched = await view.apply(engine, receipts)
        log.debug(
            "receipts applied",
            records=len(records),
            notices=touched,
            skipped=bad,
            seconds=round(time.monotonic() - started, 3),
        )

    broker.subscriber(
        topics.notice_status,
        group_id=topics.group(SERVICE),
        ack_policy=AT_LEAST_ONCE,  # committed after the view's transaction
        auto_offset_reset="earliest",
        batch=True,
        max_records=settings.status_batch_size,
        listener=membership,
        decoder=records_only,
        session_timeout_ms=GROUP_SESSION_MS,
        heartbeat_interval_ms=GROUP_HEARTBEAT_MS,
    )(handle_batch)

    async def keep_dead_letters(message: KafkaMessage) -> None:
        raw = message.raw_message
        records: Sequence[ConsumerRecord[Any, Any]] = (
            raw if isinstance(raw, tuple | list) else (raw,)
        )
        rows = [
            dead_letters.parked(
                topics,
                topic=r.topic,
                partition=r.partition,
                offset=r.offset,
                timestamp_ms=r.timestamp,
                key=r.key,
                value=r.value,
                headers=list(r.headers or ()),
            )
            for r in records
        ]
        await dead_letters.record(engine, rows)
        log.info("dead letters kept", records=len(rows))

    broker.subscriber(
        topics.scheduler_dead_letter,
        *(topics.dead_letter(channel) for channel in CHANNELS),
        group_id=topics.group(f"{SERVICE}-dead-letters"),
        ack_policy=AT_LEAST_ONCE,  # committed after the rows are written
        auto_offset_reset="earliest",
        batch=True,
        max_records=500,
        decoder=records_only,
        session_timeout_ms=GROUP_SESSION_MS,
        heartbeat_interval_ms=GROUP_HEARTBEAT_MS,
    )(keep_dead_letters)

    async def publish(topic: str, key: bytes | None, value: bytes, headers: dict[str, str]) -> None:
        await broker.publish(value, topic=topic, key=key, headers=headers)

    async def start_database() -> None:
        nonlocal migrated
        await migrate(engine, SERVICE)  # before the broker starts: no batch before it
        migrated = True

    def database_migrated() -> bool:
        return migrated

    def consuming() -> bool:
        return membership.joined

    async def stop() -> None:
        await partners.aclose()
        await engine.dispose()

    return build_app(
        title="GNLC Notify status view",
        settings=settings,
        broker=broker,
        routers=[
            health_router(broker, database_migrated, consuming, database=engine),
            status_router(settings, engine, partners),
            dead_letter_router(topics, engine, caller_of(settings, partners), publish),
        ],
        before_consuming=[start_database],
        on_shutdown=[stop],
    )
