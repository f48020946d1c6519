"""The delay ladder's decisions (table-driven), and a property test: a model of the tier
topics and their partitions, driven by those same decisions, never attempts a retry more
than a second after its due time, whatever the schedules, jitter, Retry-After values,
deferrals and interleavings of publishes."""

from __future__ import annotations

import heapq
import random
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gnlc_core.ladder import (
    LADDER,
    Action,
    Step,
    next_step,
    ready_at,
    tier_for,
    tier_of_topic,
)
from gnlc_core.retry import RetrySchedule, tier_of_delay
from gnlc_core.tier_reader import _Partition

DAY = 86400.0


@pytest.mark.parametrize(
    ("remaining", "tier"),
    [
        (0.0, None),
        (0.999, None),
        (1.0, 1.0),
        (4.99, 1.0),
        (5.0, 5.0),
        (270.0, 30.0),  # an attempt-3 retry (300 s minus jitter) waits in the 30 s tier
        (299.999, 30.0),
        (300.0, 300.0),
        (7199.0, 1800.0),
        (36000.0, 36000.0),
        (DAY, 36000.0),
    ],
)
def test_the_longest_tier_not_longer_than_what_is_left(remaining: float, tier: float) -> None:
    assert tier_for(remaining) == tier


@pytest.mark.parametrize(
    ("delay", "tier"), [(0.0, 0.0), (0.5, 0.0), (1.0, 1.0), (3.0, 1.0), (330.0, 300.0)]
)
def test_a_delay_under_a_second_goes_to_the_tier_read_at_once(delay: float, tier: float) -> None:
    assert tier_of_delay(delay) == tier


@pytest.mark.parametrize(
    ("topic", "seconds"),
    [
        ("gnlc.webhook.retry.300s", 300.0),
        ("gnlc.email.retry.21600s", 21600.0),  # a tier of an older schedule
        ("gnlc.webhook.retry.0s", 0.0),
        ("gnlc.deadline.reminder", 0.0),
    ],
)
def test_the_wait_of_a_tier_topic_is_in_its_name(topic: str, seconds: float) -> None:
    assert tier_of_topic(topic) == seconds


@pytest.mark.parametrize(
    ("appended", "tier", "due", "ready"),
    [
        (100.0, 5.0, 200.0, 105.0),
        (100.0, 5.0, 103.0, 103.0),  # never after its due time
        (100.0, 36000.0, 100.5, 100.5),  # filed too long by an older schedule: due first
        (100.0, 0.0, 100.7, 100.0),
    ],
)
def test_ready_after_the_tier_and_never_after_due(
    appended: float, tier: float, due: float, ready: float
) -> None:
    assert ready_at(appended, tier, due) == ready


@pytest.mark.parametrize(
    ("now", "ready", "due", "step"),
    [
        (10.0, 12.0, 50.0, Step(Action.WAIT, at=12.0)),
        (12.0, 12.0, 12.0, Step(Action.DELIVER)),
        (13.0, 12.0, 12.0, Step(Action.DELIVER)),  # late: at once
        (12.0, 12.0, 12.4, Step(Action.HOLD, at=12.4)),
        (12.0, 12.0, 13.5, Step(Action.MOVE, tier=1.0)),
        (12.0, 12.0, 12.0 + 299.0, Step(Action.MOVE, tier=30.0)),
        (12.0, 12.0, 12.0 + DAY, Step(Action.MOVE, tier=36000.0)),
    ],
)
def test_what_a_read_record_becomes(now: float, ready: float, due: float, step: Step) -> None:
    assert next_step(now, ready=ready, due=due) == step


def test_offsets_are_committed_up_to_the_first_record_not_finished() -> None:
    state = _Partition()
    assert state.commit_offset() is None
    for offset in (10, 11, 12):
        state.take(offset)
    assert state.commit_offset() == 10
    state.finish(11)
    state.finish(12)
    assert state.commit_offset() == 10  # 10 is held or in flight: nothing past it
    state.finish(10)
    assert state.commit_offset() == 13


# the model -----------------------------------------------------------------------------

#: the consumer's reaction: from a partition's head being ready to it being read (a fetch
#: after the resume), and from a publish to the broker's append; generous on purpose
READ_LATENCY = 0.25
APPEND_LATENCY = 0.05
TOLERANCE = 1.0


@dataclass
class Record:
    ident: int
    due: float
    appended: float = 0.0
    tier: float = 0.0

    @property
    def ready(self) -> float:
        return ready_at(self.appended, self.tier, self.due)


@dataclass
class Partition:
    queue: deque[Record] = field(default_factory=deque)
    last_append: float = 0.0
    looking: bool = False


