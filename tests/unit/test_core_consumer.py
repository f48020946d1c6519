"""What every channel does with a record first (``gnlc_core.consumer``), table-driven."""

from __future__ import annotations

from pathlib import Path

import pytest

from gnlc_core.consumer import always, decode
from gnlc_core.events import DeadlineReminderEvent

EXAMPLE = (
    Path(__file__).resolve().parents[2]
    / "schemas/examples/deadline.reminder/valid/overdue-minimal.json"
)


def test_a_valid_record_is_its_event() -> None:
    event = decode(EXAMPLE.read_bytes())
    assert isinstance(event, DeadlineReminderEvent)
    assert event.id == "1fbcfa17-9717-5eed-b918-c4062534eda3"


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (b"", "invalid event: value: Invalid JSON"),
        (b"{not json", "invalid event: value: Invalid JSON"),
        (b"[]", "invalid event: "),
        (b'{"specversion": "1.0", "type": "deadline.reminder"}', "invalid event: "),
        (b'"\\ud800"', "invalid event: "),
    ],
)
def test_anything_else_is_the_reason_it_is_not_an_event(value: bytes, reason: str) -> None:
    found = decode(value)
    assert isinstance(found, str)
    assert found.startswith(reason)


async def test_the_default_should_send_says_yes() -> None:
    assert await always(object(), object()) is True
