"""The dispatcher: drains the outbox onto Kafka at the right instant.

APScheduler holds a single wake-up job at the earliest pending instant (plus a periodic
safety net that also picks up rows other instances added or abandoned). On waking, the
dispatcher claims every due row, publishes the events (idempotent producer, waiting for
every acknowledgement), then marks them emitted. Several instances may run against one
PostgreSQL database: each row is claimed by exactly one of them (row locks with SKIP
LOCKED); a row claimed by an instance that died is taken over after ``claim_timeout``,
and what that instance had already published is not published again (``recovery``).

A row whose instant passed while no instance ran is still emitted when it makes sense:
a reminder at most ``grace`` late, and never a "before" reminder once the due moment has
passed; anything else is marked skipped.

A row whose event cannot be published goes back to pending with its next attempt's time
(``RetryPolicy``: growing delays) and its reason; after the last attempt, or at once when
the failure cannot heal (the event is invalid or larger than Kafka takes), it is parked:
the operator sees it with its reason (``GET /v1/outbox?state=parked``), and it is never
retried in a loop. A failed attempt may have reached Kafka all the same (the broker wrote
it, the acknowledgement was lost): before a retry the topics are read back from the first
failed attempt, as on a take-over, so a retry never emits an event twice.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial

from aiokafka.errors import MessageSizeTooLargeError, RecordTooLargeError
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.date import DateTrigger
from apscheduler.triggers.interval import IntervalTrigger
from faststream.kafka import KafkaBroker
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncEngine

from gnlc_core import tracing
from gnlc_core.events import (
    SOURCE_SCHEDULER,
    CloudEvent,
    NoticeStatus,
    envelope,
    receipt_event,
)
from gnlc_core.kafka import Topics, publish_event
from gnlc_core.logs import get_logger
from gnlc_core.receipts import RECEIPT_TYPE
from gnlc_scheduler import store
from gnlc_scheduler.recovery import already_published

log = get_logger(__name__)
_WAKE = "wake"
_SWEEP = "sweep"


Publish = Callable[[CloudEvent], Awaitable[None]]
#: ``already_published``'s shape: (bootstrap servers, topics, since, event ids) -> found.
ReadBack = Callable[[str, set[str], datetime, set[str]], Awaitable[set[str]]]
#: told of the rows just published (their events acknowledged) and when (metrics)
OnEmitted = Callable[[Sequence[store.Due], datetime], None]
#: Failures that another attempt cannot heal: the row is parked at once.
PERMANENT: tuple[type[Exception], ...] = (
    ValidationError,
    MessageSizeTooLargeError,
    RecordTooLargeError,
)


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class RetryPolicy:
    """When a row whose publishing failed is tried again: ``delays[n-1]`` seconds after its
    n-th failed attempt; after ``len(delays) + 1`` attempts it is parked."""

    delays: tuple[float, ...] = (5, 15, 60, 300, 900, 1800)

    @property
    def max_attempts(self) -> int:
        return len(self.delays) + 1

    def retry_at(self, attempts: int, now: datetime, error: Exception) -> datetime | None:
        """The next attempt after ``attempts`` failed ones, or ``None``: park the row."""
        if isinstance(error, PERMANENT) or attempts >= self.max_attempts:
            return None
        return now + timedelta(seconds=self.delays[attempts - 1])


def describe_error(error: BaseException) -> str:
    text = str(error).strip()
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


def worth_sending(due: store.Due, now: datetime, grace: timedelta) -> bool:
    """The missed-reminder policy (announcements always go out, late or not)."""
    if due.type != "deadline.reminder":
        return True
    if now - due.fire_at > grace:
        return False
    due_at = datetime.fromisoformat(due.data["due_at"])
    return not (due.fire_at < due_at <= now)


class Dispatcher:
    def __init__(
        self,
        engine: AsyncEngine,
        broker: KafkaBroker,
        topics: Topics,
        *,
        bootstrap_servers: str,
        instance: str,
        grace: timedelta,
        claim_timeout: timedelta = timedelta(seconds=15),
        sweep_seconds: float = 1.0,
        batch: int = 2000,
        clock: Callable[[], datetime] = utc_now,
        retry: RetryPolicy = RetryPolicy(),
        publish: Publish | None = None,
        read_back: ReadBack | None = None,
        on_emitted: OnEmitted | None = None,
    ) -> None:
        self._engine = engine
        self._bootstrap = bootstrap_servers
        self._broker = broker
        self._topics = topics
        self._instance = instance
        self._grace = grace
        self._claim_timeout = claim_timeout
        self._sweep_seconds = sweep_seconds
        self._batch = batch
        self._clock = clock
        self._retry = retry
        self._publish: Publish = publish or partial(publish_event, broker, topics)
        self._read_back: ReadBack = read_back or _read_back
        self._on_emitted = on_emitted
        self._lock = asyncio.Lock()
        self._scheduler = AsyncIOScheduler(timezone=UTC)
        self._next: datetime | None = None
        self.emitted = 0

    @property
    def running(self) -> bool:
        return bool(self._scheduler.running)

    async def start(self) -> None:
        self._scheduler.start()
        self._scheduler.add_job(
            self.wake,
            IntervalTrigger(seconds=self._sweep_seconds),
            id=_SWEEP,
            max_instances=1,
            coalesce=True,
        )
        await self.wake()

    def shutdown(self) -> None:
        if self._scheduler.running:
            self._scheduler.shutdown(wait=False)

    def expect(self, fire_at: datetime) -> None:
        """Something new is due at ``fire_at``: wake up then if that is sooner."""
        if self._next is None or fire_at < self._next:
            self._arm(fire_at)

    def _arm(self, at: datetime) -> None:
        self._next = at
        if self._scheduler.running:
            self._scheduler.add_job(
                self.wake,
                DateTrigger(run_date=at),
                id=_WAKE,
                replace_existing=True,
                misfire_grace_time=None,
            )

    async def wake(self) -> None:
        async with self._lock:
            await self._recover()
            while True:
                now = self._clock()
                claimed = await store.claim_due(
                    self._engine, now=now, instance=self._instance, limit=self._batch
                )
                if not claimed:
                    break
                await self._emit(claimed, now)
                if len(claimed) < self._batch:
                    break
            upcoming = await store.next_fire_at(self._engine)
            self._next = None
            if upcoming is not None:
                self._arm(upcoming)

    async def _recover(self) -> None:
        """Finish what a dead instance claimed, leaving out what it had already published."""
        now = self._clock()
        stale_before = now - self._claim_timeout
        stale, claimed_since = await store.reclaim_stale(
            self._engine,
            now=now,
            instance=self._instance,
            stale_before=stale_before,
            limit=self._batch,
        )
        if not stale or claimed_since is None:
            return
        done = await already_published(
            self._bootstrap,
            {self._topics.for_event_type(d.type) for d in stale},
            since=claimed_since,
            event_ids={d.event_id for d in stale},
        )
        published = [d for d in stale if d.event_id in done]
        await store.settle(self._engine, emitted=published, skipped=[], at=now)
        log.warning(
            "took over rows of a stopped instance",
            rows=len(stale),
            already_published=len(published),
        )
        await self._emit([d for d in stale if d.event_id not in done], now)

    async def _emit(self, claimed: list[store.Due], now: datetime) -> None:
        send: list[store.Due] = []
        skip: list[store.Due] = []
        for due in claimed:
            (send if worth_sending(due, now, self._grace) else skip).append(due)
        send, landed, unknown = await self._not_yet_on_kafka(send)
        outcomes = await asyncio.gather(*(self._send(due) for due in send), return_exceptions=True)
        emitted, failures = self._sort_out(send, outcomes)
        emitted += landed
        failures += unknown
        await store.settle(self._engine, emitted=emitted, skipped=skip, at=self._clock())
        await store.failed(self._engine, failures)
        self.emitted += len(emitted)
        events = [due for due in emitted if due.type != RECEIPT_TYPE]  # receipts: not events
        if self._on_emitted is not None and events:
            self._on_emitted(events, self._clock())
        if emitted:
            log.info("events emitted", count=len(emitted), first=emitted[0].event_id)
        if skip:
            log.info("missed reminders skipped", count=len(skip))
        for failure in failures:
            log.warning(
                "event not published" if failure.retry_at else "event parked",
                event_id=failure.due.event_id,
                attempts=failure.due.attempts + 1,
                retry_at=failure.retry_at.isoformat() if failure.retry_at else None,
                reason=failure.reason,
            )

    async def _not_yet_on_kafka(
        self, rows: list[store.Due]
    ) -> tuple[list[store.Due], list[store.Due], list[store.Failure]]:
        """Rows to publish, retried rows already on Kafka, and retried rows whose topics
        could not be read back (tried again later)."""
        retried = [d for d in rows if d.first_attempt_at is not None]
        if not retried:
            return rows, [], []
        since = min(d.first_attempt_at for d in retried if d.first_attempt_at is not None)
        try:
            found = await self._read_back(
                self._bootstrap,
                {self._topics.for_event_type(d.type) for d in retried},
                since,
                {d.event_id for d in retried},
            )
        except Exception as exc:  # the broker is still away: another attempt later
            now = self._clock()
            unknown = [
                store.Failure(
                    d,
                    f"could not read back whether it was published: {describe_error(exc)}",
                    self._retry.retry_at(d.attempts + 1, now, ConnectionError()),
                )
                for d in retried
            ]
            return [d for d in rows if d.first_attempt_at is None], [], unknown
        landed = [d for d in retried if d.event_id in found]
        return [d for d in rows if d.event_id not in found], landed, []

    async def _send(self, due: store.Due) -> None:
        if due.type == RECEIPT_TYPE:  # the plan's own receipts (gnlc_scheduler.receipts)
            receipt = NoticeStatus.model_validate(due.data)
            await self._publish(receipt_event(receipt, source=SOURCE_SCHEDULER))
            return
        event = envelope(
            due.type,
            event_id=due.event_id,
            data=due.data,
            time=due.fire_at,
            partition_key=due.partition_key,
            subject=store.subject_of(due.type, due.data),
        )
        with tracing.emit_span(due.type, due.event_id, due.trace, due.fire_at):
            await self._publish(event)

    def _sort_out(
        self, sent: Sequence[store.Due], outcomes: Sequence[BaseException | None]
    ) -> tuple[list[store.Due], list[store.Failure]]:
        emitted: list[store.Due] = []
        failures: list[store.Failure] = []
        now = self._clock()
        for due, outcome in zip(sent, outcomes, strict=True):
            if outcome is None:
                emitted.append(due)
            elif isinstance(outcome, Exception):
                failures.append(
                    store.Failure(
                        due,
                        describe_error(outcome),
                        self._retry.retry_at(due.attempts + 1, now, outcome),
                    )
                )
            else:  # cancellation and the like: not a failure of this row
                raise outcome
        return emitted, failures


async def _read_back(
    bootstrap: str, topics: set[str], since: datetime, event_ids: set[str]
) -> set[str]:
    return await already_published(bootstrap, topics, since=since, event_ids=event_ids)
