"""The email consumer addresses changes of a deadline's calendar entry to the cities that
hold an older revision, and catches up a city whose older entry is delivered after the
change was handled (a reminder that waited). In process: FastStream's test broker, a real
SMTP server on loopback, SQLite."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from faststream.kafka import TestKafkaBroker
from icalendar import Calendar

from gnlc_core.db import create_engine, migrate
from gnlc_core.events import (
    Audience,
    DeadlineCancellation,
    DeadlineReminder,
    DeadlineRevision,
    change_event,
    encode_event,
    reminder_event,
)
from gnlc_devtools.mailbox import LocalMailbox
from gnlc_email.calendar_book import CalendarBook
from tests.unit.test_consumer_handlers import TOPICS, wire

DUE = datetime(2027, 1, 17, 12, tzinfo=UTC)
MADE = datetime(2026, 11, 1, tzinfo=UTC)
KATHMANDU = "lll@kathmandu.example.org"


@pytest.fixture
async def engine(tmp_path: Path) -> AsyncIterator[Any]:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'unit.db'}")
    await migrate(engine, "email")
    yield engine
    await engine.dispose()


@pytest.fixture
def mailbox() -> Iterator[LocalMailbox]:
    with LocalMailbox() as box:
        yield box


def reminder(cities: tuple[str, ...] = ("kathmandu",)) -> bytes:
    data = DeadlineReminder(
        deadline_id="report",
        title={"en": "Report"},
        due_at=DUE,
        step="7d-before",
        offset_seconds=-7 * 86400,
        audience=Audience(cities=cities),
    )
    return encode_event(reminder_event(data, fired_at=DUE - timedelta(days=7)))


def change(sequence: int, *, cancel: bool = False) -> bytes:
    fields: dict[str, Any] = {
        "deadline_id": "report",
        "title": {"en": "Report"},
        "due_at": DUE + timedelta(days=sequence),
        "audience": Audience(cities=("kathmandu", "laval")),
        "sequence": sequence,
        "revised_at": MADE + timedelta(hours=sequence),
    }
    model = DeadlineCancellation if cancel else DeadlineRevision
    return encode_event(change_event(model.model_validate(fields)))


def entries(mailbox: LocalMailbox, address: str) -> list[tuple[str, int]]:
    """(METHOD, SEQUENCE) of each mail's calendar entry to ``address``, in arrival order."""
    found = []
    for message in mailbox.messages:
        if message["To"].addresses[0].addr_spec != address:
            continue
        assert isinstance(message, EmailMessage)
        [part] = [p for p in message.walk() if p.get_content_type() == "text/calendar"]
        data = part.get_payload(decode=True)
        assert isinstance(data, bytes)
        calendar = Calendar.from_ical(data)
        found.append((str(calendar["METHOD"]), calendar.walk("VEVENT")[0].decoded("SEQUENCE")))
    return found


async def test_changes_go_to_the_cities_that_hold_an_older_entry_only(
    engine: Any, mailbox: LocalMailbox
) -> None:
    wired = wire(engine, smtp_port=mailbox.port)
    async with TestKafkaBroker(wired.broker) as broker:
        await broker.publish_batch(reminder(), topic=TOPICS.deadline_reminder)
        await broker.publish_batch(change(1), topic=TOPICS.deadline_updated)
        await broker.publish_batch(change(1), topic=TOPICS.deadline_updated)  # redelivered
        await broker.publish_batch(change(2, cancel=True), topic=TOPICS.deadline_cancelled)
        await broker.publish_batch(change(1), topic=TOPICS.deadline_updated)  # late, older
    assert entries(mailbox, KATHMANDU) == [("REQUEST", 0), ("REQUEST", 1), ("CANCEL", 2)]
    assert not [m for m in mailbox.messages if "laval" in str(m["To"])]  # never had it
    assert await CalendarBook(engine).held("report") == {"kathmandu": (2, True)}


async def test_a_city_whose_older_entry_arrives_after_the_change_gets_the_change(
    engine: Any, mailbox: LocalMailbox
) -> None:
    wired = wire(engine, smtp_port=mailbox.port)
    async with TestKafkaBroker(wired.broker) as broker:
        # the change is handled while the city's reminder still waits ...
        await broker.publish_batch(change(1), topic=TOPICS.deadline_updated)
        assert mailbox.messages == []
        # ... then the reminder, with the entry at revision 0, is delivered: the change follows
        await broker.publish_batch(reminder(), topic=TOPICS.deadline_reminder)
    assert entries(mailbox, KATHMANDU) == [("REQUEST", 0), ("REQUEST", 1)]
    assert await CalendarBook(engine).held("report") == {"kathmandu": (1, False)}
