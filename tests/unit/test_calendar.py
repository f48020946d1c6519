"""The .ics of a deadline, read back with icalendar, and imported into a calendar that
applies RFC 5546: one UID per deadline, the revision as SEQUENCE, REQUEST then CANCEL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from icalendar import Calendar, Component

from gnlc_core.directory import load_csv
from gnlc_core.events import (
    Audience,
    DeadlineCancellation,
    DeadlineReminder,
    DeadlineRevision,
    change_event,
    reminder_event,
)
from gnlc_core.settings import SAMPLE_DIRECTORY
from gnlc_email.render import Event, Kind, Renderer
from tests.calendar_model import CalendarModel

DIRECTORY = load_csv(SAMPLE_DIRECTORY)
DUE = datetime(2027, 1, 17, 23, 59, tzinfo=UTC)
MADE = datetime(2026, 11, 1, 9, tzinfo=UTC)
RENDERER = Renderer(domain="notify.example.org", organizer="gnlc@notify.example.org")
UID = "deadline-progress-report-2027@notify.example.org"
TITLE = {"en": "Biennial progress report", "fr": "Rapport d'étape biennal"}


def reminder(step: str = "7d-before", offset: int = -7 * 86400, **fields: object) -> Event:
    data = DeadlineReminder.model_validate(
        {
            "deadline_id": "progress-report-2027",
            "title": TITLE,
            "due_at": DUE,
            "step": step,
            "offset_seconds": offset,
            "audience": Audience(all_members=True),
            "link": "https://example.org/report",
            **fields,
        }
    )
    return reminder_event(data, fired_at=DUE + timedelta(seconds=offset))


def revision(sequence: int, due: datetime, at: datetime, *, cancel: bool = False) -> Event:
    fields = {
        "deadline_id": "progress-report-2027",
        "title": TITLE,
        "due_at": due,
        "audience": Audience(all_members=True),
        "sequence": sequence,
        "revised_at": at,
    }
    if cancel:
        return change_event(DeadlineCancellation.model_validate(fields))
    return change_event(DeadlineRevision.model_validate(fields))


def ics(event: Event, city_id: str = "kathmandu") -> bytes:
    city = DIRECTORY.by_id[city_id]
    rendered = RENDERER.render(event, city).for_recipient(None, (city.contacts[0], city.name))
    [attachment] = rendered.attachments
    assert attachment.data.endswith(b"\r\n")
    return attachment.data


def vevent(data: bytes) -> tuple[Calendar, Component]:
    calendar = Calendar.from_ical(data)
    [event] = calendar.walk("VEVENT")
    return calendar, event


def test_one_event_at_the_due_moment_requested_at_revision_zero() -> None:
    calendar, event = vevent(ics(reminder()))
    assert calendar["VERSION"] == "2.0"
    assert calendar["METHOD"] == "REQUEST"
    assert str(calendar["PRODID"]).startswith("-//UNESCO GNLC//")
    assert str(event["UID"]) == UID
    assert event["SEQUENCE"] == 0
    assert event.decoded("DTSTART") == DUE
    assert event.decoded("DTEND") == DUE
    assert str(event["SUMMARY"]) == "Due: Biennial progress report"
    assert event["SUMMARY"].params["LANGUAGE"] == "en"
    assert str(event["URL"]) == "https://example.org/report"
    assert str(event["STATUS"]) == "CONFIRMED"
    assert str(event["ORGANIZER"]) == "mailto:gnlc@notify.example.org"
    attendee = event["ATTENDEE"]
    assert str(attendee) == "mailto:lll@kathmandu.example.org"
    assert attendee.params["ROLE"] == "NON-PARTICIPANT"
    assert attendee.params["RSVP"] == "FALSE"
    assert "X-GNLC-ATTENDEE" not in event
    [alarm] = event.walk("VALARM")
    assert alarm.decoded("TRIGGER") == timedelta(days=-1)


def test_dtstamp_is_the_moment_of_the_revision() -> None:
    _, event = vevent(ics(reminder(sequence=2, revised_at=MADE)))
    assert event["SEQUENCE"] == 2
    assert event.decoded("DTSTAMP") == MADE
    _, plain = vevent(ics(reminder()))  # an event without a revision: its own time
    assert plain.decoded("DTSTAMP") == DUE - timedelta(days=7)


def test_the_entry_is_in_the_city_language() -> None:
    _, event = vevent(ics(reminder(), "clermont-ferrand"))
    assert str(event["SUMMARY"]) == "Échéance\u00a0: Rapport d'étape biennal"
    assert event["SUMMARY"].params["LANGUAGE"] == "fr"


def test_every_mail_about_a_deadline_carries_the_same_uid_whatever_its_due_moment() -> None:
    events = [
        reminder(step, offset)
        for step, offset in (("7d-before", -7 * 86400), ("1d-before", -86400), ("due", 0))
    ]
    events += [revision(1, DUE + timedelta(days=3), MADE), revision(2, DUE, MADE, cancel=True)]
    uids = {
        str(vevent(ics(event, city))[1]["UID"])
        for city in ("kathmandu", "clermont-ferrand")
        for event in events
    }
    assert uids == {UID}


def test_an_update_is_a_request_with_the_next_sequence_and_a_cancel_withdraws() -> None:
    moved = DUE + timedelta(days=7)
    update = RENDERER.render(revision(1, moved, MADE), DIRECTORY.by_id["kathmandu"])
    assert update.kind is Kind.DEADLINE_UPDATED
    assert update.subject.startswith("Updated: Biennial progress report – now due ")
    assert update.attachments[0].content_type == "text/calendar; method=REQUEST"
    calendar, event = vevent(ics(revision(1, moved, MADE)))
    assert (calendar["METHOD"], event["SEQUENCE"], event.decoded("DTSTART")) == (
        "REQUEST",
        1,
        moved,
    )
    assert event.decoded("DTSTAMP") == MADE
    cancel = RENDERER.render(revision(2, moved, MADE, cancel=True), DIRECTORY.by_id["kathmandu"])
    assert cancel.kind is Kind.DEADLINE_CANCELLED
    assert cancel.subject == "Cancelled: Biennial progress report"
    assert cancel.attachments[0].content_type == "text/calendar; method=CANCEL"
    assert "This deadline has been cancelled." in cancel.text
    calendar, event = vevent(ics(revision(2, moved, MADE, cancel=True)))
    assert (calendar["METHOD"], event["SEQUENCE"], str(event["STATUS"])) == (
        "CANCEL",
        2,
        "CANCELLED",
    )
    assert not event.walk("VALARM")


def test_change_mails_are_localized() -> None:
    city = DIRECTORY.by_id["clermont-ferrand"]
    update = RENDERER.render(revision(1, DUE, MADE), city)
    assert update.subject.startswith("Mise à jour\u00a0: Rapport d'étape biennal – échéance")
    assert "met à jour celle que vous avez reçue" in update.text


def test_imports_of_edit_edit_cancel_leave_one_entry_then_none() -> None:
    """The calendar model imports every mail a city gets, in order: never two entries."""
    calendar = CalendarModel()
    first, second = DUE + timedelta(days=3), DUE + timedelta(days=5)
    mails = [
        (reminder(), DUE),
        (reminder("1d-before", -86400), DUE),
        (revision(1, first, MADE + timedelta(hours=1)), first),
        (reminder("1d-before", -86400, due_at=first, sequence=1), first),
        (revision(2, second, MADE + timedelta(hours=2)), second),
    ]
    for event, start in mails:
        calendar.apply(ics(event))
        assert len(calendar.entries) == 1
        assert calendar.entries[UID].start == start
    assert calendar.entries[UID].sequence == 2
    # a late copy of an older revision changes nothing
    calendar.apply(ics(revision(1, first, MADE + timedelta(hours=1))))
    assert calendar.entries[UID].start == second
    calendar.apply(ics(revision(3, second, MADE + timedelta(hours=3), cancel=True)))
    assert calendar.entries == {}
    calendar.apply(ics(revision(2, second, MADE + timedelta(hours=2))))  # late, older
    assert calendar.entries == {}
