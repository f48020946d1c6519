"""Dates, times and spans for people, pure: in the reader's language and local time zone,
with the zone named, because a focal point in Kathmandu must not have to convert from UTC.

Dates take a Babel ``Locale`` (the first language of the reader's chain that CLDR knows,
``i18n.dates_locale``); spans take the wording's ``Language`` (they are words of its
sentences), with the number written as CLDR writes numbers in that language."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time
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
    offset = moment.astimezone(zone).utcoffset()
    total = int(offset.total_seconds()) if offset is not None else 0
    hours, rest = divmod(abs(total), 3600)
    sign = "-" if total < 0 else "+"
    # in right-to-left text a left-to-right mark keeps the sign before the digits, as
    # CLDR's hour format for Arabic does ("غرينتش‎+01:00", not "غرينتش01:00+")
    mark = "\u200e" if locale.character_order == "right-to-left" else ""
    return str(locale.zone_formats["gmt"]) % f"{mark}{sign}{hours:02d}:{rest // 60:02d}"


def zone_label(moment: datetime, zone: ZoneInfo, locale: Locale) -> str:
    """The zone's name at ``moment`` with its UTC offset: ``Central European Standard Time,
    GMT+01:00``. Zones without a name of their own (Kathmandu) are named after their place:
    ``Nepal Time, GMT+05:45``."""
    local = moment.astimezone(zone)
    offset, dst = local.utcoffset(), local.dst()
    return _zone_label(
        zone.key,
        locale,
        int(offset.total_seconds()) if offset is not None else 0,
        int(dst.total_seconds()) if dst is not None else 0,
        local,
    )


_labels: dict[tuple[str, Locale, int, int], str] = {}


def _zone_label(key: str, locale: Locale, offset: int, dst: int, local: datetime) -> str:
    """The label depends on the moment only through the offset and daylight saving time in
    force, so it is worked out once per zone, language and season (Babel takes longer over
    a zone's name than over everything else in a message)."""
    cache_key = (key, locale, offset, dst)
    label = _labels.get(cache_key)
    if label is None:
        zone = local.tzinfo
        assert isinstance(zone, ZoneInfo)
        text = gmt_offset(local, zone, locale)
        name = get_timezone_name(local, "long", locale=locale)
        gmt = str(locale.zone_formats["gmt"]).split("%s")[0]  # "GMT", "UTC", "غرينتش"
        if name.startswith(("GMT", "UTC")) or (gmt and name.startswith(gmt)) or name == text:
            name = get_timezone_location(zone, locale=locale)
        label = _labels[cache_key] = _punctuation(locale).separator.join((name, text))
    return label


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
