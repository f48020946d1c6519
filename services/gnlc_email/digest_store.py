"""Where digests wait (tables ``email_digest_items`` and ``email_digests``, revision
``0230`` on the email branch).

A notice that waits for its contact's digest is *held*: its row here (with the event as on
Kafka) and its ledger state ``held`` (reason ``digest <local day>``) are written in one
transaction, before the consumer commits the record's offset, so a crash at any point
either leaves both or leaves the record to be handled again. When a day's digest is due,
its notices are *claimed*: cut into digests of at most ``digest.MAX_NOTICES``, each a row
keyed by (contact, local day, part) inserted at most once, its notices marked with it in the
same transaction (a notice is in one digest only). A claimed digest is *taken* for sending
under a lease (``digest.LEASE``); a process killed while sending leaves the lease to run
out, and the digest is taken again, with the same Message-ID. Sending *finishes* it: every
notice's outcome in the ledger and the digest ``sent``, in one transaction. Nothing is
deleted then (a late redelivery of a notice finds its row and holds nothing again); finished
digests older than ``digest.KEPT`` are purged.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum

from sqlalchemy import (
    Column,
    Date,
    DateTime,
    Index,
    Integer,
    String,
    Table,
    Text,
    and_,
    delete,
    func,
    select,
    tuple_,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncEngine

from gnlc_core.db import metadata
from gnlc_core.ledger import Ledger, Notice, Status
from gnlc_email.digest import LEASE, MAX_NOTICES, chunks, digest_key, held_reason

digests = Table(
    "email_digests",
    metadata,
    Column("id", String(420), primary_key=True),  # digest.digest_key
    Column("city_id", String(64), nullable=False),
    Column("address", String(320), nullable=False),  # lower case
    Column("day", Date, nullable=False),
    Column("part", Integer, nullable=False),
    Column("state", String(16), nullable=False),  # DigestState
    Column("not_before", DateTime(timezone=True), nullable=False),  # the lease
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Index("ix_email_digests_state", "state", "not_before"),
)

items = Table(
    "email_digest_items",
    metadata,
    Column("event_id", String(64), primary_key=True),
    Column("recipient", String(400), primary_key=True),  # the ledger's "city:address"
    Column("city_id", String(64), nullable=False),
    Column("address", String(320), nullable=False),  # lower case
    Column("day", Date, nullable=False),
    Column("due_at", DateTime(timezone=True), nullable=False),  # the day's digest closes
    Column("event", Text, nullable=False),  # as on Kafka
    Column("held_at", DateTime(timezone=True), nullable=False),
    Column("digest_id", String(420), nullable=True),  # claimed by
    Index("ix_email_digest_items_due", "digest_id", "due_at"),
)


class _ClaimedElsewhere(Exception):
    """A digest key was inserted by another instance first."""


class DigestState(StrEnum):
    CLAIMED = "claimed"  # its notices chosen; to send (again, once a lease runs out)
    SENT = "sent"  # every notice's outcome is in the ledger


@dataclass(frozen=True)
class Held:
    """A notice waiting for its contact's digest of ``day`` (due at ``due_at``)."""

    event_id: str
    recipient: str
    city_id: str
    address: str
    day: date
    due_at: datetime
    event: str  # the event as on Kafka
    held_at: datetime


@dataclass(frozen=True)
class Taken:
    """A digest taken for sending: who, which day, which part, and its notices in order."""

    id: str
    city_id: str
    address: str
    day: date
    part: int
    notices: tuple[Held, ...]


def _insert(engine_dialect: str) -> type[sqlite.Insert] | type[postgresql.Insert]:
    return postgresql.Insert if engine_dialect == "postgresql" else sqlite.Insert


