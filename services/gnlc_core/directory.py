"""The member-city directory: loading it and resolving an audience against it."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from functools import cache, cached_property
from pathlib import Path
from typing import Annotated, Any, Protocol
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    EmailStr,
    Field,
    ValidationError,
    model_validator,
)

from gnlc_core.errors import message_of
from gnlc_core.events import MAX_REGION_CHARS, Audience, LanguageTag, Slug

#: Limits of a directory (README: limits): rows, and the texts and lists of a city.
MAX_CITIES = 5_000
MAX_NAME_CHARS = 200
MAX_CONTACTS = 10
MAX_EMAIL_CHARS = 254
#: A city's languages in order of preference: at most this many.
MAX_CITY_LANGUAGES = 5
COLUMNS = ("id", "name", "country", "region", "timezone", "language", "contact_email")
#: ``languages`` ("ar;fr": the chain, the first the primary) may stand for ``language``.
OPTIONAL_COLUMNS = ("active", "languages", "digest")
_LIST_SEPARATORS = re.compile(r"[;,\s]+")
_DELIMITERS = (",", ";", "\t")


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
    name: Annotated[str, Field(min_length=1, max_length=MAX_NAME_CHARS)]
    country: Annotated[
        str, Field(pattern=r"^[A-Za-z]{2}$", max_length=2), AfterValidator(lambda v: v.upper())
    ]
    region: Annotated[str, Field(min_length=1, max_length=MAX_REGION_CHARS)]
    timezone: Annotated[str, Field(max_length=64), AfterValidator(_known_zone)]
    language: LanguageTag
    #: The city's languages in order of preference, ``language`` first; a city given only
    #: ``language`` (older records and uploads) has that one alone.
    languages: Annotated[
        tuple[LanguageTag, ...], Field(min_length=1, max_length=MAX_CITY_LANGUAGES)
    ] = ()
    contacts: Annotated[
        tuple[Annotated[EmailStr, Field(max_length=MAX_EMAIL_CHARS)], ...],
        Field(min_length=1, max_length=MAX_CONTACTS),
    ]
    active: bool = True
    #: The city's contacts get one daily digest of a local day's notices instead of one
    #: mail each (email; a contact may decide otherwise on its preference page).
    digest: bool = False

    @model_validator(mode="before")
    @classmethod
    def _chain(cls, data: Any) -> Any:
        """``language`` alone, ``languages`` alone, or both with ``language`` first."""
        if not isinstance(data, dict):
            return data
        language, languages = data.get("language"), data.get("languages")
        if languages in (None, "", [], ()):
            if language in (None, ""):
                raise ValueError("give language (or languages, in order of preference)")
            return {**data, "languages": (language,)}
        if isinstance(languages, str):
            languages = tuple(tag for tag in _LIST_SEPARATORS.split(languages) if tag)
        if not isinstance(languages, list | tuple) or not languages:
            return data  # the field's own validation names it
        if language in (None, ""):
            return {**data, "language": languages[0], "languages": tuple(languages)}
        if language != languages[0]:
            listed = ", ".join(map(str, languages))
            raise ValueError(f"language {language!r} must be the first of languages ({listed})")
        return {**data, "languages": tuple(languages)}

    @model_validator(mode="after")
    def _each_once(self) -> City:
        lowered = [tag.lower() for tag in self.languages]
        if len(set(lowered)) != len(lowered):
            raise ValueError(f"languages lists a language twice: {', '.join(self.languages)}")
        return self

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


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a directory upload: where (``line 5``, a column) and what."""

    where: tuple[str | int, ...]
    msg: str
    type: str = "value_error"

    def __str__(self) -> str:
        return ": ".join([*(str(part) for part in self.where), self.msg])


class DirectoryError(ValueError):
    """The directory upload is invalid; ``problems`` lists every row's problems at once."""

    def __init__(self, problems: list[Problem] | str) -> None:
        self.problems = [Problem((), problems)] if isinstance(problems, str) else problems
        super().__init__("; ".join(str(p) for p in self.problems))


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


def parse_rows(
    rows: Iterable[Mapping[str, str | None]],
    *,
    first_line: int = 2,
    label: str = "line",
    limit: int = MAX_CITIES,
) -> Directory:
    """Validate directory rows; every problem of every row is reported together
    (``DirectoryError``), so nothing is half-loaded and nothing needs a second try."""
    return _validate(
        ((f"{label} {line}", row) for line, row in enumerate(rows, start=first_line)), limit
    )


