"""Dates, times and spans for people, pure: in the reader's language and local time zone,
with the zone named, because a focal point in Kathmandu must not have to convert from UTC.

Dates take a Babel ``Locale`` (the first language of the reader's chain that CLDR knows,
``i18n.dates_locale``); spans take the wording's ``Language`` (they are words of its
sentences), with the number written as CLDR writes numbers in that language."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from functools import lru_cache
from zoneinfo import ZoneInfo

from babel import Locale
from babel.dates import (
    format_date,
    format_time,
    get_timezone_location,
    get_timezone_name,
)
from babel.numbers import format_decimal

from gnlc_email.i18n import Language


@lru_cache(maxsize=1024)
def zone(name: str) -> ZoneInfo:
    """The zone of that name, loaded once. (``ZoneInfo`` keeps only the last eight zones
    it made, so a fan-out to cities in thirty zones read the files again for every city.)"""
    return ZoneInfo(name)


def gmt_offset(moment: datetime, zone: ZoneInfo, locale: Locale) -> str:
    """The zone's UTC offset at ``moment`` in the locale's GMT format (``GMT+05:45``,
    ``UTC+01:00``, ``غرينتش‎+01:00``). Written here because Babel 2.18 gets negative offsets
    that are not whole hours wrong (St John's -03:30 comes out as -04:30)."""
    return _gmt(_offset_seconds(moment, zone), locale)


def _gmt(total: int, locale: Locale) -> str:
    hours, rest = divmod(abs(total), 3600)
    sign = "-" if total < 0 else "+"
    # in right-to-left text a left-to-right mark keeps the sign before the digits, as
    # CLDR's hour format for Arabic does ("غرينتش‎+01:00", not "غرينتش01:00+")
    mark = "\u200e" if locale.character_order == "right-to-left" else ""
    return str(locale.zone_formats["gmt"]) % f"{mark}{sign}{hours:02d}:{rest // 60:02d}"


class Season(StrEnum):
    """Which of its names a zone goes by at a moment (CLDR's ``standard`` and ``daylight``)."""

    STANDARD = "standard"
    DAYLIGHT = "daylight"


#: The year whose rules CLDR's metazone of each zone describes (Babel 2.18 carries CLDR 47,
#: of 2025, and only each zone's latest metazone). A year whose offsets differ from that
#: year's is named by place and offset instead (``zone_label``).
METAZONE_YEAR = 2023
_WEEK = timedelta(days=7)


@lru_cache(maxsize=8192)
def offsets_in_year(key: str, year: int) -> frozenset[int]:
    """The UTC offsets (seconds) the zone uses during ``year``, sampled weekly, with both
    ends: every period of a week or more shows (Morocco's month of Ramadan included)."""
    where = zone(key)
    start = datetime(year, 1, 1, tzinfo=UTC)
    end = datetime(year + 1, 1, 1, tzinfo=UTC)
    seen = set()
    moment = start
    while moment < end:
        seen.add(_offset_seconds(moment, where))
        moment += _WEEK
    seen.add(_offset_seconds(end - timedelta(seconds=1), where))
    return frozenset(seen)


def _offset_seconds(moment: datetime, where: ZoneInfo) -> int:
    offset = moment.astimezone(where).utcoffset()
    return int(offset.total_seconds()) if offset is not None else 0


def season(moment: datetime, where: ZoneInfo) -> tuple[Season, bool]:
    """The season of ``moment`` in ``where``, and whether CLDR's metazone of the zone can
    name it (the year uses the same offsets as ``METAZONE_YEAR``).

    Decided by offsets alone, never by ``dst()``: tzdata gives Europe/Dublin a negative
    daylight saving in winter (Irish Standard Time is the legal standard, GMT the winter
    exception), Namibia from 1994 to 2017 and Morocco during Ramadan the same, while people
    there, and CLDR, call the summer's offset the daylight one. So: in a year with more than
    one offset, the largest is ``daylight`` and the others ``standard``; a year with one
    offset is ``standard`` throughout."""
    offsets = offsets_in_year(where.key, moment.astimezone(where).year)
    current = _offset_seconds(moment, where)
    kind = Season.DAYLIGHT if len(offsets) > 1 and current == max(offsets) else Season.STANDARD
    return kind, offsets == offsets_in_year(where.key, METAZONE_YEAR)


def zone_label(moment: datetime, zone: ZoneInfo, locale: Locale) -> str:
    """The zone's name at ``moment`` with its UTC offset: ``Central European Standard Time,
    GMT+01:00``, ``Irish Standard Time, GMT+01:00`` in a Dublin July and ``Greenwich Mean
    Time, GMT+00:00`` in its January. The name is CLDR's (the zone's own name for the
    season, else its metazone's) where CLDR can name that moment; else, and where CLDR has
    no name of its own (Kathmandu), the zone is named after its place: ``Nepal Time,
    GMT+05:45``, ``Namibia Time, GMT+01:00`` (a Windhoek winter of 2000, when the offsets
    were not today's), a name that cannot mislead beside the offset."""
    kind, named = season(moment, zone)
    return _zone_label(zone.key, locale, _offset_seconds(moment, zone), kind, named)


@lru_cache(maxsize=16384)
def _zone_label(key: str, locale: Locale, offset: int, kind: Season, named: bool) -> str:
    """The label depends on the moment only through the offset and the season, so it is
    worked out once per zone, language and season (Babel takes longer over a zone's name
    than over everything else in a message)."""
    where = zone(key)
    text = _gmt(offset, locale)
    location = get_timezone_location(where, locale=locale)
    name = location
    if named:
        # Babel answers with the place's name when CLDR has no name for the season
        cldr = get_timezone_name(where, "long", locale=locale, zone_variant=kind.value)
        gmt = str(locale.zone_formats["gmt"]).split("%s")[0]  # "GMT", "UTC", "غرينتش"
        if not (cldr.startswith(("GMT", "UTC")) or (gmt and cldr.startswith(gmt))):
            name = cldr
    return _punctuation(locale).separator.join((name, text))


@dataclass(frozen=True)
class _Punctuation:
    """How a language writes the zone after a time: ``5:45 PM (Nepal Time, GMT+05:45)``."""

    open: str = " ("
    separator: str = ", "
    close: str = ")"


_PUNCTUATION = {
    "ar": _Punctuation(separator="، "),
    "fa": _Punctuation(separator="، "),
    "ur": _Punctuation(separator="، "),
    "zh": _Punctuation("（", "，", "）"),
    "ja": _Punctuation("（", "、", "）"),
}


def _punctuation(locale: Locale) -> _Punctuation:
    return _PUNCTUATION.get(locale.language, _Punctuation())


@lru_cache(maxsize=4096)
def _date(day: date, pattern: str, locale: Locale) -> str:
    return format_date(day, pattern, locale=locale)


@lru_cache(maxsize=4096)
def _time(clock: time, pattern: str, locale: Locale) -> str:
    return format_time(clock, pattern, locale=locale)


def _glue(locale: Locale, day: str, clock: str) -> str:
    """A date and a time joined as CLDR joins them in that language (``{1}, {0}``)."""
    pattern = str(locale.datetime_formats["full"])
    return pattern.replace("{1}", day).replace("{0}", clock)


def local_datetime(moment: datetime, zone: ZoneInfo, locale: Locale) -> str:
    """``Sunday, January 17, 2027, 5:45 PM (Nepal Time, GMT+05:45)``."""
    local = moment.astimezone(zone)
    day = _date(local.date(), "full", locale)
    clock = _time(local.time().replace(second=0, microsecond=0), "short", locale)
    marks = _punctuation(locale)
    return f"{_glue(locale, day, clock)}{marks.open}{zone_label(moment, zone, locale)}{marks.close}"


def local_date(moment: datetime, zone: ZoneInfo, locale: Locale) -> str:
    """``January 17, 2027`` as the date is in that zone."""
    return _date(moment.astimezone(zone).date(), "long", locale)


def day_label(day: date, locale: Locale) -> str:
    """``January 17, 2027``: a local day (a digest's)."""
    return _date(day, "long", locale)


def utc_datetime(moment: datetime, locale: Locale) -> str:
    """``January 17, 2027, 12:00 UTC``, the same instant for everyone."""
    utc = moment.astimezone(UTC)
    clock = _time(utc.time().replace(second=0, microsecond=0), "HH:mm", locale)
    return f"{_glue(locale, _date(utc.date(), 'long', locale), clock)} UTC"


def number(value: int, language: Language) -> str:
    """A count as the language writes it (CLDR: digits, grouping)."""
    return format_decimal(value, locale=language.locale)


def days(count: int, language: Language) -> str:
    """``21 days`` in the language, in the plural form CLDR gives that count."""
    text = language.ngettext("%(num)s day", "%(num)s days", count)
    return text % {"num": number(count, language)}


def hours(count: int, language: Language) -> str:
    text = language.ngettext("%(num)s hour", "%(num)s hours", count)
    return text % {"num": number(count, language)}


def minutes(count: int, language: Language) -> str:
    text = language.ngettext("%(num)s minute", "%(num)s minutes", count)
    return text % {"num": number(count, language)}


def span(seconds: int, language: Language) -> str:
    """A length of time in words: whole days, else whole hours, else minutes (at least 1)."""
    amount = abs(seconds)
    whole_days, rest = divmod(amount, 86400)
    if whole_days and not rest:
        return days(whole_days, language)
    whole_hours, rest = divmod(amount, 3600)
    if whole_hours and not rest:
        return hours(whole_hours, language)
    return minutes(max(1, amount // 60), language)
