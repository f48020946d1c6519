"""The deliveries' and dead letters' searches (``gnlc_console.searches``): the query sent,
or every field's error."""

from __future__ import annotations

import pytest

from gnlc_console.searches import PAGE, dead_letter_search, delivery_search


@pytest.mark.parametrize(
    ("values", "params"),
    [
        ({}, {}),
        ({"city": " Kathmandu "}, {"city": "kathmandu"}),
        ({"event": "education-day"}, {"event": "education-day"}),
        (
            {"event": "progress-report/kathmandu/7d-before"},
            {"event": "progress-report/kathmandu/7d-before"},
        ),
        ({"endpoint": "partner-a"}, {"recipient": "partner-a", "channel": "webhook"}),
        (
            {"endpoint": "partner-a", "channel": "webhook"},
            {"recipient": "partner-a", "channel": "webhook"},
        ),
        ({"channel": "email", "state": "failed"}, {"channel": "email", "state": "failed"}),
        ({"offset": "50"}, {"offset": 50}),
    ],
)
def test_a_delivery_search(values: dict[str, str], params: dict[str, object]) -> None:
    found, errors = delivery_search(values)
    assert errors == {}
    assert found == {"limit": PAGE, "offset": 0, **params}


@pytest.mark.parametrize(
    ("values", "field"),
    [
        ({"city": "Not a city!"}, "city"),
        ({"city": "x" * 64}, "city"),
        ({"event": "e" * 65}, "event"),
        ({"event": "<script>"}, "event"),
        ({"endpoint": "A B"}, "endpoint"),
        ({"channel": "sms"}, "channel"),
        ({"state": "opened"}, "state"),
        ({"endpoint": "partner-a", "channel": "email"}, "channel"),
        ({"offset": "-1"}, "offset"),
        ({"offset": "100001"}, "offset"),
    ],
)
def test_a_delivery_search_refused(values: dict[str, str], field: str) -> None:
    _params, errors = delivery_search(values)
    assert list(errors) == [field]


def test_every_error_at_once() -> None:
    _params, errors = delivery_search({"city": "?", "event": "e" * 65, "state": "x"})
    assert set(errors) == {"city", "event", "state"}


@pytest.mark.parametrize(
    ("values", "params", "errors"),
    [
        ({}, {}, set()),
        ({"channel": "email", "state": "parked"}, {"channel": "email", "state": "parked"}, set()),
        ({"reason": " invalid event "}, {"reason": "invalid event"}, set()),
        ({"channel": "schedule"}, {}, {"channel"}),
        ({"state": "lost"}, {}, {"state"}),
        ({"reason": "x" * 201}, {}, {"reason"}),
        ({"reason": "a\nb"}, {}, {"reason"}),
    ],
)
def test_a_dead_letter_search(
    values: dict[str, str], params: dict[str, object], errors: set[str]
) -> None:
    found, problems = dead_letter_search(values)
    assert set(problems) == errors
    if not errors:
        assert found == {"limit": PAGE, "offset": 0, **params}
