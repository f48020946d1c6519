"""The webhook consumer: events in by batches, one signed POST per subscribed endpoint.

How a batch goes (the delivery loop, ``gnlc_core.deliveries``): every record is parsed (a
poison record goes to the dead-letter topic), each event fans out to the endpoints that
subscribe to it (``jobs``), the ledger drops the deliveries already settled (a redelivery
after a crash; looked up only for the records the fence says may have been handled), and
the rest run concurrently, each in its endpoint's lane (``send``); each outcome becomes the
notice's state, and its retry or parking, through the loop. The batch is committed once
every delivery in it is *settled*: delivered, failed for good, dropped, or scheduled on a
retry tier, which is a Kafka write.

A slow endpoint never holds the batch for long: a request still in flight after
``webhook_handoff_seconds`` (at once, for an endpoint whose last request was that slow) is handed
off: a retry for the next attempt is scheduled for after its timeout, and the request goes
on in the background; if it succeeds, the ledger says so and the scheduled retry finds the
delivery settled. While an endpoint hangs (its lane slow, and full or paused), its new
deliveries are *held*: a ledger row each, no attempt used, no Kafka record; every
``webhook_hold_check_seconds`` the held deliveries of endpoints that answer again (or are
no longer active, to be dropped) are scheduled again at the attempt they were held at.
Over an endpoint's rate limit, a delivery is sent later at the same attempt ("endpoint
busy"). The log rows, ledger rows, payloads and endpoint changes of a
batch are written in one transaction before the commit.

An endpoint that is ``ordered`` takes one partition key's deliveries one at a time: they
are numbered in the database before any is sent, one behind an earlier delivery of its key
that is not settled is held, and it is released once that one is (``_in_order``).

First attempts go before retries: a lane's free slot goes to a delivery from the domain
topics before queued retries, and a domain batch's writes before the retries' (the retry
tiers also keep a smaller share while the domain consumer has work: ``gnlc_core.priority``).

Every decision is taken by ``gnlc_webhook.policy`` (pure functions, table-driven tests);
this module carries them out. The ledger's ``attempts`` is the number of requests actually
made (``gnlc_core.notices``: the notices' one state machine, ``policy.step_of``).

``should_send(event, endpoint)`` is awaited before each delivery (default: always True);
False drops the delivery (e.g. the event no longer applies).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import Enum
from typing import Any, NamedTuple, cast

import httpx
from aiokafka import AIOKafkaConsumer, ConsumerRecord
from faststream.kafka import KafkaBroker
from faststream.kafka.annotations import KafkaMessage
from opentelemetry.context import Context
from opentelemetry.trace import Span

from gnlc_core import tracing
from gnlc_core.consumer import Read, always, decode
from gnlc_core.deliveries import Batch, DeliveryLoop, Target
from gnlc_core.events import encode_event
from gnlc_core.fence import Fence
from gnlc_core.kafka import Topics
from gnlc_core.ledger import TERMINAL, Ledger, Notice, Status
from gnlc_core.logs import get_logger
from gnlc_core.notices import Step
from gnlc_core.priority import PriorityLock
from gnlc_core.retry import Due, Retrier, RetrySchedule
from gnlc_core.write_behind import Write
from gnlc_webhook import policy
from gnlc_webhook.lanes import Lane
from gnlc_webhook.operations import endpoint_disabled
from gnlc_webhook.outcome import Outcome, Verdict, classify, transport_failure
from gnlc_webhook.policy import Action, Decision, step_of
from gnlc_webhook.policy import Limits as Limits
from gnlc_webhook.registry import Event, Registry
from gnlc_webhook.signing import signed_headers
from gnlc_webhook.store import CHANNEL, Attempt, EndpointRow, State, Store, StoredMessage
from gnlc_webhook.transport import Answer, Poster

log = get_logger(__name__)

RESEND_PREFIX = "resend:"  # recipient prefix of a resend or replay: goes out even if settled
ShouldSend = Callable[[Event, EndpointRow], Awaitable[bool]]
RELEASED = "released: the endpoint answers again"


class Phase(Enum):
    WAITING = "waiting"
    SENDING = "sending"
    SETTLING = "settling"


class Release:
    """How many deliveries of a batch still hold it; ``all`` is set when none does."""

    def __init__(self) -> None:
        self.holding = 0
        self.all = asyncio.Event()
        self.all.set()

    def hold(self) -> None:
        self.holding += 1
        self.all.clear()

    def let_go(self) -> None:
        self.holding -= 1
        if self.holding == 0:
            self.all.set()


@dataclass(eq=False, slots=True)
class Job:
    """One delivery: an event to an endpoint, at some attempt. It holds its batch until it
    is settled, handed off or spilled (``release``)."""

    event: Event
    body: bytes
    key: bytes | None
    endpoint_id: str
    attempt: int
    phase: Phase = Phase.WAITING
    handed_off: bool = False
    released: bool = False
    deadline: float = 0.0
    batch: Release | None = None
    #: Tracing on: the event's process span (the parent of the POST's span), and the first
    #: attempt's span (``traceparent``), which a retry's span links to.
    trace: Context | None = None
    first_attempt: str | None = None
    #: From the domain topics (not the retry tiers): goes first for a slot in its lane.
    fresh: bool = False
    #: A resend or replay asked for: sent even though the notice may be settled.
    resend: bool = False
    #: What the delivery loop knows of it, built once (``WebhookConsumer.target``).
    known: Target | None = None

    def release(self) -> None:
        if not self.released:
            self.released = True
            if self.batch is not None:
                self.batch.let_go()


class Sent(NamedTuple):
    """What a request got: when it went, the status (None: no answer), how long it took
    (milliseconds) and the start of the answer's body."""

    at: datetime
    status_code: int | None
    latency_ms: float
    response_body: str | None


