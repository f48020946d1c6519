"""The scheduler's durable state, and the rules that keep its outbox right.

Every event the scheduler will emit is a row of the outbox, written in the same transaction
as the change that caused it (a deadline saved, a submission recorded, an announcement
scheduled). The dispatcher only ever drains the outbox, so a crash between a change and its
events is impossible, and a restart finds everything still to do.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import and_, delete, func, or_, select, true, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from gnlc_core import tracing
from gnlc_core.directory import City, Directory
from gnlc_core.events import (
    AnnouncementPublished,
    Audience,
    DeadlineCancellation,
    DeadlineReminder,
    DeadlineRevision,
    NoticeStatus,
    change_event,
    encode_event,
    envelope,
    stable_id,
)
from gnlc_core.kafka import MAX_EVENT_BYTES
from gnlc_core.ledger import Status
from gnlc_scheduler import receipts
from gnlc_scheduler.deadlines import Announcement, Deadline, parse_offset
from gnlc_scheduler.plan import Dropped, NotScheduled, schedule_for_city, step_label
from gnlc_scheduler.tables import announcements, cities, deadlines, outbox, submissions


class OutboxState(StrEnum):
    """Where an outbox row is: waiting, being published, done, or not to be published."""

    PENDING = "pending"  # waits for its instant (or for its next attempt after a failure)
    CLAIMED = "claimed"  # an instance is publishing it
    EMITTED = "emitted"  # on Kafka
    CANCELLED = "cancelled"  # withdrawn, cancelled, or the city submitted
    SKIPPED = "skipped"  # missed: its instant passed while no instance ran
    PARKED = "parked"  # could not be published (``last_error`` says why); not retried


PENDING, CLAIMED, EMITTED, CANCELLED, SKIPPED, PARKED = (
    OutboxState.PENDING,
    OutboxState.CLAIMED,
    OutboxState.EMITTED,
    OutboxState.CANCELLED,
    OutboxState.SKIPPED,
    OutboxState.PARKED,
)
#: Rows a cancellation or a withdrawal stops: everything not yet on Kafka.
_STOPPABLE = (PENDING, CLAIMED, PARKED)


class DeadlineState(StrEnum):
    """A deadline as the operator sees it (``past`` is derived, never stored)."""

    ACTIVE = "active"  # reminders still to send, or the due moment still ahead
    PAST = "past"  # the due moment has passed and nothing is pending
    CANCELLED = "cancelled"


class AnnouncementState(StrEnum):
    SCHEDULED = "scheduled"
    PUBLISHED = "published"
    WITHDRAWN = "withdrawn"


class Conflict(Exception):
    """The change is not allowed in the current state (HTTP 409)."""


class TooLarge(ValueError):
    """An event would be larger than Kafka takes (HTTP 413); nothing was stored."""


class NotFound(LookupError):
    """No such deadline, announcement or city (HTTP 404)."""


def _traced(rows: list[dict[str, Any]], now: datetime) -> list[dict[str, Any]]:
    """``rows`` with the current trace context (the API call's), to continue or link to when
    they are emitted; ``rows`` themselves when tracing is off."""
    trace = tracing.stored_trace(now)
    return rows if trace is None else [{**row, "trace": trace} for row in rows]


def _insert(connection: AsyncConnection) -> Any:
    return postgresql.insert if connection.dialect.name == "postgresql" else sqlite.insert


#: What an outbox update hands back for the receipts of the rows it changed.
_STEP_COLUMNS = (
    outbox.c.event_id,
    outbox.c.deadline_id,
    outbox.c.city_id,
    outbox.c.step,
    outbox.c.fire_at,
)


async def _publish_receipts(
    connection: AsyncConnection, found: Sequence[NoticeStatus], now: datetime
) -> None:
    """Receipts into the outbox, in the caller's transaction (the same receipt twice is
    one row)."""
    rows = receipts.outbox_rows(found, now=now)
    if rows:
        statement = _insert(connection)(outbox).on_conflict_do_nothing()
        await connection.execute(statement, rows)


async def _changed(
    connection: AsyncConnection, statement: Any, state: Status, now: datetime, reason: str
) -> int:
    """Run an outbox UPDATE or DELETE and write the receipts of the reminder rows it
    changed (now in ``state``); returns how many rows it changed."""
    changed = (await connection.execute(statement.returning(*_STEP_COLUMNS))).mappings().all()
    found = receipts.of_rows(changed, state, at=now, reason=reason)
    await _publish_receipts(connection, found, now)
    return len(changed)


# -- cities -------------------------------------------------------------------------------


async def import_cities(engine: AsyncEngine, directory: Directory, now: datetime) -> int:
    """Insert or update every city of ``directory`` in one transaction; returns the count."""
    if not len(directory):
        return 0
    async with engine.begin() as connection:
        statement = _insert(connection)(cities)
        statement = statement.on_conflict_do_update(
            index_elements=["id"],
            set_={
                column: statement.excluded[column]
                for column in (
                    "name",
                    "country",
                    "region",
                    "timezone",
                    "language",
                    "languages",
                    "contacts",
                    "active",
                    "digest",
                    "updated_at",
                )
            },
        )
        await connection.execute(
            statement,
            [{**city.model_dump(mode="json"), "updated_at": now} for city in directory],
        )
    return len(directory)


async def load_directory(engine: AsyncEngine) -> Directory:
    async with engine.connect() as connection:
        rows = (await connection.execute(select(cities).order_by(cities.c.id))).mappings()
        return Directory(
            tuple(
                City.model_validate({k: v for k, v in row.items() if k != "updated_at"})
                for row in rows
            )
        )


# -- deadlines ----------------------------------------------------------------------------


def link_columns(link: str | dict[str, str] | None) -> dict[str, Any]:
    """A link as stored: one link in ``link``, a link per language in ``links``."""
    if isinstance(link, dict):
        return {"link": None, "links": link}
    return {"link": link, "links": None}


def _with_link(row: Any) -> dict[str, Any]:
    """A stored row with its link as the API gives it: one, or one per language."""
    out = dict(row)
    links = out.pop("links", None)
    if links:
        out["link"] = links
    return out


def _deadline_row(deadline: Deadline, now: datetime) -> dict[str, Any]:
    data = deadline.model_dump(mode="json")
    return {
        **data,
        **link_columns(data.get("link")),
        "due_at": deadline.due_at,
        "reminders": list(deadline.reminders),
        "state": DeadlineState.ACTIVE,
        "updated_at": now,
    }


@dataclass(frozen=True)
class CityDropped:
    """A step that does not reach one city (the operator API lists them)."""

    city_id: str
    step: str
    reason: NotScheduled
    detail: str


@dataclass(frozen=True)
class Planned:
    """The outbox rows of a deadline, and every step of every city that is not among them."""

    rows: list[dict[str, Any]]
    not_scheduled: list[CityDropped] = field(default_factory=list)


def reminder_event_id(deadline: Deadline, city_id: str, label: str) -> str:
    return stable_id("deadline.reminder", deadline.id, city_id, deadline.due_at.isoformat(), label)


def plan_reminders(
    deadline: Deadline,
    targets: Iterable[City],
    *,
    now: datetime,
    grace: timedelta,
    submitted: frozenset[str] = frozenset(),
    existing_ids: frozenset[str] = frozenset(),
    sequence: int = 0,
    revised_at: datetime | None = None,
) -> Planned:
    """Outbox rows for every step that still makes sense for every target city, and what
    is left out: steps collapsed, past, already sent (``existing_ids``), or for cities in
    ``submitted``. The reminders carry the deadline's revision (``sequence``, made at
    ``revised_at``): their calendar entry's SEQUENCE and DTSTAMP."""
    rows = []
    dropped: list[CityDropped] = []
    labels = [step_label(offset) for offset in _offsets(deadline)]
    for city in targets:
        already = frozenset(
            label for label in labels if reminder_event_id(deadline, city.id, label) in existing_ids
        )
        plan = schedule_for_city(
            deadline,
            city.zone,
            now=now,
            grace=grace,
            submitted=city.id in submitted,
            already_sent=already,
        )
        dropped.extend(_for_city(city.id, plan.dropped))
        for step in plan.steps:
            reminder = DeadlineReminder(
                deadline_id=deadline.id,
                title=deadline.title,
                description=deadline.description,
                due_at=deadline.due_at,
                step=step.label,
                offset_seconds=int((step.fire_at - deadline.due_at).total_seconds()),
                audience=Audience(cities=(city.id,)),
                link=deadline.link,
                sequence=sequence,
                revised_at=revised_at,
            )
            rows.append(
                {
                    "event_id": reminder_event_id(deadline, city.id, step.label),
                    "type": "deadline.reminder",
                    "fire_at": step.fire_at,
                    "state": PENDING,
                    "deadline_id": deadline.id,
                    "city_id": city.id,
                    "announcement_id": None,
                    "step": step.label,
                    "partition_key": f"{deadline.id}/{city.id}",
                    "data": reminder.model_dump(mode="json", exclude_none=True),
                }
            )
    return Planned(rows, dropped)


