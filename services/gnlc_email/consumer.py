"""The email consumer: a batch of events in, one message per contact of each city in each
event's audience, each notice settled exactly once in the ledger.

For a batch of records (at-least-once: the batch's offsets are committed only after this
returns, so a crash replays it):

1. parse each record; an invalid one goes to the dead-letter topic, the rest go on;
2. resolve each event's cities and ask ``should_send(event, city)`` (issue 3 plugs "this
   city has already submitted" in here); a "no" is recorded as dropped;
3. ask the ledger, in one go, which (event, recipient) notices are settled already
   (redelivery, rebalance, restart): those are skipped; announcements to addresses that
   unsubscribed are recorded as dropped;
4. render each event once per language, then fill in each city (``Renderer.render_many``);
5. send over the SMTP pool with as many workers as connections; record each outcome in the
   ledger within a fraction of a second of the server's answer (so a crash right after
   leaves little to send twice), and before the batch is committed:
   delivered; a transient failure (4xx, connection, timeout) goes to a delayed retry topic
   and is recorded as retrying; a permanent one (5xx) is recorded as failed and parked on
   the dead-letter topic with its reason; so is a notice whose retries are exhausted.

The retry tiers call ``deliver_one`` for one notice when it is due, which goes through the
same checks.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parseaddr
from typing import Any

from aiokafka import ConsumerRecord
from faststream.kafka import KafkaBroker
from faststream.kafka.annotations import KafkaMessage

from gnlc_core.consumer import always, dead_letter, decode
from gnlc_core.directory import City, DirectorySource
from gnlc_core.events import (
    AnnouncementPublishedEvent,
    DeadlineReminderEvent,
    encode_event,
)
from gnlc_core.kafka import Topics, publish_dead_letter
from gnlc_core.ledger import Ledger, Notice, Status
from gnlc_core.logs import get_logger
from gnlc_core.receipts import Subjects
from gnlc_core.retry import Retrier
from gnlc_core.settings import Settings
from gnlc_email.message import Recipient, compose
from gnlc_email.render import RenderedEmail, Renderer
from gnlc_email.sender import SEND_ERRORS, SmtpPool, classify
from gnlc_email.store import Preferences
from gnlc_email.unsubscribe import Subscriber, Tokens, unsubscribe_url

log = get_logger(__name__)

CHANNEL = "email"
Event = DeadlineReminderEvent | AnnouncementPublishedEvent
ShouldSend = Callable[[Event, City], Awaitable[bool]]
FLUSH_SECONDS = 0.1
#: Per event, the cities (and which of their contacts) still to send to.
Plan = list[tuple[Event, list[tuple[City, list[str]]]]]


def recipient_key(city: City, address: str) -> str:
    return f"{city.id}:{address}"


@dataclass(frozen=True)
class Job:
    """One message to send: an event for one contact of one city."""

    event: Event
    city: City
    address: str
    rendered: RenderedEmail
    attempt: int = 1

    @property
    def key(self) -> str:
        return recipient_key(self.city, self.address)


@dataclass
class Services:
    """What the consumer needs from the database; ready once the service has started."""

    ledger: Ledger
    preferences: Preferences
    tokens: Tokens


class LedgerWriter:
    """Collects outcomes and writes them in small transactions, at most ``FLUSH_SECONDS``
    after they happen; ``close`` waits for every write and does the last one, so the batch
    is committed only once everything in it is in the ledger. A failed write fails the
    batch (it is then handled again, and the ledger skips what it has)."""

    def __init__(self, ledger: Ledger) -> None:
        self._ledger = ledger
        self._pending: list[Notice] = []
        self._timer: asyncio.TimerHandle | None = None
        self._writes: set[asyncio.Task[None]] = set()
        self._lock = asyncio.Lock()
        self.counts: dict[Status, int] = dict.fromkeys(Status, 0)

    def add(self, notice: Notice) -> None:
        self._pending.append(notice)
        self.counts[notice.status] += 1
        if self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(FLUSH_SECONDS, self._write_soon)

    def _write_soon(self) -> None:
        self._timer = None
        task = asyncio.create_task(self._write())
        self._writes.add(task)
        task.add_done_callback(self._writes.discard)

    async def _write(self) -> None:
        async with self._lock:
            rows, self._pending = self._pending, []
            await self._ledger.record_many(rows)

    async def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        await asyncio.gather(*self._writes)
        await self._write()


class EmailConsumer:
    def __init__(
        self,
        settings: Settings,
        broker: KafkaBroker,
        topics: Topics,
        directory: DirectorySource,
        pool: SmtpPool,
        *,
        retrier: Retrier,
        renderer: Renderer | None = None,
        should_send: ShouldSend = always,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._settings = settings
        self._broker = broker
        self._topics = topics
        self._directory = directory
        self._pool = pool
        self._retrier = retrier
        self._renderer = renderer or Renderer(domain=settings.message_id_domain)
        self._should_send = should_send
        self._clock = clock
        self._envelope_from = parseaddr(settings.mail_from)[1]
        self._services: Services | None = None
        self._ready = asyncio.Event()
        #: The events being handled, for the receipts the ledger's listeners publish.
        self.subjects = Subjects()

    def ready(self, services: Services) -> None:
        """Called once the database is migrated and the unsubscribe secret known."""
        self._services = services
        self._ready.set()

    async def _wait_ready(self) -> Services:
        await self._ready.wait()
        assert self._services is not None
        return self._services

    # -- the main line ---------------------------------------------------------------

    async def handle_batch(self, message: KafkaMessage) -> None:
        services = await self._wait_ready()
        raw = message.raw_message
        records: Sequence[ConsumerRecord[Any, Any]] = (
            raw if isinstance(raw, tuple | list) else (raw,)  # a list on the test broker
        )
        started = time.monotonic()
        events: list[Event] = []
        for record in records:
            event = decode(record.value or b"")
            if isinstance(event, str):  # why it is not an event
                await dead_letter(self._broker, self._topics.email_dead_letter, record, event)
            else:
                self.subjects.remember(event)
                events.append(event)
        writer = LedgerWriter(services.ledger)
        try:
            plan = await self._plan(events, services, writer)
            await self._send_all(self._jobs(plan), writer)
        finally:
            await writer.close()
        counts = {status.value: n for status, n in writer.counts.items() if n}
        if counts or len(events) != len(records):
            log.info(
                "batch handled",
                records=len(records),
                events=len(events),
                seconds=round(time.monotonic() - started, 3),
                **counts,
            )

    async def _plan(self, events: list[Event], services: Services, writer: LedgerWriter) -> Plan:
        """Per event, the cities and their contacts still to send to."""
        wanted: list[tuple[Event, list[City]]] = []
        seen_events: set[str] = set()
        for event in events:
            if event.id in seen_events:  # the same event twice in one batch: once is enough
                continue
            seen_events.add(event.id)
            cities = []
            for city in self._directory.directory.resolve(event.data.audience):
                if await self._should_send(event, city):
                    cities.append(city)
                else:
                    for address in city.contacts:
                        writer.add(
                            Notice(
                                event.id,
                                recipient_key(city, address),
                                Status.DROPPED,
                                0,
                                "not needed: should_send said no",
                            )
                        )
            wanted.append((event, cities))
        pairs = [
            (event.id, recipient_key(city, address))
            for event, cities in wanted
            for city in cities
            for address in city.contacts
        ]
        settled = await services.ledger.settled_many(pairs)
        optional = {
            address
            for event, cities in wanted
            if isinstance(event, AnnouncementPublishedEvent)
            for city in cities
            for address in city.contacts
        }
        opted_out = await services.preferences.unsubscribed(optional)
        plan: Plan = []
        for event, cities in wanted:
            todo = []
            for city in cities:
                addresses = []
                for address in city.contacts:
                    key = recipient_key(city, address)
                    if (event.id, key) in settled:
                        continue
                    if (
                        isinstance(event, AnnouncementPublishedEvent)
                        and address.lower() in opted_out
                    ):
                        writer.add(Notice(event.id, key, Status.UNSUBSCRIBED, 0, "unsubscribed"))
                        continue
                    addresses.append(address)
                if addresses:
                    todo.append((city, addresses))
            if todo:
                plan.append((event, todo))
        return plan

    def _render(self, event: Event, cities: list[City]) -> list[RenderedEmail | Exception]:
        """Each city's mail, or what went wrong with it: a template bug for one city must
        not sink the others."""
        try:
            return list(self._renderer.render_many(event, cities))
        except Exception:
            rendered: list[RenderedEmail | Exception] = []
            for city in cities:
                try:
                    rendered.append(self._renderer.render(event, city))
                except Exception as exc:
                    rendered.append(exc)
            return rendered

    def _jobs(self, plan: Plan) -> Iterator[Job | Awaitable[None]]:
        """Render lazily, one event at a time, so a batch never holds all its mail at
        once. A city whose rendering failed is parked (an awaitable the worker runs)."""
        for event, todo in plan:
            mails = self._render(event, [city for city, _ in todo])
            for (city, addresses), mail in zip(todo, mails, strict=True):
                if isinstance(mail, Exception):
                    yield self._park(event, city.id, f"render: {type(mail).__name__}: {mail}")
                    continue
                for address in addresses:
                    yield Job(event, city, address, mail)

    async def _send_all(self, jobs: Iterator[Job | Awaitable[None]], writer: LedgerWriter) -> None:
        async def worker() -> None:
            for job in jobs:  # shared iterator: each job goes to exactly one worker
                if isinstance(job, Job):
                    writer.add(await self._send(job))
                else:
                    await job

        async with asyncio.TaskGroup() as group:  # one failing worker stops the others
            for _ in range(self._pool.size):
                group.create_task(worker())

    # -- one notice -------------------------------------------------------------------

    def _compose(self, job: Job, tokens: Tokens) -> bytes:
        url = None
        if job.rendered.optional:
            token = tokens.sign(Subscriber(job.address, job.city.id, job.rendered.language))
            url = unsubscribe_url(self._settings.email_public_url, token)
        return compose(
            job.rendered,
            sender=self._settings.mail_from,
            recipient=Recipient(job.city.name, job.address, job.key),
            event_id=job.event.id,
            sent_at=self._clock(),
            message_id_domain=self._settings.message_id_domain,
            reply_to=self._settings.mail_reply_to,
            unsubscribe_url=url,
        )

    async def _send(self, job: Job) -> Notice:
        services = await self._wait_ready()
        raw = self._compose(job, services.tokens)
        try:
            await self._pool.send(self._envelope_from, job.address, raw)
        except SEND_ERRORS as exc:
            failure = classify(exc)
            source_topic = self._topics.for_event_type(job.event.type)
            if failure.transient:
                scheduled = await self._retrier.retry_or_give_up(
                    encode_event(job.event),
                    key=job.event.partitionkey.encode(),
                    recipient=job.key,
                    failed_attempt=job.attempt,
                    reason=failure.reason,
                    source_topic=source_topic,
                )
                status = Status.RETRYING if scheduled else Status.FAILED
                log.warning(
                    "email retrying" if scheduled else "email gave up",
                    event_id=job.event.id,
                    recipient=job.key,
                    attempt=job.attempt,
                    reason=failure.reason,
                )
                return Notice(job.event.id, job.key, status, job.attempt, failure.reason)
            await publish_dead_letter(
                self._broker,
                self._topics.email_dead_letter,
                value=encode_event(job.event),
                key=job.event.partitionkey.encode(),
                reason=f"permanent failure: {failure.reason}",
                source_topic=source_topic,
                recipient=job.key,
            )
            log.warning(
                "email refused", event_id=job.event.id, recipient=job.key, reason=failure.reason
            )
            return Notice(job.event.id, job.key, Status.FAILED, job.attempt, failure.reason)
        # no log line per message: at a thousand a second it would cost more than the send
        return Notice(
            job.event.id, job.key, Status.DELIVERED, job.attempt, language=job.rendered.language
        )

    async def deliver_one(self, value: bytes, recipient: str, attempt: int) -> None:
        """A retry that has come due (called by the retry tiers)."""
        services = await self._wait_ready()
        event = decode(value)
        if isinstance(event, str):
            await publish_dead_letter(
                self._broker,
                self._topics.email_dead_letter,
                value=value,
                key=None,
                reason="invalid event in a retry record",
                source_topic="retry",
                recipient=recipient,
            )
            return
        self.subjects.remember(event)
        city_id, _, address = recipient.partition(":")
        city = self._directory.directory.by_id.get(city_id)
        if await services.ledger.settled_many([(event.id, recipient)]):
            return
        outcome: Notice | None = None
        if city is None or not city.active or address not in city.contacts:
            outcome = Notice(
                event.id, recipient, Status.DROPPED, attempt - 1, "no longer in the directory"
            )
        elif not await self._should_send(event, city):
            outcome = Notice(
                event.id, recipient, Status.DROPPED, attempt - 1, "not needed: should_send said no"
            )
        elif isinstance(
            event, AnnouncementPublishedEvent
        ) and await services.preferences.unsubscribed([address]):
            outcome = Notice(event.id, recipient, Status.UNSUBSCRIBED, attempt - 1, "unsubscribed")
        if outcome is None:
            assert city is not None
            try:
                rendered = self._renderer.render(event, city)
            except Exception as exc:
                await self._park(event, city.id, f"render: {type(exc).__name__}: {exc}")
                return
            outcome = await self._send(Job(event, city, address, rendered, attempt))
        await services.ledger.record_many([outcome])

    async def _park(self, event: Event, recipient: str, reason: str) -> None:
        await publish_dead_letter(
            self._broker,
            self._topics.email_dead_letter,
            value=encode_event(event),
            key=event.partitionkey.encode(),
            reason=reason,
            source_topic=self._topics.for_event_type(event.type),
            recipient=recipient,
        )
        log.warning("email parked", event_id=event.id, recipient=recipient, reason=reason)
