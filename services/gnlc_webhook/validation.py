"""What a webhook endpoint may be, for the API and the partners file alike.

One seam: the limits, the field types (``EndpointFields``, shared by the API's request
models and the partners file's entries, so both are refused by the same rules with the same
messages) and ``problems``, the checks that need the directory and DNS (unknown cities or
regions, a URL the SSRF guard refuses). Every limit is a constant here, published in the
OpenAPI document and in the README.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainValidator,
    StringConstraints,
    WithJsonSchema,
)

from gnlc_core.directory import Directory
from gnlc_core.events import EVENT_TYPES, Slug
from gnlc_webhook.ssrf import (
    Policy,
    RefusedTarget,
    Resolver,
    check_target,
    check_url,
    system_resolver,
)

#: Bytes of a request body the API reads at most (413 beyond).
MAX_BODY_BYTES = 128 * 1024
MAX_URL_LENGTH = 2000
MAX_DESCRIPTION_LENGTH = 1000
MAX_NAME_LENGTH = 200
MAX_REGIONS = 20
MAX_REGION_LENGTH = 100
MAX_CITIES = 1000
MAX_EVENT_TYPES = 16
MAX_EVENT_ID_LENGTH = 64
MAX_CONCURRENCY = 256
MAX_RATE_PER_SECOND = 10_000.0
MAX_GRACE_SECONDS = 30 * 86400.0
MAX_LOG_ROWS = 1000
#: Endpoints a partners file may hold.
MAX_FILE_ENDPOINTS = 10_000


# -- URLs --------------------------------------------------------------------------------
# The syntax the SSRF guard accepts, as one regular expression (RFC 3986 hosts: DNS names,
# IPv4, bracketed IPv6), so the OpenAPI document promises exactly what is accepted.
_OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])"
_IPV4 = rf"{_OCTET}(?:\.{_OCTET}){{3}}"
_H16 = r"[0-9A-Fa-f]{1,4}"
_LS32 = rf"(?:{_H16}:{_H16}|{_IPV4})"
_IPV6 = "|".join(
    [
        rf"(?:{_H16}:){{6}}{_LS32}",
        rf"::(?:{_H16}:){{5}}{_LS32}",
        rf"(?:{_H16})?::(?:{_H16}:){{4}}{_LS32}",
        rf"(?:(?:{_H16}:){{0,1}}{_H16})?::(?:{_H16}:){{3}}{_LS32}",
        rf"(?:(?:{_H16}:){{0,2}}{_H16})?::(?:{_H16}:){{2}}{_LS32}",
        rf"(?:(?:{_H16}:){{0,3}}{_H16})?::{_H16}:{_LS32}",
        rf"(?:(?:{_H16}:){{0,4}}{_H16})?::{_LS32}",
        rf"(?:(?:{_H16}:){{0,5}}{_H16})?::{_H16}",
        rf"(?:(?:{_H16}:){{0,6}}{_H16})?::",
    ]
)
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_HOST = rf"(?:{_LABEL}(?:\.{_LABEL})*|\[(?:{_IPV6})\])"
_PORT = r"(?:6553[0-5]|655[0-2][0-9]|65[0-4][0-9]{2}|6[0-4][0-9]{3}|[1-5][0-9]{4}|[1-9][0-9]{0,3})"
#: ``http(s)://host[:port][/path?query#fragment]``, printable ASCII (percent-encode the rest).
URL_PATTERN = rf"^https?://{_HOST}(?::{_PORT})?(?:[/?#][!-~]*)?$"

_URL = re.compile(URL_PATTERN)
_URL_RULE = (
    "must be an http:// or https:// URL with a DNS name or IP address as host, an optional "
    "port (1-65535), printable ASCII only (percent-encode the rest)"
)


def _url_syntax(value: str) -> str:
    if _URL.fullmatch(value) is None:
        try:
            check_url(value, Policy())
        except RefusedTarget as exc:
            raise ValueError(f"refused: {exc}") from None
        raise ValueError(_URL_RULE)
    return value


WebhookUrl = Annotated[
    str,
    StringConstraints(max_length=MAX_URL_LENGTH),
    AfterValidator(_url_syntax),
    WithJsonSchema(
        {
            "type": "string",
            "maxLength": MAX_URL_LENGTH,
            "pattern": URL_PATTERN,
            "description": (
                f"http:// or https:// URL, at most {MAX_URL_LENGTH} characters, printable "
                "ASCII, no credentials; its host must resolve to public addresses only "
                "(SSRF guard)."
            ),
            "examples": ["https://hooks.example.org/gnlc"],
        }
    ),
]


# -- event types, filters, texts ---------------------------------------------------------
def _known_type(value: str) -> str:
    if value not in EVENT_TYPES:
        raise ValueError(f"unknown event type {value!r}; known: {sorted(EVENT_TYPES)}")
    return value


EventTypeName = Annotated[
    str,
    AfterValidator(_known_type),
    WithJsonSchema({"type": "string", "enum": sorted(EVENT_TYPES)}),
]


def _at_least_one(values: tuple[str, ...]) -> tuple[str, ...]:
    # after the items (an unknown one is its own error, not also "too few")
    if not values:
        raise ValueError("List should have at least 1 item")
    return values


EventTypes = Annotated[
    tuple[EventTypeName, ...],
    Field(
        max_length=MAX_EVENT_TYPES,
        description="Event types to receive (repeats count once).",
        json_schema_extra={"minItems": 1},
    ),
    AfterValidator(_at_least_one),
]
Region = Annotated[str, StringConstraints(min_length=1, max_length=MAX_REGION_LENGTH)]
Regions = Annotated[
    tuple[Region, ...],
    Field(
        max_length=MAX_REGIONS,
        description=(
            "Regions of the directory; with `cities`, an optional filter: an event is sent when "
            "its audience reaches one of them. Both empty: every event of the types."
        ),
    ),
]
Cities = Annotated[
    tuple[Slug, ...],
    Field(max_length=MAX_CITIES, description="City ids of the directory (see `regions`)."),
]


def json_integer(value: Any) -> Any:
    """What JSON Schema calls an integer (``3`` or ``3.0``), and nothing else: no booleans,
    no strings."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError("must be an integer")
    return value


