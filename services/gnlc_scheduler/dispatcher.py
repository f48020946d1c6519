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
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.date import DateTrigger
from apscheduler.triggers.interval import IntervalTrigger
from faststream.kafka import KafkaBroker
from sqlalchemy.ext.asyncio import AsyncEngine

from gnlc_core.events import envelope
from gnlc_core.kafka import Topics, publish_event
from gnlc_core.logs import get_logger
from gnlc_scheduler import store
from gnlc_scheduler.recovery import already_published

log = get_logger(__name__)
_WAKE = "wake"
_SWEEP = "sweep"


def utc_now() -> datetime:
    return datetime.now(UTC)


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
        await asyncio.gather(
            *(
                publish_event(
                    self._broker,
                    self._topics,
                    envelope(
                        due.type,
                        event_id=due.event_id,
                        data=due.data,
                        time=due.fire_at,
                        partition_key=due.partition_key,
                        subject=_subject(due),
                    ),
                )
                for due in send
            )
        )
        await store.settle(self._engine, emitted=send, skipped=skip, at=self._clock())
        self.emitted += len(send)
        if send:
            log.info("events emitted", count=len(send), first=send[0].event_id)
        if skip:
            log.info("missed reminders skipped", count=len(skip))


def _subject(due: store.Due) -> str:
    if due.type == "deadline.reminder":
        return f"deadlines/{due.data['deadline_id']}/cities/{due.data['audience']['cities'][0]}"
    return f"announcements/{due.data['announcement_id']}"
