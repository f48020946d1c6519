"""The event contract: CloudEvents 1.0 envelopes around the domain payloads.

The JSON Schemas in ``schemas/`` are the published contract; these models are its code
side, and ``tests/unit/test_event_schemas.py`` keeps the two from drifting.
Events travel in CloudEvents *structured mode* over Kafka: the whole envelope is the
record value (``content-type: application/cloudevents+json``) and ``partitionkey`` is the
record key.
"""

from __future__ import annotations

import hashlib
import uuid
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    TypeAdapter,
    model_validator,
)

CONTENT_TYPE = "application/cloudevents+json; charset=UTF-8"
SOURCE_SCHEDULER = "/gnlc-notify/scheduler"
_ID_NAMESPACE = uuid.UUID("5f1d8f0e-6c55-4d7b-9d7e-3f1b0c2a9e41")
_NAMESPACE_BYTES = _ID_NAMESPACE.bytes

Slug = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9-]{0,62}$", max_length=63)]
LanguageTag = Annotated[str, Field(pattern=r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8})*$", max_length=35)]

# -- limits: every text and list an operator or a partner sends has one (README: limits) --

#: Instants outside [EARLIEST, LATEST) are refused: no deadline or announcement of the
#: network is that far away, and the arithmetic on them (local days, reminder offsets) must
#: never leave what a ``datetime`` can hold.
EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
LATEST = datetime(2200, 1, 1, tzinfo=UTC)
MAX_LANGUAGES = 16
MAX_TITLE_CHARS = 300
MAX_TEXT_CHARS = 20_000
MAX_LINK_CHARS = 2_000
MAX_REGIONS = 20
MAX_REGION_CHARS = 100
MAX_AUDIENCE_CITIES = 2_000
#: The CloudEvents distributed-tracing extension's attributes (W3C Trace Context): a
#: ``traceparent`` is 55 characters today; room for a later version, and a bounded state.
MAX_TRACEPARENT_CHARS = 128
MAX_TRACESTATE_CHARS = 512


def _as_utc(value: datetime) -> datetime:
    # the year first: zone arithmetic overflows at year 1 or 9999 with an offset; then the
    # bounds on the UTC value (comparing datetimes of one time zone skips their offsets)
    if EARLIEST.year - 1 <= value.year <= LATEST.year:
        utc = value.astimezone(UTC)
        if EARLIEST <= utc < LATEST:
            return utc
    raise ValueError(f"must be from {EARLIEST.isoformat()} to before {LATEST.isoformat()}")


UtcDatetime = Annotated[AwareDatetime, AfterValidator(_as_utc)]


def _non_empty_texts(value: dict[str, str]) -> dict[str, str]:
    if not value:
        raise ValueError("needs a text in at least one language")
    if any(not text.strip() for text in value.values()):
        raise ValueError("texts must not be blank")
    return value


_Title = Annotated[str, Field(min_length=1, max_length=MAX_TITLE_CHARS, pattern=r"\S")]
_Text = Annotated[str, Field(min_length=1, max_length=MAX_TEXT_CHARS, pattern=r"\S")]
_LANGUAGES = Field(min_length=1, max_length=MAX_LANGUAGES)

