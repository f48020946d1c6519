"""The one delivery loop of every channel: consume -> decode or dead-letter -> recipients
-> ledger (skip what is settled) -> send -> outcome -> retry or park.

A channel gives a ``Deliveries`` (a small protocol, below): whom an event goes to
(``jobs``; ``due_job`` for a record of its retry tiers), what the loop needs to know of one
job (``target``), how it sends a batch's jobs (``send``: its engine, with its own
concurrency, lanes, holds ...), and where a batch's notices are written (``writes``: one
batch, one place; a channel may add its own rows to it, in the same transaction).

``DeliveryLoop`` does the rest, in this order, for a batch of the domain topics
(``handle``) and for the records its retry tiers hand back when due (``deliver_due``):

1. decode each record; one that is not an event is parked on the channel's dead-letter
   topic with the reason (``gnlc_core.consumer.read_batch``);
2. ask the channel for the jobs of each event (an event twice in a batch is handled once;
   one job per notice, whatever is asked);
3. one ``Ledger.settled_many`` query for the jobs that may be settled (those whose record
   the fence says may have been handled before, on the domain path; all but a resend, on
   the retry path): the settled ones are skipped;
4. ``send`` the rest; the channel tells each outcome as a ``gnlc_core.notices.Step``
   (``outcome``, or ``failed`` after a failed request: ``notices.after_failure``). The loop
   turns it into the notice's state and ``attempts`` (``notices.next_state``), and
   carries out what follows: the next attempt on a retry tier, or the notice parked on
   the dead-letter topic (``Retrier.follow``, ``Retrier.give_up``, ``Retrier.park``);
5. the batch's writes are closed (every outcome in the ledger) before the batch is
   committed.

Every parked notice goes through ``outcome``: it parks the notice *and* gives it its
``failed`` row (and so its receipt); no channel parks a notice any other way.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, NamedTuple, Protocol, TypeVar

from aiokafka import ConsumerRecord
from faststream.kafka import KafkaBroker
from opentelemetry.context import Context

from gnlc_core import tracing
from gnlc_core.consumer import Read, read_batch
from gnlc_core.events import AnyEvent
from gnlc_core.kafka import Topics, publish_dead_letter
from gnlc_core.ledger import Ledger, Notice
from gnlc_core.logs import get_logger
from gnlc_core.notices import AfterFailure, Step, after_failure, next_state
from gnlc_core.receipts import Subjects
from gnlc_core.retry import Due, Retrier

log = get_logger(__name__)

E = TypeVar("E", bound=AnyEvent)
J = TypeVar("J")
W = TypeVar("W", bound="Writes")
#: Steps after a request that failed: their next attempt is scheduled, or they are parked.
FOLLOWED = frozenset({Step.RETRY, Step.GIVE_UP, Step.REFUSED})
#: Steps that park a notice without a request of its own.
PARKED = frozenset({Step.UNSENDABLE, Step.EXPIRED})
UNREADABLE_DUE = "invalid event in a retry record"


class Target(NamedTuple):
    """What the loop knows of one job: its notice (event, ``recipient`` in the ledger), its
    attempt, and what its retry or its parking carries."""

    event: AnyEvent
    recipient: str
    attempt: int
    #: The event as on Kafka (the body a retry sends again; what is parked).
    value: bytes
    key: bytes | None
    #: The attempt's span (``traceparent``) its retry's span links to.
    first_attempt: str | None = None
    #: Sent even though the notice may be settled (a resend or replay asked for): never
    #: looked up in the ledger.
    forced: bool = False
    #: The recipient its retry carries, when not ``recipient`` (a resend's own).
    retry_recipient: str | None = None
    #: The requests the ledger counted before this job's series (a resend's: the notice's).
    before: int = 0

    @property
    def notice(self) -> tuple[str, str]:
        return self.event.id, self.recipient


class Writes(Protocol):
    """Where a batch's notices go. ``close`` returns once every one is written (the batch
    is committed after it). A channel that writes more rows per batch (a delivery log,
    endpoint state) adds them to its ``Writes`` and writes them with the notices, in one
    transaction."""

    def add(self, notice: Notice, job: Any) -> None: ...

    async def close(self) -> None: ...


@dataclass(eq=False)
class Batch(Generic[J, W]):
    """One batch going through the loop: from the domain topics (``first``) or the retry
    tiers; its ``writes``; each event's CONSUMER span (``spans``, tracing on)."""

    writes: W
    spans: tracing.Processing | None
    first: bool
    #: The events read (in order, each once).
    events: list[AnyEvent] = field(default_factory=list)
    #: The records read that were not events (parked).
    unreadable: int = 0

    def trace(self, event: AnyEvent, **where: Any) -> Context | None:
        """``event``'s CONSUMER span (``tracing.Processing.start``): the context its
        CLIENT spans are children of; None when tracing is off or the batch has none."""
        return None if self.spans is None else self.spans.start(event, **where)


