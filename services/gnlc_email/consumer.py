"""The email consumer: a batch of events in, one message per contact of each city in each
event's audience, each notice settled exactly once in the ledger.

For a batch of records (at-least-once: the batch's offsets are committed only after this
returns, so a crash replays it), through the delivery loop (``gnlc_core.deliveries``):

1. parse each record; an invalid one goes to the dead-letter topic, the rest go on;
2. resolve each event's cities and ask ``should_send(event, city)`` (issue 3 plugs "this
   city has already submitted" in here); a "no" is recorded as dropped (``jobs``);
3. the loop asks the ledger, in one go, which (event, recipient) notices are settled
   already (redelivery, rebalance, restart): those are skipped; then (``send``)
   announcements to addresses that unsubscribed, or that turned the announcement's
   category off on the preference page (``choices.unwanted``), and bouncing contacts are
   recorded as dropped with the reason (``_screen``);
4. render each event once per language, then fill in each city (``Renderer.render_many``);
   a contact of a city whose mail does not render is ``failed`` and parked;
5. send over the SMTP pool with as many workers as connections; record each outcome in the
   ledger within a fraction of a second of the server's answer (so a crash right after
   leaves little to send twice), and before the batch is committed:
   delivered; a transient failure (4xx, connection, timeout) goes to a delayed retry topic
   and is recorded as retrying; a permanent one (5xx) is recorded as failed and parked on
   the dead-letter topic with its reason; so is a notice whose retries are exhausted.

The retry tiers' records due now go through the same loop (``deliver_due``); each is
checked again (directory, ``should_send``, choices, bounces) just before it is sent.

Digests (``gnlc_email.digest``): in step 3, a notice to a contact whose digest is on (its
own choice, or its city's) is held for the digest of its local day instead of sent
(``DigestStore.hold``: ``held`` in the ledger); ``send_due_digests``, run every few seconds
by the service, sends each contact's due digest, through the same checks as a retry, and
records every notice in it.

Resends (``gnlc_email.resend_api``): each batch's events are kept (``ResendStore.keep``); a
resend asked for comes from the retry tiers with the recipient ``resend:<id>:<recipient>``
and is sent although the notice is settled, once per request (``_resend``).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime
from email.utils import parseaddr
from itertools import chain
from typing import Any

from aiokafka import ConsumerRecord
from faststream.kafka import KafkaBroker
from faststream.kafka.annotations import KafkaMessage
from opentelemetry.context import Context

from gnlc_core import tracing
from gnlc_core.consumer import Read, always
from gnlc_core.consumer import decode_any as decode
from gnlc_core.deliveries import Batch, DeliveryLoop, Target
from gnlc_core.directory import City, DirectorySource
from gnlc_core.events import (
    AnnouncementPublishedEvent,
    DeadlineCancelledEvent,
    DeadlineUpdatedEvent,
    encode_event,
)
from gnlc_core.kafka import Topics
from gnlc_core.ledger import Ledger, Notice, Status
from gnlc_core.logs import get_logger
from gnlc_core.notices import Step, notice
from gnlc_core.retry import Due, Retrier
from gnlc_core.settings import Settings
from gnlc_email.bounce_store import BounceStore
from gnlc_email.bounces import drop_reason
from gnlc_email.calendar_book import CalendarBook, Receipt
from gnlc_email.choices import DEFAULT, not_sent, unwanted
from gnlc_email.digest import KEPT, Timing, digest_reference, may_wait
from gnlc_email.digest_store import DigestStore, Held, Taken
from gnlc_email.dkim_signer import DkimSigner
from gnlc_email.message import Recipient, compose
from gnlc_email.preference_page import preferences_url
from gnlc_email.render import Event as Event  # the events it handles
from gnlc_email.render import RenderedEmail, Renderer, render_digest
from gnlc_email.resend_store import Resend, ResendStore
from gnlc_email.sender import SEND_ERRORS, Failure, SmtpPool, classify
from gnlc_email.sendgrid import smtpapi_header
from gnlc_email.store import Preferences
from gnlc_email.unsubscribe import Subscriber, Tokens, unsubscribe_url
from gnlc_email.verp import MailKind, ReturnPaths

log = get_logger(__name__)

CHANNEL = "email"
ShouldSend = Callable[[Event, City], Awaitable[bool]]
FLUSH_SECONDS = 0.1
_FAILURE_LOG = {Status.RETRYING: "email retrying", Status.FAILED: "email failed"}
#: Per event, the cities (and which of their contacts) still to send to.
Plan = list[tuple[Event, list[tuple[City, list[str]]]]]


def encoded(event: Event) -> str:
    """An event as on Kafka, as text (a held notice's)."""
    return encode_event(event).decode()


def recipient_key(city: City, address: str) -> str:
    return f"{city.id}:{address}"


@dataclass(frozen=True)
class Pending:
    """A notice to send, not rendered yet: an event for one contact (``recipient``:
    ``city:address``) of a city (None: the city left the directory)."""

    event: Event
    recipient: str
    city: City | None
    address: str
    #: The event as on Kafka (its retry and its parking carry it).
    value: bytes
    attempt: int = 1
    #: Tracing on: the event's process span, and the first attempt's span for a retry.
    trace: Context | None = None
    first_attempt: str | None = None
    #: From the retry tiers: every check (directory, ``should_send``, choices, bounces)
    #: asked again when it goes.
    due: bool = False

    @property
    def key(self) -> str:
        return self.recipient


@dataclass(frozen=True)
class Job:
    """One message to send: an event for one contact of one city."""

    event: Event
    city: City
    address: str
    rendered: RenderedEmail
    attempt: int = 1
    #: Tracing on: the event's process span (the parent of the SMTP span), and the first
    #: attempt's span (``traceparent``) for a retry.
    trace: Context | None = None
    first_attempt: str | None = None
    #: A resend's: its own Message-ID, and its retries carry it.
    resend: Resend | None = None
    #: The attempts the ledger counted before this one's series (a resend's: the notice's).
    before: int = 0
    #: The event as on Kafka (None: encoded when needed).
    value: bytes | None = None

    @property
    def key(self) -> str:
        return recipient_key(self.city, self.address)

    @property
    def counted(self) -> int:
        """The ledger's attempts once this one is made."""
        return self.before + self.attempt

    @classmethod
    def of(cls, pending: Pending, city: City, rendered: RenderedEmail) -> Job:
        return cls(
            pending.event,
            city,
            pending.address,
            rendered,
            pending.attempt,
            pending.trace,
            pending.first_attempt,
            value=pending.value,
        )


#: What goes through the delivery loop (``gnlc_core.deliveries``).
Notified = Pending | Job


def target_of(job: Notified) -> Target:
    """What the delivery loop needs of a notice of this channel."""
    resend = job.resend if isinstance(job, Job) else None
    return Target(
        job.event,
        job.key,
        job.attempt,
        job.value if job.value is not None else encode_event(job.event),
        job.event.partitionkey.encode(),
        job.first_attempt,
        forced=resend is not None,
        retry_recipient=None if resend is None else resend.tier_recipient,
        before=job.before if isinstance(job, Job) else 0,
    )


@dataclass
class Services:
    """What the consumer needs from the database; ready once the service has started."""

    ledger: Ledger
    preferences: Preferences
    tokens: Tokens
    bounces: BounceStore
    calendar: CalendarBook
    #: Signs each announcement's preference page link (none: no link).
    preference_tokens: Tokens | None = None
    #: Where notices wait for their digests (none: no digests, every notice goes at once).
    digests: DigestStore | None = None
    #: The events kept for resends and the resends asked for (none: no resends).
    resends: ResendStore | None = None


def category_of(event: Event) -> str | None:
    """An announcement's category; None for required mail."""
    return event.data.category if isinstance(event, AnnouncementPublishedEvent) else None


def receipt_of(job: Job, notice: Notice) -> Receipt | None:
    """What a delivered mail with a calendar entry tells the calendar book."""
    mark = job.rendered.calendar
    if mark is None or notice.status is not Status.DELIVERED:
        return None
    return Receipt(mark.deadline_id, job.city.id, mark.sequence, mark.withdrawn)


class LedgerWriter:
    """Collects outcomes and writes them in small transactions, at most ``FLUSH_SECONDS``
    after they happen; ``close`` waits for every write and does the last one, so the batch
    is committed only once everything in it is in the ledger. A failed write fails the
    batch (it is then handled again, and the ledger skips what it has). Receipts of calendar
    entries are written before the notices, so a notice settled in the ledger never lacks
    its receipt."""

    def __init__(self, ledger: Ledger, calendar: CalendarBook) -> None:
        self._ledger = ledger
        self._calendar = calendar
        self._pending: list[Notice] = []
        self._receipts: list[Receipt] = []
        self.recorded: list[Receipt] = []  # every receipt written
        self._timer: asyncio.TimerHandle | None = None
        self._writes: set[asyncio.Task[None]] = set()
        self._lock = asyncio.Lock()
        self.counts: dict[Status, int] = dict.fromkeys(Status, 0)

    def add(self, notice: Notice, job: Notified | None = None) -> None:
        self._pending.append(notice)
        receipt = receipt_of(job, notice) if isinstance(job, Job) else None
        if receipt is not None:
            self._receipts.append(receipt)
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
            receipts, self._receipts = self._receipts, []
            await self._calendar.record(receipts)
            self.recorded += receipts
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
        return_paths: ReturnPaths | None = None,
        dkim: DkimSigner | None = None,
        sendgrid_args: bool = False,
        digest_timing: Timing | None = None,
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
        self._return_paths = return_paths  # VERP (None: the From address is the sender)
        self._dkim = dkim
        self._sendgrid_args = sendgrid_args  # the bounce token as a SendGrid unique arg
        self._timing = digest_timing or Timing()
        self._services: Services | None = None
        self._ready = asyncio.Event()
        self._loop: DeliveryLoop[Event, Notified, LedgerWriter] = DeliveryLoop.for_channel(
            self,
            name=CHANNEL,
            broker=broker,
            retrier=retrier,
            topics=topics,
            ledger=lambda: self._ledger,
        )
        #: The events being handled, for the receipts the ledger's listeners publish.
        self.subjects = self._loop.subjects

    @property
    def _ledger(self) -> Ledger:
        assert self._services is not None  # the entries wait until the service is ready
        return self._services.ledger

    def ready(self, services: Services) -> None:
        """Called once the database is migrated and the unsubscribe secret known."""
        self._services = services
        self._ready.set()

    async def _wait_ready(self) -> Services:
        await self._ready.wait()
        assert self._services is not None
        return self._services

    # -- the main line (through ``gnlc_core.deliveries``) -------------------------------

    async def handle_batch(self, message: KafkaMessage) -> None:
        """A batch from the domain topics (``gnlc_core.channel.Channel``)."""
        services = await self._wait_ready()
        raw = message.raw_message
        records: Sequence[ConsumerRecord[Any, Any]] = (
            raw if isinstance(raw, tuple | list) else (raw,)  # a list on the test broker
        )
        started = time.monotonic()
        batch = await self._loop.handle(records)
        writer = batch.writes
        await self._follow_up(writer.recorded, services)
        counts = {status.value: n for status, n in writer.counts.items() if n}
        if counts or batch.unreadable:
            log.info(
                "batch handled",
                records=len(records),
                events=len(records) - batch.unreadable,
                seconds=round(time.monotonic() - started, 3),
                **counts,
            )

    # the channel's side of the delivery loop (``gnlc_core.deliveries.Deliveries``)

    def decode(self, value: bytes) -> Event | str:
        return decode(value)

    def writes(self, *, first: bool) -> LedgerWriter:
        assert self._services is not None  # the entries wait until the service is ready
        return LedgerWriter(self._services.ledger, self._services.calendar)

    def target(self, job: Notified) -> Target:
        return target_of(job)

    async def jobs(self, batch: Batch[Notified, LedgerWriter], read: Read[Event]) -> list[Pending]:
        """An event's notices: a contact of each city of its audience that ``should_send``
        does not refuse (a refused city's contacts are dropped at once)."""
        event, record = read.event, read.record
        trace = batch.trace(
            event, topic=record.topic, partition=record.partition, offset=record.offset
        )
        return await self._event_jobs(batch, event, trace)

    async def _event_jobs(
        self,
        batch: Batch[Notified, LedgerWriter],
        event: Event,
        trace: Context | None = None,
        only: set[str] | None = None,
    ) -> list[Pending]:
        """``jobs`` (to the cities in ``only``, when given)."""
        services = await self._wait_ready()
        value = encode_event(event)
        pending: list[Pending] = []
        for city in await self._targets(event, services):
            if only is not None and city.id not in only:
                continue
            if await self._should_send(event, city):
                pending += (
                    Pending(event, recipient_key(city, address), city, address, value, trace=trace)
                    for address in city.contacts
                )
            else:
                for address in city.contacts:
                    await self._loop.settle(
                        batch,
                        Pending(event, recipient_key(city, address), city, address, value),
                        Step.DROPPED,
                        "not needed: should_send said no",
                    )
        return pending

    async def due_job(
        self, batch: Batch[Notified, LedgerWriter], due: Due, event: Event
    ) -> Pending | None:
        """A retry due now (a resend asked for is sent here: ``_resend``)."""
        services = await self._wait_ready()
        trace = batch.trace(event, topic=self._retry_destination, attempt=due.attempt)
        if (resend := Resend.parse(due.recipient)) is not None:
            await self._resend(services, event, resend, due.attempt, trace, due.first_attempt)
            return None
        city_id, _, address = due.recipient.partition(":")
        city = self._directory.directory.by_id.get(city_id)
        return Pending(
            event,
            due.recipient,
            city,
            address,
            due.value,
            due.attempt,
            trace,
            due.first_attempt,
            due=True,
        )

    async def send(self, batch: Batch[Notified, LedgerWriter], jobs: Sequence[Notified]) -> None:
        """The notices not settled yet: first attempts are screened together (bounces,
        choices, digests: ``_screen``), rendered one event at a time and sent over the SMTP
        pool with as many workers as connections; a retry is checked again and rendered by
        the worker that sends it. Each outcome is written within ``FLUSH_SECONDS``."""
        services = await self._wait_ready()
        if batch.first and services.resends is not None:
            await services.resends.keep([(e.id, encoded(e)) for e in batch.events])
        pending = [job for job in jobs if isinstance(job, Pending)]
        fresh = await self._screen(batch, [p for p in pending if not p.due], services)
        due = iter([p for p in pending if p.due])
        await self._send_all(batch, chain(self._rendered(batch, fresh), due))

    async def _deliver(self, events: list[Event], only: dict[str, set[str]]) -> LedgerWriter:
        """Send ``events`` again to the cities in ``only`` for each; every outcome is in the
        ledger when this returns."""
        batch = self._loop.batch(first=False)
        jobs: list[tuple[Notified, bool]] = []
        for event in events:
            jobs += ((p, True) for p in await self._event_jobs(batch, event, None, only[event.id]))
        await self._loop.run(batch, jobs)
        return batch.writes

    async def _follow_up(self, receipts: Sequence[Receipt], services: Services) -> None:
        """Cities that were just delivered an entry older than its deadline's latest change
        (a reminder that waited while the change was handled) get the change now; until no
        such city is left (each round only ever moves a city to a later revision)."""
        while receipts:
            behind = await services.calendar.behind(receipts)
            if not behind:
                return
            only: dict[str, set[str]] = {}
            events: dict[str, Event] = {}
            for raw, city_id in behind:
                event = decode(raw.encode())
                if isinstance(event, str):  # a kept change is always valid; be safe
                    log.warning("kept calendar change unreadable", reason=event)
                    continue
                events[event.id] = event
                self.subjects.remember(event)
                only.setdefault(event.id, set()).add(city_id)
            log.info("calendar entries brought up to date", cities=len(behind))
            receipts = (await self._deliver(list(events.values()), only)).recorded

    async def _screen(
        self, batch: Batch[Notified, LedgerWriter], pending: list[Pending], services: Services
    ) -> list[Pending]:
        """The first attempts that go now: a contact bouncing, unsubscribed from an
        announcement or that turned its category off is dropped with the reason; one whose
        digest is on is held for the digest of its local day (``DigestStore.hold``)."""
        if not pending:
            return []
        writer = batch.writes
        contacts = {(p.city.id, p.address) for p in pending if p.city is not None}
        optional = {p.address for p in pending if isinstance(p.event, AnnouncementPublishedEvent)}
        opted_out = await services.preferences.unsubscribed(optional)
        chosen = await services.preferences.choices(address for _city, address in contacts)
        bouncing = await services.bounces.bouncing_among(contacts)
        held: list[Held] = []
        now = self._clock()
        # each city's digest day for an event: worked out once, only when wanted
        digest_days: dict[tuple[str, str], tuple[date, datetime] | None] = {}
        fresh: list[Pending] = []
        for p in pending:
            city, event = p.city, p.event
            assert city is not None  # a first attempt's city is in the directory
            if reason := drop_reason((city.id, p.address.lower()) in bouncing):
                await self._loop.settle(batch, p, Step.DROPPED, reason)
                continue
            lower = p.address.lower()
            if reason := unwanted(
                category_of(event),
                unsubscribed=lower in opted_out,
                choice=chosen.get(lower, DEFAULT),
            ):
                await self._loop.settle(batch, p, not_sent(reason), reason)
                continue
            if services.digests and chosen.get(lower, DEFAULT).digest.wanted(city.digest):
                day_of = (event.id, city.id)
                if day_of not in digest_days:
                    digest_days[day_of] = self._digest_day(event, city, now)
                if (digest_day := digest_days[day_of]) is not None:
                    day, close = digest_day
                    held.append(
                        Held(event.id, p.key, city.id, lower, day, close, encoded(event), now)
                    )
                    continue
            fresh.append(p)
        if held:
            assert services.digests is not None
            await services.digests.hold(held)
            writer.counts[Status.HELD] += len(held)  # for the batch's log line
        return fresh

    def _digest_day(self, event: Event, city: City, now: datetime) -> tuple[date, datetime] | None:
        """(local day, its digest's close) of ``event`` for ``city`` handled ``now``, if
        it may wait for that digest."""
        day = self._timing.day_of(now, city.zone)
        close = self._timing.close(day, city.zone)
        return (day, close) if may_wait(event, now, close) else None

    async def _targets(self, event: Event, services: Services) -> list[City]:
        """The cities an event is for: its audience; for a change of a deadline's calendar
        entry, the cities that received an older revision of it (and, for one city's
        cancellation, that city of them)."""
        directory = self._directory.directory
        if not isinstance(event, DeadlineUpdatedEvent | DeadlineCancelledEvent):
            return list(directory.resolve(event.data.audience))
        # kept before the holders are read: a receipt written meanwhile sees it (``behind``)
        await services.calendar.remember(event)
        holders = await services.calendar.holders(event.data.deadline_id, event.data.sequence)
        only = None
        if isinstance(event, DeadlineCancelledEvent) and event.data.reason == "submitted":
            only = set(event.data.audience.cities)
        return [
            city
            for city_id in holders
            if (city := directory.by_id.get(city_id)) is not None
            and city.active
            and (only is None or city_id in only)
        ]

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

    def _rendered(
        self, batch: Batch[Notified, LedgerWriter], pending: list[Pending]
    ) -> Iterator[Job | Awaitable[Notice]]:
        """Render lazily, one event at a time, so a batch never holds all its mail at
        once. A contact of a city whose rendering failed is unsendable: parked, with its
        ``failed`` row (an awaitable the worker runs)."""
        plan: dict[str, dict[str, list[Pending]]] = {}  # event -> city -> its notices
        for p in pending:
            assert p.city is not None
            plan.setdefault(p.event.id, {}).setdefault(p.city.id, []).append(p)
        for by_city in plan.values():
            firsts = [notices[0] for notices in by_city.values()]
            event = firsts[0].event
            mails = self._render(event, [p.city for p in firsts if p.city is not None])
            for notices, mail in zip(by_city.values(), mails, strict=True):
                for p in notices:
                    assert p.city is not None
                    if isinstance(mail, Exception):
                        yield self._unsendable(batch, p, mail)
                    else:
                        yield Job.of(p, p.city, mail)

    def _unsendable(
        self, batch: Batch[Notified, LedgerWriter], pending: Notified, error: Exception
    ) -> Awaitable[Notice]:
        """A notice whose mail does not render: parked, and ``failed`` in the ledger."""
        reason = f"render: {type(error).__name__}: {error}"
        return self._loop.settle(batch, pending, Step.UNSENDABLE, reason)

    async def _send_all(
        self,
        batch: Batch[Notified, LedgerWriter],
        jobs: Iterator[Job | Pending | Awaitable[Notice]],
    ) -> None:
        writer = batch.writes

        async def worker() -> None:
            for item in jobs:  # shared iterator: each job goes to exactly one worker
                job = await self._due_one(batch, item) if isinstance(item, Pending) else item
                if isinstance(job, Job):
                    writer.add(await self._send(job), job)
                elif job is not None:
                    await job

        async with asyncio.TaskGroup() as group:  # one failing worker stops the others
            for _ in range(self._pool.size):
                group.create_task(worker())

    async def _due_one(self, batch: Batch[Notified, LedgerWriter], pending: Pending) -> Job | None:
        """A retry due now, asked again whether it goes (``_refusal``) and rendered; its
        message, or None (dropped, or unsendable: settled)."""
        services = await self._wait_ready()
        city = pending.city
        if refusal := await self._refusal(services, pending.event, city, pending.address):
            await self._loop.settle(batch, pending, refusal[0], refusal[1])
            return None
        assert city is not None
        try:
            rendered = self._renderer.render(pending.event, city)
        except Exception as exc:
            await self._unsendable(batch, pending, exc)
            return None
        return Job.of(pending, city, rendered)

    # -- one notice -------------------------------------------------------------------

    def _compose(
        self,
        job: Job,
        tokens: Tokens,
        preference_tokens: Tokens | None = None,
        *,
        message_of: str | None = None,
        kind: MailKind | None = None,
    ) -> tuple[str, bytes]:
        """(envelope sender, message): the sender is the notice's VERP address when bounces
        are on; the message is DKIM-signed when signing is on. ``message_of``: the id its
        Message-ID derives from (a digest's reference; default the event's); ``kind``: what
        a complaint about it is about (default: optional mail if it is)."""
        url = links = None
        subscriber = Subscriber(job.address, job.city.id, job.rendered.language)
        public = self._settings.email_public_url
        if job.rendered.optional:
            url = unsubscribe_url(public, tokens.sign(subscriber))
        if job.rendered.preference_link and preference_tokens is not None:
            links = preferences_url(public, preference_tokens.sign(subscriber))
        sender, extra = self._envelope_from, []
        if self._return_paths is not None:
            if kind is None:
                kind = MailKind.OPTIONAL if job.rendered.optional else MailKind.REQUIRED
            bounce_token = self._return_paths.token(job.event.id, job.key, kind)
            if bounce_token is not None:
                sender = self._return_paths.address(bounce_token)
                if self._sendgrid_args:
                    extra.append(smtpapi_header(bounce_token))
        raw = compose(
            job.rendered,
            sender=self._settings.mail_from,
            recipient=Recipient(job.city.name, job.address, job.key),
            event_id=message_of or job.event.id,
            sent_at=self._clock(),
            message_id_domain=self._settings.message_id_domain,
            reply_to=self._settings.mail_reply_to,
            unsubscribe_url=url,
            extra_headers=extra,
            preferences_url=links,
            message_id_of=None if job.resend is None else f"{job.event.id}/resend/{job.resend.id}",
        )
        return sender, (self._dkim.sign(raw) if self._dkim is not None else raw)

    async def _transmit(
        self, sender: str, address: str, raw: bytes, trace: tracing.Attempt | None = None
    ) -> Failure | None:
        """One SMTP transaction: None when the server took the message, else why not."""
        try:
            await self._pool.send(sender, address, raw, trace=trace)
        except SEND_ERRORS as exc:
            return classify(exc)
        return None

    async def _send(self, job: Job) -> Notice:
        services = await self._wait_ready()
        sender, raw = self._compose(job, services.tokens, services.preference_tokens)
        trace = None if job.trace is None else self._attempt(job)
        failure = await self._transmit(sender, job.address, raw, trace)
        if failure is not None:
            return await self._failed(
                job, failure, trace.first if trace is not None else job.first_attempt
            )
        # no log line per message: at a thousand a second it would cost more than the send
        return notice(
            job.event.id,
            job.key,
            Step.DELIVERED,
            job.counted,
            language=job.rendered.language,
            event_time=job.event.time,
        )

    async def _failed(self, job: Job, failure: Failure, first_attempt: str | None) -> Notice:
        """The outcome of a failed send of ``job`` (the delivery loop's ``failed``: a
        transient failure goes to the retry tier, ``retrying``, or ``failed`` and parked
        once they are exhausted; a permanent one is parked, ``failed``)."""
        row = await self._loop.failed(
            job, failure.reason, permanent=not failure.transient, first_attempt=first_attempt
        )
        log.warning(
            _FAILURE_LOG[row.status],
            event_id=job.event.id,
            recipient=job.key,
            attempt=job.attempt,
            reason=failure.reason,
        )
        return row

    @staticmethod
    def _attempt(job: Job) -> tracing.Attempt | None:
        """Where the SMTP span of ``job`` goes (the city, not the address: no personal
        data in traces)."""
        return tracing.attempt(
            job.trace,
            job.first_attempt,
            {
                "cloudevents.event_id": job.event.id,
                "gnlc.city_id": job.city.id,
                "gnlc.attempt": job.attempt,
            },
        )

    async def deliver_due(self, due: Sequence[Due]) -> None:
        """Records of the retry tiers, due now (``gnlc_core.channel.Channel``): through
        the delivery loop, as many sent at a time as the SMTP pool has connections."""
        services = await self._wait_ready()
        batch = await self._loop.deliver_due(due)
        await self._follow_up(batch.writes.recorded, services)

    async def deliver_one(
        self, value: bytes, recipient: str, attempt: int, first_attempt: str | None = None
    ) -> None:
        """One retry that has come due; ``first_attempt``: the first attempt's span, which
        this attempt's span links to."""
        await self.deliver_due([Due(value, recipient, attempt, first_attempt)])

    @property
    def _retry_destination(self) -> str:
        return f"{self._topics.prefix}{CHANNEL}.retry"

    async def _resend(
        self,
        services: Services,
        event: Event,
        resend: Resend,
        attempt: int,
        trace: Context | None,
        first_attempt: str | None,
    ) -> None:
        """A resend asked for (``resend_refusal``): sent even though the notice is settled,
        once (its row is marked done with the outcome), unless the contact's choices or a
        bounce now refuse it (then nothing is sent and the ledger keeps what it has)."""
        store = services.resends
        if store is None or (asked := await store.pending(resend)) is None:
            return  # done already (a record read again)
        resend = asked
        city_id, _, address = resend.recipient.partition(":")
        city = self._directory.directory.by_id.get(city_id)
        if refusal := await self.resend_refusal(services, event, city, address):
            log.info("resend refused", event_id=event.id, resend=resend.id, why=refusal)
            await store.finish(resend, None)
            return
        assert city is not None
        try:
            rendered = self._renderer.render(event, city)
        except Exception as exc:  # parked, and the notice failed (with its receipt)
            reason = f"render: {type(exc).__name__}: {exc}"
            pending = Pending(event, resend.recipient, city, address, encode_event(event))
            await store.finish(resend, await self._loop.outcome(pending, Step.UNSENDABLE, reason))
            return
        job = Job(
            event, city, address, rendered, attempt, trace, first_attempt, resend, resend.before
        )
        outcome = await self._send(job)
        if (receipt := receipt_of(job, outcome)) is not None:
            await services.calendar.record([receipt])
        if outcome.status is Status.RETRYING:  # its retry carries the same request
            await services.ledger.record_many([outcome])
        else:
            await store.finish(resend, outcome)
        log.info("email resent", event_id=event.id, resend=resend.id, state=outcome.status)

    async def refuse_resend(self, event: Event, recipient: str) -> str | None:
        """Why a resend of ``event`` to ``recipient`` (``city:address``) is refused now."""
        services = await self._wait_ready()
        city_id, _, address = recipient.partition(":")
        city = self._directory.directory.by_id.get(city_id)
        return await self.resend_refusal(services, event, city, address)

    async def enqueue_resend(self, event: Event, value: bytes, resend: Resend) -> None:
        """Put ``resend`` on the retry tiers, due now (``value``: the event as on Kafka)."""
        await self._retrier.schedule(
            value,
            key=event.partitionkey.encode(),
            recipient=resend.tier_recipient,
            attempt=1,
            delay=0.0,
            reason="resend requested",
        )

    async def resend_refusal(
        self, services: Services, event: Event, city: City | None, address: str
    ) -> str | None:
        """Why a resend of ``event`` to this contact is refused now, or None: it left the
        directory, or its choices (unsubscribed, the category off: announcements only) or a
        bounce say no. ``should_send`` is not asked: an operator asked for it."""
        if city is None or not city.active or address not in city.contacts:
            return "no longer in the directory"
        return await self._contact_refusal(services, event, city, address)

    async def _contact_refusal(
        self, services: Services, event: Event, city: City, address: str
    ) -> str | None:
        """Why this contact must not get ``event`` now (its latest choices, a bounce)."""
        if reason := await self._unwanted(services, event, address):
            return reason
        return drop_reason(bool(await services.bounces.bouncing_among([(city.id, address)])))

    async def _refusal(
        self, services: Services, event: Event, city: City | None, address: str
    ) -> tuple[Step, str] | None:
        """Why a notice due now (a retry, a digest's) is not sent after all, with its state;
        None if it goes: the directory, ``should_send``, the contact's latest choices and
        bounces are asked again."""
        if city is None or not city.active or address not in city.contacts:
            return Step.DROPPED, "no longer in the directory"
        if not await self._should_send(event, city):
            return Step.DROPPED, "not needed: should_send said no"
        if reason := await self._contact_refusal(services, event, city, address):
            return not_sent(reason), reason
        return None

    @staticmethod
    async def _unwanted(services: Services, event: Event, address: str) -> str | None:
        """Why this contact does not want ``event`` now (its latest choices), or None."""
        category = category_of(event)
        if category is None:
            return None
        choice, subscribed = await services.preferences.of(address)
        return unwanted(category, unsubscribed=not subscribed, choice=choice)

    # -- digests ------------------------------------------------------------------------

    async def send_due_digests(self) -> int:
        """Claim the digests due now, send each (a kill at any point loses nothing: see
        ``digest_store``), forget old ones; returns how many were sent."""
        services = await self._wait_ready()
        store = services.digests
        if store is None:
            return 0
        now = self._clock()
        await store.claim_due(now)
        sent = 0
        # a few at a time, each taken just before it goes, so none outlives its lease
        while taken := await store.take(self._clock(), limit=4 * self._pool.size):
            async with asyncio.TaskGroup() as group:
                for digest in taken:
                    group.create_task(self._send_digest(digest, services))
            sent += len(taken)
        await store.purge(now - KEPT)
        return sent

    async def _send_digest(self, digest: Taken, services: Services) -> None:
        """One contact's digest: each notice checked again (settled meanwhile, the
        directory, ``should_send``, the latest choices, bounces); those still wanted sent in
        one mail (a single one as its own mail), every outcome recorded with the digest."""
        assert services.digests is not None
        city = self._directory.directory.by_id.get(digest.city_id)
        settled = await services.ledger.settled_many(
            (held.event_id, held.recipient) for held in digest.notices
        )
        outcomes: list[Notice] = []
        jobs: list[Job] = []
        for held in digest.notices:
            if (held.event_id, held.recipient) in settled:
                continue
            event = decode(held.event.encode())
            if isinstance(event, str):  # it was valid when held; be safe: parked and failed
                reason = f"held: {event}"
                await self._retrier.park(
                    held.event.encode(),
                    key=None,
                    recipient=held.recipient,
                    reason=reason,
                    source_topic="digest",
                )
                outcomes.append(notice(held.event_id, held.recipient, Step.UNSENDABLE, 1, reason))
                continue
            self.subjects.remember(event)
            address = held.recipient.partition(":")[2]
            if refusal := await self._refusal(services, event, city, address):
                outcomes.append(notice(event.id, held.recipient, refusal[0], 1, refusal[1]))
                continue
            assert city is not None
            try:
                rendered = self._renderer.render(event, city)
            except Exception as exc:  # parked, and failed in the ledger with the digest
                reason = f"render: {type(exc).__name__}: {exc}"
                pending = Pending(event, held.recipient, city, address, encode_event(event))
                outcomes.append(await self._loop.outcome(pending, Step.UNSENDABLE, reason))
                continue
            jobs.append(Job(event, city, address, rendered))
        if len(jobs) == 1:  # a day of one notice: its own mail
            sent = [await self._send(jobs[0])]
        else:
            sent = await self._send_listed(digest, jobs, services) if jobs else []
        outcomes += sent
        receipts = [
            receipt
            for job, notice in zip(jobs, sent, strict=True)
            if (receipt := receipt_of(job, notice)) is not None
        ]
        await services.calendar.record(receipts)  # before the notices, as for every mail
        await services.digests.finish(digest.id, outcomes, self._clock())
        log.info("digest handled", digest=digest_reference(digest.id), notices=len(outcomes))
        await self._follow_up(receipts, services)

    async def _send_listed(
        self, digest: Taken, jobs: list[Job], services: Services
    ) -> list[Notice]:
        """Send ``jobs`` as one digest mail: each notice delivered, or each handled as its
        own failed send (a transient failure puts each on the retry tier, where it goes on
        alone; a permanent one parks each)."""
        first = jobs[0]
        reference = digest_reference(digest.id)
        mail = render_digest(
            self._renderer,
            first.city,
            [(job.event, job.rendered) for job in jobs],
            day=digest.day,
            part=digest.part,
            reference=reference,
        )
        optional = all(job.rendered.optional for job in jobs)
        sender, raw = self._compose(
            replace(first, rendered=mail),
            services.tokens,
            services.preference_tokens,
            message_of=reference,
            kind=MailKind.OPTIONAL if optional else MailKind.REQUIRED,
        )
        failure = await self._transmit(sender, first.address, raw)
        if failure is None:
            return [
                notice(
                    job.event.id,
                    job.key,
                    Step.DELIVERED,
                    job.counted,
                    language=mail.language,
                    event_time=job.event.time,
                )
                for job in jobs
            ]
        return [await self._failed(job, failure, None) for job in jobs]
