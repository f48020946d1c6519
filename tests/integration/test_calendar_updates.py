"""A deadline's calendar entry kept current end to end, on the real broker and a real SMTP
server: a city that received the entry gets every change of the due moment with the next
SEQUENCE and then the CANCEL, all under one UID; a city that never received it (it had
submitted) gets none of them."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage

import pytest
from icalendar import Calendar

from tests.calendar_model import CalendarModel
from tests.integration.conftest import System
from tests.support import eventually, start_all

pytestmark = pytest.mark.integration

KATHMANDU = "lll@kathmandu.example.org"


def ics_of(message: EmailMessage) -> bytes:
    [part] = [p for p in message.walk() if p.get_content_type() == "text/calendar"]
    data = part.get_payload(decode=True)
    assert isinstance(data, bytes)
    return data


def mails_to(system: System, address: str) -> list[EmailMessage]:
    return [m for m in system.mailbox.messages if m["To"].addresses[0].addr_spec == address]


def held(system: System) -> dict[str, int]:
    """What the email service's calendar book says each city holds."""
    path = system.database_url_for("email").removeprefix("sqlite+aiosqlite:///")
    with sqlite3.connect(path) as connection:
        rows = connection.execute("SELECT city_id, sequence FROM email_calendar_entries")
        return dict(rows.fetchall())


def test_edit_edit_cancel_reaches_the_city_as_one_entry(system: System) -> None:
    scheduler, _ = start_all(system.service("scheduler"), system.service("email"))
    due = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=25)
    response = system.api(
        "POST",
        "/v1/deadlines",
        scheduler,
        json={
            "id": "report",
            "title": {"en": "Report"},
            "due_at": due.isoformat(),
            "audience": {"cities": ["kathmandu", "laval"]},
            "reminders": ["-20s"],
            "delivery_hour": None,
        },
    )
    assert response.status_code == 201, response.text
    submitted = system.api(
        "POST", "/v1/deadlines/report/submissions", scheduler, json={"city_id": "laval"}
    )
    assert submitted.status_code == 201
    # the reminder, with the entry at revision 0, reaches Kathmandu only
    eventually(lambda: mails_to(system, KATHMANDU), timeout=60, what="the reminder")
    eventually(lambda: held(system) == {"kathmandu": 0}, timeout=30, what="the receipt")
    for sequence, days in ((1, 1), (2, 2)):
        moved = (due + timedelta(days=days)).isoformat()
        patched = system.api("PATCH", "/v1/deadlines/report", scheduler, json={"due_at": moved})
        assert patched.status_code == 200, patched.text
        eventually(
            lambda n=sequence + 1: len(mails_to(system, KATHMANDU)) == n,  # type: ignore[misc]
            timeout=60,
            what=f"update {sequence}",
        )
        eventually(
            lambda n=sequence: held(system).get("kathmandu") == n,  # type: ignore[misc]
            timeout=30,
            what=f"receipt of {sequence}",
        )
    assert system.api("DELETE", "/v1/deadlines/report", scheduler).status_code == 200
    eventually(lambda: len(mails_to(system, KATHMANDU)) == 4, timeout=60, what="the cancel")

    mails = mails_to(system, KATHMANDU)
    calendars = [Calendar.from_ical(ics_of(m)) for m in mails]
    methods = [str(c["METHOD"]) for c in calendars]
    [events] = {len(c.walk("VEVENT")) for c in calendars}
    assert events == 1
    entries = [c.walk("VEVENT")[0] for c in calendars]
    assert methods == ["REQUEST", "REQUEST", "REQUEST", "CANCEL"]
    assert [e.decoded("SEQUENCE") for e in entries] == [0, 1, 2, 3]
    assert len({str(e["UID"]) for e in entries}) == 1
    assert [e.decoded("DTSTART") for e in entries[:3]] == [
        due,
        due + timedelta(days=1),
        due + timedelta(days=2),
    ]
    stamps = [e.decoded("DTSTAMP") for e in entries]
    assert stamps == sorted(stamps)
    assert [str(m["Subject"]).split(":")[0] for m in mails] == [
        "Reminder",
        "Updated",
        "Updated",
        "Cancelled",
    ]
    # imported one after the other, they leave one entry at every step, and none at the end
    calendar = CalendarModel()
    for mail in mails[:3]:
        calendar.apply(ics_of(mail))
        assert len(calendar.entries) == 1
    calendar.apply(ics_of(mails[3]))
    assert calendar.entries == {}
    # Laval submitted before its reminder: it never had the entry, so no change reaches it
    assert not [m for m in system.mailbox.messages if "laval" in str(m["To"])]
