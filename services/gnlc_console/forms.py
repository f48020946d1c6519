"""Forms, pure: what an operator typed into the API's JSON, and the API's refusals (a
422's ``{loc, msg}`` list) back onto the fields that were typed into. Texts come in rows,
one per language (``lang_N``, ``title_N``, ``text_N``, ``link_N``)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

#: Rows of texts a form offers: the languages given, and this many empty ones.
SPARE_ROWS = 2
MAX_ROWS = 16
LOCAL_FORMAT = "%Y-%m-%dT%H:%M"

Values = dict[str, Any]
Errors = dict[str, list[str]]


def zone(name: str) -> ZoneInfo | None:
    try:
        return ZoneInfo(name.strip()) if name.strip() else None
    except (ZoneInfoNotFoundError, ValueError):
        return None


def parse_local(text: str, zone_name: str) -> datetime:
    """``2027-01-17T23:59`` in ``zone_name`` as an aware instant; ValueError says why not."""
    tz = zone(zone_name)
    if tz is None:
        raise ValueError(f"{zone_name!r} is not a time zone (e.g. Europe/Paris, Asia/Kathmandu)")
    try:
        naive = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValueError("give a date and time, e.g. 2027-01-17T23:59") from None
    if naive.tzinfo is not None:
        return naive
    return naive.replace(tzinfo=tz)


def local_value(instant: str | None, zone_name: str) -> str:
    """An API instant as a ``datetime-local`` value in ``zone_name``."""
    if not instant:
        return ""
    tz = zone(zone_name) or ZoneInfo("UTC")
    return datetime.fromisoformat(instant).astimezone(tz).strftime(LOCAL_FORMAT)


def rows_of(values: Values) -> list[int]:
    """The indexes of the text rows the form holds."""
    count = min(int(values.get("rows") or 0), MAX_ROWS)
    return list(range(count))


def languages_of(values: Values) -> list[str]:
    return [str(values.get(f"lang_{i}", "")).strip() for i in rows_of(values)]


def _texts(values: Values, field: str) -> dict[str, str]:
    return {
        lang: str(values.get(f"{field}_{i}", "")).strip()
        for i, lang in enumerate(languages_of(values))
        if lang and str(values.get(f"{field}_{i}", "")).strip()
    }


def _audience(values: Values) -> dict[str, Any]:
    kind = values.get("audience_kind", "all")
    if kind == "regions":
        return {"regions": [r for r in values.get("regions", []) if r]}
    if kind == "cities":
        cities = str(values.get("cities", "")).replace(",", " ").split()
        return {"cities": cities}
    return {"all_members": True}


def _link(values: Values) -> str | dict[str, str] | None:
    links = _texts(values, "link")
    if not links:
        return None
    if len(set(links.values())) == 1 and len(links) == len([x for x in languages_of(values) if x]):
        return next(iter(links.values()))  # the same link in every language: one link
    return links


def _instant(values: Values, field: str, errors: Errors, *, required: bool) -> str | None:
    text = str(values.get(field, "")).strip()
    if not text:
        if required:
            errors.setdefault(field, []).append("give a date and time")
        return None
    try:
        return parse_local(text, str(values.get("zone", ""))).isoformat()
    except ValueError as exc:
        where = "zone" if "time zone" in str(exc) else field
        errors.setdefault(where, []).append(str(exc))
        return None


def _row_problems(values: Values, text_field: str, errors: Errors) -> None:
    seen: set[str] = set()
    for i, lang in enumerate(languages_of(values)):
        typed = any(str(values.get(f"{f}_{i}", "")).strip() for f in ("title", text_field, "link"))
        if typed and not lang:
            errors.setdefault(f"lang_{i}", []).append("name the language of this row (e.g. fr)")
        if lang and lang in seen:
            errors.setdefault(f"lang_{i}", []).append(f"{lang} is given twice")
        seen.add(lang)


def deadline_payload(values: Values) -> tuple[dict[str, Any], Errors]:
    """The deadline to send, and what is wrong before asking the API."""
    errors: Errors = {}
    _row_problems(values, "text", errors)
    payload: dict[str, Any] = {
        "id": str(values.get("id", "")).strip(),
        "title": _texts(values, "title"),
        "audience": _audience(values),
        "reminders": str(values.get("reminders", "")).replace(",", " ").split(),
        "delivery_hour": None,
        "link": _link(values),
    }
    due_at = _instant(values, "due_local", errors, required=True)
    if due_at:
        payload["due_at"] = due_at
    description = _texts(values, "text")
    if description:
        payload["description"] = description
    hour = str(values.get("delivery_hour", "")).strip()
    if hour:
        if hour.isdigit() and 0 <= int(hour) <= 23:
            payload["delivery_hour"] = int(hour)
        else:
            errors.setdefault("delivery_hour", []).append("an hour from 0 to 23, or empty")
    return payload, errors


def announcement_payload(values: Values) -> tuple[dict[str, Any], Errors]:
    errors: Errors = {}
    _row_problems(values, "text", errors)
    payload: dict[str, Any] = {
        "id": str(values.get("id", "")).strip(),
        "category": values.get("category", "news"),
        "title": _texts(values, "title"),
        "body": _texts(values, "text"),
        "audience": _audience(values),
        "link": _link(values),
    }
    publish_at = _instant(values, "publish_local", errors, required=False)
    if publish_at:
        payload["publish_at"] = publish_at
    return payload, errors


_LABELS = {
    "id": "Id",
    "due_local": "Due date and time",
    "publish_local": "Publish at",
    "zone": "Time zone",
    "reminders": "Steps",
    "delivery_hour": "Delivery hour",
    "category": "Category",
    "audience": "Audience",
    "regions": "Regions",
    "cities": "Cities",
    "lang": "Language",
    "title": "Title",
    "text": "Text",
    "link": "Link",
}


def label_of(field: str) -> str:
    """What the form calls a field (``title_1``: "Title (2)")."""
    name, _, row = field.rpartition("_")
    if name in _LABELS and row.isdigit():
        return f"{_LABELS[name]} ({int(row) + 1})"
    return _LABELS.get(field, field)


def merged(local: Errors, remote: Errors) -> Errors:
    """The console's own findings, and the API's on the other fields: every error at once."""
    errors = {field: list(messages) for field, messages in local.items()}
    for field, messages in remote.items():
        if field not in errors:
            errors[field] = list(messages)
    return errors


_PLAIN = {
    "id": "id",
    "due_at": "due_local",
    "publish_at": "publish_local",
    "reminders": "reminders",
    "delivery_hour": "delivery_hour",
    "category": "category",
}
_ROWS = {"title": "title", "description": "text", "body": "text", "link": "link"}


def field_for(loc: Sequence[Any], languages: Sequence[str]) -> str:
    """The form field an API error's ``loc`` names (``""``: the form as a whole)."""
    path = [str(part) for part in loc]
    if path and path[0] == "body":
        path = path[1:]
    if not path:
        return ""
    head = path[0]
    if head in _PLAIN:
        return _PLAIN[head]
    if head == "audience":
        sub = path[1] if len(path) > 1 else ""
        return sub if sub in ("regions", "cities") else "audience"
    if head in _ROWS:
        row = next((languages.index(p) for p in path[1:] if p in languages), 0)
        return f"{_ROWS[head]}_{row}"
    return ""


