"""What the webhook consumer does with a delivery, decided by pure functions.

Every decision of a delivery (send, hold, defer, busy, drop, retry, give up, park and
disable, hand off, release) is a function of plain data: the job's attempt and whether it
was handed off, the endpoint (``None`` once deleted; its state and ``failing_since``), its
lane (``LaneState``: slow, full, requests in flight, pause left), the retry schedule, the
limits, the outcome of a request and a clock value. Each returns a ``Decision`` tagged by an
``Action``; the consumer (``gnlc_webhook.consumer``) only carries it out. The common
decisions are module constants, so the path of a delivery that goes well allocates nothing
here.

What an action records in the ledger is the notices' one state machine
(``gnlc_core.notices``): ``step_of`` names the step an action is, so ``attempts`` is the
number of requests actually made, as in every channel (``requests_made``): a delivery at
attempt *n* that makes its request records *n*; one that makes none (dropped, held,
deferred, busy, expired: the final check of a handed-off last attempt) records *n - 1*.
So only a request moves a notice to the next attempt: holding, deferring and being over
the endpoint's rate limit send the same attempt later.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import Enum
from typing import Protocol

from gnlc_core import notices
from gnlc_core.notices import Step
from gnlc_core.retry import RetrySchedule
from gnlc_webhook.outcome import Outcome, Verdict
from gnlc_webhook.store import EndpointRow, State

SLOW_DOWN = "the endpoint asked us to slow down"
RELEASE_ROWS = 2000  # held deliveries scheduled again per round


class Action(Enum):
    SEND = "send"  # go on (to the next check, or the request)
    DROP = "drop"  # not sent on purpose: settled as dropped
    HOLD = "hold"  # put aside while the endpoint hangs (a ledger row, no Kafka record)
    DEFER = "defer"  # the same attempt later: the endpoint asked us to slow down
    BUSY = "busy"  # over the endpoint's rate limit: the same attempt later
    WAIT = "wait"  # wait for the rate limit's next token, then send
    DELIVERED = "delivered"
    RETRY = "retry"  # the next attempt, after ``delay``
    GIVE_UP = "give up"  # the schedule is exhausted: failed, parked
    EXPIRE = "expire"  # the final check of a handed-off last attempt: failed, parked
    PARK = "park"  # failed for good at once (410): disable the endpoint, park the notice
    SCHEDULED = "scheduled"  # failed after a hand-off, whose retry is scheduled already
    MARK_FAILING = "mark failing"  # the endpoint's first failure: remember since when
    RECOVERED = "recovered"  # a success after failures: forget ``failing_since``
    DISABLE = "disable"  # failing for too long: disable the endpoint


@dataclass(frozen=True, slots=True)
class Decision:
    action: Action
    reason: str | None = None
    delay: float = 0.0  # seconds (DEFER, BUSY, WAIT, RETRY)


@dataclass(frozen=True)
class Limits:
    """The knobs of delivery (from Settings; tests pass small ones)."""

    timeout: float = 15.0
    handoff: float = 1.0
    endpoint_concurrency: int = 16
    endpoint_rate: float | None = None
    slow_down: float = 5.0
    max_retry_after: float = 86400.0
    disable_after: float = 5 * 86400.0
    body_limit: int = 1024
    workers: int = 1  # processes sharing the endpoints: each keeps its share of the limits
    hold_check: float = 5.0  # how often held deliveries are looked at for release


class LaneState(Protocol):
    """What the policy reads of an endpoint's lane (``gnlc_webhook.lanes.Lane``, or a
    snapshot in tests)."""

    @property
    def slow(self) -> bool: ...
    @property
    def full(self) -> bool: ...
    @property
    def in_flight(self) -> int: ...
    def pause_left(self) -> float: ...


SEND = Decision(Action.SEND)
DELIVERED = Decision(Action.DELIVERED)
GONE = Decision(Action.PARK, "the endpoint answered 410 Gone")
DELETED = Decision(Action.DROP, "the endpoint was deleted")
PAUSED = Decision(Action.DROP, "the endpoint is paused")
NOT_WANTED = Decision(Action.DROP, "not sent: no longer applies")
PAUSED_LANE = Decision(Action.HOLD, "its lane is paused")
BEHIND_ITS_KEY = Decision(Action.HOLD, "waiting for an earlier delivery of its key")
WAITED_FOR_SLOT = Decision(Action.HOLD, "waited too long for a free slot")
RECOVERED = Decision(Action.RECOVERED)
MARK_FAILING = Decision(Action.MARK_FAILING)


#: The step of the notices' state machine each settling action is.
STEPS: dict[Action, Step] = {
    Action.DELIVERED: Step.DELIVERED,
    Action.RETRY: Step.RETRY,
    Action.SCHEDULED: Step.RETRY,  # failed after a hand-off: its retry is scheduled already
    Action.GIVE_UP: Step.GIVE_UP,
    Action.PARK: Step.REFUSED,
    Action.EXPIRE: Step.EXPIRED,
    Action.DROP: Step.DROPPED,
    Action.HOLD: Step.HELD,
    Action.DEFER: Step.DEFERRED,
    Action.BUSY: Step.DEFERRED,
}


def step_of(action: Action) -> Step:
    """The state machine's step of a settling ``action`` (KeyError for the others: SEND,
    WAIT and the endpoint's health settle no notice)."""
    return STEPS[action]


