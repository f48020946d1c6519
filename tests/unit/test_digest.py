"""Digests' pure decisions as tables: which local day's digest a notice joins, when that
digest is due, which notices may wait for it, whose mail waits at all, how a day is cut."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from gnlc_core.events import (
    AnnouncementPublished,
    Audience,
    DeadlineReminder,
    DeadlineRevision,
    announcement_event,
    change_event,
    reminder_event,
)
from gnlc_email.choices import Digest
from gnlc_email.digest import (
    MAX_NOTICES,
    Timing,
    chunks,
    digest_key,
    digest_reference,
    held_reason,
    may_wait,
)

NINE = Timing(time(9), timedelta(minutes=5))
KATHMANDU = ZoneInfo("Asia/Kathmandu")  # +05:45
ST_JOHNS = ZoneInfo("America/St_Johns")  # -03:30, DST
CHATHAM = ZoneInfo("Pacific/Chatham")  # +12:45 / +13:45
JOHANNESBURG = ZoneInfo("Africa/Johannesburg")


def utc(
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0
) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC)


@pytest.mark.parametrize(
    ("handled", "zone", "day", "close"),
    [
        # Kathmandu 09:00 is 03:15 UTC; the digest closes at 03:20 UTC
        (utc(2027, 1, 10, 3, 14), KATHMANDU, date(2027, 1, 10), utc(2027, 1, 10, 3, 20)),
        # a reminder of the delivery hour, handled 3 minutes after it: today's digest
        (utc(2027, 1, 10, 3, 18), KATHMANDU, date(2027, 1, 10), utc(2027, 1, 10, 3, 20)),
        # at the close: too late for it, so tomorrow's
        (utc(2027, 1, 10, 3, 20), KATHMANDU, date(2027, 1, 11), utc(2027, 1, 11, 3, 20)),
        # in the afternoon: tomorrow's
        (utc(2027, 1, 10, 10, 0), KATHMANDU, date(2027, 1, 11), utc(2027, 1, 11, 3, 20)),
        # just after local midnight (18:15 UTC the day before): that local day's digest
        (utc(2027, 1, 9, 18, 20), KATHMANDU, date(2027, 1, 10), utc(2027, 1, 10, 3, 20)),
        # St John's in winter (-03:30): 09:05 local is 12:35 UTC
        (utc(2027, 1, 10, 12, 34), ST_JOHNS, date(2027, 1, 10), utc(2027, 1, 10, 12, 35)),
        # ... and in summer (-02:30): 11:35 UTC
        (utc(2027, 7, 10, 11, 34), ST_JOHNS, date(2027, 7, 10), utc(2027, 7, 10, 11, 35)),
        # Chatham +13:45 in January: 09:05 local is 19:20 UTC the day before
        (utc(2027, 1, 9, 19, 0), CHATHAM, date(2027, 1, 10), utc(2027, 1, 9, 19, 20)),
        (utc(2027, 1, 9, 19, 21), CHATHAM, date(2027, 1, 11), utc(2027, 1, 10, 19, 20)),
    ],
)
def test_which_days_digest_a_notice_joins(
    handled: datetime, zone: ZoneInfo, day: date, close: datetime
) -> None:
    assert NINE.day_of(handled, zone) == day
    assert NINE.close(day, zone) == close
    assert close > handled  # a digest never reports what came after it went


@pytest.mark.parametrize(
    ("timing", "day", "zone", "close"),
    [
        (Timing(), date(2027, 1, 10), JOHANNESBURG, utc(2027, 1, 10, 7, 5)),  # the defaults
        (Timing(time(9), timedelta(0)), date(2027, 1, 10), JOHANNESBURG, utc(2027, 1, 10, 7)),
        (
            Timing(time(7, 30, 15), timedelta(0)),
            date(2027, 1, 10),
            JOHANNESBURG,
            utc(2027, 1, 10, 5, 30, 15),
        ),
        # St John's springs forward at 02:00 on 14 March 2027: 02:30 is read before the gap
        (Timing(time(2, 30), timedelta(0)), date(2027, 3, 14), ST_JOHNS, utc(2027, 3, 14, 6, 0)),
    ],
)
def test_when_a_digest_is_due(timing: Timing, day: date, zone: ZoneInfo, close: datetime) -> None:
    assert timing.close(day, zone) == close


def test_every_moment_of_a_year_joins_the_next_digest_to_close() -> None:
    """Whatever the zone and the moment: the digest joined is the first to close after it,
    and closes within a day (plus a daylight-saving hour) of it."""
    for zone in (KATHMANDU, ST_JOHNS, CHATHAM):
        handled = utc(2027, 1, 1)
        while handled < utc(2028, 1, 1):
            day = NINE.day_of(handled, zone)
            close = NINE.close(day, zone)
            assert handled < close <= handled + timedelta(hours=25)
            assert NINE.close(day - timedelta(days=1), zone) <= handled
            handled += timedelta(hours=7, minutes=13)


NOW = utc(2027, 1, 10, 10)
CLOSE = utc(2027, 1, 11, 7, 5)
AUDIENCE = Audience(cities=("durban",))


def reminder(due_at: datetime, offset: int) -> object:
    return reminder_event(
        DeadlineReminder(
            deadline_id="report",
            title={"en": "Report"},
            due_at=due_at,
            step="due"
            if offset == 0
            else f"{abs(offset)}s-{'before' if offset < 0 else 'overdue'}",
            offset_seconds=offset,
            audience=AUDIENCE,
        ),
        fired_at=NOW,
    )


ANNOUNCEMENT = announcement_event(
    AnnouncementPublished(
        announcement_id="day",
        category="event",
        title={"en": "Day"},
        body={"en": "Body"},
        audience=AUDIENCE,
        published_at=NOW,
    )
)
CHANGE = change_event(
    DeadlineRevision(
        deadline_id="report",
        title={"en": "Report"},
        due_at=NOW + timedelta(days=9),
        audience=AUDIENCE,
        sequence=1,
        revised_at=NOW,
    )
)


@pytest.mark.parametrize(
    ("event", "waits"),
    [
        (ANNOUNCEMENT, True),
        (reminder(NOW + timedelta(days=7), -7 * 86400), True),  # due long after the digest
        (reminder(NOW - timedelta(days=3), 3 * 86400), True),  # overdue: a day changes nothing
        (reminder(CLOSE + timedelta(seconds=1), -86400), True),  # due just after the digest
        (reminder(CLOSE, -86400), False),  # due as the digest goes: would come too late
        (reminder(NOW + timedelta(hours=2), -7200), False),  # a -2h step goes at once
        (reminder(NOW, 0), True),  # due now, handled at that moment: overdue by the digest
        (CHANGE, False),  # a calendar change corrects what was delivered: at once
    ],
)
def test_which_notices_may_wait_for_the_digest(event: object, waits: bool) -> None:
    assert may_wait(event, NOW, CLOSE) is waits


@pytest.mark.parametrize(
    ("choice", "city", "waits"),
    [
        (Digest.CITY, False, False),  # the default: off, as cities are by default
        (Digest.CITY, True, True),
        (Digest.ON, False, True),
        (Digest.ON, True, True),
        (Digest.OFF, True, False),
        (Digest.OFF, False, False),
    ],
)
def test_whose_mail_waits_for_a_digest(choice: Digest, city: bool, waits: bool) -> None:
    assert choice.wanted(city) is waits


@pytest.mark.parametrize(
    ("count", "limit", "sizes"),
    [
        (0, MAX_NOTICES, []),
        (1, MAX_NOTICES, [1]),
        (MAX_NOTICES, MAX_NOTICES, [MAX_NOTICES]),
        (MAX_NOTICES + 1, MAX_NOTICES, [MAX_NOTICES, 1]),
        (7, 3, [3, 3, 1]),
    ],
)
def test_a_day_is_cut_into_digests_of_at_most_the_limit(
    count: int, limit: int, sizes: list[int]
) -> None:
    parts = chunks(list(range(count)), limit)
    assert [len(part) for part in parts] == sizes
    assert [n for part in parts for n in part] == list(range(count))  # in order, each once


def test_the_limit_is_at_least_one() -> None:
    with pytest.raises(ValueError, match="at least one"):
        chunks([1], 0)


def test_a_digest_is_named_by_contact_day_and_part() -> None:
    key = digest_key("durban", "Focal.Point@Durban.example.org", date(2027, 1, 10), 2)
    assert key == "durban:focal.point@durban.example.org:2027-01-10:2"
    assert digest_reference(key) == digest_reference(key)  # the same Message-ID every time
    assert digest_reference(key) != digest_reference(key.replace(":2", ":1"))
    assert held_reason(date(2027, 1, 10)) == "digest 2027-01-10"
