"""Dates, times and spans for people, pure: in the reader's language and local time zone,
with the zone named, because a focal point in Kathmandu must not have to convert from UTC."""

from __future__ import annotations

from datetime import UTC, datetime
from functools import lru_cache
from zoneinfo import ZoneInfo

from babel import Locale
from babel.dates import (
    format_date,
    format_time,
    get_timezone_location,
    get_timezone_name,
)

from gnlc_email.i18n import Language


def gmt_offset(moment: datetime, zone: ZoneInfo, locale: Locale) -> str:
    """The zone's UTC offset at ``moment`` in the locale's GMT format (``GMT+05:45``,
    ``UTC+01:00``). Written here because Babel 2.18 gets negative offsets that are not
    whole hours wrong (St John's -03:30 comes out as -04:30)."""
    offset = moment.astimezone(zone).utcoffset()
    total = int(offset.total_seconds()) if offset is not None else 0
    hours, rest = divmod(abs(total), 3600)
    sign = "-" if total < 0 else "+"
    return str(locale.zone_formats["gmt"]) % f"{sign}{hours:02d}:{rest // 60:02d}"


def zone_label(moment: datetime, zone: ZoneInfo, locale: Locale) -> str:
    """The zone's name at ``moment`` with its UTC offset: ``Central European Standard Time,
    GMT+01:00``. Zones without a name of their own (Kathmandu) are named after their place:
    ``Nepal Time, GMT+05:45``."""
    local = moment.astimezone(zone)
    offset = gmt_offset(moment, zone, locale)
    name = get_timezone_name(local, "long", locale=locale)
    if name.startswith(("GMT", "UTC")) or name == offset:
        name = get_timezone_location(zone, locale=locale)
    return f"{name}, {offset}"


@lru_cache(maxsize=4096)
def local_datetime(moment: datetime, zone: ZoneInfo, language: Language) -> str:
    """``Sunday, January 17, 2027, 5:45 PM (Nepal Time, GMT+05:45)``."""
    locale = language.locale
    local = moment.astimezone(zone)
    date = format_date(local, "full", locale=locale)
    time = format_time(local, "short", tzinfo=zone, locale=locale)
    return f"{date}, {time} ({zone_label(moment, zone, locale)})"


@lru_cache(maxsize=4096)
def local_date(moment: datetime, zone: ZoneInfo, language: Language) -> str:
    """``January 17, 2027`` as the date is in that zone."""
    return format_date(moment.astimezone(zone), "long", locale=language.locale)


@lru_cache(maxsize=4096)
def utc_datetime(moment: datetime, language: Language) -> str:
    """``January 17, 2027, 12:00 UTC``, the same instant for everyone."""
    utc = moment.astimezone(UTC)
    date = format_date(utc, "long", locale=language.locale)
    time = format_time(utc, "HH:mm", tzinfo=UTC, locale=language.locale)
    return f"{date}, {time} UTC"


def span(seconds: int, language: Language) -> str:
    """A length of time in words: whole days, else whole hours, else minutes (at least 1)."""
    amount = abs(seconds)
    days, rest = divmod(amount, 86400)
    if days and not rest:
        return language.ngettext("%(num)d day", "%(num)d days", days) % {"num": days}
    hours, rest = divmod(amount, 3600)
    if hours and not rest:
        return language.ngettext("%(num)d hour", "%(num)d hours", hours) % {"num": hours}
    minutes = max(1, amount // 60)
    return language.ngettext("%(num)d minute", "%(num)d minutes", minutes) % {"num": minutes}
