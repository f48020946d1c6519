"""A consumer killed while it handles a notice loses nothing: the offset was not committed,
so the restarted consumer handles the notice again."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.integration.conftest import System
from tests.integration.kafka_io import produce
from tests.support import eventually

pytestmark = pytest.mark.integration
EXAMPLE = Path(__file__).resolve().parents[2] / "schemas" / "examples" / "deadline.reminder"


def test_killed_mid_send_then_restarted_delivers_once(system: System) -> None:
    email = system.service("email").start()
    system.mailbox.rcpt_delay = 30.0  # the SMTP server hangs before accepting the recipient
    event = json.loads((EXAMPLE / "valid" / "overdue-minimal.json").read_text())
    event["time"] = datetime.now(UTC).isoformat()
    asyncio.run(
        produce(system.kafka, f"{system.prefix}deadline.reminder", json.dumps(event).encode())
    )

    eventually(
        lambda: system.mailbox.recipients_seen >= 1,
        timeout=30,
        what="the send to begin",
        every=0.05,
    )
    email.kill()  # crash in the middle of the send: nothing was accepted yet
    assert system.mailbox.count == 0

    system.mailbox.rcpt_delay = 0.0
    system.service("email").start()
    assert system.mailbox.wait_for(2, timeout=60)
    system.caught_up("email")  # all handled: anything extra would have been sent
    recipients = sorted(str(m["To"]) for m in system.mailbox.messages)
    assert len(recipients) == 2, recipients  # each city once: no loss, no duplicate