def requests_made(attempt: int, action: Action) -> int:
    """What ``attempts`` records for a delivery at ``attempt`` settled by ``action``: the
    requests actually made (its own counts only if it was made)."""
    return notices.requests_made(attempt, step_of(action))


def _in_flight(lane: LaneState) -> Decision:
    return Decision(Action.HOLD, f"{lane.in_flight} requests in flight")


def put_off(endpoint: EndpointRow | None, lane: LaneState | None) -> Decision:
    """Before any task is made for a delivery: an active endpoint that hangs (its lane
    slow, and full or paused) holds it, one paused by a slow-down defers it; else SEND
    (the other checks come when it is sent, so a hanging endpoint's deliveries stay cheap)."""
    if lane is None:
        return SEND
    pause = lane.pause_left()
    hangs = lane.slow and (lane.full or pause > 0)
    if not hangs and pause <= 0:
        return SEND
    if endpoint is None or endpoint.state is not State.ACTIVE:
        return SEND  # dropped when sent
    if hangs:
        return _in_flight(lane)
    return Decision(Action.DEFER, SLOW_DOWN, pause)


class KeyPlace(Enum):
    """Where a delivery stands in the order of its partition key at an ordered endpoint."""

    OUTSIDE = "outside"  # not numbered: the endpoint is not ordered, or was not when it came
    FIRST = "first"  # the first delivery of its key not settled: it may go
    BEHIND = "behind"  # an earlier delivery of its key is not settled yet


def key_place(own: int | None, first: int | None) -> KeyPlace:
    """From the delivery's number in its key's order (None: not numbered) and that of the
    first delivery of the key not settled (None: none is)."""
    if own is None:
        return KeyPlace.OUTSIDE
    if first is None or own <= first:
        return KeyPlace.FIRST
    return KeyPlace.BEHIND


def in_order(place: KeyPlace, *, resend: bool) -> Decision:
    """Whether a delivery may go now as far as its key's order goes: one behind an earlier
    delivery of its key is held until that one is settled (then released, as held
    deliveries are); a resend or replay goes at once, outside the order."""
    if place is KeyPlace.BEHIND and not resend:
        return BEHIND_ITS_KEY
    return SEND


def admit(endpoint: EndpointRow | None) -> Decision:
    """Whether the endpoint takes deliveries at all: DROP when deleted, disabled or paused."""
    if endpoint is None:
        return DELETED
    if endpoint.state is State.DISABLED:
        reason = f"the endpoint is disabled ({endpoint.state_reason or 'no reason'})"
        return Decision(Action.DROP, reason)
    if endpoint.state is State.PAUSED:
        return PAUSED
    return SEND


def at_lane(lane: LaneState) -> Decision:
    """Once ``should_send`` said yes: a lane paused by a slow-down defers the delivery, or
    holds it if the lane is slow too (the endpoint hangs)."""
    pause = lane.pause_left()
    if pause <= 0:
        return SEND
    if lane.slow:
        return PAUSED_LANE
    return Decision(Action.DEFER, SLOW_DOWN, pause)


def over_rate(
    waited: float, wait: float, attempt: int, schedule: RetrySchedule, limits: Limits
) -> Decision:
    """The rate limit allows the next request in ``wait`` seconds, after ``waited``
    already: WAIT while the whole wait stays within the hand-off time, else BUSY (the same
    attempt later, after the schedule's next delay, or the slow-down pause once it is
    exhausted)."""
    if waited + wait <= limits.handoff:
        return Decision(Action.WAIT, delay=wait)
    delay = schedule.delay_before(attempt + 1)
    return Decision(
        Action.BUSY,
        "endpoint busy: over the endpoint's rate limit",
        limits.slow_down if delay is None else delay,
    )


