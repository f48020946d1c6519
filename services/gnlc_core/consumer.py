"""What every consumer does with a record before its own work: parse it, or park it."""

from __future__ import annotations

from faststream.kafka import KafkaBroker
from faststream.kafka.message import KafkaMessage
from pydantic import ValidationError

from gnlc_core.errors import message_of
from gnlc_core.events import AnnouncementPublishedEvent, DeadlineReminderEvent, parse_event
from gnlc_core.kafka import publish_dead_letter
from gnlc_core.logs import get_logger

log = get_logger(__name__)


def describe(error: ValidationError) -> str:
    """A one-line account of what is wrong, field by field."""
    return "; ".join(
        f"{'.'.join(str(part) for part in err['loc']) or 'value'}: {message_of(err)}"
        for err in error.errors()
    )


async def parse_or_dead_letter(
    broker: KafkaBroker, message: KafkaMessage, *, dead_letter_topic: str
) -> DeadlineReminderEvent | AnnouncementPublishedEvent | None:
    """The record's event, or ``None`` once an invalid record is on the dead-letter topic."""
    raw = message.raw_message
    try:
        return parse_event(message.body)
    except ValidationError as exc:
        reason = f"invalid event: {describe(exc)}"
    except UnicodeDecodeError:
        reason = "invalid event: record value is not UTF-8 JSON"
    source_topic = getattr(raw, "topic", "")
    await publish_dead_letter(
        broker,
        dead_letter_topic,
        value=message.body,
        key=getattr(raw, "key", None),
        reason=reason,
        source_topic=source_topic,
    )
    log.warning(
        "record dead-lettered",
        topic=source_topic,
        offset=getattr(raw, "offset", None),
        reason=reason,
    )
    return None
