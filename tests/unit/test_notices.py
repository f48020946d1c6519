"""The notices' one state machine (``gnlc_core.notices``), table-driven."""

from __future__ import annotations

import pytest

from gnlc_core.ledger import TERMINAL, Status
from gnlc_core.notices import (
    RULES,
    STEPS,
    TRANSITIONS,
    AfterFailure,
    Step,
    after_failure,
    allowed,
    next_state,
    notice,
    requests_made,
)
from gnlc_core.retry import RetrySchedule

SCHEDULE = RetrySchedule((5.0, 300.0), jitter=0.0)  # attempts 1, 2, 3


@pytest.mark.parametrize(
    ("step", "attempt", "expected"),
    [
        # a request made: the attempt counts
        (Step.DELIVERED, 1, (Status.DELIVERED, 1)),
        (Step.DELIVERED, 3, (Status.DELIVERED, 3)),
        (Step.RETRY, 2, (Status.RETRYING, 2)),
        (Step.GIVE_UP, 3, (Status.FAILED, 3)),
        (Step.REFUSED, 1, (Status.FAILED, 1)),
        # no request: the attempts before it
        (Step.DROPPED, 1, (Status.DROPPED, 0)),
        (Step.DROPPED, 3, (Status.DROPPED, 2)),
        (Step.UNSUBSCRIBED, 1, (Status.UNSUBSCRIBED, 0)),
        (Step.HELD, 2, (Status.HELD, 1)),
        (Step.DEFERRED, 2, (Status.RETRYING, 1)),  # the same attempt later
        (Step.EXPIRED, 4, (Status.FAILED, 3)),  # the final check after the last attempt
        (Step.UNSENDABLE, 1, (Status.FAILED, 0)),
        # not an attempt: without what the notice had, the attempts before it
        (Step.RELEASED, 2, (Status.RETRYING, 1)),
        (Step.BOUNCED, 1, (Status.BOUNCED, 0)),
    ],
)
def test_next_state(step: Step, attempt: int, expected: tuple[Status, int]) -> None:
    assert next_state(step, attempt) == expected


@pytest.mark.parametrize(
    ("step", "attempt", "before", "made"),
    [
        (Step.BOUNCED, 1, 3, 3),  # a bounce keeps the attempts the delivery had
        (Step.RELEASED, 2, 1, 1),
        (Step.DELIVERED, 2, 7, 2),  # a request counts whatever came before
        (Step.DROPPED, 2, 7, 1),
    ],
)
def test_steps_that_keep_the_attempts(step: Step, attempt: int, before: int, made: int) -> None:
    assert requests_made(attempt, step, before=before) == made


def test_every_step_has_a_rule_and_attempts_never_go_below_zero() -> None:
    assert set(RULES) == set(Step)
    assert all(requests_made(0, step) == 0 for step in Step)


@pytest.mark.parametrize(
    ("source", "step", "resend", "expected"),
    [
        (None, Step.DELIVERED, False, True),
        (None, Step.HELD, False, True),
        (None, Step.RELEASED, False, False),  # only a held notice is released
        (None, Step.BOUNCED, False, False),  # only a delivered one bounces
        (Status.RETRYING, Step.DELIVERED, False, True),
        (Status.RETRYING, Step.DEFERRED, False, True),
        (Status.HELD, Step.RELEASED, False, True),
        (Status.HELD, Step.DROPPED, False, True),  # an endpoint deleted while it waited
        (Status.DELIVERED, Step.BOUNCED, False, True),
        (Status.DELIVERED, Step.RETRY, False, False),  # a redelivery sends nothing again
        (Status.DELIVERED, Step.RETRY, True, True),  # a resend asked for does
        (Status.FAILED, Step.DELIVERED, False, False),
        (Status.FAILED, Step.DELIVERED, True, True),
        (Status.DROPPED, Step.HELD, False, False),
        (Status.UNSUBSCRIBED, Step.DELIVERED, False, False),
        (Status.BOUNCED, Step.BOUNCED, False, False),
        (Status.BOUNCED, Step.RELEASED, True, False),  # a resend starts over, not released
        (Status.SCHEDULED, Step.DELIVERED, False, False),  # the scheduler's, not a channel's
    ],
)
def test_allowed(source: Status | None, step: Step, resend: bool, expected: bool) -> None:
    assert allowed(source, step, resend=resend) is expected


def test_transitions_as_the_readme_draws_them() -> None:
    under_way = {
        Status.RETRYING,
        Status.HELD,
        Status.DELIVERED,
        Status.FAILED,
        Status.DROPPED,
        Status.UNSUBSCRIBED,
    }
    assert TRANSITIONS[None] == under_way
    assert TRANSITIONS[Status.RETRYING] == under_way
    assert TRANSITIONS[Status.HELD] == under_way
    assert TRANSITIONS[Status.DELIVERED] == {Status.BOUNCED}
    assert all(not TRANSITIONS[s] for s in TERMINAL - {Status.DELIVERED})
    assert set(STEPS) == {None, *TERMINAL, Status.RETRYING, Status.HELD}


@pytest.mark.parametrize(
    ("failed", "permanent", "retry_after", "expected"),
    [
        (1, False, None, AfterFailure(Step.RETRY, 5.0)),
        (2, False, None, AfterFailure(Step.RETRY, 300.0)),
        (3, False, None, AfterFailure(Step.GIVE_UP)),  # the schedule is exhausted
        (1, False, 42.0, AfterFailure(Step.RETRY, 42.0)),  # Retry-After wins
        (1, False, -3.0, AfterFailure(Step.RETRY, 0.0)),
        (3, False, 42.0, AfterFailure(Step.GIVE_UP)),  # but not past the schedule
        (1, True, None, AfterFailure(Step.REFUSED)),  # refused for good: at once
        (1, True, 42.0, AfterFailure(Step.REFUSED)),
    ],
)
def test_after_failure(
    failed: int, permanent: bool, retry_after: float | None, expected: AfterFailure
) -> None:
    got = after_failure(failed, SCHEDULE, permanent=permanent, retry_after=retry_after)
    assert got == expected


def test_a_notice_row_follows_its_step() -> None:
    row = notice("e1", "r1", Step.DEFERRED, 3, "busy", language="de")
    assert (row.status, row.attempts, row.error, row.language) == (
        Status.RETRYING,
        2,
        "busy",
        "de",
    )
