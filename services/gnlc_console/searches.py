"""The searches of the deliveries and dead-letters pages, pure: what was typed into the
status API's query, or every field's error at once (the form comes back with them beside
the fields and what was typed kept)."""

from __future__ import annotations

import re
from collections.abc import Mapping

from gnlc_core.ledger import Status

Errors = dict[str, list[str]]
_SLUG = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
_EVENT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:/-]{0,63}$")
CHANNELS = ("schedule", "email", "webhook")
DEAD_LETTER_CHANNELS = ("scheduler", "email", "webhook")
STATES = tuple(s.value for s in Status)
#: Rows a page shows (and asks the API for).
PAGE = 50
MAX_OFFSET = 100_000


def _offset(values: Mapping[str, str], errors: Errors) -> int:
    text = values.get("offset", "").strip() or "0"
    if not text.isdigit() or int(text) > MAX_OFFSET:
        errors.setdefault("offset", []).append(f"a whole number from 0 to {MAX_OFFSET}")
        return 0
    return int(text)


def _choice(values: Mapping[str, str], name: str, allowed: tuple[str, ...], errors: Errors) -> str:
    value = values.get(name, "").strip()
    if value and value not in allowed:
        errors.setdefault(name, []).append(f"one of {', '.join(allowed)}")
    return value


def delivery_search(values: Mapping[str, str]) -> tuple[dict[str, str | int], Errors]:
    """``/v1/status/notices`` parameters from the deliveries form (``city``, ``event``,
    ``endpoint``, ``channel``, ``state``, ``offset``), or the errors of its fields."""
    errors: Errors = {}
    city = values.get("city", "").strip().lower()
    if city and not _SLUG.match(city):
        errors["city"] = ["a city id: lower-case letters, digits and dashes (e.g. kathmandu)"]
    event = values.get("event", "").strip()
    if event and not _EVENT.match(event):
        errors["event"] = ["a deadline id, an announcement id or an event id (up to 64 characters)"]
    endpoint = values.get("endpoint", "").strip()
    if endpoint and not _SLUG.match(endpoint):
        errors["endpoint"] = ["an endpoint id: lower-case letters, digits and dashes"]
    channel = _choice(values, "channel", CHANNELS, errors)
    state = _choice(values, "state", STATES, errors)
    if endpoint and channel and channel != "webhook":
        errors.setdefault("channel", []).append("an endpoint's deliveries are on webhook")
    offset = _offset(values, errors)
    params: dict[str, str | int] = {"limit": PAGE, "offset": offset}
    for name, value in (("city", city), ("event", event), ("channel", channel), ("state", state)):
        if value:
            params[name] = value
    if endpoint:
        params.update(recipient=endpoint, channel="webhook")
    return params, errors


def dead_letter_search(values: Mapping[str, str]) -> tuple[dict[str, str | int], Errors]:
    """``/v1/dead-letters`` parameters from the dead letters' form (``channel``, ``reason``,
    ``state``, ``offset``), or the errors of its fields."""
    errors: Errors = {}
    channel = _choice(values, "channel", DEAD_LETTER_CHANNELS, errors)
    state = _choice(values, "state", ("parked", "redriven"), errors)
    reason = values.get("reason", "").strip()
    if len(reason) > 200:
        errors["reason"] = [f"at most 200 characters ({len(reason)} given)"]
    elif any(ord(c) < 32 for c in reason):
        errors["reason"] = ["one line of text"]
    offset = _offset(values, errors)
    params: dict[str, str | int] = {"limit": PAGE, "offset": offset}
    for name, value in (("channel", channel), ("state", state), ("reason", reason)):
        if value:
            params[name] = value
    return params, errors