def json_number(value: Any) -> Any:
    """A JSON number, and nothing else: no booleans, no strings."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError("must be a number")
    return float(value)


Description = Annotated[str, StringConstraints(max_length=MAX_DESCRIPTION_LENGTH)]
Name = Annotated[str, StringConstraints(min_length=1, max_length=MAX_NAME_LENGTH)]
Concurrency = Annotated[
    int,
    Field(
        ge=1,
        le=MAX_CONCURRENCY,
        description="Requests in flight to this endpoint at most (default: the setting).",
    ),
    BeforeValidator(json_integer),  # after the constraints, which then reach the schema
]
Rate = Annotated[
    float,
    Field(
        gt=0,
        le=MAX_RATE_PER_SECOND,
        allow_inf_nan=False,
        description="Requests per second to this endpoint at most (default: the setting).",
    ),
    BeforeValidator(json_number),
]
EventId = Annotated[str, StringConstraints(min_length=1, max_length=MAX_EVENT_ID_LENGTH)]
Ordered = Annotated[
    bool,
    Field(
        strict=True,
        description=(
            "Deliver one partition key's events in order: each is held until the one before "
            "it is delivered or given up (one failing event holds back its key's later ones "
            "until its retries end; one delivery at a time per key). Default false."
        ),
    ),
]


class EndpointFields(BaseModel):
    """What an endpoint is, as the API takes it and the partners file holds it."""

    model_config = ConfigDict(extra="forbid")

    url: WebhookUrl
    event_types: EventTypes
    regions: Regions = ()
    cities: Cities = ()
    description: Description = ""
    max_concurrency: Concurrency | None = None
    rate_per_second: Rate | None = None
    ordered: Ordered = False


# -- instants ----------------------------------------------------------------------------
# RFC 3339 date-time with an offset; years 0002 to 9998, so that every offset keeps the
# instant inside what a datetime can hold.
_YEAR = (
    r"(?:000[2-9]|00[1-9][0-9]|0[1-9][0-9]{2}|[1-8][0-9]{3}|9[0-8][0-9]{2}|99[0-8][0-9]|999[0-8])"
)
INSTANT_PATTERN = (
    rf"^{_YEAR}-(?:0[1-9]|1[0-2])-(?:0[1-9]|[12][0-9]|3[01])[Tt](?:[01][0-9]|2[0-3])"
    r":[0-5][0-9]:[0-5][0-9](?:\.[0-9]{1,9})?(?:[Zz]|[+-](?:[01][0-9]|2[0-3]):[0-5][0-9])$"
)
_INSTANT = re.compile(
    r"(?P<year>\d{4})-(?P<month>\d{2})-(?P<day>\d{2})[Tt](?P<hour>\d{2}):(?P<minute>\d{2})"
    r":(?P<second>\d{2})(?:\.(?P<fraction>\d{1,9}))?"
    r"(?:(?P<utc>[Zz])|(?P<sign>[+-])(?P<offset_hours>\d{2}):(?P<offset_minutes>\d{2}))"
)
_INSTANT_RULE = (
    "must be an RFC 3339 date-time with an offset, e.g. 2026-01-31T09:00:00+01:00 or "
    "2026-01-31T08:00:00Z (years 0002 to 9998)"
)


def parse_instant(value: Any) -> datetime:
    """A strict ISO 8601 / RFC 3339 instant as an aware UTC datetime; ``ValueError`` (naming
    the rule) for anything else: numbers, naive times, dates alone, years out of range."""
    if isinstance(value, datetime) and value.tzinfo is not None:
        value = value.isoformat()
    if not isinstance(value, str) or re.match(INSTANT_PATTERN, value) is None:
        raise ValueError(_INSTANT_RULE)
    found = _INSTANT.fullmatch(value)
    if found is None:  # pragma: no cover - INSTANT_PATTERN admits only what this matches
        raise ValueError(_INSTANT_RULE)
    part = {name: int(text) for name, text in found.groupdict().items() if text and text.isdigit()}
    offset = timedelta(0)
    if found["sign"]:
        offset = timedelta(hours=part["offset_hours"], minutes=part["offset_minutes"])
        offset = -offset if found["sign"] == "-" else offset
    microsecond = int((found["fraction"] or "0").ljust(6, "0")[:6])
    try:
        local = datetime(
            part["year"],
            part["month"],
            part["day"],
            part["hour"],
            part["minute"],
            part["second"],
            microsecond,
            tzinfo=timezone(offset),
        )
    except ValueError as exc:
        raise ValueError(f"not a valid date-time ({exc}); {_INSTANT_RULE}") from None
    return local.astimezone(UTC)


Instant = Annotated[
    datetime,
    PlainValidator(parse_instant),
    WithJsonSchema(
        {
            "type": "string",
            "format": "date-time",
            "pattern": INSTANT_PATTERN,
            "description": _INSTANT_RULE,
        }
    ),
]


# -- what needs the directory and DNS ----------------------------------------------------
@dataclass(frozen=True)
class Problem:
    """One refusal: the field it concerns and what to fix."""

    field: str
    message: str


def filter_problems(
    directory: Directory, *, regions: Sequence[str] = (), cities: Sequence[str] = ()
) -> list[Problem]:
    """Cities and regions the directory does not know."""
    found: list[Problem] = []
    unknown = sorted(set(directory.unknown_cities(cities)))
    if unknown:
        found.append(Problem("cities", f"unknown city id(s) {unknown}"))
    known = {city.region for city in directory}
    unknown = sorted(set(regions) - known)
    if unknown:
        found.append(Problem("regions", f"unknown region(s) {unknown}; known: {sorted(known)}"))
    return found


async def url_problems(
    url: str, policy: Policy, resolver: Resolver = system_resolver
) -> list[Problem]:
    """The SSRF guard's verdict on a URL (syntax, scheme, every address it resolves to)."""
    try:
        await check_target(url, policy, resolver)
    except RefusedTarget as exc:
        return [Problem("url", f"refused: {exc}")]
    return []


async def problems(
    *,
    url: str | None,
    regions: Sequence[str] = (),
    cities: Sequence[str] = (),
    directory: Directory | None,
    policy: Policy,
    resolver: Resolver = system_resolver,
) -> list[Problem]:
    """Everything wrong with an endpoint that its field types cannot tell: the filter
    against the directory (skipped when ``directory`` is None) and the URL against the SSRF
    guard (skipped when ``url`` is None: unchanged)."""
    found = [] if directory is None else filter_problems(directory, regions=regions, cities=cities)
    if url is not None:
        found += await url_problems(url, policy, resolver)
    return found
