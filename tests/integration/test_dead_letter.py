"""Poison records go to the dead-letter topic with a reason; the consumers keep going."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from gnlc_core.kafka import REASON_HEADER, SOURCE_TOPIC_HEADER
from tests.integration.conftest import System
from tests.integration.kafka_io import consume, headers_of, produce
from tests.support import start_all

pytestmark = pytest.mark.integration
EXAMPLES = Path(__file__).resolve().parents[2] / "schemas" / "examples" / "deadline.reminder"


async def test_poison_records_are_parked_and_the_line_keeps_moving(system: System) -> None:
    start_all(system.service("email"), system.service("webhook"))
    topic = f"{system.prefix}deadline.reminder"
    invalid = json.loads((EXAMPLES / "invalid" / "empty-audience.json").read_text())
    valid = json.loads((EXAMPLES / "valid" / "overdue-minimal.json").read_text())
    valid["time"] = datetime.now(UTC).isoformat()
    await produce(
        system.kafka,
        topic,
        b"\xff\xfe this is not JSON",
        json.dumps(invalid).encode(),
        json.dumps(valid).encode(),
        key=b"one-partition",  # same key, same partition: the order below is the order sent
    )

    # the valid one, behind two poison records, still arrives: two cities, one contact each
    assert system.mailbox.wait_for(2, timeout=60), [s.tail() for s in system.services]
    assert system.receiver.inbox.wait_for_unique(1, timeout=30)

    for channel in ("email", "webhook"):
        parked = await consume(system.kafka, f"{system.prefix}{channel}.dead-letter", 2)
        assert len(parked) == 2, channel
        reasons = [headers_of(r)[REASON_HEADER] for r in parked]
        assert reasons[0].startswith("invalid event:")
        assert "audience is empty" in reasons[1]
        assert all(headers_of(r)[SOURCE_TOPIC_HEADER] == topic for r in parked)
        assert parked[0].value == b"\xff\xfe this is not JSON"


async def test_an_unreachable_smtp_server_is_retried_then_parked_with_its_reason(
    system: System,
) -> None:
    from tests.support import free_port

    system.service(
        "email", GNLC_SMTP_PORT=str(free_port()), GNLC_EMAIL_RETRY_DELAYS_SECONDS="[1, 2]"
    ).start()
    valid = json.loads((EXAMPLES / "valid" / "overdue-minimal.json").read_text())
    await produce(system.kafka, f"{system.prefix}deadline.reminder", json.dumps(valid).encode())
    parked = await consume(system.kafka, f"{system.prefix}email.dead-letter", 2, wait_seconds=60)
    assert len(parked) == 2
    recipients = sorted(headers_of(r)["x-gnlc-recipient"] for r in parked)
    assert recipients[0].startswith("kathmandu:")
    reasons = [headers_of(r)[REASON_HEADER] for r in parked]
    assert all(r.startswith("gave up after 3 attempts: smtp: ") for r in reasons), reasons
