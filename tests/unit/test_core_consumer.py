"""What every channel does with a record first (``gnlc_core.consumer``), table-driven."""

from __future__ import annotations

from pathlib import Path
from typing import cast

import pytest
from aiokafka import ConsumerRecord
from faststream.kafka import KafkaBroker

from gnlc_core.consumer import always, decode, read_batch
from gnlc_core.events import DeadlineReminderEvent
from gnlc_core.kafka import REASON_HEADER, SOURCE_TOPIC_HEADER
from gnlc_core.receipts import Subjects
from tests.unit.kafka_fakes import RecordingBroker, record

EXAMPLE = (
    Path(__file__).resolve().parents[2]
    / "schemas/examples/deadline.reminder/valid/overdue-minimal.json"
)


def test_a_valid_record_is_its_event() -> None:
    event = decode(EXAMPLE.read_bytes())
    assert isinstance(event, DeadlineReminderEvent)
    assert event.id == "1fbcfa17-9717-5eed-b918-c4062534eda3"


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (b"", "invalid event: value: Invalid JSON"),
        (b"{not json", "invalid event: value: Invalid JSON"),
        (b"[]", "invalid event: "),
        (b'{"specversion": "1.0", "type": "deadline.reminder"}', "invalid event: "),
        (b'"\\ud800"', "invalid event: "),
    ],
)
def test_anything_else_is_the_reason_it_is_not_an_event(value: bytes, reason: str) -> None:
    found = decode(value)
    assert isinstance(found, str)
    assert found.startswith(reason)


async def test_the_default_should_send_says_yes() -> None:
    assert await always(object(), object()) is True


def _record(offset: int, value: bytes) -> ConsumerRecord[bytes, bytes]:
    return record("t.deadline.reminder", offset, value)


@pytest.mark.parametrize(
    ("values", "read", "parked"),
    [
        ([], [], 0),
        ([EXAMPLE.read_bytes()], [0], 0),
        ([b"{not json"], [], 1),
        ([b"{not json", EXAMPLE.read_bytes(), b"[]", EXAMPLE.read_bytes()], [1, 3], 2),
    ],
)
async def test_a_batch_is_read_its_poison_parked_and_its_events_remembered(
    values: list[bytes], read: list[int], parked: int
) -> None:
    broker, subjects = RecordingBroker(), Subjects()
    found = await read_batch(
        [_record(offset, value) for offset, value in enumerate(values)],
        broker=cast("KafkaBroker", broker),
        dead_letter_topic="t.email.dead-letter",
        subjects=subjects,
        decode=decode,
    )
    assert [r.index for r in found] == read
    assert [r.record.offset for r in found] == read
    assert len(broker.published) == parked
    for topic, _value, headers in broker.published:
        assert topic == "t.email.dead-letter"
        assert headers[REASON_HEADER].startswith("invalid event: ")
        assert headers[SOURCE_TOPIC_HEADER] == "t.deadline.reminder"
    for r in found:
        assert subjects.get(r.event.id) is not None