@dataclass
class Results:
    """What a batch writes in one transaction."""

    attempts: list[Attempt] = field(default_factory=list)
    notices: list[Notice] = field(default_factory=list)
    messages: list[StoredMessage] = field(default_factory=list)
    finished: list[Attempt] = field(default_factory=list)  # log rows to close as failed
    # deferred (a slow-down) or busy (the rate limit): the same attempt later, published
    # together per (endpoint, attempt, reason): (delay, jobs)
    deferred: dict[tuple[str, int, str], tuple[float, list[Job]]] = field(default_factory=dict)
    endpoint_changes: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: a batch from the domain topics: its writes go before the retries'
    first: bool = False
    #: the resends asked for in the batch (event id, endpoint id): sent even if settled
    resends: set[tuple[str, str]] = field(default_factory=set)
    #: writes it all in one transaction (``WebhookConsumer._write``)
    writer: Callable[[Results], Awaitable[None]] | None = None

    def __bool__(self) -> bool:
        return bool(
            self.attempts or self.notices or self.messages or self.finished or self.endpoint_changes
        )

    def add(self, notice: Notice, job: Any = None) -> None:
        """A notice settled (``gnlc_core.deliveries.Writes``)."""
        self.notices.append(notice)

    async def close(self) -> None:
        """Write the batch (``gnlc_core.deliveries.Writes``)."""
        if self.writer is not None:
            await self.writer(self)


