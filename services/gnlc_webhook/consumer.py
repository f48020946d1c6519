"""The webhook consumer: one event in, one signed POST per subscribed endpoint."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime

import httpx
from faststream.kafka import KafkaBroker
from faststream.kafka.annotations import KafkaMessage

from gnlc_core.consumer import parse_or_dead_letter
from gnlc_core.events import AnnouncementPublishedEvent, DeadlineReminderEvent, encode_event
from gnlc_core.kafka import Topics, publish_dead_letter
from gnlc_core.logs import get_logger
from gnlc_webhook.partners import Endpoint
from gnlc_webhook.signing import signed_headers

log = get_logger(__name__)


class WebhookConsumer:
    def __init__(
        self,
        broker: KafkaBroker,
        topics: Topics,
        endpoints: list[Endpoint],
        client: httpx.AsyncClient,
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._broker = broker
        self._topics = topics
        self._endpoints = endpoints
        self._client = client
        self._clock = clock

    async def handle(self, message: KafkaMessage) -> None:
        event = await parse_or_dead_letter(
            self._broker, message, dead_letter_topic=self._topics.webhook_dead_letter
        )
        if event is None:
            return
        body = encode_event(event)
        targets = [e for e in self._endpoints if e.wants(event.type)]
        await asyncio.gather(*(self._deliver(event, body, endpoint) for endpoint in targets))

    async def _deliver(
        self,
        event: DeadlineReminderEvent | AnnouncementPublishedEvent,
        body: bytes,
        endpoint: Endpoint,
    ) -> None:
        headers = signed_headers(
            message_id=event.id,
            timestamp=self._clock(),
            body=body,
            secrets=[endpoint.secret.get_secret_value()],
        )
        try:
            response = await self._client.post(endpoint.url, content=body, headers=headers)
            if 200 <= response.status_code < 300:
                log.info(
                    "webhook delivered",
                    event_id=event.id,
                    endpoint=endpoint.id,
                    status=response.status_code,
                )
                return
            reason = f"http {response.status_code}"
        except httpx.HTTPError as exc:
            reason = f"http: {type(exc).__name__}: {exc}"
        await publish_dead_letter(
            self._broker,
            self._topics.webhook_dead_letter,
            value=body,
            key=event.partitionkey.encode(),
            reason=reason,
            source_topic=self._topics.for_event_type(event.type),
            recipient=endpoint.id,
        )
        log.warning("webhook failed", event_id=event.id, endpoint=endpoint.id, reason=reason)