class DigestStore:
    def __init__(self, engine: AsyncEngine, ledger: Ledger) -> None:
        self._engine = engine
        self._ledger = ledger

    async def hold(self, held: Sequence[Held]) -> None:
        """Keep ``held`` for their digests and record them ``held`` in the ledger, in one
        transaction; a notice kept already keeps its day, one settled meanwhile (by a
        digest sent while this record was handled again) keeps its outcome."""
        if not held:
            return
        async with self._engine.begin() as connection:
            insert = _insert(connection.dialect.name)
            for start in range(0, len(held), 400):
                chunk = held[start : start + 400]
                await connection.execute(
                    insert(items)
                    .values(
                        [
                            {
                                "event_id": h.event_id,
                                "recipient": h.recipient,
                                "city_id": h.city_id,
                                "address": h.address.lower(),
                                "day": h.day,
                                "due_at": h.due_at,
                                "event": h.event,
                                "held_at": h.held_at,
                            }
                            for h in chunk
                        ]
                    )
                    .on_conflict_do_nothing(index_elements=["event_id", "recipient"])
                )
            await self._ledger.record_many(
                [Notice(h.event_id, h.recipient, Status.HELD, 0, held_reason(h.day)) for h in held],
                connection=connection,
                unless_settled=True,
            )

    async def claim_due(self, now: datetime, limit: int = MAX_NOTICES) -> int:
        """Cut the notices whose digest is due into digests of at most ``limit``; returns
        how many digests were made. Each contact's day is claimed in its own transaction;
        a digest key another instance inserted first leaves that day to it."""
        query = (
            select(items.c.city_id, items.c.address, items.c.day)
            .where(items.c.digest_id.is_(None), items.c.due_at <= now)
            .group_by(items.c.city_id, items.c.address, items.c.day)
        )
        async with self._engine.connect() as connection:
            groups = (await connection.execute(query)).all()
        made = 0
        for city_id, address, day in groups:
            made += await self._claim(city_id, address, day, now, limit)
        return made

    async def _claim(self, city_id: str, address: str, day: date, now: datetime, limit: int) -> int:
        try:
            return await self._claim_parts(city_id, address, day, now, limit)
        except _ClaimedElsewhere:  # rolled back: another instance claims this day
            return 0

    async def _claim_parts(
        self, city_id: str, address: str, day: date, now: datetime, limit: int
    ) -> int:
        async with self._engine.begin() as connection:
            waiting = (
                await connection.execute(
                    select(items.c.event_id, items.c.recipient)
                    .where(
                        items.c.city_id == city_id,
                        items.c.address == address,
                        items.c.day == day,
                        items.c.digest_id.is_(None),
                    )
                    .order_by(items.c.held_at, items.c.event_id)
                )
            ).all()
            made = (
                await connection.execute(
                    select(func.count())
                    .select_from(digests)
                    .where(
                        digests.c.city_id == city_id,
                        digests.c.address == address,
                        digests.c.day == day,
                    )
                )
            ).scalar_one()
            insert = _insert(connection.dialect.name)
            parts = chunks([(row.event_id, row.recipient) for row in waiting], limit)
            for number, part in enumerate(parts, start=made + 1):
                key = digest_key(city_id, address, day, number)
                inserted = await connection.execute(
                    insert(digests)
                    .values(
                        id=key,
                        city_id=city_id,
                        address=address,
                        day=day,
                        part=number,
                        state=DigestState.CLAIMED.value,
                        not_before=now,
                        updated_at=now,
                    )
                    .on_conflict_do_nothing(index_elements=["id"])
                )
                if inserted.rowcount != 1:
                    raise _ClaimedElsewhere(key)
                await connection.execute(
                    update(items)
                    .where(
                        tuple_(items.c.event_id, items.c.recipient).in_(part),
                        items.c.digest_id.is_(None),
                    )
                    .values(digest_id=key)
                )
            return len(parts)

    async def take(self, now: datetime, limit: int = 100) -> list[Taken]:
        """Up to ``limit`` claimed digests free to send now, each leased to this caller
        until ``now + LEASE`` (a digest another caller leased is not among them)."""
        query = (
            select(digests)
            .where(digests.c.state == DigestState.CLAIMED.value, digests.c.not_before <= now)
            .order_by(digests.c.not_before, digests.c.id)
            .limit(limit)
        )
        async with self._engine.connect() as connection:
            candidates = (await connection.execute(query)).all()
        taken = []
        for row in candidates:
            async with self._engine.begin() as connection:
                leased = await connection.execute(
                    update(digests)
                    .where(
                        digests.c.id == row.id,
                        digests.c.state == DigestState.CLAIMED.value,
                        digests.c.not_before <= now,
                    )
                    .values(not_before=now + LEASE, updated_at=now)
                )
                if leased.rowcount != 1:
                    continue
                listed = (
                    await connection.execute(
                        select(items)
                        .where(items.c.digest_id == row.id)
                        .order_by(items.c.held_at, items.c.event_id)
                    )
                ).all()
            taken.append(
                Taken(
                    row.id,
                    row.city_id,
                    row.address,
                    row.day,
                    row.part,
                    tuple(
                        Held(
                            i.event_id,
                            i.recipient,
                            i.city_id,
                            i.address,
                            i.day,
                            i.due_at,
                            i.event,
                            i.held_at,
                        )
                        for i in listed
                    ),
                )
            )
        return taken

    async def finish(self, digest_id: str, outcomes: Sequence[Notice], now: datetime) -> None:
        """Every notice's outcome in the ledger and the digest sent, together."""
        async with self._engine.begin() as connection:
            await self._ledger.record_many(outcomes, connection=connection)
            await connection.execute(
                update(digests)
                .where(digests.c.id == digest_id)
                .values(state=DigestState.SENT.value, updated_at=now)
            )

    async def purge(self, before: datetime) -> int:
        """Forget digests sent before ``before``, and their notices' rows."""
        async with self._engine.begin() as connection:
            old = select(digests.c.id).where(
                and_(digests.c.state == DigestState.SENT.value, digests.c.updated_at < before)
            )
            await connection.execute(delete(items).where(items.c.digest_id.in_(old)))
            result = await connection.execute(delete(digests).where(digests.c.id.in_(old)))
            return int(result.rowcount or 0)

    async def waiting(self) -> list[Held]:
        """The notices held and not yet in a digest (operators, tests)."""
        query = select(items).where(items.c.digest_id.is_(None)).order_by(items.c.held_at)
        async with self._engine.connect() as connection:
            rows = (await connection.execute(query)).all()
        return [
            Held(r.event_id, r.recipient, r.city_id, r.address, r.day, r.due_at, r.event, r.held_at)
            for r in rows
        ]