def field_errors(problems: Sequence[Mapping[str, Any]], languages: Sequence[str]) -> Errors:
    """The API's problems by form field; each message once."""
    errors: Errors = {}
    for problem in problems:
        field = field_for(problem.get("loc") or [], languages)
        message = str(problem.get("msg", "invalid"))
        if message not in errors.setdefault(field, []):
            errors[field].append(message)
    return errors


def text_rows(texts: Mapping[str, Mapping[str, str] | str | None]) -> Values:
    """Form values of stored texts (``{"title": {"en": ..}, "text": {...}, "link": ...}``),
    one row per language, with spare rows."""
    languages: list[str] = []
    for value in texts.values():
        if isinstance(value, Mapping):
            languages.extend(lang for lang in value if lang not in languages)
    values: Values = {"rows": min(len(languages) + SPARE_ROWS, MAX_ROWS)}
    for i, lang in enumerate(languages):
        values[f"lang_{i}"] = lang
        for field, value in texts.items():
            if isinstance(value, Mapping):
                values[f"{field}_{i}"] = value.get(lang, "")
            elif isinstance(value, str):
                values[f"{field}_{i}"] = value
    return values


def audience_values(audience: Mapping[str, Any]) -> Values:
    if audience.get("regions"):
        return {"audience_kind": "regions", "regions": list(audience["regions"])}
    if audience.get("cities"):
        return {"audience_kind": "cities", "cities": " ".join(audience["cities"])}
    return {"audience_kind": "all"}
