"""Helpers the email integration tests share: events, the ledger of a test, mailbox views."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from datetime import UTC, datetime
from email.message import EmailMessage

from gnlc_core.db import create_engine
from gnlc_core.events import (
    AnnouncementPublished,
    AnnouncementPublishedEvent,
    Audience,
    DeadlineReminder,
    DeadlineReminderEvent,
    announcement_event,
    encode_event,
    reminder_event,
)
from gnlc_core.ledger import Ledger, Status
from gnlc_devtools.mailbox import LocalMailbox
from tests.integration.conftest import System
from tests.integration.kafka_io import produce

DUE = datetime(2027, 1, 17, 12, 0, tzinfo=UTC)


def reminder(
    audience: Audience, *, deadline_id: str = "progress-report", offset: int = -7 * 86400
) -> DeadlineReminderEvent:
    step = f"{abs(offset)}s-{'overdue' if offset > 0 else 'before'}" if offset else "due"
    return reminder_event(
        DeadlineReminder(
            deadline_id=deadline_id,
            title={
                "en": "Biennial progress report",
                "fr": "Rapport d'étape biennal",
                "es": "Informe bienal de progreso",
            },
            description={"en": "Please submit your city's report."},
            due_at=DUE,
            step=step,
            offset_seconds=offset,
            audience=audience,
            link="https://example.org/gnlc/report?year=2027&form=1",
        ),
        fired_at=datetime.now(UTC),
    )


def announcement(
    audience: Audience, announcement_id: str = "education-day"
) -> AnnouncementPublishedEvent:
    return announcement_event(
        AnnouncementPublished(
            announcement_id=announcement_id,
            category="event",
            title={"en": "International Day of Education", "es": "Día de la Educación"},
            body={"en": "Join us on 24 January.\n\nProgrammes at the link below."},
            audience=audience,
            published_at=DUE,
            link="https://example.org/gnlc/education-day",
        )
    )


def publish(system: System, *events: DeadlineReminderEvent | AnnouncementPublishedEvent) -> None:
    for event in events:
        asyncio.run(
            produce(
                system.kafka,
                f"{system.prefix}{event.type}",
                encode_event(event),
                key=event.partitionkey.encode(),
            )
        )


def recipients(mailbox: LocalMailbox) -> Counter[str]:
    return Counter(m["To"].addresses[0].addr_spec for m in mailbox.messages)


def settle(
    mailbox: LocalMailbox,
    count: int,
    *,
    timeout: float = 120,
    system: System | None = None,
) -> None:
    """Wait for ``count`` messages; then, given the ``system``, until the email service has
    committed every event on its topics and every record on its retry tiers (all handled,
    so any extra mail has been sent: no quiet period to guess)."""
    assert mailbox.wait_for(count, timeout=timeout), f"{mailbox.count} of {count} arrived"
    if system is not None:
        system.settled("email")


def caught_up(system: System) -> None:
    """The email service has committed every record now on the events' topics."""
    system.caught_up("email")


def by_address(mailbox: LocalMailbox) -> dict[str, EmailMessage]:
    return {m["To"].addresses[0].addr_spec: m for m in mailbox.messages}


def ledger_status(
    system: System, event_id: str, recipient: str
) -> tuple[Status | None, int, str | None]:
    """(status, attempts, last error) of one notice in the test's database."""

    async def read() -> tuple[Status | None, int, str | None]:
        from sqlalchemy import select

        from gnlc_core.ledger import notices

        engine = create_engine(system.database_url_for("email"))
        try:
            status = await Ledger(engine, "email").status(event_id, recipient)
            async with engine.connect() as connection:
                row = (
                    await connection.execute(
                        select(notices.c.attempts, notices.c.last_error).where(
                            notices.c.event_id == event_id, notices.c.recipient == recipient
                        )
                    )
                ).first()
        finally:
            await engine.dispose()
        return status, (row.attempts if row else 0), (row.last_error if row else None)

    return asyncio.run(read())


def wait_for_status(
    system: System, event_id: str, recipient: str, status: Status, timeout: float = 30
) -> Status | None:
    """The notice's status once it is ``status`` (the ledger is written within a fraction of
    a second of the outcome), or the last one seen when ``timeout`` passes."""
    deadline = time.monotonic() + timeout
    seen = ledger_status(system, event_id, recipient)[0]
    while seen is not status and time.monotonic() < deadline:
        time.sleep(0.2)
        seen = ledger_status(system, event_id, recipient)[0]
    return seen