class Deliveries(Protocol[E, J, W]):
    """What a channel gives the loop (see the module's docstring)."""

    def decode(self, value: bytes) -> E | str:
        """The event in a record's value, or why it is not one."""
        ...

    def writes(self, *, first: bool) -> W:
        """A new batch's writes (``first``: from the domain topics)."""
        ...

    def target(self, job: J) -> Target:
        """What the loop needs of ``job``."""
        ...

    async def jobs(self, batch: Batch[J, W], read: Read[E]) -> Sequence[J]:
        """The jobs of an event read from the domain topics: its recipients. Recipients
        not sent to on purpose may be settled at once (``DeliveryLoop.settle``)."""
        ...

    async def due_job(self, batch: Batch[J, W], due: Due, event: E) -> J | None:
        """The job of a record of the retry tiers (None: nothing to send; the channel
        handled it)."""
        ...

    async def send(self, batch: Batch[J, W], jobs: Sequence[J]) -> None:
        """Send ``jobs`` (none settled), each outcome told to the loop (``outcome``,
        ``failed``, ``settle``) and added to the batch's writes."""
        ...


class DeliveryLoop(Generic[E, J, W]):
    """The one loop (see the module's docstring)."""

    def __init__(
        self,
        channel: Deliveries[E, J, W],
        *,
        name: str,
        broker: KafkaBroker,
        retrier: Retrier,
        ledger: Callable[[], Ledger],
        dead_letter_topic: str,
        subjects: Subjects,
        source_topic: Callable[[str], str],
        group: str,
    ) -> None:
        self._channel = channel
        self._name = name
        self._broker = broker
        self._retrier = retrier
        self._ledger = ledger
        self._dead_letter_topic = dead_letter_topic
        self._subjects = subjects
        self._source_topic = source_topic  # an event type's domain topic
        self._group = group  # the consumer group's name (the spans')

    @classmethod
    def for_channel(
        cls,
        channel: Deliveries[E, J, W],
        *,
        name: str,
        broker: KafkaBroker,
        retrier: Retrier,
        topics: Topics,
        ledger: Callable[[], Ledger],
    ) -> DeliveryLoop[E, J, W]:
        """The loop of the channel registered as ``name`` (``gnlc_core.kafka.CHANNELS``):
        its dead-letter topic, consumer group and domain topics follow from ``topics``; it
        keeps the events being handled in ``subjects`` (for the receipts)."""
        return cls(
            channel,
            name=name,
            broker=broker,
            retrier=retrier,
            ledger=ledger,
            dead_letter_topic=topics.dead_letter(name),
            subjects=Subjects(),
            source_topic=topics.for_event_type,
            group=topics.group(name),
        )

    @property
    def subjects(self) -> Subjects:
        """The events being handled, for the receipts the ledger's listeners publish."""
        return self._subjects

    # the entries ----------------------------------------------------------------------

    def batch(self, spans: tracing.Processing | None = None, *, first: bool) -> Batch[J, W]:
        return Batch(self._channel.writes(first=first), spans, first)

    async def handle(
        self,
        records: Sequence[ConsumerRecord[Any, Any]],
        *,
        maybe_handled: Sequence[bool] | None = None,
        close: bool = True,
    ) -> Batch[J, W]:
        """A batch of the domain topics. ``maybe_handled``: per record, whether it may
        have been handled before (the fence's answer; default: every one), so only those
        records' notices are looked up in the ledger. ``close=False``: the batch's writes
        are left for the caller to close (``batch.writes.close()``) once it was sent."""
        with tracing.Processing(self._group) as spans:
            batch = self.batch(spans, first=True)
            read = await read_batch(
                records,
                broker=self._broker,
                dead_letter_topic=self._dead_letter_topic,
                subjects=self._subjects,
                decode=self._channel.decode,
            )
            batch.unreadable = len(records) - len(read)
            jobs: dict[tuple[str, str], tuple[J, bool]] = {}
            seen: set[str] = set()
            for item in read:
                if item.event.id in seen:  # the same event twice in one batch: once is enough
                    continue
                seen.add(item.event.id)
                batch.events.append(item.event)
                check = maybe_handled is None or maybe_handled[item.index]
                for job in await self._channel.jobs(batch, item):
                    self._add(jobs, job, check)
            await self.run(batch, jobs.values(), close=close)
        return batch

    async def deliver_due(self, due: Sequence[Due]) -> Batch[J, W]:
        """Records of the retry tiers, due now: like a batch, one ledger query for them
        all; a record that is not an event is parked."""
        with tracing.Processing(f"{self._group}-retry") as spans:
            batch = self.batch(spans, first=False)
            jobs: dict[tuple[str, str], tuple[J, bool]] = {}
            for record in due:
                event = self._channel.decode(record.value)
                if isinstance(event, str):  # cannot happen (we wrote it); be safe
                    batch.unreadable += 1
                    await publish_dead_letter(
                        self._broker,
                        self._dead_letter_topic,
                        value=record.value,
                        key=None,
                        reason=UNREADABLE_DUE,
                        source_topic="retry",
                        recipient=record.recipient,
                    )
                    log.error("unreadable retry record parked", recipient=record.recipient)
                    continue
                self._subjects.remember(event)
                batch.events.append(event)
                job = await self._channel.due_job(batch, record, event)
                if job is not None:
                    self._add(jobs, job, True)
            await self.run(batch, jobs.values())
        return batch

    def _add(self, jobs: dict[tuple[str, str], tuple[J, bool]], job: J, check: bool) -> None:
        """One job per notice (the first asked); looked up unless any asking is forced."""
        target = self._channel.target(job)
        check = check and not target.forced
        if (known := jobs.get(target.notice)) is not None:
            jobs[target.notice] = (known[0], known[1] and check)
        else:
            jobs[target.notice] = (job, check)

    async def run(
        self, batch: Batch[J, W], jobs: Iterable[tuple[J, bool]], *, close: bool = True
    ) -> None:
        """Skip the settled jobs of ``jobs`` ((job, look it up) pairs), send the rest,
        close the batch's writes (also when sending failed: what was settled is kept).
        ``close=False``: the caller closes them once sending went well (write-behind)."""
        listed: list[tuple[J, bool]] = list(jobs)
        try:
            targets = [(job, self._channel.target(job)) for job, _ in listed]
            lookup = [t.notice for (_, check), (_, t) in zip(listed, targets, strict=True) if check]
            settled = await self._ledger().settled_many(lookup) if lookup else set()
            to_send = [job for job, target in targets if target.notice not in settled]
            await self._channel.send(batch, to_send)
        except BaseException:
            await batch.writes.close()
            raise
        if close:
            await batch.writes.close()

    # outcomes -------------------------------------------------------------------------

    async def outcome(
        self,
        job: J,
        step: Step,
        error: str | None = None,
        *,
        reason: str | None = None,
        delay: float = 0.0,
        scheduled: bool = False,
        language: str | None = None,
        first_attempt: str | None = None,
    ) -> Notice:
        """``step`` happened to ``job``: its notice (state and ``attempts`` by
        ``notices.next_state``), and what follows carried out: after a failed request the
        next attempt after ``delay`` (RETRY; unless the channel ``scheduled`` it already)
        or the notice parked (GIVE_UP, REFUSED); a notice that cannot be sent (UNSENDABLE)
        or whose last attempt expired (EXPIRED) parked. ``reason``: what the retry or the
        parking says (default ``error``). Not written: ``settle`` adds it to the writes."""
        target = self._channel.target(job)
        row = self._notice(target, step, error, language)
        attempts = row.attempts
        why = reason or error or step.value
        source = self._source_topic(target.event.type)
        if step in FOLLOWED and not scheduled:
            recipient = target.recipient
            if step is Step.RETRY and target.retry_recipient is not None:
                recipient = target.retry_recipient
            await self._retrier.follow(
                AfterFailure(step, delay),
                target.value,
                key=target.key,
                recipient=recipient,
                attempt=target.attempt,
                reason=why,
                source_topic=source,
                first_attempt=first_attempt or target.first_attempt,
            )
        elif step is Step.EXPIRED:
            await self._retrier.give_up(
                target.value,
                key=target.key,
                recipient=target.recipient,
                attempts=attempts,
                reason=why,
                source_topic=source,
            )
        elif step is Step.UNSENDABLE:
            await self._retrier.park(
                target.value,
                key=target.key,
                recipient=target.recipient,
                reason=why,
                source_topic=source,
            )
            log.warning("notice parked", channel=self._name, event_id=target.event.id, reason=why)
        return row

    def notice(self, job: J, step: Step, error: str | None = None) -> Notice:
        """The notice of ``step`` at ``job``'s attempt, no more (for a step that is
        carried out by the channel: held, deferred)."""
        return self._notice(self._channel.target(job), step, error)

    @staticmethod
    def _notice(
        target: Target, step: Step, error: str | None, language: str | None = None
    ) -> Notice:
        status, attempts = next_state(step, target.before + target.attempt)
        return Notice(
            target.event.id,
            target.recipient,
            status,
            attempts,
            error,
            language=language,
            event_time=target.event.time,
        )

    async def failed(
        self,
        job: J,
        error: str,
        *,
        permanent: bool,
        retry_after: float | None = None,
        reason: str | None = None,
        first_attempt: str | None = None,
    ) -> Notice:
        """A request of ``job`` failed: what follows (``notices.after_failure`` on the
        retry schedule) carried out, its notice returned. A refusal for good is parked
        with ``permanent failure: <error>`` (unless ``reason`` says otherwise)."""
        target = self._channel.target(job)
        after = after_failure(
            target.attempt,
            self._retrier.retry_schedule,
            permanent=permanent,
            retry_after=retry_after,
        )
        if after.step is Step.REFUSED and reason is None:
            reason = f"permanent failure: {error}"
        return await self.outcome(
            job,
            after.step,
            error,
            reason=reason,
            delay=after.delay,
            first_attempt=first_attempt,
        )

    async def settle(
        self, batch: Batch[J, W], job: J, step: Step, error: str | None = None, **how: Any
    ) -> Notice:
        """``outcome``, added to ``batch``'s writes."""
        notice = await self.outcome(job, step, error, **how)
        batch.writes.add(notice, job)
        return notice
