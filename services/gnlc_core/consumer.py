"""What every channel's consumer does with a record before its own work: decode it, or park
it on the channel's dead-letter topic with the reason. Also the default ``should_send``.

``decode`` is pure (the event, or why the record is not one); ``dead_letter`` parks one
record; ``read_batch`` does both for a batch (the records that are no events parked
concurrently) and remembers each event for the receipts.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from aiokafka import ConsumerRecord
from faststream.kafka import KafkaBroker
from pydantic import ValidationError

from gnlc_core.errors import message_of
from gnlc_core.events import (
    AnnouncementPublishedEvent,
    AnyEvent,
    DeadlineReminderEvent,
    parse_any_event,
    parse_event,
)
from gnlc_core.kafka import publish_dead_letter
from gnlc_core.logs import get_logger
from gnlc_core.receipts import Subjects

log = get_logger(__name__)

Event = DeadlineReminderEvent | AnnouncementPublishedEvent
E = TypeVar("E", bound=AnyEvent)
NOT_UTF8 = "invalid event: record value is not UTF-8 JSON"


def describe(error: ValidationError) -> str:
    """A one-line account of what is wrong, field by field."""
    return "; ".join(
        f"{'.'.join(str(part) for part in err['loc']) or 'value'}: {message_of(err)}"
        for err in error.errors()
    )


def decode(value: bytes) -> Event | str:
    """The event in a record's value, or (a string) why it is not a valid one."""
    try:
        return parse_event(value)
    except ValidationError as exc:
        return f"invalid event: {describe(exc)}"
    except UnicodeDecodeError:
        return NOT_UTF8


def decode_any(value: bytes) -> AnyEvent | str:
    """As ``decode``, for a consumer that also reads changes of calendar entries."""
    try:
        return parse_any_event(value)
    except ValidationError as exc:
        return f"invalid event: {describe(exc)}"
    except UnicodeDecodeError:
        return NOT_UTF8


async def dead_letter(
    broker: KafkaBroker, topic: str, record: ConsumerRecord[Any, Any], reason: str
) -> None:
    """Park ``record`` on the dead-letter ``topic`` with ``reason`` (and its source topic)."""
    await publish_dead_letter(
        broker,
        topic,
        value=record.value or b"",
        key=record.key,
        reason=reason,
        source_topic=record.topic,
    )
    log.warning("record dead-lettered", topic=record.topic, offset=record.offset, reason=reason)


@dataclass(frozen=True, slots=True)
class Read(Generic[E]):
    """A record of a batch that is an event: its place in the batch, the record, the event."""

    index: int
    record: ConsumerRecord[Any, Any]
    event: E


async def read_batch(
    records: Sequence[ConsumerRecord[Any, Any]],
    *,
    broker: KafkaBroker,
    dead_letter_topic: str,
    subjects: Subjects,
    decode: Callable[[bytes], E | str],
) -> list[Read[E]]:
    """The events of a batch, in order; every record that is not one parked on
    ``dead_letter_topic`` with the reason (concurrently, before this returns). Each event
    is remembered in ``subjects`` (what the receipts say of it)."""
    read: list[Read[E]] = []
    parked = []
    for index, record in enumerate(records):
        event = decode(record.value or b"")
        if isinstance(event, str):  # why it is not an event
            parked.append(dead_letter(broker, dead_letter_topic, record, event))
            continue
        subjects.remember(event)
        read.append(Read(index, record, event))
    if parked:
        await asyncio.gather(*parked)
    return read


async def always(_event: Any, _recipient: Any) -> bool:
    """The default ``should_send`` of every channel: every recipient gets the notice."""
    return True