#: A text per language (``{"en": ..., "fr": ...}``): at most ``MAX_LANGUAGES`` languages,
#: each at most ``MAX_TEXT_CHARS`` characters (titles: ``MAX_TITLE_CHARS``), none blank.
LocalizedText = Annotated[dict[LanguageTag, _Text], _LANGUAGES, AfterValidator(_non_empty_texts)]
LocalizedTitle = Annotated[dict[LanguageTag, _Title], _LANGUAGES, AfterValidator(_non_empty_texts)]
Link = Annotated[str, Field(pattern=r"^https?://", max_length=MAX_LINK_CHARS)]
#: A link per language (``{"en": "https://...", "fr": "https://..."}``): at most
#: ``MAX_LANGUAGES``; a reader gets the one of the first language of its chain there is one
#: for, as with texts.
LocalizedLink = Annotated[dict[LanguageTag, Link], _LANGUAGES]
#: One link for every reader, or a link per language.
AnyLink = Link | LocalizedLink
Region = Annotated[str, Field(min_length=1, max_length=MAX_REGION_CHARS)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Audience(_Model):
    """Who an event is for: the union of every selector given (at least one)."""

    model_config = ConfigDict(
        json_schema_extra={
            "anyOf": [
                {"required": ["all_members"], "properties": {"all_members": {"const": True}}},
                {"required": ["regions"], "properties": {"regions": {"minItems": 1}}},
                {"required": ["cities"], "properties": {"cities": {"minItems": 1}}},
            ]
        }
    )

    all_members: bool = False
    regions: Annotated[tuple[Region, ...], Field(max_length=MAX_REGIONS)] = ()
    cities: Annotated[tuple[Slug, ...], Field(max_length=MAX_AUDIENCE_CITIES)] = ()

    @model_validator(mode="after")
    def _not_empty(self) -> Audience:
        if not (self.all_members or self.regions or self.cities):
            raise ValueError("audience is empty: set all_members, regions or cities")
        return self


class DeadlineReminder(_Model):
    """One step of a deadline's reminder plan, due now."""

    deadline_id: Slug
    title: LocalizedTitle
    description: LocalizedText | None = None
    due_at: UtcDatetime
    step: Annotated[str, Field(pattern=r"^(due|\d+[dhms]-(before|overdue))$")]
    offset_seconds: int
    audience: Audience
    link: AnyLink | None = None
    #: The deadline's revision (RFC 5545 ``SEQUENCE`` of its calendar entry): 0 when made,
    #: one more at every change of what the entry shows and at its cancellation.
    sequence: Annotated[int, Field(ge=0)] = 0
    #: When that revision was made (the entry's ``DTSTAMP``); absent: the event's time.
    revised_at: UtcDatetime | None = None


class DeadlineRevision(_Model):
    """A deadline's calendar entry as of one revision: what ``deadline.updated`` and
    ``deadline.cancelled`` carry (the cities that received the entry get the change)."""

    deadline_id: Slug
    title: LocalizedTitle
    description: LocalizedText | None = None
    due_at: UtcDatetime
    audience: Audience
    link: AnyLink | None = None
    sequence: Annotated[int, Field(ge=0)]
    revised_at: UtcDatetime


class DeadlineCancellation(DeadlineRevision):
    """The entry withdrawn: the deadline was cancelled (for every city that received it),
    or one city submitted (``audience`` names that city)."""

    reason: Literal["cancelled", "submitted"] = "cancelled"


class AnnouncementPublished(_Model):
    """An announcement going out to its audience."""

    announcement_id: Slug
    category: Literal["event", "award", "workshop", "news", "call", "other"]
    title: LocalizedTitle
    body: LocalizedText
    audience: Audience
    published_at: UtcDatetime
    link: AnyLink | None = None


class DeadlineSubmitted(_Model):
    """A city has submitted what a deadline asked for: no more reminders for it."""

    deadline_id: Slug
    city_id: Slug
    submitted_at: UtcDatetime
    source: Annotated[str, Field(min_length=1, max_length=100)]


#: The states a notice goes through (``gnlc_core.ledger.Status``'s values; the ledger
#: imports this module, so they are spelled out here and a test keeps them equal).
NoticeState = Literal[
    "scheduled",
    "sent",
    "delivered",
    "retrying",
    "failed",
    "dropped",
    "unsubscribed",
    "held",
    "bounced",
]
Channel = Annotated[str, Field(pattern=r"^[a-z][a-z0-9-]{0,15}$", max_length=16)]


class NoticeStatus(_Model):
    """A notice's new state, published by the service that recorded it (a receipt).

    A notice is (event id, channel, recipient): ``schedule`` is the scheduler's plan (the
    recipient is the city), ``email`` a contact (``city:address``), ``webhook`` an
    endpoint. What the event was about (deadline and step, or announcement; city, partner)
    is carried along so a status view needs nothing else; a field a service does not know
    is left out."""

    event_id: Annotated[str, Field(min_length=1, max_length=64)]
    channel: Channel
    recipient: Annotated[str, Field(min_length=1, max_length=320)]
    state: NoticeState
    reason: Annotated[str, Field(max_length=2000)] | None = None
    attempts: Annotated[int, Field(ge=0, le=1000)] = 0
    state_time: UtcDatetime
    event_type: Literal["deadline.reminder", "announcement.published"] | None = None
    event_time: UtcDatetime | None = None
    deadline_id: Slug | None = None
    step: Annotated[str, Field(pattern=r"^(due|\d+[dhms]-(before|overdue))$")] | None = None
    announcement_id: Slug | None = None
    city_id: Slug | None = None
    partner_id: Slug | None = None
    #: ``scheduled``: when the step goes out.
    send_at: UtcDatetime | None = None


class CloudEvent(_Model):
    """The CloudEvents 1.0 envelope every event type extends."""

    specversion: Literal["1.0"] = "1.0"
    type: str
    id: Annotated[str, Field(min_length=1)]
    source: Annotated[str, Field(min_length=1)]
    time: UtcDatetime
    datacontenttype: Literal["application/json"] = "application/json"
    subject: str | None = None
    partitionkey: Annotated[str, Field(min_length=1)]
    #: Distributed-tracing extension: the context of the span that published the event
    #: (``gnlc_core.tracing``); only when tracing is on. Not checked beyond its length: an
    #: unreadable one is ignored, never a reason to refuse the event.
    traceparent: Annotated[str, Field(max_length=MAX_TRACEPARENT_CHARS)] | None = None
    tracestate: Annotated[str, Field(max_length=MAX_TRACESTATE_CHARS)] | None = None


class DeadlineReminderEvent(CloudEvent):
    type: Literal["deadline.reminder"] = "deadline.reminder"
    data: DeadlineReminder


class AnnouncementPublishedEvent(CloudEvent):
    type: Literal["announcement.published"] = "announcement.published"
    data: AnnouncementPublished


class DeadlineSubmittedEvent(CloudEvent):
    type: Literal["deadline.submitted"] = "deadline.submitted"
    data: DeadlineSubmitted


class DeadlineUpdatedEvent(CloudEvent):
    type: Literal["deadline.updated"] = "deadline.updated"
    data: DeadlineRevision


class DeadlineCancelledEvent(CloudEvent):
    type: Literal["deadline.cancelled"] = "deadline.cancelled"
    data: DeadlineCancellation


class NoticeStatusEvent(CloudEvent):
    type: Literal["notice.status"] = "notice.status"
    data: NoticeStatus


def receipt_event(receipt: NoticeStatus, *, source: str) -> NoticeStatusEvent:
    """The envelope for a receipt: its id names the notice, state, attempts and moment
    (the same write told twice has the same id). Receipts may be published in batches to
    any partition: the status view does not depend on their order."""
    return NoticeStatusEvent(
        id=stable_id(
            "notice.status",
            receipt.event_id,
            receipt.channel,
            receipt.recipient,
            receipt.state,
            str(receipt.attempts),
            receipt.state_time.isoformat(),
        ),
        source=source,
        time=receipt.state_time,
        subject=f"notices/{receipt.event_id}/{receipt.channel}",
        partitionkey=receipt.event_id,
        data=receipt,
    )


def submission_event(submission: DeadlineSubmitted, *, source: str) -> DeadlineSubmittedEvent:
    """The envelope for a submission; keyed by (deadline, city), so a compacted topic keeps
    the latest per city."""
    return DeadlineSubmittedEvent(
        id=stable_id("deadline.submitted", submission.deadline_id, submission.city_id),
        source=source,
        time=submission.submitted_at,
        subject=f"deadlines/{submission.deadline_id}/cities/{submission.city_id}",
        partitionkey=f"{submission.deadline_id}/{submission.city_id}",
        data=submission,
    )


Event = Annotated[DeadlineReminderEvent | AnnouncementPublishedEvent, Field(discriminator="type")]
EVENT_TYPES: dict[str, type[DeadlineReminderEvent | AnnouncementPublishedEvent]] = {
    "deadline.reminder": DeadlineReminderEvent,
    "announcement.published": AnnouncementPublishedEvent,
}
#: Changes of a deadline's calendar entry, for the cities that received it (email only:
#: not offered to partners' endpoints).
ChangeEvent = DeadlineUpdatedEvent | DeadlineCancelledEvent
CHANGE_EVENT_TYPES: dict[str, type[ChangeEvent]] = {
    "deadline.updated": DeadlineUpdatedEvent,
    "deadline.cancelled": DeadlineCancelledEvent,
}
#: What the scheduler's outbox emits.
SCHEDULED_EVENT_TYPES: dict[str, type[CloudEvent]] = {**EVENT_TYPES, **CHANGE_EVENT_TYPES}
#: Every event type with a published schema, inbound ones included.
ALL_EVENT_TYPES: dict[str, type[CloudEvent]] = {
    **SCHEDULED_EVENT_TYPES,
    "deadline.submitted": DeadlineSubmittedEvent,
    "notice.status": NoticeStatusEvent,
}
_event_adapter: TypeAdapter[DeadlineReminderEvent | AnnouncementPublishedEvent] = TypeAdapter(Event)
AnyEvent = DeadlineReminderEvent | AnnouncementPublishedEvent | ChangeEvent
_any_adapter: TypeAdapter[AnyEvent] = TypeAdapter(Annotated[AnyEvent, Field(discriminator="type")])


def parse_event(
    raw: bytes | str | dict[str, Any],
) -> DeadlineReminderEvent | AnnouncementPublishedEvent:
    """Parse and validate one structured-mode CloudEvent; raises ``pydantic.ValidationError``."""
    if isinstance(raw, dict):
        return _event_adapter.validate_python(raw)
    return _event_adapter.validate_json(raw)


def parse_any_event(raw: bytes | str) -> AnyEvent:
    """Parse a domain event or a change of a deadline's calendar entry."""
    return _any_adapter.validate_json(raw)


def parse_submission(raw: bytes | str) -> DeadlineSubmittedEvent:
    """Parse and validate a ``deadline.submitted`` event; raises ``ValidationError``."""
    return DeadlineSubmittedEvent.model_validate_json(raw)


def encode_event(event: CloudEvent) -> bytes:
    """The record value: the envelope as compact JSON, ``None`` fields left out."""
    return event.model_dump_json(exclude_none=True).encode()


def stable_id(*parts: str) -> str:
    """A deterministic event id: the same business fact always gets the same id.

    ``str(uuid.uuid5(_ID_NAMESPACE, "/".join(parts)))``, computed without the ``UUID``
    object (a receipt per delivery asks for one: a third of the time of building it)."""
    name = _NAMESPACE_BYTES + "/".join(parts).encode()
    digest = bytearray(hashlib.sha1(name, usedforsecurity=False).digest()[:16])  # as uuid5
    digest[6] = (digest[6] & 0x0F) | 0x50  # version 5
    digest[8] = (digest[8] & 0x3F) | 0x80  # RFC 4122 variant
    h = digest.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def envelope(
    event_type: str,
    *,
    event_id: str,
    data: dict[str, Any],
    time: datetime,
    partition_key: str,
    subject: str | None = None,
) -> CloudEvent:
    """Wrap stored event data (as JSON-ready dict) in its envelope; validates it."""
    return SCHEDULED_EVENT_TYPES[event_type].model_validate(
        {
            "id": event_id,
            "source": SOURCE_SCHEDULER,
            "time": time,
            "subject": subject,
            "partitionkey": partition_key,
            "data": data,
        }
    )


def reminder_event(reminder: DeadlineReminder, *, fired_at: datetime) -> DeadlineReminderEvent:
    """The envelope for a reminder step; its id depends only on deadline, due moment and step."""
    return DeadlineReminderEvent(
        id=stable_id(
            "deadline.reminder", reminder.deadline_id, reminder.due_at.isoformat(), reminder.step
        ),
        source=SOURCE_SCHEDULER,
        time=fired_at,
        subject=f"deadlines/{reminder.deadline_id}",
        partitionkey=reminder.deadline_id,
        data=reminder,
    )


def announcement_event(announcement: AnnouncementPublished) -> AnnouncementPublishedEvent:
    """The envelope for an announcement; its id depends only on the announcement."""
    return AnnouncementPublishedEvent(
        id=stable_id("announcement.published", announcement.announcement_id),
        source=SOURCE_SCHEDULER,
        time=announcement.published_at,
        subject=f"announcements/{announcement.announcement_id}",
        partitionkey=announcement.announcement_id,
        data=announcement,
    )


def change_event(
    revision: DeadlineRevision, *, city_id: str | None = None
) -> DeadlineUpdatedEvent | DeadlineCancelledEvent:
    """The envelope of a change of a deadline's calendar entry; its id depends on the
    deadline, the revision and (for one city's cancellation) the city."""
    cancelled = isinstance(revision, DeadlineCancellation)
    kind = "deadline.cancelled" if cancelled else "deadline.updated"
    parts = [kind, revision.deadline_id, str(revision.sequence)]
    subject = f"deadlines/{revision.deadline_id}"
    if city_id is not None:
        parts.append(city_id)
        subject += f"/cities/{city_id}"
    fields: dict[str, Any] = {
        "id": stable_id(*parts),
        "source": SOURCE_SCHEDULER,
        "time": revision.revised_at,
        "subject": subject,
        "partitionkey": revision.deadline_id,
    }
    if isinstance(revision, DeadlineCancellation):
        return DeadlineCancelledEvent(**fields, data=revision)
    return DeadlineUpdatedEvent(**fields, data=revision)
