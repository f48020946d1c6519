from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from gnlc_core.events import Audience
from gnlc_scheduler.deadlines import Deadline, parse_offset
from gnlc_scheduler.plan import plan, step_label

DUE = datetime(2027, 1, 17, 23, 59, tzinfo=UTC)


def deadline(*reminders: str) -> Deadline:
    return Deadline(
        id="report",
        title={"en": "Report"},
        due_at=DUE,
        audience=Audience(all_members=True),
        reminders=reminders,
    )


@pytest.mark.parametrize(
    ("text", "delta"),
    [
        ("-30d", timedelta(days=-30)),
        ("0d", timedelta(0)),
        ("+3d", timedelta(days=3)),
        ("3d", timedelta(days=3)),
        ("-2h", timedelta(hours=-2)),
        ("-90m", timedelta(minutes=-90)),
        ("-45s", timedelta(seconds=-45)),
    ],
)
def test_parse_offset(text: str, delta: timedelta) -> None:
    assert parse_offset(text) == delta


@pytest.mark.parametrize("text", ["", "7", "-7w", "seven days", "--1d", "-1.5d"])
def test_parse_offset_rejects_nonsense_with_a_hint(text: str) -> None:
    with pytest.raises(ValueError, match="is not like -30d"):
        parse_offset(text)


@pytest.mark.parametrize(
    ("offset", "label"),
    [
        (timedelta(days=-7), "7d-before"),
        (timedelta(0), "due"),
        (timedelta(days=3), "3d-overdue"),
        (timedelta(hours=-36), "36h-before"),
        (timedelta(minutes=-90), "90m-before"),
        (timedelta(seconds=-45), "45s-before"),
    ],
)
def test_step_label(offset: timedelta, label: str) -> None:
    assert step_label(offset) == label


def test_plan_is_sorted_and_exact() -> None:
    planned = plan(deadline("+3d", "-30d", "0d", "-7d"))
    assert [p.reminder.step for p in planned] == ["30d-before", "7d-before", "due", "3d-overdue"]
    assert [p.fire_at for p in planned] == [
        DUE - timedelta(days=30),
        DUE - timedelta(days=7),
        DUE,
        DUE + timedelta(days=3),
    ]
    assert all(p.reminder.due_at == DUE for p in planned)


def test_duplicate_offsets_are_refused() -> None:
    with pytest.raises(ValidationError, match="same offset twice"):
        deadline("-7d", "-168h")


def test_missed_reminders_policy() -> None:
    seven, due, overdue = plan(deadline("-7d", "0d", "+3d"))
    grace = timedelta(hours=1)
    # on time, or late within the grace period: still sent
    assert seven.still_useful(seven.fire_at, grace)
    assert seven.still_useful(seven.fire_at + timedelta(minutes=59), grace)
    # later than the grace period: dropped
    assert not seven.still_useful(seven.fire_at + timedelta(hours=2), grace)
    # a "before" reminder is never sent once the due moment passed, even within grace
    assert not seven.still_useful(DUE, timedelta(days=30))
    # "due" and "overdue" steps may be sent after the due moment
    assert due.still_useful(DUE + timedelta(minutes=5), grace)
    assert overdue.still_useful(overdue.fire_at, grace)
