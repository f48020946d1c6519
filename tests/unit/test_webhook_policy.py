"""Every decision of a webhook delivery, table-driven (``gnlc_webhook.policy``)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest

from gnlc_core.retry import RetrySchedule
from gnlc_webhook import policy
from gnlc_webhook.outcome import Outcome, Verdict
from gnlc_webhook.policy import Action, Decision, Limits
from gnlc_webhook.store import EndpointRow, State

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
SCHEDULE = RetrySchedule((5.0, 300.0), jitter=0.0)  # attempts 1, 2, 3
LIMITS = Limits(handoff=1.0, slow_down=7.0, disable_after=3600.0)


@dataclass(frozen=True)
class Snap:
    """A lane as the policy sees it."""

    slow: bool = False
    full: bool = False
    in_flight: int = 0
    pause: float = 0.0

    def pause_left(self) -> float:
        return self.pause


def endpoint(
    state: State = State.ACTIVE, failing_since: datetime | None = None, reason: str | None = None
) -> EndpointRow:
    return EndpointRow(
        "e1",
        "p1",
        "https://example.org/hook",
        ("deadline.reminder",),
        state=state,
        state_reason=reason,
        failing_since=failing_since,
    )


ACTIVE = endpoint()
HANGING = Snap(slow=True, full=True, in_flight=16)


@pytest.mark.parametrize(
    ("row", "lane", "expected"),
    [
        (ACTIVE, None, policy.SEND),  # no lane yet: nothing known
        (ACTIVE, Snap(), policy.SEND),
        (ACTIVE, Snap(slow=True), policy.SEND),  # slow but room and no pause
        (ACTIVE, Snap(full=True), policy.SEND),  # full but healthy: queues in the batch
        (ACTIVE, HANGING, Decision(Action.HOLD, "16 requests in flight")),
        (
            ACTIVE,
            Snap(slow=True, pause=3.0, in_flight=2),
            Decision(Action.HOLD, "2 requests in flight"),
        ),
        (ACTIVE, Snap(pause=3.0), Decision(Action.DEFER, policy.SLOW_DOWN, 3.0)),
        (endpoint(State.PAUSED), HANGING, policy.SEND),  # dropped when sent
        (endpoint(State.DISABLED), Snap(pause=3.0), policy.SEND),
        (None, HANGING, policy.SEND),
    ],
)
def test_put_off(row: EndpointRow | None, lane: Snap | None, expected: Decision) -> None:
    assert policy.put_off(row, lane) == expected


@pytest.mark.parametrize(
    ("row", "expected"),
    [
        (ACTIVE, policy.SEND),
        (None, Decision(Action.DROP, "the endpoint was deleted")),
        (endpoint(State.PAUSED), Decision(Action.DROP, "the endpoint is paused")),
        (
            endpoint(State.DISABLED, reason="410"),
            Decision(Action.DROP, "the endpoint is disabled (410)"),
        ),
        (endpoint(State.DISABLED), Decision(Action.DROP, "the endpoint is disabled (no reason)")),
    ],
)
def test_admit(row: EndpointRow | None, expected: Decision) -> None:
    assert policy.admit(row) == expected


@pytest.mark.parametrize(
    ("lane", "expected"),
    [
        (Snap(), policy.SEND),
        (Snap(slow=True, full=True), policy.SEND),  # before_request decides that one
        (Snap(pause=2.5), Decision(Action.DEFER, policy.SLOW_DOWN, 2.5)),
        (Snap(pause=2.5, slow=True), Decision(Action.HOLD, "its lane is paused")),
    ],
)
def test_at_lane(lane: Snap, expected: Decision) -> None:
    assert policy.at_lane(lane) == expected


@pytest.mark.parametrize(
    ("lane", "expected"),
    [
        (Snap(), policy.SEND),
        (Snap(full=True), policy.SEND),
        (Snap(slow=True), policy.SEND),
        (Snap(slow=True, full=True, in_flight=4), Decision(Action.HOLD, "4 requests in flight")),
    ],
)
def test_before_request(lane: Snap, expected: Decision) -> None:
    assert policy.before_request(lane) == expected


BUSY = "endpoint busy: over the endpoint's rate limit"


@pytest.mark.parametrize(
    ("waited", "wait", "attempt", "expected"),
    [
        (0.0, 0.2, 1, Decision(Action.WAIT, delay=0.2)),
        (0.5, 0.5, 1, Decision(Action.WAIT, delay=0.5)),  # exactly the hand-off time
        (0.9, 0.2, 1, Decision(Action.BUSY, BUSY, 5.0)),  # the same attempt, after 5 s
        (0.0, 3.0, 2, Decision(Action.BUSY, BUSY, 300.0)),
        (0.0, 3.0, 3, Decision(Action.BUSY, BUSY, 7.0)),  # schedule exhausted: the pause
    ],
)
def test_over_rate(waited: float, wait: float, attempt: int, expected: Decision) -> None:
    assert policy.over_rate(waited, wait, attempt, SCHEDULE, LIMITS) == expected


@pytest.mark.parametrize(
    ("lane", "handed_off", "expected"),
    [(Snap(), False, False), (Snap(slow=True), False, True), (Snap(slow=True), True, False)],
)
def test_hand_off_at_once(lane: Snap, handed_off: bool, expected: bool) -> None:
    assert policy.hand_off_at_once(lane, handed_off) is expected


@pytest.mark.parametrize(
    ("left", "attempt", "expected"),
    [
        (10.0, 1, 16.0),  # the rest of the timeout, a second, the delay before attempt 2
        (-1.0, 2, 301.0),  # past its deadline already
        (4.0, 3, 5.0),  # the last attempt: a final check after the timeout
    ],
)
def test_handoff_delay(left: float, attempt: int, expected: float) -> None:
    assert policy.handoff_delay(left, attempt, SCHEDULE) == expected


@pytest.mark.parametrize(
    ("seconds", "slow"), [(0.0, False), (0.999, False), (1.0, True), (30.0, True)]
)
def test_is_slow(seconds: float, slow: bool) -> None:
    assert policy.is_slow(seconds, LIMITS) is slow


@pytest.mark.parametrize(
    ("outcome", "expected"),
    [
        (Outcome(Verdict.DELIVERED), None),
        (Outcome(Verdict.RETRY, "http 500"), None),
        (Outcome(Verdict.RETRY, "http 503", slow_down=True), 7.0),
        (Outcome(Verdict.RETRY, "http 429", retry_after=30.0, slow_down=True), 30.0),
        (Outcome(Verdict.RETRY, "http 500", retry_after=30.0), None),
    ],
)
def test_slow_down_for(outcome: Outcome, expected: float | None) -> None:
    assert policy.slow_down_for(outcome, LIMITS) == expected


FAILED = Outcome(Verdict.RETRY, "http 500")
GONE = Outcome(Verdict.GONE, "http 410")
PARK = Decision(Action.PARK, "the endpoint answered 410 Gone")
LATER = Outcome(Verdict.RETRY, "http 503", retry_after=42.0)
NOW_AGAIN = Outcome(Verdict.RETRY, "http 503", retry_after=0.0)


@pytest.mark.parametrize(
    ("outcome", "attempt", "handed_off", "expected"),
    [
        (Outcome(Verdict.DELIVERED), 1, False, policy.DELIVERED),
        (Outcome(Verdict.DELIVERED), 3, True, policy.DELIVERED),
        (GONE, 1, False, PARK),
        (GONE, 2, True, PARK),  # gone disables, handed off or not
        (FAILED, 1, True, Decision(Action.SCHEDULED, "http 500")),
        (FAILED, 1, False, Decision(Action.RETRY, "http 500", 5.0)),
        (FAILED, 2, False, Decision(Action.RETRY, "http 500", 300.0)),
        (FAILED, 3, False, Decision(Action.GIVE_UP, "http 500")),
        (LATER, 1, False, Decision(Action.RETRY, "http 503", 42.0)),  # Retry-After honoured
        (NOW_AGAIN, 2, False, Decision(Action.RETRY, "http 503", 0.0)),
        (LATER, 3, False, Decision(Action.GIVE_UP, "http 503")),  # not beyond the schedule
        (Outcome(Verdict.RETRY), 1, False, Decision(Action.RETRY, "failed", 5.0)),
    ],
)  # fmt: skip
def test_settle(outcome: Outcome, attempt: int, handed_off: bool, expected: Decision) -> None:
    assert policy.settle(outcome, attempt, handed_off, SCHEDULE) == expected


@pytest.mark.parametrize(
    ("attempt", "last_error", "expected"),
    [
        (2, None, policy.SEND),
        (3, "http 500", policy.SEND),
        (4, "http 500", Decision(Action.EXPIRE, "http 500")),
        (4, None, Decision(Action.EXPIRE, "no answer before the timeout")),
    ],
)
def test_on_due(attempt: int, last_error: str | None, expected: Decision) -> None:
    assert policy.on_due(attempt, SCHEDULE, last_error) == expected


HOUR_AGO = NOW - timedelta(hours=1)


@pytest.mark.parametrize(
    ("row", "verdict", "expected"),
    [
        (ACTIVE, Verdict.DELIVERED, policy.SEND),
        (endpoint(failing_since=HOUR_AGO), Verdict.DELIVERED, policy.RECOVERED),
        (ACTIVE, Verdict.RETRY, policy.MARK_FAILING),
        (ACTIVE, Verdict.GONE, policy.MARK_FAILING),
        (endpoint(failing_since=NOW - timedelta(seconds=10)), Verdict.RETRY, policy.SEND),
        (
            endpoint(failing_since=HOUR_AGO),
            Verdict.RETRY,
            Decision(Action.DISABLE, "failing continuously for 3600s"),
        ),
        (endpoint(State.PAUSED, failing_since=HOUR_AGO), Verdict.RETRY, policy.SEND),
    ],
)
def test_health(row: EndpointRow, verdict: Verdict, expected: Decision) -> None:
    assert policy.health(row, verdict, NOW, LIMITS) == expected


ALL = policy.RELEASE_ROWS


@pytest.mark.parametrize(
    ("row", "lane", "expected"),
    [
        (ACTIVE, None, ALL),
        (ACTIVE, Snap(), ALL),  # answers again
        (ACTIVE, Snap(slow=True, in_flight=3), 0),  # still hangs
        (ACTIVE, Snap(pause=2.0), 0),  # paused
        (ACTIVE, Snap(slow=True), 1),  # slow, nothing in flight: one, as a probe
        (endpoint(State.PAUSED), HANGING, ALL),  # to be dropped
        (None, HANGING, ALL),
    ],
)
def test_release_limit(row: EndpointRow | None, lane: Snap | None, expected: int) -> None:
    assert policy.release_limit(row, lane) == expected


@pytest.mark.parametrize(
    ("action", "made"),
    [
        (Action.DELIVERED, 3),
        (Action.RETRY, 3),
        (Action.GIVE_UP, 3),
        (Action.PARK, 3),
        (Action.SCHEDULED, 3),  # a handed-off request that failed: it was made
        (Action.DROP, 2),
        (Action.HOLD, 2),
        (Action.DEFER, 2),
        (Action.BUSY, 2),
        (Action.EXPIRE, 2),  # attempt 3 is the final check: two requests were made
    ],
)
def test_attempts_count_requests_made(action: Action, made: int) -> None:
    assert policy.requests_made(3, action) == made


@pytest.mark.parametrize(
    ("own", "first", "expected"),
    [
        (None, None, policy.KeyPlace.OUTSIDE),  # not numbered: the endpoint was not ordered
        (None, 3, policy.KeyPlace.OUTSIDE),
        (3, 3, policy.KeyPlace.FIRST),
        (3, None, policy.KeyPlace.FIRST),  # none unsettled: itself settled (a resend)
        (2, 3, policy.KeyPlace.FIRST),  # settled, and sent again
        (4, 3, policy.KeyPlace.BEHIND),
        (1000, 1, policy.KeyPlace.BEHIND),
    ],
)
def test_key_place(own: int | None, first: int | None, expected: policy.KeyPlace) -> None:
    assert policy.key_place(own, first) is expected


@pytest.mark.parametrize(
    ("place", "resend", "expected"),
    [
        (policy.KeyPlace.OUTSIDE, False, policy.SEND),
        (policy.KeyPlace.FIRST, False, policy.SEND),
        (
            policy.KeyPlace.BEHIND,
            False,
            Decision(Action.HOLD, "waiting for an earlier delivery of its key"),
        ),
        (policy.KeyPlace.BEHIND, True, policy.SEND),  # a resend or replay goes at once
        (policy.KeyPlace.FIRST, True, policy.SEND),
    ],
)
def test_in_order(place: policy.KeyPlace, resend: bool, expected: Decision) -> None:
    assert policy.in_order(place, resend=resend) == expected
    if expected.action is Action.HOLD:  # held: no request made, the same attempt later
        assert policy.requests_made(3, expected.action) == 2
