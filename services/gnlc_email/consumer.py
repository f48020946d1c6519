"""The email consumer: one event in, one message per contact of each city in the audience."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime

import aiosmtplib
from faststream.kafka import KafkaBroker
from faststream.kafka.annotations import KafkaMessage

from gnlc_core.consumer import parse_or_dead_letter
from gnlc_core.directory import City, Directory
from gnlc_core.events import AnnouncementPublishedEvent, DeadlineReminderEvent, encode_event
from gnlc_core.kafka import Topics, publish_dead_letter
from gnlc_core.logs import get_logger
from gnlc_core.settings import Settings
from gnlc_email.message import build_message
from gnlc_email.render import render
from gnlc_email.sender import SmtpPool

log = get_logger(__name__)


class EmailConsumer:
    def __init__(
        self,
        settings: Settings,
        broker: KafkaBroker,
        topics: Topics,
        directory: Directory,
        pool: SmtpPool,
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._settings = settings
        self._broker = broker
        self._topics = topics
        self._directory = directory
        self._pool = pool
        self._clock = clock

    async def handle(self, message: KafkaMessage) -> None:
        event = await parse_or_dead_letter(
            self._broker, message, dead_letter_topic=self._topics.email_dead_letter
        )
        if event is None:
            return
        cities = self._directory.resolve(event.data.audience)
        await asyncio.gather(*(self._deliver(event, city) for city in cities))

    async def _deliver(
        self, event: DeadlineReminderEvent | AnnouncementPublishedEvent, city: City
    ) -> None:
        try:
            rendered = render(event, city)
        except Exception as exc:  # a template bug must not stall the line: park it
            await self._park(event, city.id, f"render: {type(exc).__name__}: {exc}")
            return
        for address in city.contacts:
            message = build_message(
                rendered,
                sender=self._settings.mail_from,
                to_name=city.name,
                to_address=address,
                event_id=event.id,
                sent_at=self._clock(),
                message_id_domain=self._settings.message_id_domain,
                reply_to=self._settings.mail_reply_to,
            )
            try:
                await self._pool.send(message)
            except (aiosmtplib.SMTPException, OSError) as exc:
                await self._park(
                    event, f"{city.id}:{address}", f"smtp: {type(exc).__name__}: {exc}"
                )
                continue
            log.info("email sent", event_id=event.id, event_type=event.type, city=city.id)

    async def _park(
        self,
        event: DeadlineReminderEvent | AnnouncementPublishedEvent,
        recipient: str,
        reason: str,
    ) -> None:
        await publish_dead_letter(
            self._broker,
            self._topics.email_dead_letter,
            value=encode_event(event),
            key=event.partitionkey.encode(),
            reason=reason,
            source_topic=self._topics.for_event_type(event.type),
            recipient=recipient,
        )
        log.warning("email failed", event_id=event.id, recipient=recipient, reason=reason)
