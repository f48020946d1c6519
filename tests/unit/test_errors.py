"""Validation errors in words: one wording for the APIs, the partners file and the logs."""

from __future__ import annotations

from typing import Any

import pytest

from gnlc_core.errors import message_of


@pytest.mark.parametrize(
    ("error", "message"),
    [
        ({"msg": "Value error, unknown IANA time zone 'X'"}, "unknown IANA time zone 'X'"),
        ({"msg": "Assertion failed, no"}, "no"),
        (
            {"msg": "String should have at most 63 characters"},
            "String should have at most 63 characters",
        ),
        (
            {"msg": "JSON decode error", "ctx": {"error": "NaN is not a JSON number"}},
            "JSON decode error: NaN is not a JSON number",
        ),
        (  # a validator's own ValueError is the message already: not said twice
            {"msg": "Value error, too long", "ctx": {"error": ValueError("too long")}},
            "too long",
        ),
        (
            {"msg": "Input should be a valid integer", "ctx": {"ge": 1}},
            "Input should be a valid integer",
        ),
    ],
)
def test_message_of(error: dict[str, Any], message: str) -> None:
    assert message_of(error) == message