def _offsets(deadline: Deadline) -> list[timedelta]:
    return [parse_offset(text) for text in deadline.reminders]


def _for_city(city_id: str, dropped: Iterable[Dropped]) -> list[CityDropped]:
    return [CityDropped(city_id, d.label, d.reason, d.detail) for d in dropped]


def reminder_rows(
    deadline: Deadline,
    targets: Iterable[City],
    *,
    now: datetime,
    grace: timedelta,
) -> list[dict[str, Any]]:
    """Outbox rows for every step that still makes sense for every target city."""
    return plan_reminders(deadline, targets, now=now, grace=grace).rows


def check_fits(rows: Sequence[dict[str, Any]]) -> None:
    """Raise ``TooLarge`` when the largest event of ``rows`` would not fit on Kafka (rows
    of one deadline differ only in their city and step: the largest data is the largest
    event)."""
    if not rows:
        return
    row = max(rows, key=lambda r: len(json.dumps(r["data"], ensure_ascii=False)))
    size = len(encode_event(_envelope_of(row)))
    if size > MAX_EVENT_BYTES:
        raise TooLarge(
            f"the {row['type']} event would be {size} bytes; Kafka takes at most "
            f"{MAX_EVENT_BYTES} bytes per event: shorten the texts or the audience"
        )


