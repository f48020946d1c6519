"""What an operator defines: deadlines with their reminder plans, and announcements."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Literal

import yaml
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, TypeAdapter

from gnlc_core.events import Audience, LocalizedText, Slug, UtcDatetime

_OFFSET = re.compile(r"^(?P<sign>[+-]?)(?P<n>\d{1,4})(?P<unit>[dhms])$")
_UNITS = {"d": "days", "h": "hours", "m": "minutes", "s": "seconds"}


def parse_offset(text: str) -> timedelta:
    """``-7d`` is seven days before the due moment, ``0d`` the moment itself, ``+3d`` three
    days after (overdue). Units: d, h, m, s."""
    match = _OFFSET.match(text.strip())
    if match is None:
        raise ValueError(
            f"reminder offset {text!r} is not like -30d, -7d, -2h, 0d or +3d (units d, h, m, s)"
        )
    delta = timedelta(**{_UNITS[match["unit"]]: int(match["n"])})
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
    title: LocalizedText
    description: LocalizedText | None = None
    due_at: UtcDatetime
    audience: Audience
    reminders: Annotated[tuple[str, ...], Field(min_length=1), AfterValidator(_valid_plan)] = (
        "-30d",
        "-7d",
        "-1d",
        "0d",
        "+3d",
    )
    delivery_hour: Annotated[int, Field(ge=0, le=23)] | None = 9
    link: Annotated[str, Field(pattern=r"^https?://")] | None = None


class Announcement(BaseModel):
    """News or an event for an audience, published now or at ``publish_at``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: Slug
    category: Literal["event", "award", "workshop", "news", "call", "other"]
    title: LocalizedText
    body: LocalizedText
    audience: Audience
    publish_at: UtcDatetime | None = None
    link: Annotated[str, Field(pattern=r"^https?://")] | None = None


class DeadlineFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    deadlines: list[Deadline] = []


_file_adapter = TypeAdapter(DeadlineFile)


def load_deadlines(path: Path) -> list[Deadline]:
    """Deadlines from a YAML file ``{deadlines: [...]}``; raises ``ValidationError``."""
    raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    return _file_adapter.validate_python(raw).deadlines
