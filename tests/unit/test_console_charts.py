"""The dashboard's chart laid out (``gnlc_console.charts.chart``), as a table of cases."""

from __future__ import annotations

import pytest

from gnlc_console.charts import BAR_WIDTH, ROW_HEIGHT, chart


def test_nothing_to_draw() -> None:
    assert chart({}) == []


def test_channels_and_states_in_the_readers_order_on_one_scale() -> None:
    groups = chart(
        {
            "webhook": {"failed": 5, "delivered": 20},
            "email": {"delivered": 40, "bounced": 1, "retrying": 0},
            "sms": {"sent": 2},
        }
    )
    assert [g.channel for g in groups] == ["email", "webhook", "sms"]
    email, webhook, sms = groups
    assert [(b.state, b.count, b.width) for b in email.bars] == [
        ("retrying", 0, 0.0),
        ("delivered", 40, BAR_WIDTH),
        ("bounced", 1, 3.8),
    ]
    assert [(b.state, b.width) for b in webhook.bars] == [
        ("delivered", BAR_WIDTH / 2),
        ("failed", 18.8),
    ]
    assert (email.total, webhook.total, sms.total) == (41, 25, 2)
    assert [b.y for b in email.bars] == [0, ROW_HEIGHT, 2 * ROW_HEIGHT]
    assert email.height == 3 * ROW_HEIGHT


@pytest.mark.parametrize(
    ("count", "largest", "width"),
    [(1, 1_000_000, 1.0), (0, 10, 0.0), (10, 10, float(BAR_WIDTH))],
)
def test_a_count_above_zero_is_always_visible(count: int, largest: int, width: float) -> None:
    [group] = chart({"email": {"delivered": largest, "failed": count}})
    assert {b.state: b.width for b in group.bars}["failed"] == width


def test_unknown_states_get_a_colour() -> None:
    [group] = chart({"email": {"opened": 3}})
    assert group.bars[0].colour.startswith("#")
