"""The RFC 5545 calendar entry of a deadline, kept current by RFC 5546 (iTIP), pure.

One ``VEVENT`` at the due moment (UTC, so every calendar shows it in its own zone) whose
UID depends on the deadline alone: every mail about a deadline carries the same entry. The
entry's ``SEQUENCE`` is the deadline's revision (0 when made, one more at every change of
its due moment, title, description or link, and at its cancellation) and its ``DTSTAMP``
the moment of that revision, so a calendar that imports a later revision replaces the
entry in place, and ``METHOD:CANCEL`` with the same UID removes it. Every entry is sent as
``METHOD:REQUEST`` (reminders and updates alike), with the network as ``ORGANIZER`` and the
recipient as a non-participant ``ATTENDEE`` that is asked for no reply.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from enum import StrEnum
from functools import lru_cache

from icalendar import Alarm, Calendar, Event, vCalAddress
from icalendar.parser import Contentline

PRODUCT_ID = "-//UNESCO GNLC//GNLC Notify//EN"
#: Stands in for the recipient's ``ATTENDEE`` line until ``attendee_line`` fills it in.
ATTENDEE_PLACEHOLDER = b"X-GNLC-ATTENDEE:1\r\n"


class Method(StrEnum):
    """The iTIP method of a calendar entry: one for every version, one to withdraw it."""

    REQUEST = "REQUEST"
    CANCEL = "CANCEL"

    @property
    def content_type(self) -> str:
        return f"text/calendar; method={self.value}"


def deadline_uid(deadline_id: str, domain: str) -> str:
    """The entry's UID: the deadline's, whatever its due moment or title."""
    return f"deadline-{deadline_id}@{domain}"


_PLACEHOLDER_STAMP = datetime(2000, 1, 1, tzinfo=UTC)
_PLACEHOLDER_LINE = b"DTSTAMP:20000101T000000Z"


def deadline_ics(
    *,
    deadline_id: str,
    summary: str,
    description: str,
    due_at: datetime,
    stamp: datetime,
    link: str | None,
    language: str,
    domain: str,
    alarm_label: str,
    sequence: int = 0,
    method: Method = Method.REQUEST,
    organizer: str | None = None,
) -> bytes:
    """``summary`` is the entry's title ("Due: <title>"), ``stamp`` the moment of revision
    ``sequence`` (the same bytes on every render). Every city of a deadline shares the entry
    but for its recipient (``attendee_line``), so the entry is built once per deadline,
    revision and language and the stamp written into a copy."""
    entry = _entry(
        deadline_id,
        summary,
        description,
        due_at,
        link,
        language,
        domain,
        alarm_label,
        sequence,
        method,
        organizer or f"noreply@{domain}",
    )
    line = b"DTSTAMP:" + stamp.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ").encode()
    return entry.replace(_PLACEHOLDER_LINE, line, 1)


@lru_cache(maxsize=8192)  # a city's contacts get every deadline's entries
def attendee_line(address: str, name: str) -> bytes:
    """The recipient's ``ATTENDEE`` line (folded): a non-participant asked for no reply."""
    value = vCalAddress(f"mailto:{address}")
    params = {"CN": name, "CUTYPE": "GROUP", "ROLE": "NON-PARTICIPANT", "RSVP": "FALSE"}
    for key, param in params.items():
        value.params[key] = param
    return bytes(Contentline.from_parts("ATTENDEE", value.params, value).to_ical()) + b"\r\n"


def for_attendee(ics: bytes, address: str, name: str) -> bytes:
    """The entry with its recipient in place of the placeholder."""
    return ics.replace(ATTENDEE_PLACEHOLDER, attendee_line(address, name), 1)


@lru_cache(maxsize=4096)
def _entry(
    deadline_id: str,
    summary: str,
    description: str,
    due_at: datetime,
    link: str | None,
    language: str,
    domain: str,
    alarm_label: str,
    sequence: int,
    method: Method,
    organizer: str,
) -> bytes:
    stamp = _PLACEHOLDER_STAMP
    calendar = Calendar()
    calendar.add("prodid", PRODUCT_ID)
    calendar.add("version", "2.0")
    calendar.add("calscale", "GREGORIAN")
    calendar.add("method", method.value)
    entry = Event()
    entry.add("uid", deadline_uid(deadline_id, domain))
    entry.add("sequence", sequence)
    entry.add("dtstamp", stamp)
    entry.add("dtstart", due_at)
    entry.add("dtend", due_at)
    entry.add("summary", summary, parameters={"LANGUAGE": language})
    entry.add("description", description, parameters={"LANGUAGE": language})
    entry.add("transp", "TRANSPARENT")  # a moment to remember, not a busy slot
    entry.add("categories", ["GNLC", "Deadline"])
    host = vCalAddress(f"mailto:{organizer}")
    host.params["CN"] = "UNESCO GNLC"
    entry.add("organizer", host)
    entry.add("x-gnlc-attendee", "1")
    if link:
        entry.add("url", link)
    if method is Method.CANCEL:
        entry.add("status", "CANCELLED")
    else:
        entry.add("status", "CONFIRMED")
        alarm = Alarm()
        alarm.add("action", "DISPLAY")
        alarm.add("description", alarm_label)
        alarm.add("trigger", timedelta(days=-1))
        entry.add_component(alarm)
    calendar.add_component(entry)
    return bytes(calendar.to_ical())
