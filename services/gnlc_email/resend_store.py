"""What a resend needs (tables ``email_events`` and ``email_resends``, revision ``0250``).

The ledger keeps a notice's state, not its event; a resend must render the event again. The
consumer keeps every event it handles, once per event (not per recipient), as on Kafka, for
``KEPT_DAYS`` days: one small write per batch. Each resend asked for is a row; the retry
tiers carry its id (``RESEND_PREFIX``), and the consumer marks it done in the transaction
that records its outcome in the ledger, so a record read twice sends once.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import (
    Column,
    DateTime,
    Integer,
    String,
    Table,
    Text,
    delete,
    insert,
    select,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncEngine

from gnlc_core.db import metadata
from gnlc_core.ledger import Ledger, Notice, notices

#: How long an event can be resent after it was handled.
KEPT_DAYS = 30
_PURGE_EVERY = 3600.0  # seconds between two purges of old events
#: The recipient prefix of a resend on the retry tiers: ``resend:<request id>:<recipient>``.
RESEND_PREFIX = "resend:"

events = Table(
    "email_events",
    metadata,
    Column("event_id", String(64), primary_key=True),
    Column("event", Text, nullable=False),
    Column("kept_at", DateTime(timezone=True), nullable=False, index=True),
)

resends = Table(
    "email_resends",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("event_id", String(64), nullable=False),
    Column("recipient", String(400), nullable=False),
    Column("requested_at", DateTime(timezone=True), nullable=False),
    Column("prior_attempts", Integer, nullable=False),
    Column("done_at", DateTime(timezone=True), nullable=True),
)


@dataclass(frozen=True)
class Resend:
    """A resend as the retry tiers carry it."""

    id: int
    recipient: str  # as the ledger keys it: ``city:address``
    #: The notice's attempts in the ledger when it was asked for (the resend's count on).
    before: int = 0

    @property
    def tier_recipient(self) -> str:
        return f"{RESEND_PREFIX}{self.id}:{self.recipient}"

    @classmethod
    def parse(cls, tier_recipient: str) -> Resend | None:
        """The resend a retry record's recipient names; None for an ordinary retry."""
        if not tier_recipient.startswith(RESEND_PREFIX):
            return None
        number, _, recipient = tier_recipient.removeprefix(RESEND_PREFIX).partition(":")
        if not number.isdigit() or not recipient:
            return None
        return cls(int(number), recipient)


class ResendStore:
    def __init__(self, engine: AsyncEngine, ledger: Ledger) -> None:
        self._engine = engine
        self._ledger = ledger
        self._purged = 0.0

    async def keep(self, kept: Sequence[tuple[str, str]]) -> None:
        """Keep each (event id, event as on Kafka) not kept yet; old ones go now and then."""
        if not kept:
            return
        now = datetime.now(UTC)
        rows = [{"event_id": i, "event": e, "kept_at": now} for i, e in dict(kept).items()]
        async with self._engine.begin() as connection:
            dialect = postgresql if connection.dialect.name == "postgresql" else sqlite
            await connection.execute(dialect.insert(events).values(rows).on_conflict_do_nothing())
            if time.monotonic() - self._purged > _PURGE_EVERY:
                self._purged = time.monotonic()
                cutoff = now - timedelta(days=KEPT_DAYS)
                await connection.execute(delete(events).where(events.c.kept_at < cutoff))
                await connection.execute(delete(resends).where(resends.c.requested_at < cutoff))

    async def event(self, event_id: str) -> str | None:
        """The event as kept, or None (never handled here, or too long ago)."""
        async with self._engine.connect() as connection:
            query = select(events.c.event).where(events.c.event_id == event_id)
            value: str | None = (await connection.execute(query)).scalar_one_or_none()
        return value

    async def attempts(self, event_id: str, recipient: str) -> int | None:
        """The ledger's attempts of the notice; None if it has no such notice."""
        query = select(notices.c.attempts).where(
            notices.c.event_id == event_id,
            notices.c.channel == self._ledger.channel,
            notices.c.recipient == recipient,
        )
        async with self._engine.connect() as connection:
            value: int | None = (await connection.execute(query)).scalar_one_or_none()
        return value

    async def request(self, event_id: str, recipient: str, before: int) -> Resend:
        """A new resend of a notice whose ledger counts ``before`` attempts."""
        async with self._engine.begin() as connection:
            result = await connection.execute(
                insert(resends)
                .values(
                    event_id=event_id,
                    recipient=recipient,
                    prior_attempts=before,
                    requested_at=datetime.now(UTC),
                )
                .returning(resends.c.id)
            )
            return Resend(result.scalar_one(), recipient, before)

    async def pending(self, resend: Resend) -> Resend | None:
        """``resend`` as asked for, if it is still to be sent; None once done (or unknown)."""
        query = select(resends.c.prior_attempts).where(
            resends.c.id == resend.id,
            resends.c.recipient == resend.recipient,
            resends.c.done_at.is_(None),
        )
        async with self._engine.connect() as connection:
            before = (await connection.execute(query)).scalar_one_or_none()
        return None if before is None else Resend(resend.id, resend.recipient, before)

    async def finish(self, resend: Resend, outcome: Notice | None) -> None:
        """Mark ``resend`` done, with its outcome in the ledger in the same transaction."""
        async with self._engine.begin() as connection:
            if outcome is not None:
                await self._ledger.record_many([outcome], connection=connection)
            await connection.execute(
                update(resends).where(resends.c.id == resend.id).values(done_at=datetime.now(UTC))
            )