def before_request(lane: LaneState) -> Decision:
    """Right before taking a slot: a full lane that is slow holds the delivery (a healthy
    lane queues it within the batch instead)."""
    return _in_flight(lane) if lane.full and lane.slow else SEND


def hand_off_at_once(lane: LaneState, handed_off: bool) -> bool:
    """A request to a slow lane is handed off as it starts: it never holds a batch."""
    return lane.slow and not handed_off


def is_slow(seconds: float, limits: Limits) -> bool:
    """A request that took this long marks its lane slow (or hands off when in flight)."""
    return seconds >= limits.handoff


def handoff_delay(left: float, attempt: int, schedule: RetrySchedule) -> float:
    """When the next attempt of a request handed off with ``left`` seconds before its
    timeout is scheduled: a second after the timeout, plus the schedule's delay."""
    return max(left, 0.0) + 1.0 + (schedule.delay_before(attempt + 1) or 0.0)


def slow_down_for(outcome: Outcome, limits: Limits) -> float | None:
    """How long the lane pauses after ``outcome``: the ``Retry-After`` or the configured
    pause for a slow-down answer, None for the others."""
    if not outcome.slow_down:
        return None
    return outcome.retry_after if outcome.retry_after is not None else limits.slow_down


def settle(outcome: Outcome, attempt: int, handed_off: bool, schedule: RetrySchedule) -> Decision:
    """What a request's outcome makes of the notice."""
    if outcome.verdict is Verdict.DELIVERED:
        return DELIVERED
    if outcome.verdict is Verdict.GONE:
        return GONE
    reason = outcome.error or "failed"
    if handed_off:  # its retry was scheduled at hand-off
        return Decision(Action.SCHEDULED, reason)
    return next_attempt(attempt, reason, schedule, retry_after=outcome.retry_after)


def next_attempt(
    failed: int, reason: str, schedule: RetrySchedule, *, retry_after: float | None = None
) -> Decision:
    """After attempt ``failed``: RETRY after the schedule's delay (or ``Retry-After``), or
    GIVE_UP once the schedule is exhausted."""
    after = notices.after_failure(failed, schedule, retry_after=retry_after)
    if after.step is Step.GIVE_UP:
        return Decision(Action.GIVE_UP, reason)
    return Decision(Action.RETRY, reason, after.delay)


def on_due(attempt: int, schedule: RetrySchedule, last_error: str | None) -> Decision:
    """A retry record that came due: SEND, or (beyond the schedule: the final check of a
    handed-off last attempt that has not succeeded, no request of its own) EXPIRE."""
    if attempt > schedule.max_attempts:
        return Decision(Action.EXPIRE, last_error or "no answer before the timeout")
    return SEND


def health(
    endpoint: EndpointRow, verdict: Verdict, now: datetime | None, limits: Limits
) -> Decision:
    """What an outcome means for the endpoint: RECOVERED, MARK_FAILING, DISABLE (failing
    continuously for ``disable_after``) or SEND (nothing to change). ``now`` is needed for
    a failure only (a success reads no clock)."""
    if verdict is Verdict.DELIVERED:
        return RECOVERED if endpoint.failing_since is not None else SEND
    if endpoint.failing_since is None:
        return MARK_FAILING
    if now is None:
        return SEND
    failing_for = (now - endpoint.failing_since).total_seconds()
    if endpoint.state is State.ACTIVE and failing_for >= limits.disable_after:
        return Decision(Action.DISABLE, f"failing continuously for {failing_for:.0f}s")
    return SEND


def release_limit(endpoint: EndpointRow | None, lane: LaneState | None) -> int:
    """How many held deliveries to release now: all (in rounds), none while the endpoint
    hangs, or one while its lane is slow with nothing in flight, as a probe: a retry that
    came while the lane was paused was held too, and nothing else would tell whether the
    endpoint answers again. Those of an endpoint no longer active come back to be dropped."""
    if endpoint is None or endpoint.state is not State.ACTIVE:
        return RELEASE_ROWS
    if lane is None:
        return RELEASE_ROWS
    pause = lane.pause_left()
    if not (lane.slow or pause > 0):
        return RELEASE_ROWS
    return 1 if pause <= 0 and lane.in_flight == 0 else 0
