"""The audience's languages that have no operator text of their own: table-driven."""

from __future__ import annotations

from collections.abc import Mapping

import pytest

from gnlc_core.directory import City
from gnlc_scheduler.coverage import warnings


def city(city_id: str, *languages: str) -> City:
    return City.model_validate(
        {
            "id": city_id,
            "name": city_id.title(),
            "country": "MA",
            "region": "Arab States",
            "timezone": "Africa/Casablanca",
            "languages": list(languages),
            "contacts": [f"a@{city_id}.example.org"],
        }
    )


ARABIC = [city("aswan", "ar", "fr"), city("amman", "ar", "fr"), city("casablanca", "ar", "fr")]
MANY = [*ARABIC, city("rabat", "ar", "fr"), city("tunis", "ar", "fr")]


@pytest.mark.parametrize(
    ("texts", "cities", "expected"),
    [
        # every first language has its text: nothing to say
        ({"title": {"ar": "أ", "fr": "F"}}, ARABIC, []),
        (
            {"title": {"fr": "F", "en": "E"}},
            ARABIC,
            ["no title in ar (3 cities: aswan, amman, casablanca), they get fr"],
        ),
        (
            {"title": {"fr": "F"}},
            MANY,
            ["no title in ar (5 cities: aswan, amman, casablanca, and 2 more), they get fr"],
        ),
        # different fallbacks are told apart
        (
            {"title": {"en": "E", "fr": "F"}},
            [city("hue", "vi", "fr"), city("okayama", "ja", "en")],
            [
                "no title in vi (1 city: hue), they get fr",
                "no title in ja (1 city: okayama), they get en",
            ],
        ),
        # a regional reader takes the language's text; pt takes pt-BR
        ({"body": {"fr": "F", "pt-BR": "P"}}, [city("laval", "fr-CA"), city("s", "pt")], []),
        # one link for everyone, or no text at all: no gap
        ({"link": "https://example.org", "description": None}, ARABIC, []),
        (
            {
                "title": {"ar": "أ"},
                "link": {"en": "https://example.org/en", "fr": "https://example.org/fr"},
            },
            ARABIC[:1],
            ["no link in ar (1 city: aswan), they get fr"],
        ),
    ],
)
def test_warnings_name_each_language_without_its_text(
    texts: Mapping[str, Mapping[str, str] | str | None], cities: list[City], expected: list[str]
) -> None:
    assert warnings(texts, cities) == expected