def _envelope_of(row: dict[str, Any]) -> Any:
    return envelope(
        row["type"],
        event_id=row["event_id"],
        data=row["data"],
        time=row["fire_at"],
        partition_key=row["partition_key"],
        subject=subject_of(row["type"], row["data"]),
    )


def subject_of(event_type: str, data: dict[str, Any]) -> str:
    """The CloudEvents ``subject`` of a stored event."""
    if event_type == "deadline.reminder" or data.get("reason") == "submitted":
        return f"deadlines/{data['deadline_id']}/cities/{data['audience']['cities'][0]}"
    if "deadline_id" in data:
        return f"deadlines/{data['deadline_id']}"
    return f"announcements/{data['announcement_id']}"


#: What a deadline's calendar entry shows (stored columns): a change of any of them raises
#: the deadline's revision, and the cities that received the entry get it again.
ENTRY_FIELDS = ("title", "description", "due_at", "link", "links")


def entry_changed(stored: Any, values: dict[str, Any]) -> bool:
    """Whether ``values`` (a deadline row about to be written) change what the calendar
    entry of the ``stored`` row shows."""
    for name in ENTRY_FIELDS:
        old, new = stored[name], values[name]
        if name == "due_at":
            old = _aware(old)
        if old != new:
            return True
    return False


def revision_of(row: Any, *, sequence: int, at: datetime) -> DeadlineRevision:
    """A stored deadline's calendar entry as revision ``sequence`` made ``at``."""
    data = _with_link(row)
    return DeadlineRevision(
        deadline_id=data["id"],
        title=data["title"],
        description=data["description"],
        due_at=_aware(data["due_at"]),
        audience=Audience.model_validate(data["audience"]),
        link=data["link"],
        sequence=sequence,
        revised_at=at,
    )


def change_row(revision: DeadlineRevision, *, city_id: str | None = None) -> dict[str, Any]:
    """The outbox row of a ``deadline.updated`` or ``deadline.cancelled`` event: it goes
    out at once, late or not."""
    event = change_event(revision, city_id=city_id)
    return {
        "event_id": event.id,
        "type": event.type,
        "fire_at": revision.revised_at,
        "state": PENDING,
        "deadline_id": revision.deadline_id,
        "city_id": city_id,
        "announcement_id": None,
        "step": None,
        "partition_key": event.partitionkey,
        "data": revision.model_dump(mode="json", exclude_none=True),
    }


async def save_deadline(
    engine: AsyncEngine, deadline: Deadline, *, now: datetime, grace: timedelta
) -> Planned:
    """Create or replace a deadline and re-plan its pending reminders; returns the rows
    now pending and what was left out. Steps already emitted for the same due moment are
    not planned again. Nothing is stored when an event would not fit on Kafka."""
    async with engine.begin() as connection:
        existing = (
            (await connection.execute(select(deadlines).where(deadlines.c.id == deadline.id)))
            .mappings()
            .first()
        )
        if existing is not None and existing["state"] == DeadlineState.CANCELLED:
            raise Conflict(f"deadline {deadline.id!r} was cancelled; use a new id")
        values = {**_deadline_row(deadline, now), "revision": 0, "revised_at": now}
        changes: list[dict[str, Any]] = []
        if existing is not None:
            values["revision"] = existing["revision"]
            values["revised_at"] = _aware(existing["revised_at"] or existing["updated_at"])
            if entry_changed(existing, values):
                values["revision"] += 1
                values["revised_at"] = now
                changes.append(change_row(revision_of(values, sequence=values["revision"], at=now)))
        directory = await _directory(connection)
        done = frozenset(
            (
                await connection.execute(
                    select(submissions.c.city_id).where(submissions.c.deadline_id == deadline.id)
                )
            ).scalars()
        )
        already = frozenset(
            (
                await connection.execute(
                    select(outbox.c.event_id).where(
                        outbox.c.deadline_id == deadline.id,
                        outbox.c.state.not_in([PENDING, SKIPPED, PARKED]),
                    )
                )
            ).scalars()
        )
        planned = plan_reminders(
            deadline,
            directory.resolve(deadline.audience),
            now=now,
            grace=grace,
            submitted=done,
            existing_ids=already,
            sequence=values["revision"],
            revised_at=values["revised_at"],
        )
        check_fits(planned.rows)
        check_fits(changes)
        statement = _insert(connection)(deadlines).values(values)
        statement = statement.on_conflict_do_update(
            index_elements=["id"],
            set_={
                c: statement.excluded[c]
                for c in (
                    "title",
                    "description",
                    "due_at",
                    "audience",
                    "reminders",
                    "delivery_hour",
                    "link",
                    "links",
                    "updated_at",
                    "revision",
                    "revised_at",
                )
            },
        )
        await connection.execute(statement)
        replaced = (
            (
                await connection.execute(
                    delete(outbox)
                    .where(
                        outbox.c.deadline_id == deadline.id,
                        outbox.c.type == "deadline.reminder",
                        outbox.c.state.in_([PENDING, SKIPPED, PARKED]),
                    )
                    .returning(*_STEP_COLUMNS)
                )
            )
            .mappings()
            .all()
        )
        if changes:  # an update not yet published is superseded by this one
            await connection.execute(
                delete(outbox).where(
                    outbox.c.deadline_id == deadline.id,
                    outbox.c.type == "deadline.updated",
                    outbox.c.state.in_([PENDING, PARKED]),
                )
            )
        if planned.rows or changes:
            await connection.execute(outbox.insert(), _traced([*planned.rows, *changes], now))
        await _publish_receipts(connection, _plan_receipts(deadline, planned, replaced, now), now)
        return planned


