"""The delay ladder: where a retry waits until it is due, as pure decisions.

A retry carries its absolute due time (header ``x-gnlc-not-before``). It waits on a fixed
ladder of *tier* topics (1 s, 5 s, 30 s, 5 min, 30 min, 2 h, 10 h), which does not depend on
any channel's retry schedule (a delay under the shortest goes to a 0 s tier, read at once).
A record becomes *ready* in tier ``T`` at its append time plus
``T`` (never after its due time), and a record only ever enters a tier no longer than its
remaining delay. Appended in time order, the records of a partition become ready in offset
order, so waiting for the head of a partition never holds back a record that is ready
earlier: no record waits behind another.

When a record is ready: if it is due, it is delivered; if less than the shortest tier is
left, it waits the rest in the consumer's memory; otherwise it moves on to the longest tier
that fits what is left (a Kafka write). Every step keeps ``ready <= due``, so a retry is
late only by the consumer's own reaction time.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import Enum

#: Seconds a record waits in each tier topic: real seconds, whatever the schedules say.
LADDER: tuple[float, ...] = (1.0, 5.0, 30.0, 300.0, 1800.0, 7200.0, 36000.0)

_TIER_SUFFIX = re.compile(r"\.retry\.(\d+)s$")


class Action(Enum):
    """What the tier consumer does with a record it has read."""

    WAIT = "wait"  # not ready: stop reading its partition until ``at``
    DELIVER = "deliver"  # due: hand it to the channel now
    HOLD = "hold"  # ready, due within the shortest tier: keep it in memory until ``at``
    MOVE = "move"  # ready, not due: publish it to tier ``tier`` (and commit it here)


@dataclass(frozen=True)
class Step:
    action: Action
    at: float = 0.0
    tier: float = 0.0


def tier_for(remaining: float, ladder: tuple[float, ...] = LADDER) -> float | None:
    """The longest tier not longer than ``remaining`` seconds; None under the shortest."""
    fitting = [tier for tier in ladder if tier <= remaining]
    return max(fitting) if fitting else None


def tier_of_topic(topic: str) -> float:
    """The seconds a tier topic (``<prefix><channel>.retry.<n>s``) holds its records; 0 for
    a name that is not one (its records are then ready at once)."""
    match = _TIER_SUFFIX.search(topic)
    return float(match.group(1)) if match else 0.0


def ready_at(appended: float, tier: float, due: float) -> float:
    """When a record appended to ``tier`` at ``appended`` may be looked at: after its wait in
    the tier, and never after it is due. This also holds for tiers of an older schedule,
    whose records may have been filed into a tier longer than their delay."""
    return min(appended + tier, due)


def next_step(now: float, *, ready: float, due: float, ladder: tuple[float, ...] = LADDER) -> Step:
    """What to do at ``now`` with a record that is ``ready`` and ``due`` at those times."""
    if now < ready:
        return Step(Action.WAIT, at=ready)
    remaining = due - now
    if remaining <= 0:
        return Step(Action.DELIVER)
    tier = tier_for(remaining, ladder)
    if tier is None:
        return Step(Action.HOLD, at=due)
    return Step(Action.MOVE, tier=tier)