def _validate(
    rows: Iterable[tuple[str, Mapping[str, str | None]]],
    limit: int,
    problems: list[Problem] | None = None,
) -> Directory:
    """The cities of ``rows`` (each with where it is: ``line 5``), or every problem of
    every row, with those already found (``problems``), in the order of the rows."""
    problems = list(problems or [])
    cities: list[City] = []
    seen: dict[str, str] = {}
    for count, (where, row) in enumerate(rows):
        if count >= limit:
            problems.append(Problem((), f"more than {limit} cities; import them in parts"))
            break
        city, row_problems = _city(row, where)
        problems.extend(row_problems)
        if city is None:
            continue
        if city.id in seen:
            problems.append(
                Problem((where,), f"duplicate city id {city.id!r} (first on {seen[city.id]})")
            )
            continue
        seen[city.id] = where
        cities.append(city)
    if problems:
        raise DirectoryError(sorted(problems, key=_line_of))
    if not cities:
        raise DirectoryError([Problem((), "no cities: nothing to import", "missing")])
    return Directory(tuple(cities))


def _city(row: Mapping[str, str | None], where: str) -> tuple[City | None, list[Problem]]:
    def text(column: str, default: str = "") -> str:
        return (row.get(column) or default).strip()

    contacts = tuple(part.strip() for part in text("contact_email").split(";") if part.strip())
    if not contacts:
        return None, [Problem((where, "contact_email"), "no contact_email", "missing")]
    try:
        city = City.model_validate(
            {
                "id": text("id"),
                "name": text("name"),
                "country": text("country"),
                "region": text("region"),
                "timezone": text("timezone"),
                "language": text("language") or None,
                "languages": text("languages") or None,
                "contacts": contacts,
                "active": text("active", "true").lower() not in {"false", "0", "no"},
                "digest": text("digest") or False,  # yes/no, true/false, 1/0
            }
        )
    except ValidationError as exc:
        return None, [
            Problem((where, *(str(p) for p in err["loc"])), message_of(err), err["type"])
            for err in exc.errors()
        ]
    return city, []


def read_csv(text: str, *, limit: int = MAX_CITIES) -> Directory:
    """A directory CSV: a header naming the columns (``COLUMNS``; ``OPTIONAL_COLUMNS``),
    separated by commas, semicolons or tabs (the header tells which), then one row per
    city."""
    if not text.strip():
        raise DirectoryError([Problem((), "the file is empty", "missing")])
    first = text.lstrip("\ufeff").splitlines()[0]
    delimiter = max(_DELIMITERS, key=lambda d: len(_known(first.split(d))))
    reader = csv.reader(io.StringIO(text.lstrip("\ufeff")), delimiter=delimiter)
    header = [name.strip().lower() for name in next(reader)]
    if not _known(header):
        raise DirectoryError(
            [
                Problem(
                    ("line 1",),
                    "the first line must be a header naming the columns: " + ", ".join(COLUMNS),
                    "missing",
                )
            ]
        )
    missing = [
        name
        for name in COLUMNS
        if name not in header and not (name == "language" and "languages" in header)
    ]
    if missing:
        unknown = [name for name in header if name not in COLUMNS + OPTIONAL_COLUMNS]
        hint = f" (unknown column(s): {', '.join(unknown)})" if unknown else ""
        raise DirectoryError(
            [Problem(("line 1",), f"missing column(s): {', '.join(missing)}{hint}", "missing")]
        )
    short: list[Problem] = []
    rows: list[tuple[str, dict[str, str]]] = []
    for line, values in enumerate(reader, start=2):
        if not any(value.strip() for value in values):
            continue  # blank lines
        if len(rows) + len(short) >= limit:
            short.append(Problem((), f"more than {limit} cities; import them in parts"))
            break
        if len(values) != len(header):
            short.append(
                Problem(
                    (f"line {line}",),
                    f"has {len(values)} field(s); the header has {len(header)}",
                )
            )
        else:
            rows.append((f"line {line}", dict(zip(header, values, strict=True))))
    return _validate(rows, limit, short)


def _line_of(problem: Problem) -> int:
    first = str(problem.where[0]) if problem.where else ""
    return int(first.removeprefix("line ")) if first.startswith("line ") else 1 << 30


def _known(names: Iterable[str]) -> list[str]:
    return [n.strip().lower() for n in names if n.strip().lower() in COLUMNS + OPTIONAL_COLUMNS]


def load_csv(path: Path) -> Directory:
    """Load a directory CSV (columns as in ``gnlc_core/sample-cities.csv``)."""
    return read_csv(path.read_text(encoding="utf-8-sig"))
