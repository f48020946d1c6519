"""What the CLI sends, built from options and files: pure functions (no I/O but reading the
file given), so each rule has a table-driven test.

Texts the operator writes (titles, bodies, descriptions, links) are per language:
``--title "..." --language fr`` gives ``{"fr": "..."}``; a ``--from-file`` YAML gives
several at once (``title: {en: ..., fr: ...}``). An edit is a JSON Merge Patch (RFC 7396):
only what was named is sent, and ``title: {en: ...}`` leaves the other languages as they
are.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import yaml

MAX_FILE_BYTES = 1_000_000
TEXT_FIELDS = ("title", "body", "description")


class PayloadError(ValueError):
    """The options or the file cannot make a request; the message says what to fix."""


def read_mapping(path: Path, what: str) -> dict[str, Any]:
    """A YAML (or JSON) file holding one mapping of field to value."""
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            raise PayloadError(f"{path}: {size} bytes; a {what} file holds at most 1 MB")
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise PayloadError(f"{path}: {exc}") from None
    if not text.strip():
        raise PayloadError(f"{path} is empty")
    try:
        loaded = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise PayloadError(f"{path} is not valid YAML: {exc}") from None
    if not isinstance(loaded, dict):
        raise PayloadError(f"{path} must hold a mapping of field to value (the {what})")
    return {str(key): value for key, value in loaded.items()}


def localized(value: Any, field: str) -> Any:
    """A text field of a file: a mapping of language to text, or one string (English)."""
    if isinstance(value, str):
        return {"en": value}
    if isinstance(value, dict):
        bad = [k for k, v in value.items() if not isinstance(v, str)]
        if bad:
            raise PayloadError(f"{field}: the text for {', '.join(map(str, bad))} is not a string")
        return {str(k): v for k, v in value.items()}
    if value is None:
        return None
    raise PayloadError(f"{field}: give a text, or a text per language ({field}: {{en: ...}})")


def from_file(path: Path, object_id: str, what: str) -> dict[str, Any]:
    """The fields a file sets, with its texts per language; its ``id``, if any, must be
    the one on the command line."""
    data = read_mapping(path, what)
    if "id" in data and str(data["id"]) != object_id:
        raise PayloadError(f"id: the file says {data['id']!r}, the command {object_id!r}")
    data.pop("id", None)
    for field in TEXT_FIELDS:
        if field in data:
            data[field] = localized(data[field], field)
    for field in ("due_at", "publish_at"):
        if isinstance(data.get(field), datetime):  # YAML reads unquoted timestamps
            data[field] = data[field].isoformat()
    return data


def audience(all_members: bool, regions: list[str] | None, cities: list[str] | None) -> Any:
    """The audience the options name, or None when none was named."""
    if not (all_members or regions or cities):
        return None
    return {"all_members": all_members, "regions": regions or [], "cities": cities or []}


def merge(base: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    """``changes`` over ``base``; mappings are merged key by key (RFC 7396 without the
    deletions, which the CLI never asks for)."""
    merged = dict(base)
    for key, value in changes.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def texts(language: str, **values: str | None) -> dict[str, Any]:
    """``title="x"`` with language ``fr`` -> ``{"title": {"fr": "x"}}``; None left out."""
    return {field: {language: text} for field, text in values.items() if text is not None}


def deadline_changes(
    *,
    language: str,
    title: str | None,
    description: str | None,
    due: datetime | None,
    remind: list[str] | None,
    hour: int | None,
    exact: bool,
    audience: Any,
    link: str | None,
) -> dict[str, Any]:
    """The fields of a deadline the options name."""
    if exact and hour is not None:
        raise PayloadError("--exact and --hour exclude each other")
    changes = texts(language, title=title, description=description)
    if due is not None:
        if due.tzinfo is None:
            raise PayloadError("--due: give the offset, e.g. 2027-01-17T23:59:00+01:00")
        changes["due_at"] = due.isoformat()
    if remind:
        changes["reminders"] = list(remind)
    if exact:
        changes["delivery_hour"] = None
    elif hour is not None:
        changes["delivery_hour"] = hour
    if audience is not None:
        changes["audience"] = audience
    if link is not None:
        changes["link"] = link
    return changes


def _whole(
    resource_id: str,
    changes: dict[str, Any],
    file_fields: dict[str, Any],
    required: dict[str, str],
) -> dict[str, Any]:
    """A whole resource for ``POST``: the file's fields, then the options'; ``required``
    maps each field it must have to the option that gives it."""
    body = merge({"id": resource_id, **file_fields}, changes)
    missing = [flag for name, flag in required.items() if not body.get(name)]
    if missing:
        raise PayloadError("missing " + ", ".join(missing) + " (or give them in --from-file)")
    return body


_AUDIENCE_FLAGS = "--all/--region/--city"


def new_deadline(
    deadline_id: str, changes: dict[str, Any], file_fields: dict[str, Any]
) -> dict[str, Any]:
    """A whole deadline for ``POST``: the file's fields, then the options'."""
    required = {"title": "--title", "due_at": "--due", "audience": _AUDIENCE_FLAGS}
    return _whole(deadline_id, changes, file_fields, required)


def announcement_changes(
    *,
    language: str,
    title: str | None,
    body: str | None,
    category: str | None,
    at: datetime | None,
    audience: Any,
    link: str | None,
) -> dict[str, Any]:
    """The fields of an announcement the options name."""
    changes = texts(language, title=title, body=body)
    if category is not None:
        changes["category"] = category
    if at is not None:
        if at.tzinfo is None:
            raise PayloadError("--at: give the offset, e.g. 2027-01-20T08:00:00+01:00")
        changes["publish_at"] = at.isoformat()
    if audience is not None:
        changes["audience"] = audience
    if link is not None:
        changes["link"] = link
    return changes


def new_announcement(
    announcement_id: str, changes: dict[str, Any], file_fields: dict[str, Any]
) -> dict[str, Any]:
    """A whole announcement for ``POST``: the file's fields, then the options'."""
    required = {
        "title": "--title",
        "body": "--body",
        "category": "--category",
        "audience": _AUDIENCE_FLAGS,
    }
    return _whole(announcement_id, changes, file_fields, required)