def _plan_receipts(
    deadline: Deadline, planned: Planned, replaced: Sequence[Any], now: datetime
) -> list[NoticeStatus]:
    """A saved plan's receipts: each step planned is scheduled; each step not scheduled is
    dropped with its reason (unless it was sent already), and so is each step an edit took
    out of the plan."""
    found = receipts.of_rows(planned.rows, Status.SCHEDULED, at=now)
    kept = {row["event_id"] for row in planned.rows}
    for left_out in planned.not_scheduled:
        if left_out.reason is NotScheduled.ALREADY_SENT:
            continue
        event_id = reminder_event_id(deadline, left_out.city_id, left_out.step)
        kept.add(event_id)
        found.append(
            receipts.step_receipt(
                event_id,
                deadline_id=deadline.id,
                city_id=left_out.city_id,
                step=left_out.step,
                state=Status.DROPPED,
                at=now,
                reason=f"not scheduled: {left_out.reason.value}: {left_out.detail}",
            )
        )
    gone = [row for row in replaced if row["event_id"] not in kept]
    found += receipts.of_rows(gone, Status.DROPPED, at=now, reason="no longer in the plan")
    return found


async def cancel_deadline(engine: AsyncEngine, deadline_id: str, now: datetime) -> int:
    """Cancel a deadline; its pending reminders are cancelled too (returns how many), and
    the first time, its revision rises and a ``deadline.cancelled`` event withdraws its
    calendar entry from the cities that received it."""
    async with engine.begin() as connection:
        row = (
            (await connection.execute(select(deadlines).where(deadlines.c.id == deadline_id)))
            .mappings()
            .first()
        )
        if row is None:
            raise NotFound(f"no deadline {deadline_id!r}")
        cancelled = await _changed(
            connection,
            update(outbox)
            .where(
                outbox.c.deadline_id == deadline_id,
                outbox.c.type == "deadline.reminder",
                outbox.c.state.in_(_STOPPABLE),
            )
            .values(state=CANCELLED),
            Status.DROPPED,
            now,
            "deadline cancelled",
        )
        await connection.execute(  # an update not yet published: the cancellation says all
            update(outbox)
            .where(
                outbox.c.deadline_id == deadline_id,
                outbox.c.type == "deadline.updated",
                outbox.c.state.in_(_STOPPABLE),
            )
            .values(state=CANCELLED)
        )
        if row["state"] != DeadlineState.CANCELLED:
            sequence = row["revision"] + 1
            await connection.execute(
                update(deadlines)
                .where(deadlines.c.id == deadline_id)
                .values(
                    state=DeadlineState.CANCELLED,
                    updated_at=now,
                    revision=sequence,
                    revised_at=now,
                )
            )
            revision = revision_of(row, sequence=sequence, at=now)
            cancellation = DeadlineCancellation(**revision.model_dump())
            await connection.execute(outbox.insert(), [change_row(cancellation)])
        return cancelled


async def get_deadline(engine: AsyncEngine, deadline_id: str) -> dict[str, Any]:
    """The deadline as stored, with its derived ``state`` and its outbox: counts by state,
    and every parked row with its reason."""
    async with engine.connect() as connection:
        row = (
            (await connection.execute(select(deadlines).where(deadlines.c.id == deadline_id)))
            .mappings()
            .first()
        )
        if row is None:
            raise NotFound(f"no deadline {deadline_id!r}")
        counts = await _outbox_counts(connection, outbox.c.deadline_id == deadline_id)
        parked = await _outbox_rows(
            connection, and_(outbox.c.deadline_id == deadline_id, outbox.c.state == PARKED)
        )
    return {
        **_with_link(row),
        "state": deadline_state(row["state"], _aware(row["due_at"]), counts, _utc_now()),
        "outbox": counts,
        "parked": parked,
    }


