"""A calendar as RFC 5546 has it apply what it imports, for tests: entries keyed by UID; a
``REQUEST`` (or ``PUBLISH``) adds an entry or replaces one of a lower SEQUENCE (the same
SEQUENCE with a later DTSTAMP too), a ``CANCEL`` of at least the entry's SEQUENCE removes
it, and anything older than what the calendar holds is ignored."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from icalendar import Calendar


@dataclass(frozen=True)
class Entry:
    uid: str
    sequence: int
    stamp: datetime
    start: datetime
    summary: str


@dataclass
class CalendarModel:
    entries: dict[str, Entry] = field(default_factory=dict)
    #: SEQUENCE of the last CANCEL per UID: a late, older REQUEST must not bring it back
    cancelled: dict[str, int] = field(default_factory=dict)

    def apply(self, ics: bytes) -> None:
        calendar = Calendar.from_ical(ics)
        method = str(calendar["METHOD"])
        for event in calendar.walk("VEVENT"):
            entry = Entry(
                str(event["UID"]),
                int(event.get("SEQUENCE", 0)),
                event.decoded("DTSTAMP"),
                event.decoded("DTSTART"),
                str(event["SUMMARY"]),
            )
            held = self.entries.get(entry.uid)
            if method == "CANCEL":
                if held is None or entry.sequence >= held.sequence:
                    self.entries.pop(entry.uid, None)
                    self.cancelled[entry.uid] = max(
                        entry.sequence, self.cancelled.get(entry.uid, -1)
                    )
                continue
            assert method in {"REQUEST", "PUBLISH"}, method
            if entry.sequence <= self.cancelled.get(entry.uid, -1):
                continue  # older than its cancellation
            if held is None or (entry.sequence, entry.stamp) > (held.sequence, held.stamp):
                self.entries[entry.uid] = entry
