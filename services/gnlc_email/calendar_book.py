"""Which cities hold which revision of each deadline's calendar entry: written when a mail
carrying an entry is delivered, read to address an update or a cancellation to exactly the
cities that received the entry (table ``email_calendar_entries``, revision ``0202`` on the
email branch). The latest change of each entry is kept too (``email_calendar_changes``): a
city whose older entry is delivered after that change was handled (a reminder that waited
in a retry tier) is sent the change then (``behind``)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import (
    Boolean,
    Column,
    DateTime,
    Integer,
    String,
    Table,
    Text,
    and_,
    case,
    select,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncEngine

from gnlc_core.db import metadata
from gnlc_core.events import ChangeEvent, encode_event

entries = Table(
    "email_calendar_entries",
    metadata,
    Column("deadline_id", String(63), primary_key=True),
    Column("city_id", String(63), primary_key=True),
    Column("sequence", Integer, nullable=False),  # the latest revision the city received
    Column("withdrawn", Boolean, nullable=False),  # that revision was a CANCEL
    Column("updated_at", DateTime(timezone=True), nullable=False),
)


changes = Table(
    "email_calendar_changes",
    metadata,
    Column("deadline_id", String(63), primary_key=True),
    Column("sequence", Integer, nullable=False),
    Column("event", Text, nullable=False),  # the latest change event, as on Kafka
    Column("updated_at", DateTime(timezone=True), nullable=False),
)


@dataclass(frozen=True)
class Receipt:
    """A city received revision ``sequence`` of a deadline's entry (a CANCEL: withdrawn)."""

    deadline_id: str
    city_id: str
    sequence: int
    withdrawn: bool = False


class CalendarBook:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def record(self, receipts: Sequence[Receipt]) -> None:
        """Record what each city received; a lower revision than one it holds changes
        nothing (a late retry of an older mail)."""
        if not receipts:
            return
        latest: dict[tuple[str, str], Receipt] = {}
        for receipt in receipts:
            key = (receipt.deadline_id, receipt.city_id)
            if key not in latest or receipt.sequence >= latest[key].sequence:
                latest[key] = receipt
        now = datetime.now(UTC)
        async with self._engine.begin() as connection:
            insert = postgresql.insert if connection.dialect.name == "postgresql" else sqlite.insert
            statement = insert(entries)
            newer = statement.excluded.sequence >= entries.c.sequence
            statement = statement.on_conflict_do_update(
                index_elements=["deadline_id", "city_id"],
                set_={
                    "sequence": case(
                        (newer, statement.excluded.sequence), else_=entries.c.sequence
                    ),
                    "withdrawn": case(
                        (newer, statement.excluded.withdrawn), else_=entries.c.withdrawn
                    ),
                    "updated_at": statement.excluded.updated_at,
                },
            )
            await connection.execute(
                statement,
                [
                    {
                        "deadline_id": r.deadline_id,
                        "city_id": r.city_id,
                        "sequence": r.sequence,
                        "withdrawn": r.withdrawn,
                        "updated_at": now,
                    }
                    for r in latest.values()
                ],
            )

    async def remember(self, event: ChangeEvent) -> None:
        """Keep ``event`` as its deadline's latest change, unless a later one is kept."""
        async with self._engine.begin() as connection:
            insert = postgresql.insert if connection.dialect.name == "postgresql" else sqlite.insert
            statement = insert(changes).values(
                deadline_id=event.data.deadline_id,
                sequence=event.data.sequence,
                event=encode_event(event).decode(),
                updated_at=datetime.now(UTC),
            )
            statement = statement.on_conflict_do_update(
                index_elements=["deadline_id"],
                set_={
                    column: statement.excluded[column]
                    for column in ("sequence", "event", "updated_at")
                },
                where=statement.excluded.sequence > changes.c.sequence,
            )
            await connection.execute(statement)

    async def behind(self, receipts: Sequence[Receipt]) -> list[tuple[str, str]]:
        """(latest change event, city) for each receipt of an entry older than its
        deadline's latest change: that city still has to get the change."""
        wanted = {r.deadline_id for r in receipts if not r.withdrawn}
        if not wanted:
            return []
        query = select(changes.c.deadline_id, changes.c.sequence, changes.c.event).where(
            changes.c.deadline_id.in_(sorted(wanted))
        )
        async with self._engine.connect() as connection:
            latest = {row.deadline_id: row for row in (await connection.execute(query)).all()}
        return [
            (latest[r.deadline_id].event, r.city_id)
            for r in receipts
            if not r.withdrawn
            and r.deadline_id in latest
            and latest[r.deadline_id].sequence > r.sequence
        ]

    async def holders(self, deadline_id: str, below: int) -> list[str]:
        """The cities holding an entry of the deadline older than revision ``below``
        (and not withdrawn): those an update or a cancellation of that revision is for."""
        query = (
            select(entries.c.city_id)
            .where(
                and_(
                    entries.c.deadline_id == deadline_id,
                    entries.c.sequence < below,
                    entries.c.withdrawn.is_(False),
                )
            )
            .order_by(entries.c.city_id)
        )
        async with self._engine.connect() as connection:
            return list((await connection.execute(query)).scalars())

    async def held(self, deadline_id: str) -> dict[str, tuple[int, bool]]:
        """Every city's revision of the deadline's entry, and whether it was withdrawn."""
        query = select(entries.c.city_id, entries.c.sequence, entries.c.withdrawn).where(
            entries.c.deadline_id == deadline_id
        )
        async with self._engine.connect() as connection:
            rows = (await connection.execute(query)).all()
        return {row.city_id: (row.sequence, row.withdrawn) for row in rows}
