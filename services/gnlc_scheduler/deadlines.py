"""What an operator defines: deadlines with their reminder plans, and announcements."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Literal

import yaml
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, TypeAdapter

from gnlc_core.events import (
    MAX_AUDIENCE_CITIES,
    MAX_LANGUAGES,
    MAX_REGIONS,
    MAX_TEXT_CHARS,
    MAX_TITLE_CHARS,
    AnyLink,
    Audience,
    LanguageTag,
    Link,
    LocalizedText,
    LocalizedTitle,
    Region,
    Slug,
    UtcDatetime,
)

_OFFSET = re.compile(r"^(?P<sign>[+-]?)(?P<n>\d{1,4})(?P<unit>[dhms])$")
_UNITS = {"d": "days", "h": "hours", "m": "minutes", "s": "seconds"}
#: A reminder plan has at most this many steps, each at most a year from the due moment.
MAX_STEPS = 20
MAX_OFFSET = timedelta(days=366)
#: Checked by ``parse_offset`` (whose message gives examples); the pattern documents it.
Offset = Annotated[
    str,
    Field(max_length=16, json_schema_extra={"pattern": r"^\s*[+-]?\d{1,4}[dhms]\s*$"}),
]


def parse_offset(text: str) -> timedelta:
    """``-7d`` is seven days before the due moment, ``0d`` the moment itself, ``+3d`` three
    days after (overdue). Units: d, h, m, s."""
    match = _OFFSET.match(text.strip())
    if match is None:
        raise ValueError(
            f"reminder offset {text!r} is not like -30d, -7d, -2h, 0d or +3d (units d, h, m, s)"
        )
    delta = timedelta(**{_UNITS[match["unit"]]: int(match["n"])})
    if delta > MAX_OFFSET:
        raise ValueError(f"reminder offset {text!r} is more than {MAX_OFFSET.days} days away")
    return -delta if match["sign"] == "-" else delta


def _valid_plan(offsets: tuple[str, ...]) -> tuple[str, ...]:
    deltas = [parse_offset(offset) for offset in offsets]
    if len(set(deltas)) != len(deltas):
        raise ValueError("reminder plan lists the same offset twice")
    return offsets


class Deadline(BaseModel):
    """A due moment for an audience, with the reminder plan that leads up to it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: Slug
    title: LocalizedTitle
    description: LocalizedText | None = None
    due_at: UtcDatetime
    audience: Audience
    reminders: Annotated[
        tuple[Offset, ...], Field(min_length=1, max_length=MAX_STEPS), AfterValidator(_valid_plan)
    ] = (
        "-30d",
        "-7d",
        "-1d",
        "0d",
        "+3d",
    )
    delivery_hour: Annotated[int, Field(ge=0, le=23)] | None = 9
    #: One link for everyone, or a link per language (``{en: ..., fr: ...}``).
    link: AnyLink | None = None


class Announcement(BaseModel):
    """News or an event for an audience, published now or at ``publish_at``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: Slug
    category: Literal["event", "award", "workshop", "news", "call", "other"]
    title: LocalizedTitle
    body: LocalizedText
    audience: Audience
    publish_at: UtcDatetime | None = None
    #: One link for everyone, or a link per language (``{en: ..., fr: ...}``).
    link: AnyLink | None = None


class DeadlineFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    deadlines: list[Deadline] = []


_file_adapter = TypeAdapter(DeadlineFile)


def load_deadlines(path: Path) -> list[Deadline]:
    """Deadlines from a YAML file ``{deadlines: [...]}``; raises ``ValidationError``."""
    raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    return _file_adapter.validate_python(raw).deadlines


# -- partial objects: what a PATCH (JSON Merge Patch, RFC 7396) may name -------------------
# Each field given replaces the stored one, an object merges key by key, ``null`` removes a
# key (back to its default: ``"delivery_hour": null`` is 09:00 again). The merged whole is
# then checked like a full object.

_TitlePatch = Annotated[
    dict[LanguageTag, Annotated[str, Field(min_length=1, max_length=MAX_TITLE_CHARS)] | None],
    Field(max_length=MAX_LANGUAGES),
]
_TextPatch = Annotated[
    dict[LanguageTag, Annotated[str, Field(min_length=1, max_length=MAX_TEXT_CHARS)] | None],
    Field(max_length=MAX_LANGUAGES),
]
#: One link (replaces what is stored), or links per language (merged key by key when a link
#: per language is stored; ``null`` removes a language's).
_LinkPatch = Link | Annotated[dict[LanguageTag, Link | None], Field(max_length=MAX_LANGUAGES)]


class AudiencePatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    all_members: bool | None = None
    regions: Annotated[list[Region], Field(max_length=MAX_REGIONS)] | None = None
    cities: Annotated[list[Slug], Field(max_length=MAX_AUDIENCE_CITIES)] | None = None


class DeadlinePatch(BaseModel):
    """A partial ``Deadline``: only what changes."""

    model_config = ConfigDict(extra="forbid")

    id: Slug | None = None
    title: _TitlePatch | None = None
    description: _TextPatch | None = None
    due_at: UtcDatetime | None = None
    audience: AudiencePatch | None = None
    reminders: Annotated[list[Offset], Field(min_length=1, max_length=MAX_STEPS)] | None = None
    delivery_hour: Annotated[int, Field(ge=0, le=23)] | None = None
    link: _LinkPatch | None = None


class AnnouncementPatch(BaseModel):
    """A partial ``Announcement``: only what changes."""

    model_config = ConfigDict(extra="forbid")

    id: Slug | None = None
    category: Literal["event", "award", "workshop", "news", "call", "other"] | None = None
    title: _TitlePatch | None = None
    body: _TextPatch | None = None
    audience: AudiencePatch | None = None
    publish_at: UtcDatetime | None = None
    link: _LinkPatch | None = None
