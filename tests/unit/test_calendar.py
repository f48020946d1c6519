"""The .ics of a deadline reminder, read back with icalendar."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from icalendar import Calendar

from gnlc_core.directory import load_csv
from gnlc_core.events import Audience, DeadlineReminder, reminder_event
from gnlc_core.settings import SAMPLE_DIRECTORY
from gnlc_email.render import Renderer

DIRECTORY = load_csv(SAMPLE_DIRECTORY)
DUE = datetime(2027, 1, 17, 23, 59, tzinfo=UTC)


def reminder(step: str, offset: int) -> DeadlineReminder:
    return DeadlineReminder(
        deadline_id="progress-report-2027",
        title={"en": "Biennial progress report", "fr": "Rapport d'étape biennal"},
        due_at=DUE,
        step=step,
        offset_seconds=offset,
        audience=Audience(all_members=True),
        link="https://example.org/report",
    )


def ics_for(city_id: str, step: str = "7d-before", offset: int = -7 * 86400) -> Calendar:
    fired = DUE + timedelta(seconds=offset)
    rendered = Renderer(domain="notify.example.org").render(
        reminder_event(reminder(step, offset), fired_at=fired), DIRECTORY.by_id[city_id]
    )
    [attachment] = rendered.attachments
    assert attachment.data.endswith(b"\r\n")
    return Calendar.from_ical(attachment.data)


def test_one_event_at_the_due_moment() -> None:
    calendar = ics_for("kathmandu")
    assert calendar["VERSION"] == "2.0"
    assert calendar["METHOD"] == "PUBLISH"
    assert str(calendar["PRODID"]).startswith("-//UNESCO GNLC//")
    [event] = calendar.walk("VEVENT")
    assert event.decoded("DTSTART") == DUE
    assert event.decoded("DTEND") == DUE
    assert str(event["SUMMARY"]) == "Due: Biennial progress report"
    assert event["SUMMARY"].params["LANGUAGE"] == "en"
    assert str(event["URL"]) == "https://example.org/report"
    assert "DTSTAMP" in event
    [alarm] = event.walk("VALARM")
    assert alarm.decoded("TRIGGER") == timedelta(days=-1)


def test_the_entry_is_in_the_city_language() -> None:
    [event] = ics_for("clermont-ferrand").walk("VEVENT")
    assert str(event["SUMMARY"]) == "Échéance\u00a0: Rapport d'étape biennal"
    assert event["SUMMARY"].params["LANGUAGE"] == "fr"


def test_every_reminder_of_a_deadline_carries_the_same_uid() -> None:
    uids = {
        str(ics_for(city, step, offset).walk("VEVENT")[0]["UID"])
        for city in ("kathmandu", "clermont-ferrand")
        for step, offset in (("7d-before", -7 * 86400), ("1d-before", -86400), ("due", 0))
    }
    assert uids == {"deadline-progress-report-2027-20270117T235900Z@notify.example.org"}
