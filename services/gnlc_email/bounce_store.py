"""The email service's record of what came back: contacts marked bouncing, every bounce and
complaint received, and the alerts an operator should see. Revision ``0210`` (branch
``email``) creates the tables."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import (
    Column,
    DateTime,
    Index,
    Integer,
    String,
    Table,
    Text,
    delete,
    func,
    select,
    tuple_,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncEngine

from gnlc_core.db import metadata
from gnlc_core.ledger import Status, notices
from gnlc_core.one_of import one_of
from gnlc_email.bounces import AlertKind, Feedback
from gnlc_email.verp import recipient_digest

bouncing = Table(
    "email_bouncing",
    metadata,
    Column("city_id", String(64), primary_key=True),
    Column("address", String(320), primary_key=True),  # lower case
    Column("reason", Text, nullable=False),
    Column("event_id", String(64), nullable=True),
    Column("since", DateTime(timezone=True), nullable=False),
)

feedback = Table(
    "email_feedback",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("city_id", String(64), nullable=False),
    Column("address", String(320), nullable=False),
    Column("event_id", String(64), nullable=False),
    Column("feedback", String(16), nullable=False),
    Column("source", String(16), nullable=False),
    Column("detail", Text, nullable=True),
    Column("received_at", DateTime(timezone=True), nullable=False),
    Index("ix_email_feedback_contact", "city_id", "address", "received_at"),
)

alerts = Table(
    "email_alerts",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("kind", String(40), nullable=False),
    Column("city_id", String(64), nullable=False),
    Column("address", String(320), nullable=True),
    Column("event_id", String(64), nullable=True),
    Column("detail", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

_DETAIL = 2000
CHANNEL = "email"


@dataclass(frozen=True)
class Found:
    """A notice a bounce token names, as the ledger has it."""

    event_id: str
    recipient: str  # "city-id:address"
    status: Status
    attempts: int

    @property
    def city_id(self) -> str:
        return self.recipient.partition(":")[0]

    @property
    def address(self) -> str:
        return self.recipient.partition(":")[2]


@dataclass(frozen=True)
class Bouncing:
    city_id: str
    address: str
    reason: str
    event_id: str | None
    since: datetime


@dataclass(frozen=True)
class Alert:
    id: int
    kind: AlertKind
    city_id: str
    address: str | None
    event_id: str | None
    detail: str
    created_at: datetime


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)  # SQLite drops the zone


class BounceStore:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def notice(self, event_id: str, digest: bytes) -> Found | None:
        """The email notice of ``event_id`` whose recipient key has ``digest``."""
        query = select(notices.c.recipient, notices.c.status, notices.c.attempts).where(
            notices.c.event_id == event_id, notices.c.channel == CHANNEL
        )
        async with self._engine.connect() as connection:
            for row in await connection.execute(query):
                if recipient_digest(row.recipient) == digest:
                    return Found(event_id, row.recipient, Status(row.status), row.attempts)
        return None

    async def record(
        self,
        found: Found,
        kind: Feedback,
        source: str,
        detail: str,
        *,
        now: datetime | None = None,
    ) -> None:
        async with self._engine.begin() as connection:
            await connection.execute(
                feedback.insert().values(
                    city_id=found.city_id,
                    address=found.address.lower(),
                    event_id=found.event_id,
                    feedback=kind.value,
                    source=source,
                    detail=detail[:_DETAIL],
                    received_at=now or datetime.now(UTC),
                )
            )

    async def soft_count(self, city_id: str, address: str, window: float, now: datetime) -> int:
        query = select(func.count()).where(
            feedback.c.city_id == city_id,
            feedback.c.address == address.lower(),
            feedback.c.feedback == Feedback.SOFT.value,
            feedback.c.received_at >= now - timedelta(seconds=window),
        )
        async with self._engine.connect() as connection:
            return int((await connection.execute(query)).scalar_one())

    async def mark(self, city_id: str, address: str, reason: str, event_id: str | None) -> bool:
        """Mark a contact bouncing; False if it already was (the first reason stays)."""
        async with self._engine.begin() as connection:
            insert = postgresql.insert if connection.dialect.name == "postgresql" else sqlite.insert
            result = await connection.execute(
                insert(bouncing)
                .values(
                    city_id=city_id,
                    address=address.lower(),
                    reason=reason[:_DETAIL],
                    event_id=event_id,
                    since=datetime.now(UTC),
                )
                .on_conflict_do_nothing(index_elements=["city_id", "address"])
            )
        return bool(result.rowcount)

    async def clear(self, city_id: str, address: str) -> bool:
        """Clear a contact's mark; False if it had none."""
        async with self._engine.begin() as connection:
            result = await connection.execute(
                delete(bouncing).where(
                    bouncing.c.city_id == city_id, bouncing.c.address == address.lower()
                )
            )
        return bool(result.rowcount)

    async def bouncing_among(self, contacts: Iterable[tuple[str, str]]) -> set[tuple[str, str]]:
        """The (city id, lower-case address) pairs among ``contacts`` marked bouncing."""
        wanted = sorted({(city, address.lower()) for city, address in contacts})
        found: set[tuple[str, str]] = set()
        async with self._engine.connect() as connection:
            for start in range(0, len(wanted), 400):
                chunk = wanted[start : start + 400]
                query = select(bouncing.c.city_id, bouncing.c.address).where(
                    tuple_(bouncing.c.city_id, bouncing.c.address).in_(chunk)
                )
                found.update((r.city_id, r.address) for r in await connection.execute(query))
        return found

    async def marks_of(self, city_id: str, addresses: Iterable[str]) -> dict[str, Bouncing]:
        """The marks of ``city_id``'s contacts among ``addresses``, by lower-case address."""
        wanted = sorted({address.lower() for address in addresses})
        if not wanted:
            return {}
        async with self._engine.connect() as connection:
            query = select(bouncing).where(
                bouncing.c.city_id == city_id,
                one_of(bouncing.c.address, wanted, connection.dialect),
            )
            rows = (await connection.execute(query)).all()
        return {
            r.address: Bouncing(r.city_id, r.address, r.reason, r.event_id, _aware(r.since))
            for r in rows
        }

    async def bouncing(self, limit: int = 1000) -> list[Bouncing]:
        query = select(bouncing).order_by(bouncing.c.since.desc()).limit(limit)
        async with self._engine.connect() as connection:
            rows = (await connection.execute(query)).all()
        return [Bouncing(r.city_id, r.address, r.reason, r.event_id, _aware(r.since)) for r in rows]

    async def alert(
        self,
        kind: AlertKind,
        city_id: str,
        detail: str,
        *,
        address: str | None = None,
        event_id: str | None = None,
    ) -> None:
        async with self._engine.begin() as connection:
            await connection.execute(
                alerts.insert().values(
                    kind=kind.value,
                    city_id=city_id,
                    address=address.lower() if address else None,
                    event_id=event_id,
                    detail=detail[:_DETAIL],
                    created_at=datetime.now(UTC),
                )
            )

    async def alerts(self, limit: int = 1000) -> list[Alert]:
        query = select(alerts).order_by(alerts.c.id.desc()).limit(limit)
        async with self._engine.connect() as connection:
            rows = (await connection.execute(query)).all()
        return [
            Alert(
                r.id,
                AlertKind(r.kind),
                r.city_id,
                r.address,
                r.event_id,
                r.detail,
                _aware(r.created_at),
            )
            for r in rows
        ]
