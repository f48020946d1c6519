"""Zone names follow what people in the place call their time in that season (CLDR), never
the sign of tzdata's daylight saving; where CLDR cannot name a moment, the place and offset."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from babel import Locale

from gnlc_email.dates import Season, season, zone_label

JANUARY = datetime(2027, 1, 15, 12, tzinfo=UTC)
JULY = datetime(2027, 7, 15, 12, tzinfo=UTC)
RAMADAN = datetime(2027, 2, 20, 12, tzinfo=UTC)  # Morocco is at +00:00 during Ramadan

CASES = [
    # Dublin: tzdata's negative DST makes winter the "daylight" half; CLDR and the Irish
    # call the summer Irish Standard Time and the winter Greenwich Mean Time
    ("Europe/Dublin", JANUARY, "en", "Greenwich Mean Time, GMT+00:00"),
    ("Europe/Dublin", JULY, "en", "Irish Standard Time, GMT+01:00"),
    ("Europe/Dublin", JANUARY, "fr", "heure moyenne de Greenwich, UTC+00:00"),
    ("Europe/Dublin", JULY, "fr", "heure d’été irlandaise, UTC+01:00"),
    ("Europe/Dublin", JULY, "ar", "توقيت أيرلندا الرسمي، غرينتش\u200e+01:00"),
    ("Europe/London", JULY, "en", "British Summer Time, GMT+01:00"),
    # Windhoek: today Central Africa Time all year; from 1994 to 2017 a +01:00 winter
    # (negative DST in tzdata) under another metazone than today's: the place and offset
    ("Africa/Windhoek", JANUARY, "en", "Central Africa Time, GMT+02:00"),
    ("Africa/Windhoek", JULY, "es", "hora de África central, GMT+02:00"),
    ("Africa/Windhoek", datetime(2000, 7, 15, tzinfo=UTC), "en", "Namibia Time, GMT+01:00"),
    ("Africa/Windhoek", datetime(2000, 1, 15, tzinfo=UTC), "en", "Namibia Time, GMT+02:00"),
    ("Africa/Windhoek", datetime(2000, 7, 15, tzinfo=UTC), "fr", "heure : Namibie, UTC+01:00"),
    # Casablanca: +01:00 with a negative DST during Ramadan; CLDR has no metazone for it
    ("Africa/Casablanca", JANUARY, "en", "Morocco Time, GMT+01:00"),
    ("Africa/Casablanca", RAMADAN, "en", "Morocco Time, GMT+00:00"),
    ("Africa/Casablanca", RAMADAN, "ar", "توقيت المغرب، غرينتش\u200e+00:00"),
    ("Africa/Casablanca", JULY, "fr", "heure : Maroc, UTC+01:00"),
    # Lord Howe: a half-hour daylight saving
    ("Australia/Lord_Howe", JANUARY, "en", "Lord Howe Daylight Time, GMT+11:00"),
    ("Australia/Lord_Howe", JULY, "en", "Lord Howe Standard Time, GMT+10:30"),
    ("Australia/Lord_Howe", JULY, "fr", "heure normale de Lord Howe, UTC+10:30"),
    ("Pacific/Chatham", JANUARY, "en", "Chatham Daylight Time, GMT+13:45"),
    ("Pacific/Chatham", JULY, "en", "Chatham Standard Time, GMT+12:45"),
    ("Pacific/Chatham", JANUARY, "es", "hora de verano de Chatham, GMT+13:45"),
    ("America/St_Johns", JANUARY, "en", "Newfoundland Standard Time, GMT-03:30"),
    ("America/St_Johns", JULY, "en", "Newfoundland Daylight Time, GMT-02:30"),
    ("America/St_Johns", JULY, "fr", "heure d’été de Terre-Neuve, UTC-02:30"),
    ("America/St_Johns", JANUARY, "ar", "توقيت نيوفاوندلاند الرسمي، غرينتش\u200e-03:30"),
    ("Asia/Kathmandu", JULY, "en", "Nepal Time, GMT+05:45"),
    # Paraguay left -04:00/-03:00 for -03:00 all year in 2024; CLDR's Paraguay names
    # still mean -04:00 standard, so the place and offset
    ("America/Asuncion", JULY, "en", "Paraguay Time, GMT-03:00"),
]


@pytest.mark.parametrize(("key", "moment", "language", "label"), CASES)
def test_zone_named_for_the_season(key: str, moment: datetime, language: str, label: str) -> None:
    assert zone_label(moment, ZoneInfo(key), Locale.parse(language)) == label


@pytest.mark.parametrize(
    ("key", "moment", "expected"),
    [
        ("Europe/Dublin", JANUARY, Season.STANDARD),  # tzdata: dst() is -1 h here
        ("Europe/Dublin", JULY, Season.DAYLIGHT),  # tzdata: dst() is 0 here
        ("Africa/Casablanca", RAMADAN, Season.STANDARD),
        ("Africa/Casablanca", JULY, Season.DAYLIGHT),
        ("Australia/Lord_Howe", JANUARY, Season.DAYLIGHT),
        ("Asia/Kathmandu", JANUARY, Season.STANDARD),
    ],
)
def test_season_is_decided_by_offsets_not_by_the_sign_of_dst(
    key: str, moment: datetime, expected: Season
) -> None:
    assert season(moment, ZoneInfo(key))[0] is expected
