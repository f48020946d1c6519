"""The email consumer and its digests, in process: FastStream's test broker, a real SMTP
server on loopback, SQLite, and a clock of the test's own (no waiting for a morning)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from faststream.kafka import TestKafkaBroker
from sqlalchemy import select, update

from gnlc_core.db import create_engine, migrate
from gnlc_core.directory import Directory, load_csv
from gnlc_core.events import (
    AnnouncementPublished,
    Audience,
    DeadlineReminder,
    announcement_event,
    encode_event,
    reminder_event,
)
from gnlc_core.kafka import REASON_HEADER, RECIPIENT_HEADER
from gnlc_core.ledger import notices
from gnlc_core.settings import SAMPLE_DIRECTORY
from gnlc_devtools.mailbox import LocalMailbox
from gnlc_email.calendar_book import CalendarBook
from gnlc_email.choices import Choice, Digest
from gnlc_email.digest import digest_key, digest_reference
from gnlc_email.digest_store import items
from gnlc_email.message import message_id
from gnlc_email.store import Preferences
from tests.unit.test_consumer_handlers import TOPICS, Wired, wire

#: 10:00 UTC is noon in Durban (+02:00): past today's digest (09:05), so tomorrow's.
NOW = datetime(2027, 1, 10, 10, tzinfo=UTC)
TOMORROW_CLOSE = datetime(2027, 1, 11, 7, 5, tzinfo=UTC)
#: ... and 05:00 in Laval (-05:00): before today's, which closes at 14:05 UTC.
LAVAL_CLOSE = datetime(2027, 1, 10, 14, 5, tzinfo=UTC)
DUE = datetime(2027, 1, 20, 12, tzinfo=UTC)
DURBAN = "focal.point@durban.example.org"
LAVAL = "apprendre@laval.example.org"


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> datetime:
        return self.now


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


def directory(*digest_cities: str) -> Directory:
    return Directory(
        tuple(
            city.model_copy(update={"digest": city.id in digest_cities})
            for city in load_csv(SAMPLE_DIRECTORY)
        )
    )


def reminder(deadline_id: str, city: str = "durban", due: datetime = DUE) -> bytes:
    data = DeadlineReminder(
        deadline_id=deadline_id,
        title={"en": f"Report <{deadline_id}>", "fr": f"Rapport <{deadline_id}>"},
        description={"en": "Please send it & thanks."},
        due_at=due,
        step="7d-before",
        offset_seconds=-7 * 86400,
        audience=Audience(cities=(city,)),
        link="https://example.org/report?a=1&b=2",
    )
    return encode_event(reminder_event(data, fired_at=NOW))


def news(city: str = "durban") -> bytes:
    data = AnnouncementPublished(
        announcement_id="education-day",
        category="event",
        title={"en": "Education Day", "fr": "Journée de l’éducation"},
        body={"en": "Join us.\n\nProgrammes <here>.", "fr": "Rejoignez-nous."},
        audience=Audience(cities=(city,)),
        published_at=NOW,
    )
    return encode_event(announcement_event(data))


async def handle(wired: Wired, *values: bytes) -> None:
    async with TestKafkaBroker(wired.broker) as broker:
        for value in values:
            topic = TOPICS.announcement_published if b"announcement" in value[:200] else None
            await broker.publish_batch(value, topic=topic or TOPICS.deadline_reminder)


async def ledger(engine: Any) -> list[tuple[str, str, str | None]]:
    async with engine.connect() as connection:
        rows = await connection.execute(
            select(notices.c.recipient, notices.c.status, notices.c.last_error)
        )
        return sorted((row[0], row[1], row[2]) for row in rows)


def attachments(mail: EmailMessage) -> list[str]:
    return [part.get_filename() or "" for part in mail.iter_attachments()]


def bodies(mail: EmailMessage) -> tuple[str, str]:
    text = mail.get_body(("plain",))
    html = mail.get_body(("html",))
    assert text is not None
    assert html is not None
    return str(text.get_content()), str(html.get_content())


async def test_a_digest_city_gets_its_day_in_one_mail(engine: Any, mailbox: LocalMailbox) -> None:
    clock = Clock()
    wired = wire(
        engine, directory=directory("durban"), clock=clock, smtp_port=mailbox.port, digests=True
    )
    await handle(wired, reminder("report"), reminder("survey"), reminder("plan"), news())
    # held, nothing sent: the ledger says why and until when
    assert {row[1:] for row in await ledger(engine)} == {("held", "digest 2027-01-11")}
    assert await wired.consumer.send_due_digests() == 0  # not due yet
    clock.now = TOMORROW_CLOSE
    async with TestKafkaBroker(wired.broker):
        assert await wired.consumer.send_due_digests() == 1
        assert await wired.consumer.send_due_digests() == 0  # never twice
    assert mailbox.wait_for(1, timeout=10)
    (mail,) = mailbox.messages
    assert str(mail["Subject"]) == "GNLC digest for Durban – January 11, 2027"
    key = digest_key("durban", DURBAN, TOMORROW_CLOSE.date(), 1)
    assert mail["Message-ID"] == message_id(
        digest_reference(key), f"durban:{DURBAN}", "notify.gnlc.example.org"
    )
    assert sorted(attachments(mail)) == ["plan.ics", "report.ics", "survey.ics"]
    for part in mail.iter_attachments():
        ics = part.get_content()
        ics = (ics.decode() if isinstance(ics, bytes) else ics).replace("\r\n ", "")
        assert f"mailto:{DURBAN}" in ics
        assert "X-GNLC-ATTENDEE" not in ics
    text, html = bodies(mail)
    assert text.count("[Reminder]") == 3
    assert "[Event] Event: Education Day" in text
    assert "Report &lt;survey&gt;" in html
    assert "<survey>" not in html
    assert "Programmes &lt;here&gt;." in html
    assert mail["List-Unsubscribe"] is not None  # it lists an announcement
    assert "/preferences?token=" in text
    # every notice delivered with the digest; the calendar knows the city holds each entry
    assert {row[1:] for row in await ledger(engine)} == {("delivered", None)}
    assert await CalendarBook(engine).held("survey") == {"durban": (0, False)}


async def test_without_the_preference_each_notice_is_its_own_mail(
    engine: Any, mailbox: LocalMailbox
) -> None:
    wired = wire(engine, directory=directory(), clock=Clock(), smtp_port=mailbox.port, digests=True)
    await handle(wired, reminder("report"), reminder("survey"), reminder("plan"))
    assert mailbox.wait_for(3, timeout=10)
    assert {row[1] for row in await ledger(engine)} == {"delivered"}


@pytest.mark.parametrize(
    ("digest_cities", "choice", "held"),
    [
        ((), Digest.ON, True),  # the contact asked for it
        (("laval",), Digest.OFF, False),  # the contact refused it
        (("laval",), Digest.CITY, True),
    ],
)
async def test_a_contacts_choice_decides_over_its_citys(
    engine: Any, digest_cities: tuple[str, ...], choice: Digest, held: bool
) -> None:
    await Preferences(engine).save(LAVAL, "laval", Choice(digest=choice), subscribed=True)
    wired = wire(engine, directory=directory(*digest_cities), clock=Clock(), digests=True)
    await handle(wired, reminder("report", "laval"))
    ((_, status, _),) = await ledger(engine)
    # not held: a send was tried (nothing listens on the port: it waits for a retry)
    assert (status == "held") is held
    assert len(wired.retried) == (0 if held else 1)


async def test_a_reminder_that_would_come_after_its_deadline_does_not_wait(
    engine: Any, mailbox: LocalMailbox
) -> None:
    wired = wire(
        engine, directory=directory("durban"), clock=Clock(), smtp_port=mailbox.port, digests=True
    )
    await handle(wired, reminder("soon", due=TOMORROW_CLOSE), reminder("later"))
    assert mailbox.wait_for(1, timeout=10)
    assert "soon" in str(mailbox.messages[0]["Subject"])
    assert sorted(row[1] for row in await ledger(engine)) == ["delivered", "held"]


async def test_a_day_of_one_notice_is_its_own_mail_in_the_contacts_language(
    engine: Any, mailbox: LocalMailbox
) -> None:
    clock = Clock()
    wired = wire(
        engine, directory=directory("laval"), clock=clock, smtp_port=mailbox.port, digests=True
    )
    await handle(wired, reminder("report", "laval"))
    clock.now = LAVAL_CLOSE
    async with TestKafkaBroker(wired.broker):
        assert await wired.consumer.send_due_digests() == 1
    assert mailbox.wait_for(1, timeout=10)
    assert str(mailbox.messages[0]["Subject"]).startswith("Rappel\xa0: Rapport <report>")
    assert attachments(mailbox.messages[0]) == ["report.ics"]


async def test_a_digest_in_french(engine: Any, mailbox: LocalMailbox) -> None:
    clock = Clock()
    wired = wire(
        engine, directory=directory("laval"), clock=clock, smtp_port=mailbox.port, digests=True
    )
    await handle(wired, reminder("report", "laval"), news("laval"))
    clock.now = LAVAL_CLOSE
    async with TestKafkaBroker(wired.broker):
        await wired.consumer.send_due_digests()
    assert mailbox.wait_for(1, timeout=10)
    (mail,) = mailbox.messages
    assert str(mail["Subject"]) == "Récapitulatif du GNLC pour Laval – 10 janvier 2027"
    assert mail["Content-Language"] == "fr"
    text, html = bodies(mail)
    assert "[Rappel]" in text
    assert "Journée de l’éducation" in text
    assert '<html lang="fr"' in html


async def test_what_changed_while_held_is_asked_again_when_the_digest_goes(
    engine: Any, mailbox: LocalMailbox
) -> None:
    """The city submitted one report meanwhile (``should_send`` says no), the contact
    turned announcements' events off: those are settled with the reason, the rest goes."""
    clock = Clock()
    submitted: set[str] = set()

    async def should_send(event: Any, city: Any) -> bool:
        return getattr(event.data, "deadline_id", None) not in submitted

    wired = wire(
        engine,
        directory=directory("durban"),
        clock=clock,
        smtp_port=mailbox.port,
        digests=True,
        should_send=should_send,
    )
    await handle(wired, reminder("report"), reminder("survey"), news())
    submitted.add("report")
    await Preferences(engine).save(
        DURBAN, "durban", Choice(frozenset({"event"}), Digest.ON), subscribed=True
    )
    clock.now = TOMORROW_CLOSE
    async with TestKafkaBroker(wired.broker):
        await wired.consumer.send_due_digests()
    assert mailbox.wait_for(1, timeout=10)
    assert "survey" in str(mailbox.messages[0]["Subject"])  # one left: its own mail
    assert sorted(row[1:] for row in await ledger(engine)) == [
        ("delivered", None),
        ("dropped", "category off: event"),
        ("dropped", "not needed: should_send said no"),
    ]