async def list_deadlines(engine: AsyncEngine) -> list[dict[str, Any]]:
    """Every deadline, earliest due first, with its derived state and outbox counts."""
    async with engine.connect() as connection:
        rows = (
            (await connection.execute(select(deadlines).order_by(deadlines.c.due_at)))
            .mappings()
            .all()
        )
        counted = await connection.execute(
            select(outbox.c.deadline_id, outbox.c.state, func.count())
            .where(outbox.c.deadline_id.is_not(None))
            .group_by(outbox.c.deadline_id, outbox.c.state)
        )
        counts: dict[str, dict[str, int]] = {}
        for deadline_id, state, count in counted.all():
            counts.setdefault(deadline_id, {})[state] = int(count)
    now = _utc_now()
    return [
        {
            **_with_link(row),
            "state": deadline_state(
                row["state"], _aware(row["due_at"]), counts.get(row["id"], {}), now
            ),
            "outbox": counts.get(row["id"], {}),
        }
        for row in rows
    ]


def deadline_state(
    stored: str, due_at: datetime, outbox_counts: dict[str, int], now: datetime
) -> DeadlineState:
    """``cancelled`` as stored; else ``past`` once the due moment has passed and no
    reminder waits (pending or being published); else ``active``."""
    if stored == DeadlineState.CANCELLED:
        return DeadlineState.CANCELLED
    waiting = outbox_counts.get(PENDING, 0) + outbox_counts.get(CLAIMED, 0)
    if due_at <= now and not waiting:
        return DeadlineState.PAST
    return DeadlineState.ACTIVE


def _utc_now() -> datetime:
    return datetime.now(UTC)


async def _outbox_counts(connection: AsyncConnection, condition: Any) -> dict[str, int]:
    rows = await connection.execute(
        select(outbox.c.state, func.count()).where(condition).group_by(outbox.c.state)
    )
    return {state: int(count) for state, count in rows.all()}


_OUTBOX_COLUMNS = (
    outbox.c.event_id,
    outbox.c.type,
    outbox.c.state,
    outbox.c.fire_at,
    outbox.c.deadline_id,
    outbox.c.announcement_id,
    outbox.c.city_id,
    outbox.c.step,
    outbox.c.attempts,
    outbox.c.next_attempt_at,
    outbox.c.last_error,
    outbox.c.emitted_at,
)


async def _outbox_rows(
    connection: AsyncConnection, condition: Any, limit: int = 1000
) -> list[dict[str, Any]]:
    rows = await connection.execute(
        select(*_OUTBOX_COLUMNS).where(condition).order_by(outbox.c.fire_at).limit(limit)
    )
    return [dict(row) for row in rows.mappings()]


async def list_outbox(
    engine: AsyncEngine, *, state: OutboxState | None, limit: int
) -> list[dict[str, Any]]:
    """Outbox rows (in one state, or all), earliest first: what is parked, and why."""
    condition = outbox.c.state == state if state is not None else true()
    async with engine.connect() as connection:
        return await _outbox_rows(connection, condition, limit)


async def _directory(connection: AsyncConnection) -> Directory:
    rows = (await connection.execute(select(cities).order_by(cities.c.id))).mappings()
    return Directory(
        tuple(
            City.model_validate({k: v for k, v in row.items() if k != "updated_at"}) for row in rows
        )
    )


# -- submissions --------------------------------------------------------------------------


async def record_submission(
    engine: AsyncEngine,
    deadline_id: str,
    city_id: str,
    *,
    at: datetime,
    source: str,
    cancel_calendar: bool = False,
) -> int:
    """Record that a city submitted; its pending reminders for the deadline are cancelled
    (returns how many). Recording the same submission twice changes nothing. With
    ``cancel_calendar``, a first submission also withdraws the deadline's calendar entry
    from that city (a ``deadline.cancelled`` event for it alone)."""
    async with engine.begin() as connection:
        known = (
            (await connection.execute(select(deadlines).where(deadlines.c.id == deadline_id)))
            .mappings()
            .first()
        )
        if known is None:
            raise NotFound(f"no deadline {deadline_id!r}")
        city = (await connection.execute(select(cities.c.id).where(cities.c.id == city_id))).first()
        if city is None:
            raise NotFound(f"no city {city_id!r}")
        statement = _insert(connection)(submissions).values(
            deadline_id=deadline_id, city_id=city_id, submitted_at=at, source=source[:100]
        )
        inserted = (await connection.execute(statement.on_conflict_do_nothing())).rowcount
        cancelled = await _changed(
            connection,
            update(outbox)
            .where(  # the city's reminders (not its calendar change: a repeated submission
                # would otherwise withdraw the cancellation the first one queued)
                outbox.c.deadline_id == deadline_id,
                outbox.c.city_id == city_id,
                outbox.c.type == "deadline.reminder",
                outbox.c.state.in_(_STOPPABLE),
            )
            .values(state=CANCELLED),
            Status.DROPPED,
            _utc_now(),  # the receipt goes now, whenever the submission says it happened
            "submitted",
        )
        if inserted and cancel_calendar and known["state"] != DeadlineState.CANCELLED:
            revision = revision_of(known, sequence=known["revision"] + 1, at=at)
            cancellation = DeadlineCancellation(
                **{**revision.model_dump(), "audience": Audience(cities=(city_id,))},
                reason="submitted",
            )
            statement = _insert(connection)(outbox).values(
                change_row(cancellation, city_id=city_id)
            )
            await connection.execute(statement.on_conflict_do_nothing())
        return cancelled


