"""The channel seam: what a delivery channel (email, webhook, ...) gives, and the one
runtime in which every channel runs.

A channel is a ``Channel``: the events it is reading (``subjects``, what its receipts say
about them), a handler for a batch of records from the domain topics (``handle_batch``)
and one for the records its retry tiers hand back when due (``deliver_due``). Both hand
over to the channel's ``gnlc_core.deliveries.DeliveryLoop``, the one loop that decodes (or
parks), asks the channel for its recipients, skips what the ledger has settled, has the
channel send, and turns each outcome into the notice's state and its retry or parking.

``ChannelRuntime`` does the rest, the same for every channel: the broker and its metrics,
the directory and submission views, the retry tiers (``Retrier`` and its reader), the
consumer group of the domain topics and when its offsets are committed (after each batch,
or in the background with a ``Fence``), first
attempts before retries (``gnlc_core.priority``), the ledger's listeners (receipts, notice
metrics), lag metrics, periodic jobs, health and readiness, start and stop. A channel's
``app.py`` builds a runtime, its own parts (store, transport, consumer), then
``runtime.consume(consumer, ...)`` and ``runtime.app(...)``.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Protocol, cast, runtime_checkable

from aiokafka import AIOKafkaConsumer, ConsumerRecord
from fastapi import APIRouter, FastAPI
from faststream.kafka.annotations import KafkaMessage
from faststream.middlewares import AckPolicy
from sqlalchemy.ext.asyncio import AsyncEngine

from gnlc_core.commits import Commits, next_offsets
from gnlc_core.fence import Fence
from gnlc_core.kafka import (
    AT_LEAST_ONCE,
    FETCH_WAIT_MS,
    GROUP_HEARTBEAT_MS,
    GROUP_SESSION_MS,
    make_broker,
    records_only,
    topics_for,
)
from gnlc_core.lag import Group, watch_lag
from gnlc_core.ledger import Listener
from gnlc_core.limits import default_limit
from gnlc_core.logs import get_logger
from gnlc_core.membership import Membership
from gnlc_core.metrics import NoticeMetrics, ServiceMetrics
from gnlc_core.priority import FirstAttempts
from gnlc_core.receipts import ReceiptPublisher, RecipientFacts, Subjects
from gnlc_core.retry import Due, Retrier, RetrySchedule
from gnlc_core.service import AsyncCheck, Hook, build_app, health_router
from gnlc_core.settings import Settings
from gnlc_core.views import DirectoryView, SubmissionView
from gnlc_core.write_behind import Write, WriteBehind

log = get_logger(__name__)
Job = Callable[[], Awaitable[object]]
#: Batches of at least this many records are written behind the next one's sending (a
#: backlog: throughput); smaller ones, as a steady stream brings them, are written before
#: the handler returns (the next batch then waits for no write, and batches stay fewer:
#: first attempts' latency beside a retry flood).
WRITE_BEHIND_FROM = 100


class Channel(Protocol):
    """What a channel gives the runtime."""

    @property
    def subjects(self) -> Subjects:
        """The events being handled (``Subjects.remember`` each one decoded)."""
        ...

    async def handle_batch(self, message: KafkaMessage) -> None:
        """A batch of records from the domain topics; every notice of it settled (or on a
        retry tier) when this returns."""
        ...

    async def deliver_due(self, due: Sequence[Due]) -> None:
        """Records of the retry tiers, due now (committed once this returns)."""
        ...


@runtime_checkable
class WritesBehind(Protocol):
    """A channel whose batches of the domain topics can be sent first and written while
    the next one is sent (``gnlc_core.write_behind``)."""

    async def send_batch(self, message: KafkaMessage) -> Write:
        """Send a batch (every notice settled or on a retry tier); the coroutine returned
        writes it (what ``handle_batch`` does in one go)."""
        ...


class ChannelRuntime:
    """The common part of every channel service (see the module's docstring)."""

    def __init__(
        self, settings: Settings, name: str, schedule: RetrySchedule, *, title: str
    ) -> None:
        self.settings = settings
        self.name = name
        self.title = title
        self.metrics = ServiceMetrics(name)
        self.broker = make_broker(
            settings, client_id=f"gnlc-{name}", middlewares=self.metrics.broker_middlewares()
        )
        self.topics = topics_for(settings)
        self.directory = DirectoryView(settings.kafka_bootstrap_servers, self.topics.directory)
        self.submissions = SubmissionView(
            settings.kafka_bootstrap_servers, self.topics.deadline_submitted
        )
        self.retrier = Retrier(
            self.broker,
            self.topics,
            name,
            schedule,
            dead_letter_topic=self.topics.dead_letter(name),
        )
        self.notice_metrics = NoticeMetrics(self.metrics.registry)
        self._membership = Membership()
        self._commits: Commits | None = None
        self._behind: WriteBehind | None = None
        self._ready = asyncio.Event()  # the broker starts before the hooks: handlers wait
        self._periodic: list[tuple[str, float, Job]] = []
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def dead_letter_topic(self) -> str:
        return self.topics.dead_letter(self.name)

    def listeners(self, subjects: Subjects, recipient_facts: RecipientFacts) -> list[Listener]:
        """The ledger's listeners of every channel: its receipts (``notice.status``, what
        they say of a recipient from ``recipient_facts``) and the notice metrics."""
        receipts = ReceiptPublisher(
            self.broker,
            self.topics,
            source=f"/gnlc-notify/{self.name}",
            subjects=subjects,
            recipient_facts=recipient_facts,
        )
        return [receipts, self.notice_metrics]

    def consume(
        self,
        channel: Channel,
        *,
        topics: Sequence[str],
        batch_size: int,
        fence: Fence | None = None,
        first_attempts_first: bool = False,
    ) -> None:
        """Subscribe ``channel`` to ``topics`` (its consumer group, batches of at most
        ``batch_size``) and to its retry tiers; ``first_attempts_first``: the retry tiers
        keep a smaller share while a domain batch is being handled.

        Without a ``fence`` a batch's offsets are committed by the consumer once the
        handler returns (a failure reads the batch again). With one, they are committed in
        the background (``gnlc_core.commits``) while the next batch is read; the channel
        holds the same fence and asks it which records a redelivery may have handled; the
        runtime tells it what a rebalance or a failed batch makes uncertain."""
        first_attempts = FirstAttempts() if first_attempts_first else None
        behind: WriteBehind | None = None
        if fence is not None:
            self._commits = commits = Commits()
            if isinstance(channel, WritesBehind):
                self._behind = behind = WriteBehind(commits, fence)
            self._membership = Membership(
                commits.listener(also=fence.drop, before=behind.wait if behind else None)
            )

        async def handle_batch(message: KafkaMessage) -> None:
            await self._ready.wait()
            handling = first_attempts.handling() if first_attempts else contextlib.nullcontext()
            if fence is None:
                with handling:
                    await channel.handle_batch(message)
                return
            records = cast("tuple[ConsumerRecord[bytes, bytes], ...]", message.raw_message)
            if behind is not None:
                await write_behind(behind, message, records, handling)
                return
            offsets = next_offsets(records)
            try:
                with handling:
                    await channel.handle_batch(message)
            except Exception:
                fence.drop(offsets)  # some of the batch may be handled: check it all next time
                await message.nack()  # read the batch again rather than commit past it
                raise
            commits.finish(message.consumer, offsets)

        async def write_behind(
            behind: WriteBehind,
            message: KafkaMessage,
            records: Sequence[ConsumerRecord[bytes, bytes]],
            handling: contextlib.AbstractContextManager[object],
        ) -> None:
            """Send the batch while the one before is written; then write it behind."""
            assert isinstance(channel, WritesBehind)
            consumer = cast("AIOKafkaConsumer", message.consumer)
            # the retry tiers keep their smaller share until the write behind is done too
            with handling:
                try:
                    write = await channel.send_batch(message)
                except Exception:
                    failed = await behind.settle()
                    behind.rewind(consumer, records, *([failed] if failed is not None else []))
                    raise
                failed = await behind.settle()
                if failed is not None:  # read from the failed one again, this one with it
                    write.close()
                    behind.rewind(consumer, failed, records)
                    return
                if len(records) >= WRITE_BEHIND_FROM:
                    behind.start(consumer, records, write)
                    return
                try:  # a small batch: written now, as before
                    await write
                except Exception:
                    behind.rewind(consumer, records)
                    raise
            commits.finish(consumer, next_offsets(records))

        async def deliver_due(due: Sequence[Due]) -> None:
            await self._ready.wait()
            await channel.deliver_due(due)

        background = fence is not None
        self.broker.subscriber(
            *topics,
            group_id=self.topics.group(self.name),
            # in the background: committed by ``commits`` once finished
            ack_policy=AckPolicy.MANUAL if background else AT_LEAST_ONCE,
            auto_offset_reset="earliest",
            batch=True,
            max_records=batch_size,
            listener=self._membership,
            decoder=records_only if background else None,
            session_timeout_ms=GROUP_SESSION_MS,
            heartbeat_interval_ms=GROUP_HEARTBEAT_MS,
            fetch_max_wait_ms=FETCH_WAIT_MS,  # a backlog's last partition is not held back
        )(handle_batch)
        self.retrier.subscribe(
            deliver_due,
            bootstrap_servers=self.settings.kafka_bootstrap_servers,
            share=first_attempts.share if first_attempts else None,
        )
        watch_lag(
            self.metrics,
            self.settings.kafka_bootstrap_servers,
            [
                Group(self.topics.group(self.name), self.topics.domain),
                Group(
                    self.topics.group(f"{self.name}-retry"),
                    self.retrier.topic_names,
                    retry_channel=self.name,
                ),
            ],
        )

    def every(self, seconds: float, job: Job, what: str) -> None:
        """Run ``job`` every ``seconds`` once the service has started, until it stops; a
        failure (the database or the broker away) is logged, and it runs again next time."""
        self._periodic.append((what, seconds, job))

    async def _repeat(self, what: str, seconds: float, job: Job) -> None:
        while True:
            try:
                await job()
            except Exception:
                log.exception("periodic job failed; next time", job=what, channel=self.name)
            await asyncio.sleep(seconds)

    async def written(self) -> None:
        """Wait for the write behind of the domain consumer, if any (at stop, once the
        broker stopped and before the database goes)."""
        if self._behind is not None:
            await self._behind.wait()

    def consuming(self) -> bool:
        """The domain consumer and the retry tiers' have joined their groups."""
        return self._membership.joined and self.retrier.joined

    def views_ready(self) -> bool:
        return self.directory.ready and self.submissions.ready

    def app(
        self,
        *,
        routers: Sequence[APIRouter],
        start: Hook,
        stop: Hook,
        database: AsyncEngine,
        degraded: Mapping[str, AsyncCheck] | None = None,
        extra_topics: Sequence[str] = (),
        body_limit: Callable[[str], int] = default_limit,
    ) -> FastAPI:
        """The service: health and readiness (Kafka, ``database``, the views, the consumer
        groups joined; ``degraded`` checks reported), ``routers``. At start the views catch
        up before the broker consumes, then the retry tiers join while ``start`` runs (the
        channel's own: migrations, stores), then handlers may run and the periodic jobs
        start. At stop the periodic jobs, the retry tiers, the views and the background
        commits stop before the channel's ``stop``."""

        async def start_views() -> None:
            await self.directory.start()
            await self.submissions.start()

        async def start_all() -> None:
            tiers = asyncio.create_task(self.retrier.start())  # joins its group meanwhile
            await start()
            self._ready.set()
            for what, seconds, job in self._periodic:
                self._tasks.add(asyncio.create_task(self._repeat(what, seconds, job)))
            await tiers

        async def stop_all() -> None:
            for task in self._tasks:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            await self.retrier.stop()  # its deliveries in flight finish first (briefly)
            await self.directory.stop()
            await self.submissions.stop()
            if self._commits is not None:
                await self._commits.close()
            await stop()

        health = health_router(
            self.broker, self.views_ready, self.consuming, database=database, degraded=degraded
        )
        return build_app(
            title=self.title,
            settings=self.settings,
            broker=self.broker,
            routers=[health, *routers],
            before_consuming=[start_views],
            on_startup=[start_all],
            on_shutdown=[stop_all],
            extra_topics=[*self.retrier.topic_names, *extra_topics],
            body_limit=body_limit,
            metrics=self.metrics,
        )
