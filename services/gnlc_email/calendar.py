"""The RFC 5545 calendar entry attached to deadline reminders, pure.

One ``VEVENT`` at the due moment (UTC, so every calendar shows it in its own zone), with a
UID that depends only on the deadline and its due moment: every reminder of a deadline
carries the same entry, and importing it again updates the entry instead of adding another.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from functools import lru_cache

from icalendar import Alarm, Calendar, Event

PRODUCT_ID = "-//UNESCO GNLC//GNLC Notify//EN"


def deadline_uid(deadline_id: str, due_at: datetime, domain: str) -> str:
    return f"deadline-{deadline_id}-{due_at:%Y%m%dT%H%M%SZ}@{domain}"


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
) -> bytes:
    """``summary`` is the entry's title ("Due: <title>"), ``stamp`` when the entry was made
    (the reminder event's time, so the bytes are the same on every render). Every city of a
    deadline shares the entry but for its stamp, so the entry is built once per deadline
    and language and the stamp written into a copy."""
    entry = _entry(deadline_id, summary, description, due_at, link, language, domain, alarm_label)
    line = b"DTSTAMP:" + stamp.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ").encode()
    return entry.replace(_PLACEHOLDER_LINE, line, 1)


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
) -> bytes:
    stamp = _PLACEHOLDER_STAMP
    calendar = Calendar()
    calendar.add("prodid", PRODUCT_ID)
    calendar.add("version", "2.0")
    calendar.add("calscale", "GREGORIAN")
    calendar.add("method", "PUBLISH")
    entry = Event()
    entry.add("uid", deadline_uid(deadline_id, due_at, domain))
    entry.add("dtstamp", stamp)
    entry.add("dtstart", due_at)
    entry.add("dtend", due_at)
    entry.add("summary", summary, parameters={"LANGUAGE": language})
    entry.add("description", description, parameters={"LANGUAGE": language})
    entry.add("transp", "TRANSPARENT")  # a moment to remember, not a busy slot
    entry.add("categories", ["GNLC", "Deadline"])
    if link:
        entry.add("url", link)
    alarm = Alarm()
    alarm.add("action", "DISPLAY")
    alarm.add("description", alarm_label)
    alarm.add("trigger", timedelta(days=-1))
    entry.add_component(alarm)
    calendar.add_component(entry)
    return bytes(calendar.to_ical())