async def list_submissions(engine: AsyncEngine, deadline_id: str) -> list[dict[str, Any]]:
    async with engine.connect() as connection:
        rows = await connection.execute(
            select(submissions)
            .where(submissions.c.deadline_id == deadline_id)
            .order_by(submissions.c.submitted_at)
        )
        return [dict(row) for row in rows.mappings()]


# -- announcements ------------------------------------------------------------------------


def announcement_row(announcement: Announcement, publish_at: datetime) -> dict[str, Any]:
    data = AnnouncementPublished(
        announcement_id=announcement.id,
        category=announcement.category,
        title=announcement.title,
        body=announcement.body,
        audience=announcement.audience,
        published_at=publish_at,
        link=announcement.link,
    )
    return {
        "event_id": stable_id("announcement.published", announcement.id),
        "type": "announcement.published",
        "fire_at": publish_at,
        "state": PENDING,
        "deadline_id": None,
        "city_id": None,
        "announcement_id": announcement.id,
        "step": None,
        "partition_key": announcement.id,
        "data": data.model_dump(mode="json", exclude_none=True),
    }


async def save_announcement(
    engine: AsyncEngine, announcement: Announcement, *, now: datetime
) -> dict[str, Any]:
    """Schedule (or edit) an announcement; it goes out at ``publish_at`` (now if unset)."""
    publish_at = max(announcement.publish_at or now, now)
    async with engine.begin() as connection:
        state = (
            await connection.execute(
                select(announcements.c.state).where(announcements.c.id == announcement.id)
            )
        ).scalar_one_or_none()
        if state in {AnnouncementState.PUBLISHED, AnnouncementState.WITHDRAWN}:
            raise Conflict(f"announcement {announcement.id!r} is {state} and cannot change")
        values = {
            "id": announcement.id,
            "category": announcement.category,
            "title": announcement.title,
            "body": announcement.body,
            "audience": announcement.audience.model_dump(mode="json"),
            **link_columns(announcement.link),
            "publish_at": publish_at,
            "state": AnnouncementState.SCHEDULED,
            "published_at": None,
            "updated_at": now,
        }
        row = announcement_row(announcement, publish_at)
        check_fits([row])
        statement = _insert(connection)(announcements).values(values)
        statement = statement.on_conflict_do_update(
            index_elements=["id"], set_={k: statement.excluded[k] for k in values if k != "id"}
        )
        await connection.execute(statement)
        await connection.execute(delete(outbox).where(outbox.c.event_id == row["event_id"]))
        await connection.execute(outbox.insert(), _traced([row], now))
        return row


async def withdraw_announcement(engine: AsyncEngine, announcement_id: str, now: datetime) -> None:
    async with engine.begin() as connection:
        state = (
            await connection.execute(
                select(announcements.c.state).where(announcements.c.id == announcement_id)
            )
        ).scalar_one_or_none()
        if state is None:
            raise NotFound(f"no announcement {announcement_id!r}")
        if state != AnnouncementState.SCHEDULED:
            raise Conflict(f"announcement {announcement_id!r} is {state}; it cannot be withdrawn")
        await connection.execute(
            update(announcements)
            .where(announcements.c.id == announcement_id)
            .values(state=AnnouncementState.WITHDRAWN, updated_at=now)
        )
        await connection.execute(
            update(outbox)
            .where(outbox.c.announcement_id == announcement_id, outbox.c.state.in_(_STOPPABLE))
            .values(state=CANCELLED)
        )


async def get_announcement(engine: AsyncEngine, announcement_id: str) -> dict[str, Any]:
    """The announcement with its outbox row (state, attempts, the last error)."""
    async with engine.connect() as connection:
        row = (
            (
                await connection.execute(
                    select(announcements).where(announcements.c.id == announcement_id)
                )
            )
            .mappings()
            .first()
        )
        if row is None:
            raise NotFound(f"no announcement {announcement_id!r}")
        rows = await _outbox_rows(connection, outbox.c.announcement_id == announcement_id)
    return {**_with_link(row), "outbox": rows[0] if rows else None}