class WebhookConsumer:
    def __init__(
        self,
        broker: KafkaBroker,
        topics: Topics,
        store: Store,
        registry: Registry,
        client: Poster,
        retrier: Retrier,
        schedule: RetrySchedule,
        *,
        limits: Limits | None = None,
        should_send: ShouldSend = always,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        fence: Fence | None = None,
    ) -> None:
        self._broker = broker
        self._fence = fence  # which records of a batch may have been handled before
        self._topics = topics
        self._store = store
        self._ledger = Ledger(store.engine, CHANNEL)
        self._registry = registry
        self._client = client
        self._retrier = retrier
        self._schedule = schedule
        self._limits = limits or Limits()
        self._should_send = should_send
        self._clock = clock
        self._lanes: dict[str, Lane] = {}
        self._background: set[asyncio.Task[None]] = set()
        self._writing = PriorityLock()
        self._sweeper: asyncio.Task[None] | None = None
        self._releasing: dict[str, asyncio.Lock] = {}  # one release at a time per endpoint
        self._loop: DeliveryLoop[Event, Job, Results] = DeliveryLoop.for_channel(
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
    def operations_topic(self) -> str:
        return f"{self._topics.prefix}webhook.operations"

    # entry points ---------------------------------------------------------------------

    async def handle_batch(self, message: KafkaMessage, fence: Fence | None = None) -> None:
        """A batch from the domain topics, through the delivery loop, sent and written.
        Only the deliveries of records that ``fence`` (default: the consumer's) says may
        have been handled before are looked up in the ledger (all without one)."""
        await (await self.send_batch(message, fence))

    async def send_batch(self, message: KafkaMessage, fence: Fence | None = None) -> Write:
        """``handle_batch`` up to its writes, which the coroutine returned makes (the
        runtime runs it while the next batch is sent: ``gnlc_core.write_behind``)."""
        fence = fence or self._fence
        records = cast("tuple[ConsumerRecord[bytes, bytes], ...]", message.raw_message)
        maybe_handled = None
        if fence is not None:
            consumer = cast("AIOKafkaConsumer", message.consumer)
            maybe_handled = await fence.maybe_handled(consumer, records)
        batch = await self._loop.handle(records, maybe_handled=maybe_handled, close=False)
        return batch.writes.close()

    async def deliver_due(self, due: Sequence[Due]) -> None:
        """Records from the retry tiers, due now (the tier consumer commits afterwards),
        through the delivery loop: like a batch, one ledger query and one transaction for
        them all."""
        await self._loop.deliver_due(due)

    # the channel's side of the delivery loop (``gnlc_core.deliveries.Deliveries``)

    def decode(self, value: bytes) -> Event | str:
        return decode(value)

    def writes(self, *, first: bool) -> Results:
        return Results(first=first, writer=self._write)

    def target(self, job: Job) -> Target:
        """Built once per job (the loop asks several times), again only if its attempt's
        span (``first_attempt``) was set since."""
        known = job.known
        if known is None or known.first_attempt != job.first_attempt:
            known = job.known = Target(
                job.event,
                job.endpoint_id,
                job.attempt,
                job.body,
                job.key,
                job.first_attempt,
                forced=job.resend,
            )
        return known

    async def jobs(self, batch: Batch[Job, Results], read: Read[Event]) -> list[Job]:
        """An event's deliveries: one to each endpoint subscribed to it (its body kept)."""
        event, record = read.event, read.record
        subscribed = self._registry.subscribed(event)
        if not subscribed:
            return []
        trace = batch.trace(
            event, topic=record.topic, partition=record.partition, offset=record.offset
        )
        body = encode_event(event)
        batch.writes.messages.append(StoredMessage(event.id, event.type, body.decode()))
        return [Job(event, body, record.key, e.id, 1, trace=trace, fresh=True) for e in subscribed]

    async def due_job(self, batch: Batch[Job, Results], due: Due, event: Event) -> Job:
        """A retry, deferral, release or resend due now (the record's value is the body as
        first encoded: the signature covers it)."""
        results = batch.writes
        endpoint_id = due.recipient.removeprefix(RESEND_PREFIX)
        resend = due.recipient.startswith(RESEND_PREFIX)
        if resend and (key := (event.id, endpoint_id)) not in results.resends:
            results.resends.add(key)
            results.messages.append(StoredMessage(event.id, event.type, due.value.decode()))
        return Job(
            event,
            due.value,
            event.partitionkey.encode(),
            endpoint_id,
            due.attempt,
            trace=batch.trace(event, topic=self._retries, attempt=due.attempt),
            first_attempt=due.first_attempt,
            resend=resend,
        )

    async def send(self, batch: Batch[Job, Results], jobs: Sequence[Job]) -> None:
        """Each delivery in its endpoint's lane (``_run``), as far as its key's order
        goes (``_in_order``); a retry one past the schedule is the final check of a
        handed-off last attempt (``_give_up``)."""
        results = batch.writes
        to_run: list[Job] = []
        for job in jobs:
            if job.attempt > self._schedule.max_attempts:  # a hand-off's final check
                last = await self._store.last_error(job.event.id, job.endpoint_id)
                await self._give_up(job, policy.on_due(job.attempt, self._schedule, last), results)
            else:
                to_run.append(job)
        to_run = await self._in_order(
            to_run, results, number=batch.first, resends=None if batch.first else results.resends
        )
        await self._run(to_run, results)

    @property
    def _retries(self) -> str:
        return f"{self._topics.prefix}{CHANNEL}.retry"

    async def drain(self) -> None:
        """Stop releasing held deliveries, and wait a little for handed-off requests (at
        shutdown); their retries are scheduled already, so what does not finish is not
        lost."""
        if self._sweeper is not None:
            self._sweeper.cancel()
            with suppress(asyncio.CancelledError):
                await self._sweeper
        if self._background:
            await asyncio.wait(list(self._background), timeout=self._limits.handoff + 5)

    # the order of a partition key's deliveries ---------------------------------------

    def _ordered(self, endpoint_id: str) -> bool:
        endpoint = self._registry.get(endpoint_id)
        return endpoint is not None and endpoint.ordered

    async def _in_order(
        self,
        jobs: list[Job],
        results: Results,
        *,
        number: bool,
        resends: set[tuple[str, str]] | None = None,
    ) -> list[Job]:
        """The deliveries that may go as far as their key's order goes. Those to an ordered
        endpoint are numbered first when they come from the domain topics (``number``: in
        the batch's order, after every one numbered before; committed before any is sent,
        so a crash cannot reorder them), and any behind an earlier delivery of its key not
        settled yet is held (``policy.in_order``); it is released once that one is settled
        (``_write``), or by the sweeper after a crash."""
        ordered = [job for job in jobs if self._ordered(job.endpoint_id)]
        if not ordered:
            return jobs
        pairs = [(job.endpoint_id, job.event.id) for job in ordered]
        writing = self._writing.hold(urgent=results.first)
        async with writing, self._store.engine.begin() as connection:
            if number:
                await self._store.queue_in_order(
                    [(job.endpoint_id, job.event.partitionkey, job.event.id) for job in ordered],
                    connection=connection,
                )
            places = await self._store.key_places(pairs, connection=connection)
        behind: set[Job] = set()
        for job, pair in zip(ordered, pairs, strict=True):
            own, first = places.get(pair, (None, None))
            resend = resends is not None and (job.event.id, job.endpoint_id) in resends
            decision = policy.in_order(policy.key_place(own, first), resend=resend)
            if decision.action is not Action.SEND:
                self._put_aside(job, decision, results)
                behind.add(job)
        return [job for job in jobs if job not in behind] if behind else jobs

    async def _release_in_order(self, endpoint_ids: Sequence[str]) -> None:
        """After deliveries to ordered endpoints were settled or held: release the held
        deliveries now first of their key (the sweeper does it too, later, if this fails)."""
        for endpoint_id in endpoint_ids:
            try:
                await self._release_held(endpoint_id)
            except Exception:  # the database or the broker away: the sweeper, later
                log.exception("releasing the next deliveries of a key failed", endpoint=endpoint_id)

    # running deliveries ---------------------------------------------------------------

    async def _run(self, jobs: Sequence[Job], results: Results) -> None:
        jobs = [job for job in jobs if not self._put_off_at_once(job, results)]
        if jobs:
            await self._run_tasks(jobs, results)
        await self._flush_spills(results)

    def _put_off_at_once(self, job: Job, results: Results) -> bool:
        """A delivery for an active endpoint that hangs (its lane slow, and full or paused)
        is held, and one for an endpoint paused by a slow-down deferred, before any task is
        made for it: a hanging endpoint puts off every delivery, and they must stay cheap.
        (``should_send`` is asked when it is sent.)"""
        lane = self._lanes.get(job.endpoint_id)
        if lane is None:
            return False
        decision = policy.put_off(self._registry.get(job.endpoint_id), lane)
        if decision.action is Action.SEND:
            return False
        self._put_aside(job, decision, results)
        return True

    async def _run_tasks(self, jobs: Sequence[Job], results: Results) -> None:
        batch = Release()
        for job in jobs:
            job.batch = batch
            batch.hold()
        tasks = {job: asyncio.create_task(self._deliver(job, results)) for job in jobs}
        for task in tasks.values():
            self._background.add(task)
            task.add_done_callback(self._background.discard)
        # Wait in rounds, each ending when the oldest request in flight reaches the hand-off
        # time. A request that old marks its lane slow; every request in flight to a slow
        # lane is then handed off, and deliveries still queued for it are spilled to the
        # retry tier; those queued behind a healthy lane keep their place.
        wait = self._limits.handoff
        while not batch.all.is_set():
            with suppress(TimeoutError):
                async with asyncio.timeout(wait):
                    await batch.all.wait()
            unsettled = [j for j in jobs if not j.released]
            handoffs: list[Awaitable[None]] = []
            now = time.monotonic()
            for job in unsettled:
                in_flight = now - (job.deadline - self._limits.timeout)
                if job.phase is Phase.SENDING and policy.is_slow(in_flight, self._limits):
                    self._lanes[job.endpoint_id].slow = True
            # every request of a lane found slow is handed off, not only those that were in
            # flight for the whole round: the rest would otherwise hold the batch a round more
            for job in unsettled:
                lane = self._lanes.get(job.endpoint_id)
                if lane is None or not lane.slow:
                    continue
                if job.phase is Phase.SENDING and not job.handed_off:
                    handoffs.append(self._hand_off(job))
                elif job.phase is Phase.WAITING:
                    tasks[job].cancel()
                    self._put_aside(job, policy.WAITED_FOR_SLOT, results)
            await asyncio.gather(*handoffs)
            wait = self._next_round(jobs)

    def _next_round(self, jobs: Sequence[Job]) -> float:
        """Seconds until the oldest request of the batch still in flight has been for the
        hand-off time (the hand-off time if none is in flight)."""
        sent = [
            j.deadline - self._limits.timeout
            for j in jobs
            if j.phase is Phase.SENDING and not j.released
        ]
        if not sent:
            return self._limits.handoff
        return max(min(sent) + self._limits.handoff - time.monotonic(), 0.005)

    async def _deliver(self, job: Job, results: Results) -> None:
        try:
            await self._deliver_inner(job, results)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("delivery crashed", event_id=job.event.id, endpoint=job.endpoint_id)
            raise
        finally:
            job.release()

    async def _deliver_inner(self, job: Job, results: Results) -> None:
        endpoint = self._registry.get(job.endpoint_id)
        decision = policy.admit(endpoint)
        if decision.action is Action.DROP:
            return await self._drop(job, endpoint, decision, results)
        assert endpoint is not None
        if not await self._should_send(job.event, endpoint):
            return await self._drop(job, endpoint, policy.NOT_WANTED, results)
        lane = self._lane(endpoint)
        decision = policy.at_lane(lane)
        if decision.action is not Action.SEND:
            job.phase = Phase.SETTLING
            return self._put_aside(job, decision, results)
        started = time.monotonic()
        while (wait := lane.rate_wait()) > 0:
            waited = time.monotonic() - started
            decision = policy.over_rate(waited, wait, job.attempt, self._schedule, self._limits)
            if decision.action is Action.BUSY:
                job.phase = Phase.SETTLING
                return self._put_aside(job, decision, results)
            await asyncio.sleep(decision.delay)
        decision = policy.before_request(lane)
        if decision.action is not Action.SEND:
            job.phase = Phase.SETTLING
            return self._put_aside(job, decision, results)
        await lane.acquire(first=job.fresh)
        job.phase = Phase.SENDING
        job.deadline = time.monotonic() + self._limits.timeout
        if policy.hand_off_at_once(lane, job.handed_off):
            await self._hand_off(job)  # a slow endpoint never holds a batch
        ok = False
        slow_down: float | None = None
        try:
            outcome, sent = await self._post(job, endpoint)
            lane.slow = policy.is_slow(sent.latency_ms / 1000, self._limits)
            ok = outcome.verdict is Verdict.DELIVERED
            slow_down = policy.slow_down_for(outcome, self._limits)
        finally:
            await lane.release(ok=ok, slow_down=slow_down)
        job.phase = Phase.SETTLING
        if job.handed_off:
            late = Results()
            await self._settle(job, endpoint, outcome, sent, late)
            await self._write(late)
        else:
            await self._settle(job, endpoint, outcome, sent, results)
        return None

    async def _post(self, job: Job, endpoint: EndpointRow) -> tuple[Outcome, Sent]:
        now = self._clock()
        headers = signed_headers(
            message_id=job.event.id, timestamp=now, body=job.body, secrets=endpoint.secrets(now)
        )
        trace = None if job.trace is None else self._attempt(job, endpoint)
        started = time.perf_counter()
        status_code: int | None = None
        response_body: str | None = None
        failure: str | None = None  # the exception's type, for the span
        with tracing.client_span("POST", trace, {}) as span:
            if trace is not None:
                job.first_attempt = trace.first  # a hand-off while in flight carries it
                headers.update(tracing.carrier())  # the partner may continue the trace
            try:
                response = await self._bounded_post(endpoint.url, job.body, headers)
                status_code = response.status_code
                response_body = response.content[: self._limits.body_limit].decode(errors="replace")
                retry_after = response.headers.get("retry-after")
                outcome = classify(
                    status_code,
                    retry_after,
                    now if retry_after is None else self._clock(),  # a date is from now
                    cap=self._limits.max_retry_after,
                )
            except (httpx.HTTPError, TimeoutError, OSError) as exc:
                failure = type(exc).__name__
                timed_out = isinstance(exc, TimeoutError | httpx.TimeoutException)
                if isinstance(exc, TimeoutError):
                    exc = httpx.TimeoutException(f"no answer within {self._limits.timeout:g}s")
                outcome = transport_failure(exc, timed_out=timed_out)
            if span is not None:
                http_outcome(span, status_code or failure or "", outcome)
        latency = (time.perf_counter() - started) * 1000
        return outcome, Sent(now, status_code, round(latency, 2), response_body)

    async def _bounded_post(self, url: str, body: bytes, headers: dict[str, str]) -> Answer:
        """The POST, given up after the timeout: by the client itself when it bounds its
        requests as tightly (no timer of our own per request), else by ``asyncio.timeout``."""
        bound = self._client.total_timeout
        if bound is not None and bound <= self._limits.timeout:
            return await self._client.post(url, content=body, headers=headers)
        async with asyncio.timeout(self._limits.timeout):
            return await self._client.post(url, content=body, headers=headers)

    @staticmethod
    def _attempt(job: Job, endpoint: EndpointRow) -> tracing.Attempt | None:
        """Where the POST's CLIENT span goes, and what it says (the URL without its query,
        which may hold a partner's token)."""
        url = httpx.URL(endpoint.url)
        return tracing.attempt(
            job.trace,
            job.first_attempt,
            {
                "http.request.method": "POST",
                "url.full": str(url.copy_with(query=None, fragment=None, userinfo=b"")),
                "server.address": url.host,
                "server.port": url.port or (443 if url.scheme == "https" else 80),
                "cloudevents.event_id": job.event.id,
                "gnlc.webhook.endpoint_id": endpoint.id,
                "gnlc.webhook.partner_id": endpoint.partner_id,
                "gnlc.attempt": job.attempt,
            },
        )

    # settling ------------------------------------------------------------------------

    async def _settle(
        self,
        job: Job,
        endpoint: EndpointRow,
        outcome: Outcome,
        sent: Sent,
        results: Results,
    ) -> None:
        verdict = outcome.verdict
        now = None if verdict is Verdict.DELIVERED else self._clock()
        current = self._registry.get(endpoint.id) or endpoint
        health = policy.health(current, verdict, now, self._limits)
        if health.action is not Action.SEND:  # a delivery that goes well awaits nothing more
            await self._health(current, health, now, results)
        decision = policy.settle(outcome, job.attempt, job.handed_off, self._schedule)
        action = decision.action
        if action is Action.DELIVERED:
            row = await self._loop.outcome(job, Step.DELIVERED)
            self._record(job, endpoint, sent, row, results)
            return
        reason = outcome.error or "failed"
        step = step_of(action)
        if action is Action.PARK:
            await self._disable(endpoint, decision.reason or reason, results)
        error = f"gave up: {reason}" if step is Step.GIVE_UP else reason
        # the next attempt or the notice parked (a hand-off's retry is scheduled already)
        row = await self._loop.outcome(
            job,
            step,
            error,
            reason=reason,
            delay=decision.delay,
            scheduled=action is Action.SCHEDULED,
        )
        self._record(job, endpoint, sent, row, results)

    @staticmethod
    def _record(job: Job, endpoint: EndpointRow, sent: Sent, row: Notice, results: Results) -> None:
        """A request's outcome: its log row and the notice (``attempt`` requests made)."""
        results.attempts.append(
            Attempt(
                job.event.id,
                endpoint.id,
                endpoint.partner_id,
                job.attempt,
                row.status,
                sent.at,
                sent.status_code,
                sent.latency_ms,
                sent.response_body,
                row.error,
            )
        )
        results.add(row, job)

    async def _drop(
        self, job: Job, endpoint: EndpointRow | None, decision: Decision, results: Results
    ) -> None:
        """Not sent on purpose: a log row, and the notice dropped with the requests made."""
        partner = endpoint.partner_id if endpoint else ""
        reason = decision.reason
        results.attempts.append(
            Attempt(
                job.event.id,
                job.endpoint_id,
                partner,
                job.attempt,
                Status.DROPPED,
                self._clock(),
                error=reason,
            )
        )
        results.add(await self._loop.outcome(job, Step.DROPPED, reason), job)
        log.info("webhook dropped", event_id=job.event.id, endpoint=job.endpoint_id, reason=reason)

    async def _give_up(self, job: Job, decision: Decision, results: Results) -> None:
        """The final check after a handed-off last attempt that did not succeed (``job`` is
        one past the schedule, no request of its own): park the notice and mark the last
        attempt's log row failed."""
        endpoint = self._registry.get(job.endpoint_id)
        partner = endpoint.partner_id if endpoint else ""
        reason = decision.reason or "failed"
        error = f"gave up: {reason}"
        row = await self._loop.outcome(job, step_of(decision.action), error, reason=reason)
        results.finished.append(
            Attempt(
                job.event.id,
                job.endpoint_id,
                partner,
                row.attempts,
                row.status,
                self._clock(),
                error=error,
            )
        )
        results.notices.append(row)

    def _put_aside(self, job: Job, decision: Decision, results: Results) -> None:
        """Send the same attempt later, no request made: HOLD (a ledger row, no Kafka
        record; ``_sweep_held`` schedules it again once the endpoint answers, or is no
        longer active, to be dropped), or DEFER / BUSY (published with the batch's other
        deferrals, one Kafka batch per endpoint, attempt and reason)."""
        reason = decision.reason or ""
        step = step_of(decision.action)
        if step is Step.HELD:
            reason = f"held: {reason}"
        else:
            key = (job.endpoint_id, job.attempt, reason)
            _, jobs = results.deferred.setdefault(key, (decision.delay, []))
            jobs.append(job)
        results.add(self._loop.notice(job, step, reason), job)
        job.release()

    @property
    def ledger(self) -> Ledger:
        """The channel's ledger (listeners: ``ledger.listen``)."""
        return self._ledger

    def start(self) -> None:
        """Start looking for held deliveries to release (every ``hold_check`` seconds)."""
        self._sweeper = asyncio.create_task(self._sweep_held())

    async def _sweep_held(self) -> None:
        while True:  # the service's lifetime: cancelled by ``drain``
            await asyncio.sleep(self._limits.hold_check)
            try:
                await self._store.prune_order()
                for endpoint_id in await self._store.endpoints_holding():
                    await self._release_held(endpoint_id)
            except Exception:  # the database or the broker away: next time
                log.exception("releasing held webhook deliveries failed")

    def _release_limit(self, endpoint_id: str) -> int:
        """How many held deliveries to release now: all (in rounds), none while the endpoint
        hangs, or one while its lane is slow with nothing in flight, as a probe: a retry that
        came while the lane was paused was held too, and nothing else would tell whether
        the endpoint answers again."""
        return policy.release_limit(self._registry.get(endpoint_id), self._lanes.get(endpoint_id))

    async def _release_held(self, endpoint_id: str) -> None:
        """Schedule an endpoint's held deliveries again, at the attempt they were held at:
        published first, then marked retrying (unless held again meanwhile), so a crash in
        between sends one twice at worst, and the ledger skips it. One release at a time
        per endpoint (the sweeper's and an ordered key's next), or both would publish the
        same rows."""
        releasing = self._releasing.setdefault(endpoint_id, asyncio.Lock())
        async with releasing:
            await self._release_held_now(endpoint_id)

    async def _release_held_now(self, endpoint_id: str) -> None:
        for _ in range(100):  # bounded per sweep
            if not (limit := self._release_limit(endpoint_id)):
                return
            before = datetime.now(UTC)
            rows = await self._store.held(endpoint_id, limit=limit)
            by_attempt: dict[int, list[bytes]] = {}
            for _event_id, body, attempts in rows:
                by_attempt.setdefault(attempts + 1, []).append(body)
                if not isinstance(event := decode(body), str):  # for its receipt
                    self.subjects.remember(event)
            for attempt, bodies in by_attempt.items():
                await self._retrier.schedule_many(
                    bodies, recipient=endpoint_id, attempt=attempt, delay=0.0, reason=RELEASED
                )
            # through the ledger, so its listeners (receipts) learn of it; unless held again
            # since ``before``, or settled
            await self._ledger.move(
                endpoint_id,
                [row[0] for row in rows],
                source=Status.HELD,
                target=Status.RETRYING,
                not_after=before,
            )
            if rows:
                log.info("held webhook deliveries released", endpoint=endpoint_id, count=len(rows))
            if len(rows) < policy.RELEASE_ROWS:
                return

    async def _flush_spills(self, results: Results) -> None:
        """Publish the batch's deferrals: one Kafka batch per endpoint, attempt and reason."""
        deferred, results.deferred = results.deferred, {}
        for (endpoint_id, attempt, reason), (delay, jobs) in deferred.items():
            await self._retrier.schedule_many(
                [job.body for job in jobs],
                recipient=endpoint_id,
                attempt=attempt,
                delay=delay,
                reason=reason,
            )

    async def _hand_off(self, job: Job) -> None:
        """Release the batch from a request still in flight: its next attempt is scheduled
        for after its timeout (a final check once the schedule is exhausted)."""
        job.handed_off = True
        left = job.deadline - time.monotonic()
        await self._retrier.schedule(
            job.body,
            key=job.key,
            recipient=job.endpoint_id,
            attempt=job.attempt + 1,
            delay=policy.handoff_delay(left, job.attempt, self._schedule),
            reason="handed off while in flight",
            first_attempt=job.first_attempt,
        )
        job.release()

    # endpoint state ------------------------------------------------------------------

    def _lane(self, endpoint: EndpointRow) -> Lane:
        workers = self._limits.workers
        concurrency = endpoint.max_concurrency or self._limits.endpoint_concurrency
        concurrency = max(1, -(-concurrency // workers))  # ceil: every worker may send
        rate = endpoint.rate_per_second or self._limits.endpoint_rate
        rate = rate / workers if rate is not None else None
        lane = self._lanes.get(endpoint.id)
        if lane is None:
            lane = self._lanes[endpoint.id] = Lane(concurrency, rate)
        else:
            lane.configure(concurrency, rate)
        return lane

    def _change(self, endpoint_id: str, results: Results, **values: Any) -> None:
        self._registry.update(endpoint_id, **values)
        results.endpoint_changes.setdefault(endpoint_id, {}).update(values)

    async def _health(
        self, endpoint: EndpointRow, decision: Decision, now: datetime | None, results: Results
    ) -> None:
        """Carry out what ``policy.health`` decided for the endpoint."""
        action = decision.action
        if action is Action.RECOVERED:
            self._change(endpoint.id, results, failing_since=None)
        elif action is Action.MARK_FAILING:
            self._change(endpoint.id, results, failing_since=now)
        elif action is Action.DISABLE:
            await self._disable(endpoint, decision.reason or "failing", results)

    async def _disable(self, endpoint: EndpointRow, reason: str, results: Results) -> None:
        current = self._registry.get(endpoint.id) or endpoint
        if current.state is State.DISABLED:
            return
        self._change(endpoint.id, results, state=State.DISABLED, state_reason=reason)
        event = endpoint_disabled(current, reason, self._clock())
        await self._broker.publish(
            event, topic=self.operations_topic, key=endpoint.id.encode(), headers={}
        )
        log.warning("webhook endpoint disabled", endpoint=endpoint.id, reason=reason)

    # I/O helpers ---------------------------------------------------------------------

    async def _write(self, results: Results) -> None:
        if not results:
            return
        changes = [
            (endpoint_id, {**values, "updated_at": datetime.now(UTC)})
            for endpoint_id, values in results.endpoint_changes.items()
        ]
        for _, values in changes:
            if isinstance(values.get("state"), State):
                values["state"] = values["state"].value
        # ordered endpoints: settled deliveries leave their key's order, and the next of
        # each key is released once this is written
        in_order = [n for n in results.notices if self._ordered(n.recipient)]
        settled = [(n.recipient, n.event_id) for n in in_order if n.status in TERMINAL]
        # one write transaction at a time: SQLite takes one writer, and a second one would
        # sleep in its busy handler (tens of milliseconds a turn) rather than queue; a
        # batch of first attempts goes before the retries' (gnlc_core.priority)
        writing = self._writing.hold(urgent=results.first)
        async with writing, self._store.engine.begin() as connection:
            await self._store.add_messages(results.messages, connection=connection)
            # forward: a batch is written behind the next one's sending, so a retry of one
            # of its deliveries may be written first; a settled notice stays settled
            await self._ledger.record_many(results.notices, connection=connection, forward=True)
            await self._store.add_attempts(results.attempts, connection=connection)
            await self._store.close_attempts(results.finished, connection=connection)
            await self._store.set_states(changes, connection=connection)
            await self._store.forget_order(settled, connection=connection)
        touched = [n.recipient for n in in_order if n.status in TERMINAL or n.status is Status.HELD]
        if touched:
            await self._release_in_order(list(dict.fromkeys(touched)))


def http_outcome(span: Span, answer: int | str, outcome: Outcome) -> None:
    """The POST span's answer (a status code, or the exception that stood for one); an
    error for anything but delivered (a CLIENT span's 4xx is an error too)."""
    if isinstance(answer, int):
        span.set_attribute("http.response.status_code", answer)
    if outcome.verdict is not Verdict.DELIVERED:
        tracing.failed(span, str(answer) or "transport", outcome.error)
