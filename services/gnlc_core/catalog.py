"""The event catalog: the published JSON Schemas in ``schemas/`` and their valid examples
(``schemas/examples/<type>/valid/*.json``), read-only, for the partner portal's catalog
and for test events.

In a checkout the files are ``schemas/`` beside ``services/``; the wheel carries them as
``gnlc_core/schemas`` (``pyproject.toml``: ``force-include``)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Any

from gnlc_core.events import EVENT_TYPES, parse_event

_PACKAGE = Path(__file__).resolve().parent
#: The source of a test event: a receiver can tell it from the scheduler's real ones.
TEST_SOURCE = "/gnlc-notify/webhook/test"
#: A test event's business id (deadline, announcement) is the example's with this prefix,
#: so that its receipts never mix with a real deadline's or announcement's.
TEST_PREFIX = "test-"
_BUSINESS_IDS = ("deadline_id", "announcement_id")
_SLUG_MAX = 63


def schemas_dir() -> Path:
    """Where the schemas are: packaged beside this module, else the checkout's."""
    for candidate in (_PACKAGE / "schemas", _PACKAGE.parents[1] / "schemas"):
        if (candidate / "examples").is_dir():
            return candidate
    raise FileNotFoundError("the event schemas (schemas/) are not installed")


@dataclass(frozen=True)
class EventKind:
    """One event type of the catalog: its schema and its valid examples (by file name)."""

    type: str
    schema: dict[str, Any]
    examples: dict[str, dict[str, Any]]

    @property
    def description(self) -> str:
        return str(self.schema.get("description", ""))

    @property
    def example(self) -> dict[str, Any]:
        """The first example, by file name."""
        return self.examples[min(self.examples)]


def _read(path: Path) -> dict[str, Any]:
    value = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(value, dict):
        raise ValueError(f"{path}: not a JSON object")
    return value


@cache
def catalog() -> dict[str, EventKind]:
    """The event types a partner's endpoint can receive (``EVENT_TYPES``), in name order."""
    root = schemas_dir()
    kinds: dict[str, EventKind] = {}
    for event_type in sorted(EVENT_TYPES):
        examples = {
            path.stem: _read(path)
            for path in sorted((root / "examples" / event_type / "valid").glob("*.json"))
        }
        if not examples:
            raise FileNotFoundError(f"no valid example of {event_type} in {root}")
        kinds[event_type] = EventKind(
            event_type, _read(root / f"{event_type}.schema.json"), examples
        )
    return kinds


def as_test_event(example: Mapping[str, Any], *, event_id: str, now: datetime) -> dict[str, Any]:
    """A test event made of an example: a fresh ``id``, ``time`` now, the test ``source``,
    no trace context, and the business id prefixed with ``test-`` (in ``data``, ``subject``
    and ``partitionkey`` alike). Validated like any event (``ValidationError`` if not)."""
    event = json.loads(json.dumps(example))  # a deep copy, JSON-only
    for name in ("traceparent", "tracestate"):
        event.pop(name, None)
    data = event.get("data") or {}
    for field in _BUSINESS_IDS:
        old = data.get(field)
        if isinstance(old, str) and not old.startswith(TEST_PREFIX):
            new = f"{TEST_PREFIX}{old}"[:_SLUG_MAX].rstrip("-")
            data[field] = new
            for name in ("subject", "partitionkey"):
                if isinstance(event.get(name), str):
                    event[name] = event[name].replace(old, new)
    event.update(id=event_id, time=now.isoformat(), source=TEST_SOURCE)
    parse_event(event)  # the test event is a valid event of its type
    return dict(event)


def new_test_event(event_type: str, now: datetime) -> dict[str, Any]:
    """A test event of ``event_type`` (one of ``EVENT_TYPES``) with a fresh random id."""
    return as_test_event(catalog()[event_type].example, event_id=str(uuid.uuid4()), now=now)
