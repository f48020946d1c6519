"""Every IANA zone of this machine's tzdata, over two years from the start of this year: a
day step lands at the delivery hour on the city's own calendar, and the date a mail writes
for that instant names the same local day.

Pure functions only (``plan.local_instant``, ``dates.local_date`` and ``local_datetime``),
so the whole sweep takes seconds. Checked on the days before, of and after every offset
change in the window, at every hour of those days, and at the default hour on every
23rd ordinary day.

The documented choice for an hour that does not exist or happens twice (README, "Reminder
plans in local time"): a nonexistent hour is read with the offset in force before the
change, so the step goes out that much later by the wall clock (09:00 skipped by a one-hour
spring-forward goes out at 10:00, the same local day); a repeated hour goes out at its first
occurrence.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import cache
from zoneinfo import ZoneInfo, available_timezones

import pytest
from babel import Locale
from babel.dates import format_date

from gnlc_email.dates import local_date, local_datetime
from gnlc_scheduler.plan import local_instant

START = date(datetime.now(UTC).year, 1, 1)
DAYS = 2 * 366
ORDINARY_EVERY = 23
DEFAULT_HOUR = 9
LOCALES = (Locale.parse("en"), Locale.parse("ar"), Locale.parse("zh_Hans"))
ZONES = sorted(available_timezones())


def _offset(zone: ZoneInfo, moment: datetime) -> timedelta:
    offset = moment.astimezone(zone).utcoffset()
    assert offset is not None
    return offset


@dataclass(frozen=True)
class Case:
    day: date
    hour: int
    transition: bool


def cases(zone: ZoneInfo) -> Iterator[Case]:
    """Every hour of the local days on which the offset changes, the default hour of the
    days before and after, and of every ``ORDINARY_EVERY``-th day."""
    changing: set[date] = set()
    week = [datetime.combine(START + timedelta(days=n), time(), UTC) for n in range(0, DAYS + 8, 7)]
    for start, end in itertools.pairwise(week):
        if _offset(zone, start) == _offset(zone, end):
            continue  # no change in this week (none is undone within a week)
        previous = _offset(zone, start)
        for n in range(1, 8):
            moment = start + timedelta(days=n)
            offset = _offset(zone, moment)
            if offset != previous:  # it changed during the 24 hours before ``moment``
                changing.add((moment - timedelta(days=1)).astimezone(zone).date())
                changing.add(moment.astimezone(zone).date())
                previous = offset
    for day in sorted(changing):
        for hour in range(24):
            yield Case(day, hour, transition=True)
    beside = {day + timedelta(days=shift) for day in changing for shift in (-1, 1)} - changing
    ordinary = {START + timedelta(days=n) for n in range(0, DAYS, ORDINARY_EVERY)} - changing
    for day in sorted(beside | ordinary):
        yield Case(day, DEFAULT_HOUR, transition=False)


@cache
def _nearby(key: str, day: date) -> frozenset[timedelta]:
    """The offsets the zone uses from the day before ``day`` to the day after."""
    zone = ZoneInfo(key)
    noon = datetime.combine(day, time(12), UTC)
    return frozenset(_offset(zone, noon + timedelta(hours=h)) for h in range(-36, 37, 12))


def expected(zone: ZoneInfo, day: date, hour: int) -> datetime:
    """The instant of ``hour`` o'clock on ``day`` in ``zone``, worked out from the offsets
    alone (not from how ``datetime`` resolves local times): the one instant whose wall time
    it is; the earlier of two; for a wall time that never happens, ``wall`` read with the
    offset before the change, or, when that falls on the next local day, with the offset
    after it."""
    wall = datetime.combine(day, time(hour))
    candidates = sorted((wall - offset).replace(tzinfo=UTC) for offset in _nearby(zone.key, day))
    for instant in candidates:
        if instant.astimezone(zone).replace(tzinfo=None) == wall:
            return instant
    before, after = _offset(zone, candidates[0]), _offset(zone, candidates[-1])
    instant = (wall - before).replace(tzinfo=UTC)
    if instant.astimezone(zone).date() != day:
        instant = (wall - after).replace(tzinfo=UTC)
    return instant


@cache
def _long_date(day: date, locale: Locale) -> str:
    return format_date(day, "long", locale=locale)


@cache
def _full_date(day: date, locale: Locale) -> str:
    return format_date(day, "full", locale=locale)


def test_the_window_has_transitions_in_it() -> None:
    zone = ZoneInfo("Europe/Dublin")
    assert sum(case.transition for case in cases(zone)) >= 2 * 2 * 24


@pytest.mark.parametrize("chunk", range(4))
def test_every_zone_day_steps_land_at_the_delivery_hour_and_mails_name_that_day(
    chunk: int,
) -> None:
    checked = gaps = folds = 0
    problems: list[str] = []
    for key in ZONES[chunk::4]:
        zone = ZoneInfo(key)
        for case in cases(zone):
            # a "-1d" step of a deadline due the next local day at noon, and a "+2d" step
            # of one due two local days before at noon: both land on ``case.day``
            due_next = datetime.combine(case.day + timedelta(days=1), time(12), zone).astimezone(
                UTC
            )
            due_before = datetime.combine(case.day - timedelta(days=2), time(12), zone).astimezone(
                UTC
            )
            want = expected(zone, case.day, case.hour)
            for due, offset in ((due_next, timedelta(days=-1)), (due_before, timedelta(days=2))):
                got = local_instant(due, offset, zone, case.hour)
                if got != want:
                    problems.append(
                        f"{key} {case.day} {case.hour:02d}:00 {offset}: {got} != {want}"
                    )
            local = want.astimezone(zone)
            if local.time() != time(case.hour):
                gaps += 1  # the documented choice: later by the gap (earlier at a day's end)
            elif local.fold or (want + timedelta(hours=1)).astimezone(zone).fold:
                folds += 1
            if local.date() != case.day:
                problems.append(f"{key} {case.day} {case.hour:02d}:00 lands on {local.date()}")
            locale = LOCALES[checked % len(LOCALES)]
            if local_date(want, zone, locale) != _long_date(local.date(), locale):
                problems.append(f"{key} {case.day}: mail date {local_date(want, zone, locale)!r}")
            if not local_datetime(want, zone, locale).startswith(_full_date(local.date(), locale)):
                problems.append(f"{key} {case.day}: mail {local_datetime(want, zone, locale)!r}")
            checked += 1
    assert not problems, "\n".join(problems[:20])
    assert checked > 1000
    assert gaps  # the sweep did meet skipped hours
    assert folds  # and repeated ones
