"""Receipts: every change of a notice's state as a ``notice.status`` event.

A service publishes a receipt for each state it records, through the ledger's listener
seam (``ReceiptPublisher`` is a ``gnlc_core.ledger.Listener``). The ledger tells its
listeners inside the write's transaction, before it commits, and the consumers commit
their Kafka offsets only after the ledger write returns: a receipt is on Kafka (acks=all)
before its notice is settled and long before its record is committed, so a crash at any
point either leaves the receipt published or leaves the notice to be handled again, which
publishes it then (at-least-once; README: "Receipts").

What the receipt says about the event (deadline and step, announcement, city) comes from
``Subjects``, where a consumer puts each event it is working on; what it says about the
recipient (its city, its partner) from a per-channel function.

The order of receipts is not guaranteed (they are published from several processes, and
a notice's retry may be recorded by another instance): ``supersedes`` is the one rule that
decides which of two states of a notice stands.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import IntEnum
from typing import Any

from faststream.kafka import KafkaBroker

from gnlc_core.events import (
    CONTENT_TYPE,
    AnnouncementPublishedEvent,
    ChangeEvent,
    DeadlineCancelledEvent,
    DeadlineReminderEvent,
    DeadlineUpdatedEvent,
    NoticeStatus,
    encode_event,
    receipt_event,
)
from gnlc_core.kafka import PRODUCER_BATCH_BYTES, Topics
from gnlc_core.ledger import Notice, Status

RECEIPT_TYPE = "notice.status"
#: Events remembered per process for their receipts (far above a batch's worth).
SUBJECTS_KEPT = 50_000


class Phase(IntEnum):
    """How far along a notice is; a later phase always stands over an earlier one."""

    PLANNED = 0
    UNDER_WAY = 1
    SETTLED = 2
    AFTER = 3  # bounced: reported after it was settled


PHASES: dict[Status, Phase] = {
    Status.SCHEDULED: Phase.PLANNED,
    Status.HELD: Phase.UNDER_WAY,
    Status.RETRYING: Phase.UNDER_WAY,
    Status.SENT: Phase.UNDER_WAY,
    Status.DELIVERED: Phase.SETTLED,
    Status.FAILED: Phase.SETTLED,
    Status.DROPPED: Phase.SETTLED,
    Status.UNSUBSCRIBED: Phase.SETTLED,
    Status.BOUNCED: Phase.AFTER,
}
#: Ties (same phase, same moment, same attempts) are broken by this order, so the
#: outcome never depends on the order receipts arrive in.
_TIE = {status: index for index, status in enumerate(Status)}


@dataclass(frozen=True)
class StateAt:
    """A notice's state as a receipt gives it: what ``supersedes`` compares."""

    state: Status
    time: datetime
    attempts: int = 0


def precedence(state: StateAt) -> tuple[int, int, int, int]:
    """The sort key of a state: phase, moment (microseconds), attempts, tie-break."""
    micros = round(state.time.timestamp() * 1_000_000)
    return (PHASES[state.state], micros, state.attempts, _TIE[state.state])


def supersedes(new: StateAt, old: StateAt | None) -> bool:
    """Whether ``new`` replaces ``old`` as the notice's state: a later phase always does
    (a late ``retrying`` never overwrites ``delivered``); within a phase the later moment,
    then more attempts. The same receipt twice changes nothing (idempotent), and any order
    of the same receipts ends in the same state (a replay rebuilds the same view)."""
    return old is None or precedence(new) > precedence(old)


# -- what a receipt says about the event --------------------------------------------------


@dataclass(frozen=True)
class Subject:
    """What a receipt carries about the event a notice is for."""

    event_type: str
    event_time: datetime
    deadline_id: str | None = None
    step: str | None = None
    announcement_id: str | None = None
    city_id: str | None = None  # a reminder's one city (the scheduler plans per city)

    @classmethod
    def of(cls, event: DeadlineReminderEvent | AnnouncementPublishedEvent | ChangeEvent) -> Subject:
        if isinstance(event, DeadlineUpdatedEvent | DeadlineCancelledEvent):
            # a change of the deadline's calendar entry: about the deadline, no step
            return cls(event.type, event.time, event.data.deadline_id)
        audience = event.data.audience
        city = (
            audience.cities[0]
            if len(audience.cities) == 1 and not audience.regions and not audience.all_members
            else None
        )
        if isinstance(event, DeadlineReminderEvent):
            return cls(
                event.type, event.time, event.data.deadline_id, event.data.step, city_id=city
            )
        return cls(event.type, event.time, announcement_id=event.data.announcement_id)


