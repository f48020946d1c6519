"""Handler logic on FastStream's in-memory test broker (the real broker is in integration)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from faststream.kafka import KafkaBroker, TestKafkaBroker
from faststream.kafka.annotations import KafkaMessage

from gnlc_core.directory import load_csv
from gnlc_core.kafka import AT_LEAST_ONCE, REASON_HEADER, RECIPIENT_HEADER, Topics
from gnlc_core.settings import SAMPLE_DIRECTORY, Settings
from gnlc_email import consumer as email_consumer
from gnlc_email.consumer import EmailConsumer
from gnlc_email.sender import SmtpPool

EXAMPLE = (
    Path(__file__).resolve().parents[2]
    / "schemas/examples/deadline.reminder/valid/overdue-minimal.json"
)
TOPICS = Topics("unit.")


def wired(settings: Settings) -> tuple[KafkaBroker, list[dict[str, Any]]]:
    broker = KafkaBroker()
    consumer = EmailConsumer(
        settings, broker, TOPICS, load_csv(SAMPLE_DIRECTORY), SmtpPool(settings)
    )
    broker.subscriber(*TOPICS.domain, group_id="g", ack_policy=AT_LEAST_ONCE)(consumer.handle)
    parked: list[dict[str, Any]] = []

    @broker.subscriber(TOPICS.email_dead_letter)
    async def collect(message: KafkaMessage) -> None:
        parked.append({"body": message.body, **message.headers})

    return broker, parked


async def test_garbage_is_parked_with_its_reason() -> None:
    broker, parked = wired(Settings())
    async with TestKafkaBroker(broker) as test_broker:
        await test_broker.publish(b"{not json", topic=TOPICS.deadline_reminder)
    assert len(parked) == 1
    assert parked[0]["body"] == b"{not json"
    assert parked[0][REASON_HEADER].startswith("invalid event: ")


async def test_a_render_failure_parks_that_city_and_sends_nothing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def broken(*_: object) -> None:
        raise KeyError("missing translation")

    monkeypatch.setattr(email_consumer, "render", broken)
    broker, parked = wired(Settings())
    async with TestKafkaBroker(broker) as test_broker:
        await test_broker.publish(EXAMPLE.read_bytes(), topic=TOPICS.deadline_reminder)
    assert sorted(p[RECIPIENT_HEADER] for p in parked) == ["kathmandu", "laval"]
    assert all(p[REASON_HEADER].startswith("render: KeyError") for p in parked)