async def test_a_digest_the_server_cannot_take_now_goes_to_the_retry_tier(engine: Any) -> None:
    """Nothing listens on the port: each notice goes on the retry tier, on its own."""
    clock = Clock()
    wired = wire(engine, directory=directory("durban"), clock=clock, digests=True)
    await handle(wired, reminder("report"), reminder("survey"))
    clock.now = TOMORROW_CLOSE
    async with TestKafkaBroker(wired.broker):
        await wired.consumer.send_due_digests()
    assert len(wired.retried) == 2
    assert {row[1] for row in await ledger(engine)} == {"retrying"}


async def test_a_held_notice_whose_event_no_longer_reads_is_parked_and_failed(
    engine: Any, mailbox: LocalMailbox
) -> None:
    """A held event that cannot be read when its digest goes (it was valid when held) is
    parked on the dead-letter topic with its reason and failed in the ledger; the rest of
    the digest still goes."""
    clock = Clock()
    wired = wire(
        engine, directory=directory("durban"), clock=clock, smtp_port=mailbox.port, digests=True
    )
    await handle(wired, reminder("report"), reminder("survey"))
    async with engine.begin() as connection:
        spoiled = (await connection.execute(select(items.c.event_id))).scalars().first()
        await connection.execute(
            update(items).where(items.c.event_id == spoiled).values(event='{"no": "event"}')
        )
    clock.now = TOMORROW_CLOSE
    async with TestKafkaBroker(wired.broker):
        await wired.consumer.send_due_digests()
    assert [p[RECIPIENT_HEADER] for p in wired.parked] == [f"durban:{DURBAN}"]
    assert wired.parked[0]["body"] == b'{"no": "event"}'
    assert wired.parked[0][REASON_HEADER].startswith("held: invalid event")
    rows = await ledger(engine)
    assert sorted(row[1] for row in rows) == ["delivered", "failed"]
    assert str(next(row[2] for row in rows if row[1] == "failed")).startswith("held: invalid")
    assert mailbox.wait_for(1, timeout=10)
    assert len(mailbox.messages) == 1  # the other notice, as its own mail
