"""The notices' state machine, the same for every channel (README: "Notices: one state
machine"), as pure functions and tables.

A channel tells what happened to a notice at one attempt as a ``Step`` (delivered, failed
for now, given up, refused, dropped, held, deferred ...); ``next_state`` turns it into the
state and the ``attempts`` the ledger records, so every channel counts the same way:
``attempts`` is the number of requests actually made (SMTP sends, HTTP POSTs). A step at
attempt *n* that makes its request records *n*; one that makes none records *n - 1*; a
step that is not an attempt (released from ``held``, a bounce reported later) keeps what
the notice had. Only a request moves a notice to its next attempt: a deferred or held one
goes later at the same attempt.

``after_failure`` is the one decision after a failed request (the next attempt after the
schedule's delay or a ``Retry-After``, or give up once the schedule is exhausted; refused
for good at once); ``TRANSITIONS`` the moves a notice may make in a channel's ledger.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import Enum
from typing import TYPE_CHECKING

from gnlc_core.ledger import TERMINAL, Notice, Status

if TYPE_CHECKING:  # the retry tiers carry out ``after_failure`` (``Retrier.follow``)
    from gnlc_core.retry import RetrySchedule


class Step(Enum):
    """What happened to a notice at one attempt (the state machine's input)."""

    DELIVERED = "delivered"  # a request made and taken
    RETRY = "retry"  # a request made that failed for now: the next attempt is scheduled
    GIVE_UP = "give up"  # a request made that failed, and the schedule is exhausted
    REFUSED = "refused"  # a request made that was refused for good (SMTP 5xx, HTTP 410)
    EXPIRED = "expired"  # no request: the final check of a handed-off last attempt failed
    UNSENDABLE = "unsendable"  # no request: it cannot be made (does not render, unreadable)
    DROPPED = "dropped"  # no request: not sent on purpose (the reason says why)
    UNSUBSCRIBED = "unsubscribed"  # no request: the recipient unsubscribed (optional mail)
    HELD = "held"  # no request: put aside (the recipient hangs; a digest)
    DEFERRED = "deferred"  # no request: the same attempt later (slow-down, rate limit)
    RELEASED = "released"  # held, now scheduled again at the same attempt
    BOUNCED = "bounced"  # delivered, then reported undeliverable


class Requests(Enum):
    """How a step counts in ``attempts``."""

    MADE = "made"  # its request was made: the attempt counts
    NONE = "none"  # no request: the attempts before it
    KEPT = "kept"  # not an attempt: the notice keeps what it had


#: Each step: the state it records, and how it counts.
RULES: Mapping[Step, tuple[Status, Requests]] = {
    Step.DELIVERED: (Status.DELIVERED, Requests.MADE),
    Step.RETRY: (Status.RETRYING, Requests.MADE),
    Step.GIVE_UP: (Status.FAILED, Requests.MADE),
    Step.REFUSED: (Status.FAILED, Requests.MADE),
    Step.EXPIRED: (Status.FAILED, Requests.NONE),
    Step.UNSENDABLE: (Status.FAILED, Requests.NONE),
    Step.DROPPED: (Status.DROPPED, Requests.NONE),
    Step.UNSUBSCRIBED: (Status.UNSUBSCRIBED, Requests.NONE),
    Step.HELD: (Status.HELD, Requests.NONE),
    Step.DEFERRED: (Status.RETRYING, Requests.NONE),
    Step.RELEASED: (Status.RETRYING, Requests.KEPT),
    Step.BOUNCED: (Status.BOUNCED, Requests.KEPT),
}

#: The steps a notice may take from each state of a channel's ledger (``None``: no row
#: yet). A terminal state takes none, except a bounce after delivery; a resend (or replay)
#: asked for by an operator or partner starts a notice over (``allowed(..., resend=True)``).
_UNDER_WAY = frozenset(Step) - {Step.RELEASED, Step.BOUNCED}
STEPS: Mapping[Status | None, frozenset[Step]] = {
    None: _UNDER_WAY,
    Status.RETRYING: _UNDER_WAY,
    Status.HELD: _UNDER_WAY | {Step.RELEASED},
    Status.DELIVERED: frozenset({Step.BOUNCED}),
    Status.FAILED: frozenset(),
    Status.DROPPED: frozenset(),
    Status.UNSUBSCRIBED: frozenset(),
    Status.BOUNCED: frozenset(),
}

#: The same as moves between states: what the README's diagram draws.
TRANSITIONS: Mapping[Status | None, frozenset[Status]] = {
    source: frozenset(RULES[step][0] for step in steps) for source, steps in STEPS.items()
}


def requests_made(attempt: int, step: Step, *, before: int | None = None) -> int:
    """What ``attempts`` records when ``step`` happens at ``attempt``: the requests made.
    ``before``: what the notice had (for a step that keeps it; ``attempt - 1`` if not
    known, which is what a notice at ``attempt`` has had)."""
    counts = RULES[step][1]
    if counts is Requests.MADE:
        return attempt
    if counts is Requests.KEPT and before is not None:
        return before
    return max(attempt - 1, 0)


def next_state(step: Step, attempt: int, *, before: int | None = None) -> tuple[Status, int]:
    """The state and ``attempts`` a notice records when ``step`` happens at ``attempt``."""
    return RULES[step][0], requests_made(attempt, step, before=before)


def allowed(source: Status | None, step: Step, *, resend: bool = False) -> bool:
    """Whether a notice in ``source`` may take ``step``: a settled one takes none (but a
    bounce after delivery), unless it is sent again on request (``resend``)."""
    if resend and source in TERMINAL:
        return step in STEPS[None]
    return step in STEPS.get(source, frozenset())


def notice(
    event_id: str,
    recipient: str,
    step: Step,
    attempt: int,
    error: str | None = None,
    *,
    event_time: datetime | None = None,
    language: str | None = None,
) -> Notice:
    """The ledger row of ``step`` at ``attempt`` (``gnlc_core.ledger.Notice``)."""
    status, attempts = next_state(step, attempt)
    return Notice(
        event_id, recipient, status, attempts, error, language=language, event_time=event_time
    )


@dataclass(frozen=True, slots=True)
class AfterFailure:
    """What follows a failed request: ``step`` (RETRY, GIVE_UP or REFUSED) and, for a
    retry, its ``delay`` in seconds (already scaled)."""

    step: Step
    delay: float = 0.0


def after_failure(
    failed: int,
    schedule: RetrySchedule,
    *,
    permanent: bool = False,
    retry_after: float | None = None,
) -> AfterFailure:
    """After attempt ``failed`` did not go through: REFUSED when ``permanent``; else RETRY
    after the schedule's delay (or ``retry_after``, seconds, when the recipient said so),
    or GIVE_UP once the schedule is exhausted. ``delay_before`` draws the jitter."""
    if permanent:
        return AfterFailure(Step.REFUSED)
    planned = schedule.delay_before(failed + 1)
    if planned is None:
        return AfterFailure(Step.GIVE_UP)
    return AfterFailure(Step.RETRY, planned if retry_after is None else max(retry_after, 0.0))
