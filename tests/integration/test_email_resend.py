"""An email resend end to end, on the real broker, SMTP server and PostgreSQL: a delivered
reminder is asked again through the email API; the retry tiers bring it to the consumer,
which sends it once more (a Message-ID of its own) and counts the request in the ledger."""

from __future__ import annotations

import pytest

from gnlc_core.events import Audience
from gnlc_core.ledger import Status
from tests.integration.conftest import System
from tests.integration.email_support import ledger_status, publish, reminder, wait_for_status
from tests.support import eventually

pytestmark = pytest.mark.integration

DURBAN = "durban:focal.point@durban.example.org"


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_a_delivered_reminder_is_resent_once(system: System) -> None:
    email = system.service("email")
    email.start()
    event = reminder(Audience(cities=("durban",)))
    publish(system, event)
    assert wait_for_status(system, event.id, DURBAN, Status.DELIVERED) is Status.DELIVERED
    assert system.mailbox.wait_for(1, timeout=30)

    asked = system.api_at(
        "POST", email.url, "/v1/notices/resend", json={"event_id": event.id, "recipient": DURBAN}
    )
    assert asked.status_code == 202, asked.text
    assert system.mailbox.wait_for(2, timeout=30)
    eventually(
        lambda: ledger_status(system, event.id, DURBAN)[:2] == (Status.DELIVERED, 2),
        timeout=30,
        what="the resend delivered in the ledger, attempts 2",
    )
    first, again = system.mailbox.messages
    assert first["Message-ID"] != again["Message-ID"]
    assert first["Subject"] == again["Subject"]
    unknown = system.api_at(
        "POST", email.url, "/v1/notices/resend", json={"event_id": "nope", "recipient": DURBAN}
    )
    assert unknown.status_code == 404
