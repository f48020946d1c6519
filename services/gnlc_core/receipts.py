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

import asyncio
import functools
import json
import re
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import IntEnum
from typing import Any, NamedTuple

from faststream.kafka import KafkaBroker

from gnlc_core.events import (
    CONTENT_TYPE,
    EARLIEST,
    LATEST,
    AnnouncementPublishedEvent,
    ChangeEvent,
    DeadlineCancelledEvent,
    DeadlineReminderEvent,
    DeadlineUpdatedEvent,
    NoticeStatus,
    encode_event,
    receipt_event,
    stable_id,
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


_CHANGES = (DeadlineUpdatedEvent, DeadlineCancelledEvent)


class Subject(NamedTuple):
    """What a receipt carries about the event a notice is for."""

    event_type: str
    event_time: datetime
    deadline_id: str | None = None
    step: str | None = None
    announcement_id: str | None = None
    city_id: str | None = None  # a reminder's one city (the scheduler plans per city)

    @classmethod
    def of(cls, event: DeadlineReminderEvent | AnnouncementPublishedEvent | ChangeEvent) -> Subject:
        if isinstance(event, _CHANGES):
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


async def publish_values(
    broker: KafkaBroker, topic: str, values: Sequence[tuple[bytes, bytes]]
) -> None:
    """Publish encoded receipts ((key, value) pairs), waiting for every acknowledgement:
    in Kafka batches (one partition each) for many, keyed for a few, together (one after
    the other, a steady stream's small batches waited for a round trip to the broker per
    receipt: 4.0 ms of their write's time against 2.4 ms for larger ones)."""
    headers = {"content-type": CONTENT_TYPE}
    if len(values) <= 4:
        await asyncio.gather(
            *(broker.publish(value, topic=topic, key=key, headers=headers) for key, value in values)
        )
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


# -- a receipt's record value without its two models -------------------------------------

_SLUG = re.compile(r"[a-z0-9][a-z0-9-]{0,62}")
_CHANNEL = re.compile(r"[a-z][a-z0-9-]{0,15}")
_STEP = re.compile(r"due|\d+[dhms]-(before|overdue)")
_EVENT_TYPES = frozenset({"deadline.reminder", "announcement.published"})
_text = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


@functools.lru_cache(maxsize=256)
def _instant(value: datetime) -> tuple[str, str] | None:
    """``value`` in UTC as the models keep it (``events.UtcDatetime``): its ``isoformat()``
    (``+00:00``) and as the models write it (``Z``); None if they would refuse it. Cached:
    the notices of a batch are recorded at one instant, and an event's notices share its
    time."""
    if value.utcoffset() is None or not EARLIEST.year <= value.year < LATEST.year:
        return None
    utc = value.astimezone(UTC)
    if not EARLIEST <= utc < LATEST:
        return None
    iso = utc.isoformat()
    return iso, iso[:-6] + "Z"


def _slug(value: str | None) -> bool:
    return value is None or _SLUG.fullmatch(value) is not None


def receipt_value(
    channel: str,
    notice: Notice,
    subject: Subject | None,
    facts: dict[str, str],
    *,
    source: str,
    now: datetime | None = None,
) -> bytes | None:
    """The record value ``encode_event(receipt_event(receipt_of(...)))`` gives, written
    straight from the notice when every field is one the models accept as it is (a test
    keeps the two equal); None when a field needs the models (to refuse it, as they do)."""
    reason = notice.error[:2000] if notice.error else None
    if (
        not 1 <= len(notice.event_id) <= 64
        or not 1 <= len(notice.recipient) <= 320
        or not 0 <= notice.attempts <= 1000
        or not _CHANNEL.fullmatch(channel)
        or (state_time := _instant(notice.at or now or datetime.now(UTC))) is None
    ):
        return None
    state_iso, state = state_time
    data: list[str] = [
        f'"event_id":{_text(notice.event_id)}',
        f'"channel":"{channel}"',
        f'"recipient":{_text(notice.recipient)}',
        f'"state":"{notice.status.value}"',
    ]
    if reason is not None:
        data.append(f'"reason":{_text(reason)}')
    data.append(f'"attempts":{notice.attempts}')
    data.append(f'"state_time":"{state}"')
    if subject is not None:
        if subject.event_type not in _EVENT_TYPES or (
            subject.step is not None and not _STEP.fullmatch(subject.step)
        ):
            return None
        if not (
            _slug(subject.deadline_id) and _slug(subject.announcement_id) and _slug(subject.city_id)
        ):
            return None
        if (event_time := _instant(subject.event_time)) is None:
            return None
        data.append(f'"event_type":"{subject.event_type}"')
        data.append(f'"event_time":"{event_time[1]}"')
        for name in ("deadline_id", "step", "announcement_id", "city_id"):
            if (value := getattr(subject, name)) is not None:
                data.append(f'"{name}":"{value}"')
    for name in ("city_id", "partner_id"):
        if value := facts.get(name):
            if not _SLUG.fullmatch(value):
                return None
            if name == "city_id" and subject is not None and subject.city_id is not None:
                data = [part for part in data if not part.startswith('"city_id":')]
            data.append(f'"{name}":"{value}"')
    if any(name not in ("city_id", "partner_id") for name in facts if facts[name]):
        return None  # a fact the fast way does not know: the models say what it is
    receipt_id = stable_id(
        "notice.status",
        notice.event_id,
        channel,
        notice.recipient,
        notice.status.value,
        str(notice.attempts),
        state_iso,
    )
    envelope = (
        f'{{"specversion":"1.0","type":"{RECEIPT_TYPE}","id":"{receipt_id}",'
        f'"source":{_text(source)},"time":"{state}","datacontenttype":"application/json",'
        f'"subject":{_text(f"notices/{notice.event_id}/{channel}")},'
        f'"partitionkey":{_text(notice.event_id)},"data":{{{",".join(data)}}}}}'
    )
    return envelope.encode()


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
        values: list[tuple[bytes, bytes]] = []
        for row in rows:
            subject, facts = self._subjects.get(row.event_id), self._facts(row.recipient)
            value = receipt_value(channel, row, subject, facts, source=self._source)
            if value is None:  # the models' way: what they refuse is refused as before
                receipt = receipt_of(channel, row, subject, facts)
                value = encode_event(receipt_event(receipt, source=self._source))
            values.append((row.event_id.encode(), value))
        await publish_values(self._broker, self._topic, values)
        self.published += len(values)