@dataclass
class Subjects:
    """The events a process is working on, by id (the most recent ``kept``)."""

    kept: int = SUBJECTS_KEPT
    _by_id: OrderedDict[str, Subject] = field(default_factory=OrderedDict)

    def remember(
        self, event: DeadlineReminderEvent | AnnouncementPublishedEvent | ChangeEvent
    ) -> None:
        if event.id in self._by_id:
            self._by_id.move_to_end(event.id)
            return
        self._by_id[event.id] = Subject.of(event)
        while len(self._by_id) > self.kept:
            self._by_id.popitem(last=False)

    def get(self, event_id: str) -> Subject | None:
        return self._by_id.get(event_id)


#: What a channel knows of a recipient: ``city_id`` and/or ``partner_id``.
RecipientFacts = Callable[[str], dict[str, str]]


def email_recipient(recipient: str) -> dict[str, str]:
    """An email recipient is ``city:address``."""
    city, _, _ = recipient.partition(":")
    return {"city_id": city} if city else {}


def receipt_of(
    channel: str,
    notice: Notice,
    subject: Subject | None,
    facts: dict[str, str],
    *,
    now: datetime | None = None,
) -> NoticeStatus:
    """The receipt of one recorded notice (pure)."""
    values: dict[str, Any] = {
        "event_id": notice.event_id,
        "channel": channel,
        "recipient": notice.recipient,
        "state": notice.status.value,
        "reason": notice.error[:2000] if notice.error else None,
        "attempts": notice.attempts,
        "state_time": notice.at or now or datetime.now(UTC),
    }
    if subject is not None:
        values.update(
            event_type=subject.event_type,
            event_time=subject.event_time,
            deadline_id=subject.deadline_id,
            step=subject.step,
            announcement_id=subject.announcement_id,
            city_id=subject.city_id,
        )
    values.update({k: v for k, v in facts.items() if v})
    return NoticeStatus.model_validate(values)


async def publish_receipts(
    broker: KafkaBroker, topic: str, receipts: Sequence[NoticeStatus], *, source: str
) -> None:
    """Publish receipts, waiting for every acknowledgement: in Kafka batches (one partition
    each) for many, keyed one by one for a few."""
    values = [
        (receipt.event_id.encode(), encode_event(receipt_event(receipt, source=source)))
        for receipt in receipts
    ]
    headers = {"content-type": CONTENT_TYPE}
    if len(values) <= 4:
        for key, value in values:
            await broker.publish(value, topic=topic, key=key, headers=headers)
        return
    chunk: list[bytes] = []
    size = 0
    for _key, value in values:
        if size + len(value) + 200 > PRODUCER_BATCH_BYTES // 2 and chunk:
            await broker.publish_batch(*chunk, topic=topic, headers=headers)
            chunk, size = [], 0
        chunk.append(value)
        size += len(value) + 200
    if chunk:
        await broker.publish_batch(*chunk, topic=topic, headers=headers)


class ReceiptPublisher:
    """The ledger listener that publishes a receipt for every notice state recorded."""

    def __init__(
        self,
        broker: KafkaBroker,
        topics: Topics,
        *,
        source: str,
        subjects: Subjects,
        recipient_facts: RecipientFacts = lambda _recipient: {},
    ) -> None:
        self._broker = broker
        self._topic = topics.notice_status
        self._source = source
        self._subjects = subjects
        self._facts = recipient_facts
        self.published = 0

    async def __call__(self, channel: str, rows: Sequence[Notice]) -> None:
        receipts = [
            receipt_of(channel, row, self._subjects.get(row.event_id), self._facts(row.recipient))
            for row in rows
        ]
        await publish_receipts(self._broker, self._topic, receipts, source=self._source)
        self.published += len(receipts)
