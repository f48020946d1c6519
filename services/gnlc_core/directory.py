"""The member-city directory: loading it and resolving an audience against it."""

from __future__ import annotations

import csv
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import cache, cached_property
from pathlib import Path
from typing import Annotated, Protocol
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from pydantic import AfterValidator, BaseModel, ConfigDict, EmailStr, ValidationError

from gnlc_core.events import Audience, LanguageTag, Slug


def _known_zone(name: str) -> str:
    if name not in _zones():
        raise ValueError(f"unknown IANA time zone {name!r}")
    return name


@cache
def _zones() -> frozenset[str]:
    return frozenset(available_timezones())


class City(BaseModel):
    """A member city and where its notices go."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: Slug
    name: str
    country: Annotated[str, AfterValidator(lambda v: v.upper())]
    region: str
    timezone: Annotated[str, AfterValidator(_known_zone)]
    language: LanguageTag
    contacts: tuple[EmailStr, ...]
    active: bool = True

    @property
    def zone(self) -> ZoneInfo:
        try:
            return ZoneInfo(self.timezone)
        except ZoneInfoNotFoundError as exc:  # pragma: no cover - validated above
            raise ValueError(self.timezone) from exc


class DirectorySource(Protocol):
    """Where a consumer reads the directory from: a fixed snapshot, or a live view."""

    @property
    def directory(self) -> Directory: ...


class DirectoryError(ValueError):
    """The directory file is invalid; the message names the row and the problem."""


@dataclass(frozen=True)
class Directory:
    """An immutable snapshot of the member cities, by id."""

    cities: tuple[City, ...]

    @cached_property
    def by_id(self) -> dict[str, City]:
        return {city.id: city for city in self.cities}

    @property
    def directory(self) -> Directory:
        """A snapshot is its own ``DirectorySource``."""
        return self

    def __iter__(self) -> Iterator[City]:
        return iter(self.cities)

    def __len__(self) -> int:
        return len(self.cities)

    def resolve(self, audience: Audience) -> list[City]:
        """The active cities an audience reaches, in directory order, each once."""
        regions = set(audience.regions)
        ids = set(audience.cities)
        return [
            city
            for city in self.cities
            if city.active and (audience.all_members or city.region in regions or city.id in ids)
        ]

    def unknown_cities(self, ids: Iterable[str]) -> list[str]:
        """The ids among ``ids`` that are not in the directory."""
        return [city_id for city_id in ids if city_id not in self.by_id]


def parse_rows(rows: Iterable[dict[str, str]], *, first_line: int = 2) -> Directory:
    """Validate directory rows; the first error stops everything (nothing half-loaded)."""
    cities: list[City] = []
    seen: dict[str, int] = {}
    for line, row in enumerate(rows, start=first_line):
        contacts = tuple(
            part.strip() for part in (row.get("contact_email") or "").split(";") if part.strip()
        )
        try:
            city = City(
                id=(row.get("id") or "").strip(),
                name=(row.get("name") or "").strip(),
                country=(row.get("country") or "").strip(),
                region=(row.get("region") or "").strip(),
                timezone=(row.get("timezone") or "").strip(),
                language=(row.get("language") or "").strip(),
                contacts=contacts,
                active=(row.get("active") or "true").strip().lower() not in {"false", "0", "no"},
            )
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors()
            )
            raise DirectoryError(f"line {line}: {problems}") from None
        if not city.contacts:
            raise DirectoryError(f"line {line}: city {city.id!r} has no contact_email")
        if city.id in seen:
            raise DirectoryError(
                f"line {line}: duplicate city id {city.id!r} (first on line {seen[city.id]})"
            )
        seen[city.id] = line
        cities.append(city)
    return Directory(tuple(cities))


def load_csv(path: Path) -> Directory:
    """Load a directory CSV (columns as in ``gnlc_core/sample-cities.csv``)."""
    with path.open(newline="", encoding="utf-8") as handle:
        return parse_rows(csv.DictReader(handle))