async def list_announcements(engine: AsyncEngine, *, limit: int) -> list[dict[str, Any]]:
    """Announcements, latest publication first, each with its outbox state."""
    async with engine.connect() as connection:
        rows = await connection.execute(
            select(announcements, outbox.c.state.label("outbox_state"))
            .select_from(
                announcements.outerjoin(outbox, outbox.c.announcement_id == announcements.c.id)
            )
            .order_by(announcements.c.publish_at.desc())
            .limit(limit)
        )
        return [_with_link(row) for row in rows.mappings()]


# -- the outbox ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Due:
    event_id: str
    type: str
    fire_at: datetime
    partition_key: str
    data: dict[str, Any]
    announcement_id: str | None
    attempts: int = 0
    #: When the first failed attempt was claimed: its event may be on Kafka after all.
    first_attempt_at: datetime | None = None
    #: The trace context of the API call that wrote the row (``tracing.stored_trace``).
    trace: dict[str, str] | None = None


async def claim_due(
    engine: AsyncEngine,
    *,
    now: datetime,
    instance: str,
    limit: int,
) -> list[Due]:
    """Claim up to ``limit`` pending rows that are due, for this instance alone. On
    PostgreSQL concurrent claimers skip each other's rows (SKIP LOCKED); SQLite serialises
    writers anyway."""
    due = and_(
        outbox.c.state == PENDING,
        outbox.c.fire_at <= now,
        or_(outbox.c.next_attempt_at.is_(None), outbox.c.next_attempt_at <= now),
    )
    return await _claim(engine, due, now=now, instance=instance, limit=limit)


async def reclaim_stale(
    engine: AsyncEngine,
    *,
    now: datetime,
    instance: str,
    stale_before: datetime,
    limit: int,
) -> tuple[list[Due], datetime | None]:
    """Take over rows another instance claimed before ``stale_before`` and never settled
    (it died), with the earliest moment they had been claimed. Their events may or may not
    be on Kafka already: see ``recovery``."""
    stale = and_(outbox.c.state == CLAIMED, outbox.c.claimed_at < stale_before)
    async with engine.connect() as connection:
        oldest = (
            await connection.execute(select(func.min(outbox.c.claimed_at)).where(stale))
        ).scalar_one_or_none()
    if oldest is None:
        return [], None
    rows = await _claim(engine, stale, now=now, instance=instance, limit=limit)
    return rows, _aware(oldest)


async def _claim(
    engine: AsyncEngine, condition: Any, *, now: datetime, instance: str, limit: int
) -> list[Due]:
    async with engine.begin() as connection:
        candidates = (
            select(outbox.c.event_id).where(condition).order_by(outbox.c.fire_at).limit(limit)
        )
        if connection.dialect.name == "postgresql":
            candidates = candidates.with_for_update(skip_locked=True)
        statement = (
            update(outbox)
            .where(outbox.c.event_id.in_(candidates.scalar_subquery()), condition)
            .values(state=CLAIMED, claimed_by=instance, claimed_at=now)
            .returning(
                outbox.c.event_id,
                outbox.c.type,
                outbox.c.fire_at,
                outbox.c.partition_key,
                outbox.c.data,
                outbox.c.announcement_id,
                outbox.c.attempts,
                outbox.c.first_attempt_at,
                outbox.c.trace,
            )
        )
        rows = (await connection.execute(statement)).all()
    claimed = [
        Due(
            event_id=row.event_id,
            type=row.type,
            fire_at=_aware(row.fire_at),
            partition_key=row.partition_key,
            data=row.data,
            announcement_id=row.announcement_id,
            attempts=row.attempts,
            first_attempt_at=_aware(row.first_attempt_at) if row.first_attempt_at else None,
            trace=row.trace,
        )
        for row in rows
    ]
    return sorted(claimed, key=lambda d: d.fire_at)


async def settle(
    engine: AsyncEngine,
    *,
    emitted: Sequence[Due],
    skipped: Sequence[Due],
    at: datetime,
) -> None:
    """Mark claimed rows emitted (or skipped); an announcement emitted is published. A row
    cancelled while it was being published stays cancelled."""
    claimed = outbox.c.state == CLAIMED
    async with engine.begin() as connection:
        if emitted:
            await _changed(
                connection,
                update(outbox)
                .where(outbox.c.event_id.in_([d.event_id for d in emitted]), claimed)
                .values(state=EMITTED, emitted_at=at, next_attempt_at=None),
                Status.SENT,
                at,
                "on Kafka: handed to the channels",
            )
            published = [d.announcement_id for d in emitted if d.announcement_id]
            if published:
                await connection.execute(
                    update(announcements)
                    .where(
                        announcements.c.id.in_(published),
                        announcements.c.state == AnnouncementState.SCHEDULED,
                    )
                    .values(state=AnnouncementState.PUBLISHED, published_at=at, updated_at=at)
                )
        if skipped:
            await _changed(
                connection,
                update(outbox)
                .where(outbox.c.event_id.in_([d.event_id for d in skipped]), claimed)
                .values(state=SKIPPED),
                Status.DROPPED,
                at,
                "missed: its instant passed while no scheduler ran",
            )


