"""Which readers of an audience have no operator text of their own: for each text (title,
description or body, link per language), the cities whose first language the operator did
not write it in, grouped by that language and by the language they get instead along their
chain. Pure: the API and the CLI show the warnings it words."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from gnlc_core.directory import City
from gnlc_email.i18n import candidates, pick_language

#: Cities named in a warning before "and N more".
SHOWN_CITIES = 3


@dataclass(frozen=True)
class Gap:
    """Readers of ``language`` (their first) with no ``field`` in it: they get ``gets``."""

    field: str
    language: str
    gets: str
    cities: tuple[str, ...]

    def __str__(self) -> str:
        shown = ", ".join(self.cities[:SHOWN_CITIES])
        more = len(self.cities) - SHOWN_CITIES
        named = f"{shown}, and {more} more" if more > 0 else shown
        count = f"{len(self.cities)} {'city' if len(self.cities) == 1 else 'cities'}"
        return f"no {self.field} in {self.language} ({count}: {named}), they get {self.gets}"


def gaps(texts: Mapping[str, Mapping[str, str] | str | None], cities: Iterable[City]) -> list[Gap]:
    """Every (text, language, fallback) with the cities it concerns, in the order of
    ``texts`` then of the languages' first city. A text given once for all (a single link)
    or not at all has no gap."""
    readers = list(cities)
    found: list[Gap] = []
    for field, given in texts.items():
        if not given or isinstance(given, str):
            continue
        grouped: dict[tuple[str, str], list[str]] = {}
        for city in readers:
            first = (city.languages or (city.language,))[0]
            if candidates(first, given):
                continue
            gets = pick_language(given, city.languages or (city.language,))
            grouped.setdefault((first, gets), []).append(city.id)
        found.extend(
            Gap(field, language, gets, tuple(ids)) for (language, gets), ids in grouped.items()
        )
    return found


def warnings(
    texts: Mapping[str, Mapping[str, str] | str | None], cities: Iterable[City]
) -> list[str]:
    """``gaps`` as sentences: ``no title in ar (3 cities: aswan, amman, chefchaouen), they
    get fr``."""
    return [str(gap) for gap in gaps(texts, cities)]
