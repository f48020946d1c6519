from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from pydantic import ValidationError

from gnlc_core.events import Audience
from gnlc_scheduler.deadlines import Deadline, parse_offset
from gnlc_scheduler.plan import (
    NotScheduled,
    city_steps,
    local_instant,
    schedule_for_city,
    step_label,
)

DUE = datetime(2027, 1, 17, 22, 59, tzinfo=UTC)  # 23:59 in Paris


def deadline(*reminders: str, due: datetime = DUE, hour: int | None = 9) -> Deadline:
    return Deadline(
        id="report",
        title={"en": "Report"},
        due_at=due,
        audience=Audience(all_members=True),
        reminders=reminders,
        delivery_hour=hour,
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


def local(instant: datetime, zone: str) -> str:
    return instant.astimezone(ZoneInfo(zone)).strftime("%Y-%m-%d %H:%M %z")


@pytest.mark.parametrize(
    ("zone", "expected"),
    [
        # due 2027-01-17 22:59 UTC; the 7d-before reminder is 09:00 local, 7 local days earlier
        ("Europe/Paris", "2027-01-10 09:00 +0100"),
        ("Asia/Kathmandu", "2027-01-11 09:00 +0545"),  # local due date is already the 18th
        ("America/St_Johns", "2027-01-10 09:00 -0330"),
        ("Pacific/Chatham", "2027-01-11 09:00 +1345"),  # summer time in the south
        ("Pacific/Auckland", "2027-01-11 09:00 +1300"),
    ],
)
def test_day_steps_arrive_at_nine_local(zone: str, expected: str) -> None:
    instant = local_instant(DUE, timedelta(days=-7), ZoneInfo(zone), 9)
    assert local(instant, zone) == expected


def test_dst_switch_day_keeps_the_local_hour() -> None:
    # Europe/Paris springs forward on 2027-03-28; due a week later at noon
    due = datetime(2027, 4, 4, 10, 0, tzinfo=UTC)  # 12:00 CEST
    zone = ZoneInfo("Europe/Paris")
    on_switch_day = local_instant(due, timedelta(days=-7), zone, 9)
    assert local(on_switch_day, "Europe/Paris") == "2027-03-28 09:00 +0200"
    day_before = local_instant(due, timedelta(days=-8), zone, 9)
    assert local(day_before, "Europe/Paris") == "2027-03-27 09:00 +0100"
    assert on_switch_day - day_before == timedelta(hours=23)
    # St John's falls back on 2026-11-01: 09:00 local either side, 25 hours apart
    due_nl = datetime(2026, 11, 3, 15, 0, tzinfo=UTC)
    stj = ZoneInfo("America/St_Johns")
    before = local_instant(due_nl, timedelta(days=-3), stj, 9)
    after = local_instant(due_nl, timedelta(days=-2), stj, 9)
    assert local(before, "America/St_Johns") == "2026-10-31 09:00 -0230"
    assert local(after, "America/St_Johns") == "2026-11-01 09:00 -0330"
    assert after - before == timedelta(hours=25)


def test_due_step_never_lands_after_the_due_moment() -> None:
    # due at 07:00 local in Paris: 09:00 on the day would be late, so it moves a day back
    due = datetime(2027, 1, 17, 6, 0, tzinfo=UTC)
    instant = local_instant(due, timedelta(0), ZoneInfo("Europe/Paris"), 9)
    assert local(instant, "Europe/Paris") == "2027-01-16 09:00 +0100"


def test_colliding_steps_keep_only_the_later_one() -> None:
    due = datetime(2027, 1, 17, 6, 0, tzinfo=UTC)  # 07:00 in Paris
    plan = city_steps(deadline("-1d", "0d", "+3d", due=due), ZoneInfo("Europe/Paris"))
    # -1d and 0d both land on the 16th at 09:00: only "due" is kept, and -1d is reported
    assert [s.label for s in plan.steps] == ["due", "3d-overdue"]
    assert [(d.label, d.reason) for d in plan.dropped] == [("1d-before", NotScheduled.COLLAPSED)]
    assert "only 'due' is sent" in plan.dropped[0].detail


def test_hour_steps_are_exact_and_no_hour_means_exact() -> None:
    zone = ZoneInfo("Asia/Kathmandu")
    steps = city_steps(deadline("-2h", "-1d", hour=None), zone).steps
    assert [s.fire_at for s in steps] == [DUE - timedelta(days=1), DUE - timedelta(hours=2)]
    mixed = city_steps(deadline("-2h", "-1d"), zone).steps
    assert mixed[1].fire_at == DUE - timedelta(hours=2)
    assert local(mixed[0].fire_at, "Asia/Kathmandu") == "2027-01-17 09:00 +0545"


def test_duplicate_offsets_are_refused() -> None:
    with pytest.raises(ValidationError, match="same offset twice"):
        deadline("-7d", "-168h")


def test_missed_reminders_policy() -> None:
    zone = ZoneInfo("UTC")
    seven, due, overdue = city_steps(deadline("-7d", "0d", "+3d", hour=None), zone).steps
    grace = timedelta(hours=1)
    assert seven.still_useful(seven.fire_at, DUE, grace)
    assert seven.still_useful(seven.fire_at + timedelta(minutes=59), DUE, grace)
    assert not seven.still_useful(seven.fire_at + timedelta(hours=2), DUE, grace)
    assert not seven.still_useful(DUE, DUE, timedelta(days=30))  # no "7 days left" after due
    assert due.still_useful(DUE + timedelta(minutes=5), DUE, grace)
    assert overdue.still_useful(overdue.fire_at, DUE, grace)


NOW = DUE - timedelta(days=3)  # 2027-01-14 22:59 UTC
PARIS = ZoneInfo("Europe/Paris")
C, P, S, A = (
    NotScheduled.COLLAPSED,
    NotScheduled.PAST,
    NotScheduled.SUBMITTED,
    NotScheduled.ALREADY_SENT,
)


@pytest.mark.parametrize(
    ("reminders", "submitted", "sent", "kept", "dropped"),
    [
        # nothing left out
        (("-1d", "0d"), False, (), ["1d-before", "due"], []),
        # -7d was due four days ago (more than the grace): past
        (("-7d", "-1d"), False, (), ["1d-before"], [("7d-before", P)]),
        # -2d at 09:00 local on the 15th and -40h (the 16th, 07:59 local): both ahead
        (("-2d", "-40h"), False, (), ["2d-before", "40h-before"], []),
        # -50h (the 15th, 21:59 local) lands after -2d (the 15th, 09:00): it collapses
        (("-2d", "-50h"), False, (), ["2d-before"], [("50h-before", C)]),
        # the city submitted: every step is left out, collapsed ones as collapsed
        (("-2d", "-50h", "0d"), True, (), [], [("2d-before", S), ("due", S), ("50h-before", C)]),
        # an edit does not send again what went out for the same due moment
        (("-1d", "0d"), False, ("1d-before",), ["due"], [("1d-before", A)]),
    ],
)
def test_schedule_for_city_says_what_it_left_out_and_why(
    reminders: tuple[str, ...],
    submitted: bool,
    sent: tuple[str, ...],
    kept: list[str],
    dropped: list[tuple[str, NotScheduled]],
) -> None:
    plan = schedule_for_city(
        deadline(*reminders),
        PARIS,
        now=NOW,
        grace=timedelta(hours=1),
        submitted=submitted,
        already_sent=frozenset(sent),
    )
    assert [s.label for s in plan.steps] == kept
    assert [(d.label, d.reason) for d in plan.dropped] == dropped
    assert all(d.detail for d in plan.dropped)


@pytest.mark.parametrize(
    ("reminders", "message"),
    [
        (("-367d",), "more than 366 days away"),
        (("+9999d",), "more than 366 days away"),
        (tuple(f"-{n}h" for n in range(1, 22)), "at most 20 items"),
    ],
)
def test_plans_are_bounded(reminders: tuple[str, ...], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        deadline(*reminders)


@pytest.mark.parametrize(
    "due",
    ["0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00", "9999-12-31T23:00:00Z"],
)
def test_due_moments_at_the_extremes_are_refused_not_overflowed(due: str) -> None:
    with pytest.raises(ValidationError, match="must be from 2000-01-01"):
        Deadline.model_validate(
            {"id": "x", "title": {"en": "X"}, "due_at": due, "audience": {"all_members": True}}
        )


def test_the_latest_due_moment_with_the_longest_offset_still_plans() -> None:
    last = datetime(2199, 12, 31, 23, 59, tzinfo=UTC)
    plan = city_steps(deadline("-366d", "+366d", due=last), ZoneInfo("Pacific/Kiritimati"))
    assert [s.label for s in plan.steps] == ["366d-before", "366d-overdue"]
