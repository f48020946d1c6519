"""Daily digests end to end, on the real broker and SMTP server: a city with the digest
preference gets its day's three reminders in one mail with three calendar entries, a city
without it three mails, and a contact who turns the digest off on its preference page gets
the next reminder at once. The day passes by moving the held notices' digest moment to now
(the test's clock): the timing rule itself is tested as tables (``test_digest.py``)."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from urllib.parse import urlencode

import pytest
from sqlalchemy import update

from gnlc_core.db import create_engine
from gnlc_core.directory import load_csv
from gnlc_core.events import Audience
from gnlc_core.kafka import Topics
from gnlc_core.ledger import Status
from gnlc_core.settings import SAMPLE_DIRECTORY
from gnlc_email.choices import CATEGORIES
from gnlc_email.digest_store import items
from gnlc_email.preference_page import preferences_tokens
from gnlc_email.unsubscribe import Subscriber
from tests.integration.conftest import System
from tests.integration.email_support import (
    by_address,
    ledger_status,
    publish,
    reminder,
    wait_for_status,
)
from tests.integration.kafka_io import consume, produce
from tests.support import HTTP

pytestmark = pytest.mark.integration

SECRET = "digest-test-secret"
DURBAN = "focal.point@durban.example.org"  # its city asks for digests
IBADAN = "learning@ibadan.example.org"  # its city does not
DEADLINES = ("report", "survey", "pledge")


def digest_city(system: System, city_id: str) -> None:
    """The operator turns the city's digest on (the directory as the scheduler publishes
    it)."""
    (city,) = [c for c in load_csv(SAMPLE_DIRECTORY) if c.id == city_id]
    value = city.model_copy(update={"digest": True}).model_dump_json().encode()
    asyncio.run(produce(system.kafka, Topics(system.prefix).directory, value, key=b"durban"))


def next_morning(system: System) -> None:
    """The test's clock: the held notices' digest is due now."""

    async def move() -> None:
        engine = create_engine(system.database_url_for("email"))
        try:
            async with engine.begin() as connection:
                await connection.execute(
                    update(items).values(due_at=datetime.now(UTC) - timedelta(seconds=1))
                )
        finally:
            await engine.dispose()

    asyncio.run(move())


# PostgreSQL (the claim's concurrency); SQLite runs the same paths in the unit tests
@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_a_digest_city_gets_one_mail_and_a_changed_choice_counts_from_the_next(
    system: System,
) -> None:
    digest_city(system, "durban")
    email = system.service(
        "email",
        GNLC_EMAIL_DIGEST_POLL_SECONDS="0.2",
        GNLC_EMAIL_UNSUBSCRIBE_SECRETS=json.dumps([SECRET]),
    )
    email.env["GNLC_EMAIL_PUBLIC_URL"] = email.url
    email.start()
    to_durban = [reminder(Audience(cities=("durban",)), deadline_id=d) for d in DEADLINES]
    # (an event id is the deadline's and the step's: the scheduler's are per city too)
    to_ibadan = [reminder(Audience(cities=("ibadan",)), deadline_id=f"{d}-2") for d in DEADLINES]
    publish(system, *to_durban, *to_ibadan)

    # without the preference: three mails at once
    assert system.mailbox.wait_for(3, timeout=30)
    for event in to_ibadan:
        recipient = f"ibadan:{IBADAN}"
        assert wait_for_status(system, event.id, recipient, Status.DELIVERED) is Status.DELIVERED
    # with it: held for the digest, the ledger says which day's
    for event in to_durban:
        recipient = f"durban:{DURBAN}"
        assert wait_for_status(system, event.id, recipient, Status.HELD) is Status.HELD
        reason = ledger_status(system, event.id, recipient)[2]
        assert reason is not None
        assert reason.startswith("digest 20")
    assert system.mailbox.count == 3

    next_morning(system)
    assert system.mailbox.wait_for(4, timeout=30)
    digest = by_address(system.mailbox)[DURBAN]
    assert str(digest["Subject"]).startswith("GNLC digest for Durban – ")
    names = sorted(part.get_filename() or "" for part in digest.iter_attachments())
    assert names == sorted(f"{d}.ics" for d in DEADLINES)
    for event in to_durban:
        recipient = f"durban:{DURBAN}"
        assert wait_for_status(system, event.id, recipient, Status.DELIVERED) is Status.DELIVERED
    assert sum(1 for m in system.mailbox.messages if DURBAN in str(m["To"])) == 1

    # the contact turns the digest off on its page: the next reminder goes at once
    token = preferences_tokens([SECRET]).sign(Subscriber(DURBAN, "durban", "en"))
    form = [("token", token), ("subscribed", "on"), ("digest", "off")]
    form += [("category", c) for c in CATEGORIES]
    saved = HTTP.post(
        f"{email.url}/preferences",
        content=urlencode(form),
        headers={"content-type": "application/x-www-form-urlencoded", "origin": email.url},
        timeout=10,
    )
    assert saved.status_code == 200, saved.text
    assert "Your preferences are saved" in saved.text
    later = reminder(Audience(cities=("durban",)), deadline_id="visit")
    publish(system, later)
    assert wait_for_status(system, later.id, f"durban:{DURBAN}", Status.DELIVERED) is (
        Status.DELIVERED
    )
    assert system.mailbox.wait_for(5, timeout=30)

    # every state was a receipt (the ledger's listeners): held with its reason, then delivered
    records = asyncio.run(consume(system.kafka, Topics(system.prefix).notice_status, 10))
    seen = {
        (data["event_id"], data["state"], (data.get("reason") or "")[:9])
        for data in (json.loads(record.value)["data"] for record in records)
        if data["recipient"] == f"durban:{DURBAN}"
    }
    for event in to_durban:
        assert {(event.id, "held", "digest 20"), (event.id, "delivered", "")} <= seen