@dataclass(frozen=True)
class Failure:
    """A claimed row whose event could not be published, and what to do about it."""

    due: Due
    reason: str
    #: ``None``: park it (give up); else the moment of its next attempt.
    retry_at: datetime | None


async def failed(engine: AsyncEngine, failures: Sequence[Failure]) -> None:
    """Record failed attempts: each row goes back to ``pending`` until its ``retry_at``, or
    is ``parked`` with its reason. Rows cancelled meanwhile stay cancelled."""
    if not failures:
        return
    now = _utc_now()
    async with engine.begin() as connection:
        for failure in failures:
            statement = (
                update(outbox)
                .where(outbox.c.event_id == failure.due.event_id, outbox.c.state == CLAIMED)
                .values(
                    state=PENDING if failure.retry_at is not None else PARKED,
                    attempts=outbox.c.attempts + 1,
                    first_attempt_at=func.coalesce(outbox.c.first_attempt_at, outbox.c.claimed_at),
                    next_attempt_at=failure.retry_at,
                    last_error=failure.reason[:2000],
                    claimed_by=None,
                )
            )
            if failure.retry_at is not None:
                await connection.execute(statement)
            else:  # parked: the step will not go out
                await _changed(
                    connection, statement, Status.FAILED, now, f"parked: {failure.reason}"
                )


async def next_fire_at(engine: AsyncEngine) -> datetime | None:
    async with engine.connect() as connection:
        value = (
            await connection.execute(
                select(func.min(func.coalesce(outbox.c.next_attempt_at, outbox.c.fire_at))).where(
                    outbox.c.state == PENDING
                )
            )
        ).scalar_one_or_none()
    return _aware(value) if value is not None else None


#: What the schedule lists: events planned for an instant (a change of a calendar entry
#: goes out at once and is not listed).
_PLANNED = ("deadline.reminder", "announcement.published")


async def upcoming(
    engine: AsyncEngine, *, limit: int = 100, deadline_id: str | None = None
) -> list[dict[str, Any]]:
    """Pending events, earliest first, with each city's time zone for local display."""
    query = (
        select(
            outbox.c.event_id,
            outbox.c.type,
            outbox.c.fire_at,
            outbox.c.attempts,
            outbox.c.next_attempt_at,
            outbox.c.last_error,
            outbox.c.deadline_id,
            outbox.c.city_id,
            outbox.c.announcement_id,
            outbox.c.step,
            cities.c.timezone,
        )
        .select_from(outbox.outerjoin(cities, cities.c.id == outbox.c.city_id))
        .where(outbox.c.state == PENDING, outbox.c.type.in_(_PLANNED))
        .order_by(outbox.c.fire_at)
        .limit(limit)
    )
    if deadline_id is not None:
        query = query.where(outbox.c.deadline_id == deadline_id)
    async with engine.connect() as connection:
        rows = (await connection.execute(query)).mappings().all()
    return [{**row, "fire_at": _aware(row["fire_at"])} for row in rows]


#: Outbox states whose rows are still to be published (or need the operator: parked).
WAITING_STATES = (OutboxState.PENDING, OutboxState.CLAIMED, OutboxState.PARKED)


async def waiting(engine: AsyncEngine, now: datetime) -> tuple[dict[str, int], datetime | None]:
    """Rows per waiting state (``WAITING_STATES``, each present), and the earliest instant
    of a pending row already due (None when none is): what the metrics show. Both queries
    use the (state, fire_at) index."""
    async with engine.connect() as connection:
        rows = await connection.execute(
            select(outbox.c.state, func.count())
            .where(outbox.c.state.in_([s.value for s in WAITING_STATES]))
            .group_by(outbox.c.state)
        )
        counts = {state.value: 0 for state in WAITING_STATES}
        counts.update({state: int(count) for state, count in rows.all()})
        oldest = (
            await connection.execute(
                select(func.min(outbox.c.fire_at)).where(
                    outbox.c.state == OutboxState.PENDING.value, outbox.c.fire_at <= now
                )
            )
        ).scalar_one_or_none()
    return counts, _aware(oldest) if oldest is not None else None


async def count_by_state(engine: AsyncEngine) -> dict[str, int]:
    async with engine.connect() as connection:
        rows = await connection.execute(
            select(outbox.c.state, func.count()).group_by(outbox.c.state)
        )
        return {state: int(count) for state, count in rows.all()}


def _aware(value: datetime) -> datetime:
    """SQLite hands back naive datetimes; every stored instant is UTC."""
    return value if value.tzinfo else value.replace(tzinfo=UTC)