class Model:
    """Tier topics of a few partitions each; one consumer that reads a partition's head once
    it is ready (the rest of the partition waits behind it) and does what ``next_step``
    says; publishes that reach the broker after a random delay."""

    def __init__(self, partitions: int, rng: random.Random) -> None:
        self.rng = rng
        self.partitions = {
            (tier, p): Partition() for tier in (0.0, *LADDER) for p in range(partitions)
        }
        self.count = partitions
        self.events: list[tuple[float, int, Callable[[float], None]]] = []
        self.seq = 0
        self.attempted: dict[int, float] = {}

    def at(self, when: float, action: Callable[[float], None]) -> None:
        """Run ``action(when)`` at ``when`` (events at one instant in the order given)."""
        self.seq += 1
        heapq.heappush(self.events, (when, self.seq, action))

    def publish(self, now: float, record: Record, tier: float) -> None:
        """The producer sends at ``now``; the broker appends a little later, in order."""
        key = (tier, self.rng.randrange(self.count))
        self.at(
            now + self.rng.uniform(0, APPEND_LATENCY),
            lambda when: self.append(when, key, record, tier),
        )

    def append(self, now: float, key: tuple[float, int], record: Record, tier: float) -> None:
        partition = self.partitions[key]
        partition.last_append = max(partition.last_append, now)  # LogAppendTime
        record.appended, record.tier = partition.last_append, tier
        partition.queue.append(record)
        self.look_soon(now, key)

    def look_soon(self, now: float, key: tuple[float, int]) -> None:
        partition = self.partitions[key]
        if partition.looking or not partition.queue:
            return
        partition.looking = True
        head = partition.queue[0]
        when = max(now, head.ready) + self.rng.uniform(0, READ_LATENCY)
        self.at(when, lambda later: self.look(later, key))

    def look(self, now: float, key: tuple[float, int]) -> None:
        partition = self.partitions[key]
        partition.looking = False
        record = partition.queue[0]
        step = next_step(now, ready=record.ready, due=record.due)
        if step.action is Action.WAIT:  # paused until ready (cannot happen: looked then)
            self.at(step.at, lambda later: self.look(later, key))
            partition.looking = True
            return
        partition.queue.popleft()
        if step.action is Action.DELIVER:
            self.attempted[record.ident] = now
        elif step.action is Action.HOLD:
            self.attempted[record.ident] = step.at
        else:
            self.publish(now, record, step.tier)
        self.look_soon(now, key)

    def send(self, when: float, record: Record, delay: float) -> None:
        """A retry ``delay`` seconds away, published at ``when``."""
        self.at(when, lambda now: self.publish(now, record, tier_of_delay(delay)))

    def run(self) -> None:
        while self.events:
            now, _, action = heapq.heappop(self.events)
            action(now)


delays = st.floats(min_value=0.001, max_value=DAY, allow_nan=False, allow_infinity=False)
schedules = st.builds(
    RetrySchedule,
    delays=st.lists(delays, min_size=1, max_size=8).map(tuple),
    jitter=st.floats(min_value=0.0, max_value=0.5),
    scale=st.sampled_from([1.0, 0.01, 0.0002]),
)
#: what publishes a retry: the schedule's next attempt, a Retry-After (capped at a day),
#: a deferral during a slow-down or a hold's release
causes = st.one_of(
    st.tuples(st.just("attempt"), st.integers(min_value=2, max_value=9)),
    st.tuples(st.just("retry-after"), st.floats(min_value=0, max_value=DAY)),
    st.tuples(st.just("deferral"), st.floats(min_value=0, max_value=DAY)),
)
publishes = st.lists(
    st.tuples(st.floats(min_value=0, max_value=600), causes), min_size=1, max_size=60
)


@settings(max_examples=200, deadline=None)
@given(
    schedule=schedules,
    sent=publishes,
    partitions=st.integers(min_value=1, max_value=3),
    rng=st.randoms(use_true_random=False),
)
def test_no_retry_is_attempted_later_than_a_second_after_its_due_time(
    schedule: RetrySchedule,
    sent: list[tuple[float, tuple[str, float]]],
    partitions: int,
    rng: random.Random,
) -> None:
    model = Model(partitions, rng)
    due: dict[int, float] = {}
    for ident, (when, (cause, value)) in enumerate(sent):
        if cause == "attempt":
            delay = schedule.delay_before(int(value), rng=rng)
            if delay is None:  # the schedule is exhausted: dead-lettered, not retried
                continue
        else:
            delay = value
        due[ident] = when + delay
        model.send(when, Record(ident, when + delay), delay)
    model.run()

    assert model.attempted.keys() == due.keys()  # nothing lost
    for ident, attempted in model.attempted.items():
        assert attempted >= due[ident]  # never early
        assert attempted <= due[ident] + TOLERANCE, (ident, attempted - due[ident])
