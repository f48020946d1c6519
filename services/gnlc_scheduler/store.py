"""The scheduler's durable state, and the rules that keep its outbox right.

Every event the scheduler will emit is a row of the outbox, written in the same transaction
as the change that caused it (a deadline saved, a submission recorded, an announcement
scheduled). The dispatcher only ever drains the outbox, so a crash between a change and its
events is impossible, and a restart finds everything still to do.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import and_, delete, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from gnlc_core.directory import City, Directory
from gnlc_core.events import (
    AnnouncementPublished,
    Audience,
    DeadlineReminder,
    stable_id,
)
from gnlc_scheduler.deadlines import Announcement, Deadline
from gnlc_scheduler.plan import city_steps
from gnlc_scheduler.tables import announcements, cities, deadlines, outbox, submissions

PENDING, CLAIMED, EMITTED, CANCELLED, SKIPPED = (
    "pending",
    "claimed",
    "emitted",
    "cancelled",
    "skipped",
)


class Conflict(Exception):
    """The change is not allowed in the current state (HTTP 409)."""


class NotFound(LookupError):
    """No such deadline, announcement or city (HTTP 404)."""


def _insert(connection: AsyncConnection) -> Any:
    return postgresql.insert if connection.dialect.name == "postgresql" else sqlite.insert


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
                    "contacts",
                    "active",
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


def _deadline_row(deadline: Deadline, now: datetime) -> dict[str, Any]:
    data = deadline.model_dump(mode="json")
    return {
        **data,
        "due_at": deadline.due_at,
        "reminders": list(deadline.reminders),
        "state": "active",
        "updated_at": now,
    }


def reminder_rows(
    deadline: Deadline,
    targets: Iterable[City],
    *,
    now: datetime,
    grace: timedelta,
) -> list[dict[str, Any]]:
    """Outbox rows for every step that still makes sense for every target city."""
    rows = []
    for city in targets:
        for step in city_steps(deadline, city.zone):
            if step.fire_at < now and not step.still_useful(now, deadline.due_at, grace):
                continue
            reminder = DeadlineReminder(
                deadline_id=deadline.id,
                title=deadline.title,
                description=deadline.description,
                due_at=deadline.due_at,
                step=step.label,
                offset_seconds=int((step.fire_at - deadline.due_at).total_seconds()),
                audience=Audience(cities=(city.id,)),
                link=deadline.link,
            )
            rows.append(
                {
                    "event_id": stable_id(
                        "deadline.reminder",
                        deadline.id,
                        city.id,
                        deadline.due_at.isoformat(),
                        step.label,
                    ),
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
    return rows


async def save_deadline(
    engine: AsyncEngine, deadline: Deadline, *, now: datetime, grace: timedelta
) -> list[dict[str, Any]]:
    """Create or replace a deadline and re-plan its pending reminders; returns the rows
    now pending. Steps already emitted for the same due moment are not planned again."""
    async with engine.begin() as connection:
        existing = (
            await connection.execute(select(deadlines.c.state).where(deadlines.c.id == deadline.id))
        ).scalar_one_or_none()
        if existing == "cancelled":
            raise Conflict(f"deadline {deadline.id!r} was cancelled; use a new id")
        statement = _insert(connection)(deadlines).values(_deadline_row(deadline, now))
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
                    "updated_at",
                )
            },
        )
        await connection.execute(statement)
        await connection.execute(
            delete(outbox).where(
                outbox.c.deadline_id == deadline.id, outbox.c.state.in_([PENDING, SKIPPED])
            )
        )
        directory = await _directory(connection)
        done = set(
            (
                await connection.execute(
                    select(submissions.c.city_id).where(submissions.c.deadline_id == deadline.id)
                )
            ).scalars()
        )
        targets = [city for city in directory.resolve(deadline.audience) if city.id not in done]
        rows = reminder_rows(deadline, targets, now=now, grace=grace)
        already = set(
            (
                await connection.execute(
                    select(outbox.c.event_id).where(outbox.c.deadline_id == deadline.id)
                )
            ).scalars()
        )
        rows = [row for row in rows if row["event_id"] not in already]
        if rows:
            await connection.execute(outbox.insert(), rows)
        return rows


async def cancel_deadline(engine: AsyncEngine, deadline_id: str, now: datetime) -> int:
    """Cancel a deadline; its pending reminders are cancelled too (returns how many)."""
    async with engine.begin() as connection:
        found = await connection.execute(
            update(deadlines)
            .where(deadlines.c.id == deadline_id)
            .values(state="cancelled", updated_at=now)
        )
        if not found.rowcount:
            raise NotFound(f"no deadline {deadline_id!r}")
        result = await connection.execute(
            update(outbox)
            .where(outbox.c.deadline_id == deadline_id, outbox.c.state == PENDING)
            .values(state=CANCELLED)
        )
        return int(result.rowcount)


async def get_deadline(engine: AsyncEngine, deadline_id: str) -> dict[str, Any]:
    async with engine.connect() as connection:
        row = (
            (await connection.execute(select(deadlines).where(deadlines.c.id == deadline_id)))
            .mappings()
            .first()
        )
    if row is None:
        raise NotFound(f"no deadline {deadline_id!r}")
    return dict(row)


async def list_deadlines(engine: AsyncEngine) -> list[dict[str, Any]]:
    async with engine.connect() as connection:
        rows = await connection.execute(select(deadlines).order_by(deadlines.c.due_at))
        return [dict(row) for row in rows.mappings()]


async def _directory(connection: AsyncConnection) -> Directory:
    rows = (await connection.execute(select(cities).order_by(cities.c.id))).mappings()
    return Directory(
        tuple(
            City.model_validate({k: v for k, v in row.items() if k != "updated_at"}) for row in rows
        )
    )


# -- submissions --------------------------------------------------------------------------


async def record_submission(
    engine: AsyncEngine, deadline_id: str, city_id: str, *, at: datetime, source: str
) -> int:
    """Record that a city submitted; its pending reminders for the deadline are cancelled
    (returns how many). Recording the same submission twice changes nothing."""
    async with engine.begin() as connection:
        known = (
            await connection.execute(select(deadlines.c.id).where(deadlines.c.id == deadline_id))
        ).first()
        if known is None:
            raise NotFound(f"no deadline {deadline_id!r}")
        city = (await connection.execute(select(cities.c.id).where(cities.c.id == city_id))).first()
        if city is None:
            raise NotFound(f"no city {city_id!r}")
        statement = _insert(connection)(submissions).values(
            deadline_id=deadline_id, city_id=city_id, submitted_at=at, source=source[:100]
        )
        await connection.execute(statement.on_conflict_do_nothing())
        result = await connection.execute(
            update(outbox)
            .where(
                outbox.c.deadline_id == deadline_id,
                outbox.c.city_id == city_id,
                outbox.c.state == PENDING,
            )
            .values(state=CANCELLED)
        )
        return int(result.rowcount)


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
        if state in {"published", "withdrawn"}:
            raise Conflict(f"announcement {announcement.id!r} is {state} and cannot change")
        values = {
            "id": announcement.id,
            "category": announcement.category,
            "title": announcement.title,
            "body": announcement.body,
            "audience": announcement.audience.model_dump(mode="json"),
            "link": announcement.link,
            "publish_at": publish_at,
            "state": "scheduled",
            "published_at": None,
            "updated_at": now,
        }
        statement = _insert(connection)(announcements).values(values)
        statement = statement.on_conflict_do_update(
            index_elements=["id"], set_={k: statement.excluded[k] for k in values if k != "id"}
        )
        await connection.execute(statement)
        row = announcement_row(announcement, publish_at)
        await connection.execute(delete(outbox).where(outbox.c.event_id == row["event_id"]))
        await connection.execute(outbox.insert(), [row])
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
        if state != "scheduled":
            raise Conflict(f"announcement {announcement_id!r} is {state}; it cannot be withdrawn")
        await connection.execute(
            update(announcements)
            .where(announcements.c.id == announcement_id)
            .values(state="withdrawn", updated_at=now)
        )
        await connection.execute(
            update(outbox)
            .where(outbox.c.announcement_id == announcement_id, outbox.c.state == PENDING)
            .values(state=CANCELLED)
        )


async def get_announcement(engine: AsyncEngine, announcement_id: str) -> dict[str, Any]:
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
    return dict(row)


# -- the outbox ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Due:
    event_id: str
    type: str
    fire_at: datetime
    partition_key: str
    data: dict[str, Any]
    announcement_id: str | None


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
    due = and_(outbox.c.state == PENDING, outbox.c.fire_at <= now)
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
    """Mark claimed rows emitted (or skipped); an announcement emitted is published."""
    async with engine.begin() as connection:
        if emitted:
            await connection.execute(
                update(outbox)
                .where(outbox.c.event_id.in_([d.event_id for d in emitted]))
                .values(state=EMITTED, emitted_at=at)
            )
            published = [d.announcement_id for d in emitted if d.announcement_id]
            if published:
                await connection.execute(
                    update(announcements)
                    .where(announcements.c.id.in_(published))
                    .values(state="published", published_at=at, updated_at=at)
                )
        if skipped:
            await connection.execute(
                update(outbox)
                .where(outbox.c.event_id.in_([d.event_id for d in skipped]))
                .values(state=SKIPPED)
            )


async def next_fire_at(engine: AsyncEngine) -> datetime | None:
    async with engine.connect() as connection:
        value = (
            await connection.execute(
                select(func.min(outbox.c.fire_at)).where(outbox.c.state == PENDING)
            )
        ).scalar_one_or_none()
    return _aware(value) if value is not None else None


async def upcoming(
    engine: AsyncEngine, *, limit: int = 100, deadline_id: str | None = None
) -> list[dict[str, Any]]:
    """Pending events, earliest first, with each city's time zone for local display."""
    query = (
        select(
            outbox.c.event_id,
            outbox.c.type,
            outbox.c.fire_at,
            outbox.c.deadline_id,
            outbox.c.city_id,
            outbox.c.announcement_id,
            outbox.c.step,
            cities.c.timezone,
        )
        .select_from(outbox.outerjoin(cities, cities.c.id == outbox.c.city_id))
        .where(outbox.c.state == PENDING)
        .order_by(outbox.c.fire_at)
        .limit(limit)
    )
    if deadline_id is not None:
        query = query.where(outbox.c.deadline_id == deadline_id)
    async with engine.connect() as connection:
        rows = (await connection.execute(query)).mappings().all()
    return [{**row, "fire_at": _aware(row["fire_at"])} for row in rows]


async def count_by_state(engine: AsyncEngine) -> dict[str, int]:
    async with engine.connect() as connection:
        rows = await connection.execute(
            select(outbox.c.state, func.count()).group_by(outbox.c.state)
        )
        return {state: int(count) for state, count in rows.all()}


def _aware(value: datetime) -> datetime:
    """SQLite hands back naive datetimes; every stored instant is UTC."""
    return value if value.tzinfo else value.replace(tzinfo=UTC)
