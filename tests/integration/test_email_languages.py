"""Real delivery in the eight languages of the catalogs: one city per language in the
directory topic, the email service on the real broker, a real SMTP server; four reminders
(21, 5, 2 and 1 days before) to all eight cities, checked as they arrive; and a city whose
own language has no catalog, which follows its chain, the ledger recording the language
each notice was written in."""

from __future__ import annotations

import asyncio
from email.message import EmailMessage

import pytest
from sqlalchemy import select

from gnlc_core.db import create_engine
from gnlc_core.directory import City
from gnlc_core.events import Audience, DeadlineReminder, DeadlineReminderEvent, reminder_event
from gnlc_core.kafka import Topics
from gnlc_core.ledger import notices
from gnlc_email.consumer import recipient_key
from gnlc_email.preview import SAMPLE_NOW, SAMPLES, sample_event
from gnlc_email.render import Kind
from tests.integration.conftest import System
from tests.integration.email_support import by_address, publish, settle
from tests.unit.test_languages import EXPECTED

pytestmark = pytest.mark.integration

#: The sample city of each language, under ids and addresses of this test's own.
CITIES = {
    sample.name: sample.city.model_copy(
        update={"id": f"i18n-{sample.name}", "contacts": (f"{sample.name}@i18n.example.org",)}
    )
    for sample in SAMPLES
}
#: Vietnamese first (no catalog), then French: the wording is French, the dates Vietnamese.
CHAINED = City.model_validate(
    {
        "id": "i18n-hue",
        "name": "Huế",
        "country": "VN",
        "region": "Asia and the Pacific",
        "timezone": "Asia/Ho_Chi_Minh",
        "languages": ["vi", "fr"],
        "contacts": ["hue@i18n.example.org"],
    }
)
READERS = [*CITIES.values(), CHAINED]


async def _publish_cities(bootstrap: str, prefix: str, cities: list[City]) -> None:
    from aiokafka import AIOKafkaProducer

    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=True)
    await producer.start()
    try:
        for city in cities:
            await producer.send(
                Topics(prefix).directory, city.model_dump_json().encode(), key=city.id.encode()
            )
        await producer.flush()
    finally:
        await producer.stop()


def reminder(days_before: int) -> DeadlineReminderEvent:
    data = sample_event(Kind.DEADLINE_REMINDER, SAMPLE_NOW).data
    assert isinstance(data, DeadlineReminder)
    return reminder_event(
        data.model_copy(
            update={
                "offset_seconds": -days_before * 86400,
                "step": f"{days_before}d-before",
                "audience": Audience(cities=tuple(c.id for c in READERS)),
            }
        ),
        fired_at=SAMPLE_NOW,
    )


def text_of(message: EmailMessage, subtype: str) -> str:
    part = message.get_body((subtype,))
    assert part is not None
    return str(part.get_content()).replace("\r\n", "\n")


def ledger_languages(system: System, event_id: str) -> dict[str, str | None]:
    """The language each email notice of ``event_id`` records, by recipient."""

    async def read() -> dict[str, str | None]:
        engine = create_engine(system.database_url_for("email"))
        try:
            async with engine.connect() as connection:
                rows = await connection.execute(
                    select(notices.c.recipient, notices.c.language).where(
                        notices.c.event_id == event_id, notices.c.channel == "email"
                    )
                )
                return {row.recipient: row.language for row in rows}
        finally:
            await engine.dispose()

    return asyncio.run(read())


def test_reminders_arrive_in_eight_languages(system: System) -> None:
    # the directory as the sample cities' languages have it (Chefchaouen: Arabic)
    asyncio.run(_publish_cities(system.kafka, system.prefix, READERS))
    system.service("email").start()
    events = {days: reminder(days) for days in (21, 5, 2, 1)}
    publish(system, *events.values())
    settle(system.mailbox, len(events) * len(READERS), timeout=120, system=system)

    received: dict[tuple[str, str], EmailMessage] = {}
    for message in system.mailbox.messages:
        received[(message["To"].addresses[0].addr_spec, message["X-GNLC-Event-Id"])] = message
    assert len(received) == len(events) * len(READERS)  # each notice once
    latest = by_address(system.mailbox)
    assert len(latest) == len(READERS)
    recorded = ledger_languages(system, events[21].id)

    for name, city in CITIES.items():
        language, direction, greeting, due, subject, phrases = EXPECTED[name]
        address = city.contacts[0]
        message = received[(address, events[21].id)]
        assert message["Subject"] == subject
        assert message["Content-Language"] == language
        assert message["To"].addresses[0].display_name == city.name
        html, text = text_of(message, "html"), text_of(message, "plain")
        assert f'<html lang="{language}" dir="{direction}">' in html
        assert greeting in text
        assert due in text
        assert not message.defects
        assert not any(part.defects for part in message.walk())
        for days, phrase in zip((1, 2, 5), phrases, strict=True):
            assert phrase in received[(address, events[days].id)]["Subject"] + " ", (name, days)
        assert recorded[recipient_key(city, address)] == language

    # no Vietnamese catalog: the chain's French, recorded on the notice
    address = CHAINED.contacts[0]
    message = received[(address, events[21].id)]
    assert message["Content-Language"] == "fr"
    assert '<html lang="fr" dir="ltr">' in text_of(message, "html")
    assert "Rappel" in message["Subject"]
    assert recorded[recipient_key(CHAINED, address)] == "fr"
    for days in (5, 2, 1):
        assert ledger_languages(system, events[days].id)[recipient_key(CHAINED, address)] == "fr"
