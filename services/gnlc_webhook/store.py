"""The webhook channel's state in the database: partners, endpoints, the delivery log and
the payloads kept for resend and replay, and the order of the deliveries of endpoints that
take one partition key's deliveries in order (``key_order``). Tables live on
``gnlc_core.db.metadata``; the Alembic revisions ``0300``, ``0301`` and ``0310`` (branch
``webhook``) create them.

Secrets are stored as given (signing needs them); partner API tokens only as SHA-256.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, NamedTuple

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    Text,
    UniqueConstraint,
    and_,
    delete,
    exists,
    false,
    func,
    or_,
    select,
    tuple_,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from gnlc_core.bulk import BulkInsert
from gnlc_core.db import metadata
from gnlc_core.ledger import TERMINAL, Status, notices

CHANNEL = "webhook"
_CHUNK = 400  # event ids per statement: far below every database's parameter limit

partners = Table(
    "webhook_partners",
    metadata,
    Column("id", String(63), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("token_hash", String(64), nullable=True, unique=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

endpoints = Table(
    "webhook_endpoints",
    metadata,
    Column("id", String(63), primary_key=True),
    Column(
        "partner_id",
        String(63),
        ForeignKey("webhook_partners.id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    Column("url", Text, nullable=False),
    Column("event_types", JSON, nullable=False),
    Column("regions", JSON, nullable=False),
    Column("cities", JSON, nullable=False),
    Column("description", Text, nullable=False, server_default=""),
    Column("secret", Text, nullable=False),
    Column("previous_secret", Text, nullable=True),
    Column("previous_secret_expires_at", DateTime(timezone=True), nullable=True),
    Column("state", String(16), nullable=False),
    Column("state_reason", Text, nullable=True),
    Column("failing_since", DateTime(timezone=True), nullable=True),
    Column("max_concurrency", Integer, nullable=True),
    Column("rate_per_second", Float, nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Column("ordered", Boolean, nullable=False, server_default=false()),
)

#: A row per delivery of an ordered endpoint not known to be settled, numbered in the order
#: its events were read (``seq``); ``key_hash`` is the SHA-256 of the event's partition key.
key_order = Table(
    "webhook_key_order",
    metadata,
    Column("seq", Integer, primary_key=True, autoincrement=True),
    Column("endpoint_id", String(63), nullable=False),
    Column("key_hash", String(64), nullable=False),
    Column("event_id", String(64), nullable=False),
    UniqueConstraint("endpoint_id", "event_id", name="uq_webhook_key_order_event"),
    Index("ix_webhook_key_order_key", "endpoint_id", "key_hash", "seq"),
    sqlite_autoincrement=True,
)

messages = Table(
    "webhook_messages",
    metadata,
    Column("event_id", String(64), primary_key=True),
    Column("event_type", String(64), nullable=False),
    Column("body", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

attempts = Table(
    "webhook_attempts",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("event_id", String(64), nullable=False),
    Column("endpoint_id", String(63), nullable=False),
    Column("partner_id", String(63), nullable=False),
    Column("attempt", Integer, nullable=False),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("status", String(16), nullable=False),
    Column("status_code", Integer, nullable=True),
    Column("latency_ms", Float, nullable=True),
    Column("response_body", Text, nullable=True),
    Column("error", Text, nullable=True),
    Index("ix_webhook_attempts_endpoint_at", "endpoint_id", "at"),
    Index("ix_webhook_attempts_event_endpoint", "event_id", "endpoint_id"),
)


class State(StrEnum):
    ACTIVE = "active"
    PAUSED = "paused"
    DISABLED = "disabled"


def utc(value: datetime | None) -> datetime | None:
    """Datetimes from the database as aware UTC (SQLite hands back naive ones)."""
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def token_hash(token: str) -> str:
    """Partner tokens are long random strings: a plain SHA-256 is enough to store them."""
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class EndpointRow:
    """One endpoint as stored."""

    id: str
    partner_id: str
    url: str
    event_types: tuple[str, ...]
    regions: tuple[str, ...] = ()
    cities: tuple[str, ...] = ()
    description: str = ""
    secret: str = field(default="", repr=False)
    previous_secret: str | None = field(default=None, repr=False)
    previous_secret_expires_at: datetime | None = None
    state: State = State.ACTIVE
    state_reason: str | None = None
    failing_since: datetime | None = None
    max_concurrency: int | None = None
    rate_per_second: float | None = None
    created_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    #: One partition key's deliveries in order, each held until the one before is settled.
    ordered: bool = False
    updated_at: datetime = field(default_factory=lambda: datetime.now(UTC))

    def secrets(self, now: datetime) -> list[str]:
        """The secrets that sign now: the current one, and the previous one during its
        grace period after a rotation."""
        keep_previous = (
            self.previous_secret is not None
            and self.previous_secret_expires_at is not None
            and now < self.previous_secret_expires_at
        )
        return [self.secret, self.previous_secret] if keep_previous else [self.secret]  # type: ignore[list-item]

    def as_values(self) -> dict[str, Any]:
        values = {name: getattr(self, name) for name in _ENDPOINT_FIELDS}
        values["event_types"] = list(self.event_types)
        values["regions"] = list(self.regions)
        values["cities"] = list(self.cities)
        values["state"] = self.state.value
        return values


_ENDPOINT_FIELDS = tuple(c.name for c in endpoints.columns)


def _endpoint(row: Any) -> EndpointRow:
    m = row._mapping
    return EndpointRow(
        id=m["id"],
        partner_id=m["partner_id"],
        url=m["url"],
        event_types=tuple(m["event_types"]),
        regions=tuple(m["regions"]),
        cities=tuple(m["cities"]),
        description=m["description"],
        secret=m["secret"],
        previous_secret=m["previous_secret"],
        previous_secret_expires_at=utc(m["previous_secret_expires_at"]),
        state=State(m["state"]),
        state_reason=m["state_reason"],
        failing_since=utc(m["failing_since"]),
        max_concurrency=m["max_concurrency"],
        rate_per_second=m["rate_per_second"],
        ordered=bool(m["ordered"]),
        created_at=utc(m["created_at"]) or datetime.now(UTC),
        updated_at=utc(m["updated_at"]) or datetime.now(UTC),
    )


@dataclass(frozen=True)
class Partner:
    id: str
    name: str
    has_token: bool
    created_at: datetime


class Attempt(NamedTuple):
    """One line of the delivery log."""

    event_id: str
    endpoint_id: str
    partner_id: str
    attempt: int
    status: Status
    at: datetime
    status_code: int | None = None
    latency_ms: float | None = None
    response_body: str | None = None
    error: str | None = None


class StoredMessage(NamedTuple):
    event_id: str
    event_type: str
    body: str


#: The rows every delivery writes, without SQLAlchemy's work per row (``gnlc_core.bulk``).
_add_messages = BulkInsert(
    messages,
    ["event_id", "event_type", "body", "created_at"],
    conflict=lambda statement: statement.on_conflict_do_nothing(),
)
_add_attempts = BulkInsert(
    attempts,
    [
        "event_id",
        "endpoint_id",
        "partner_id",
        "attempt",
        "at",
        "status",
        "status_code",
        "latency_ms",
        "response_body",
        "error",
    ],
)


def _insert(connection: AsyncConnection) -> Any:
    return postgresql.insert if connection.dialect.name == "postgresql" else sqlite.insert


class Store:
    """Every query of the webhook channel, on one engine."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    # partners -------------------------------------------------------------------------

    async def upsert_partner(self, partner_id: str, name: str) -> None:
        async with self.engine.begin() as connection:
            statement = _insert(connection)(partners).values(
                id=partner_id, name=name, created_at=datetime.now(UTC)
            )
            await connection.execute(
                statement.on_conflict_do_update(index_elements=["id"], set_={"name": name})
            )

    async def create_partner(self, partner_id: str, name: str, token: str) -> bool:
        """False when the id is taken."""
        async with self.engine.begin() as connection:
            statement = _insert(connection)(partners).values(
                id=partner_id,
                name=name,
                token_hash=token_hash(token),
                created_at=datetime.now(UTC),
            )
            result = await connection.execute(statement.on_conflict_do_nothing())
            return bool(result.rowcount)

    async def set_partner_token(self, partner_id: str, token: str) -> bool:
        async with self.engine.begin() as connection:
            result = await connection.execute(
                update(partners)
                .where(partners.c.id == partner_id)
                .values(token_hash=token_hash(token))
            )
            return bool(result.rowcount)

    async def partner_for_token(self, token: str) -> str | None:
        query = select(partners.c.id).where(partners.c.token_hash == token_hash(token))
        async with self.engine.connect() as connection:
            return (await connection.execute(query)).scalar_one_or_none()

    async def partners(self) -> list[Partner]:
        async with self.engine.connect() as connection:
            rows = (await connection.execute(select(partners).order_by(partners.c.id))).all()
        return [
            Partner(r.id, r.name, r.token_hash is not None, utc(r.created_at) or datetime.now(UTC))
            for r in rows
        ]

    async def partner_exists(self, partner_id: str) -> bool:
        query = select(partners.c.id).where(partners.c.id == partner_id)
        async with self.engine.connect() as connection:
            return (await connection.execute(query)).scalar_one_or_none() is not None

    # endpoints ------------------------------------------------------------------------

    async def endpoints(self, partner_id: str | None = None) -> list[EndpointRow]:
        query = select(endpoints).order_by(endpoints.c.partner_id, endpoints.c.id)
        if partner_id is not None:
            query = query.where(endpoints.c.partner_id == partner_id)
        async with self.engine.connect() as connection:
            return [_endpoint(r) for r in (await connection.execute(query)).all()]

    async def endpoint(self, endpoint_id: str) -> EndpointRow | None:
        query = select(endpoints).where(endpoints.c.id == endpoint_id)
        async with self.engine.connect() as connection:
            row = (await connection.execute(query)).first()
        return _endpoint(row) if row is not None else None

    async def insert_endpoint(self, endpoint: EndpointRow) -> bool:
        """False when the id is taken."""
        async with self.engine.begin() as connection:
            statement = _insert(connection)(endpoints).values(endpoint.as_values())
            result = await connection.execute(statement.on_conflict_do_nothing())
            return bool(result.rowcount)

    async def upsert_endpoint(self, endpoint: EndpointRow) -> None:
        """Insert, or overwrite what a seed file defines (URL, types, filter, secret)."""
        values = endpoint.as_values()
        async with self.engine.begin() as connection:
            statement = _insert(connection)(endpoints).values(values)
            keep = {"created_at", "state", "state_reason", "failing_since", "id"}
            await connection.execute(
                statement.on_conflict_do_update(
                    index_elements=["id"],
                    set_={k: statement.excluded[k] for k in values if k not in keep},
                )
            )

    async def save_endpoint(self, endpoint: EndpointRow) -> EndpointRow:
        endpoint = replace(endpoint, updated_at=datetime.now(UTC))
        values = endpoint.as_values()
        async with self.engine.begin() as connection:
            await connection.execute(
                update(endpoints).where(endpoints.c.id == endpoint.id).values(values)
            )
        return endpoint

    async def delete_endpoint(self, endpoint_id: str) -> bool:
        async with self.engine.begin() as connection:
            await connection.execute(_order_of(endpoint_id))
            result = await connection.execute(
                delete(endpoints).where(endpoints.c.id == endpoint_id)
            )
            return bool(result.rowcount)

    async def set_states(
        self,
        changes: Iterable[tuple[str, dict[str, Any]]],
        *,
        connection: AsyncConnection,
    ) -> None:
        for endpoint_id, values in changes:
            await connection.execute(
                update(endpoints).where(endpoints.c.id == endpoint_id).values(values)
            )

    # delivery log and payloads --------------------------------------------------------

    async def add_messages(
        self, rows: Sequence[StoredMessage], *, connection: AsyncConnection
    ) -> None:
        if not rows:
            return
        now = datetime.now(UTC)
        unique = {row.event_id: row for row in rows}
        await _add_messages(
            connection, [(r.event_id, r.event_type, r.body, now) for r in unique.values()]
        )

    async def add_attempts(self, rows: Sequence[Attempt], *, connection: AsyncConnection) -> None:
        await _add_attempts(
            connection,
            [
                (
                    r.event_id,
                    r.endpoint_id,
                    r.partner_id,
                    r.attempt,
                    r.at,
                    r.status.value,
                    r.status_code,
                    r.latency_ms,
                    r.response_body,
                    r.error,
                )
                for r in rows
            ],
        )

    async def close_attempts(self, rows: Sequence[Attempt], *, connection: AsyncConnection) -> None:
        """Mark the newest log row of each (event, endpoint, attempt) with a final status."""
        for r in rows:
            newest = (
                select(attempts.c.id)
                .where(
                    attempts.c.event_id == r.event_id,
                    attempts.c.endpoint_id == r.endpoint_id,
                    attempts.c.attempt == r.attempt,
                )
                .order_by(attempts.c.id.desc())
                .limit(1)
                .scalar_subquery()
            )
            await connection.execute(
                update(attempts)
                .where(attempts.c.id == newest)
                .values(status=r.status.value, error=r.error)
            )

    async def attempts(
        self,
        endpoint_id: str,
        *,
        since: datetime | None = None,
        event_id: str | None = None,
        limit: int = 100,
    ) -> list[Attempt]:
        query = (
            select(attempts)
            .where(attempts.c.endpoint_id == endpoint_id)
            .order_by(attempts.c.at.desc(), attempts.c.id.desc())
            .limit(limit)
        )
        if since is not None:
            query = query.where(attempts.c.at >= since)
        if event_id is not None:
            query = query.where(attempts.c.event_id == event_id)
        async with self.engine.connect() as connection:
            rows = (await connection.execute(query)).all()
        return [
            Attempt(
                event_id=r.event_id,
                endpoint_id=r.endpoint_id,
                partner_id=r.partner_id,
                attempt=r.attempt,
                status=Status(r.status),
                at=utc(r.at) or datetime.now(UTC),
                status_code=r.status_code,
                latency_ms=r.latency_ms,
                response_body=r.response_body,
                error=r.error,
            )
            for r in rows
        ]

    async def last_error(self, event_id: str, endpoint_id: str) -> str | None:
        query = select(notices.c.last_error).where(
            notices.c.event_id == event_id,
            notices.c.channel == CHANNEL,
            notices.c.recipient == endpoint_id,
        )
        async with self.engine.connect() as connection:
            return (await connection.execute(query)).scalar_one_or_none()

    async def message_for(self, endpoint_id: str, event_id: str) -> StoredMessage | None:
        """The payload of an event that was meant for this endpoint (else None)."""
        query = (
            select(messages)
            .join(notices, notices.c.event_id == messages.c.event_id)
            .where(
                messages.c.event_id == event_id,
                notices.c.channel == CHANNEL,
                notices.c.recipient == endpoint_id,
            )
        )
        async with self.engine.connect() as connection:
            row = (await connection.execute(query)).first()
        return StoredMessage(row.event_id, row.event_type, row.body) if row is not None else None

    async def held(self, endpoint_id: str, *, limit: int) -> list[tuple[str, bytes, int]]:
        """Up to ``limit`` deliveries held for this endpoint: (event id, payload, attempts
        made). Not those of an ordered endpoint that wait behind an earlier delivery of
        their key (they come once it is settled), oldest first."""
        mine = key_order.alias("mine")
        query = (
            select(messages.c.event_id, messages.c.body, notices.c.attempts)
            .select_from(notices)
            .join(messages, messages.c.event_id == notices.c.event_id)
            .outerjoin(
                mine,
                and_(
                    mine.c.endpoint_id == notices.c.recipient,
                    mine.c.event_id == notices.c.event_id,
                ),
            )
            .where(
                notices.c.channel == CHANNEL,
                notices.c.recipient == endpoint_id,
                notices.c.status == Status.HELD.value,
                ~_earlier_unsettled(mine),
            )
            .order_by(mine.c.seq)
            .limit(limit)
        )
        async with self.engine.connect() as connection:
            rows = (await connection.execute(query)).all()
        return [(row.event_id, row.body.encode(), row.attempts) for row in rows]

    async def held_counts(self) -> dict[str, int]:
        """Deliveries held, per endpoint that has any (metrics)."""
        query = (
            select(notices.c.recipient, func.count())
            .where(notices.c.channel == CHANNEL, notices.c.status == Status.HELD.value)
            .group_by(notices.c.recipient)
        )
        async with self.engine.connect() as connection:
            return {row[0]: int(row[1]) for row in await connection.execute(query)}

    async def endpoints_holding(self) -> list[str]:
        """The endpoints that have deliveries held."""
        query = (
            select(notices.c.recipient)
            .where(notices.c.channel == CHANNEL, notices.c.status == Status.HELD.value)
            .distinct()
        )
        async with self.engine.connect() as connection:
            return list((await connection.execute(query)).scalars())

    async def unsuccessful_since(
        self, endpoint_id: str, since: datetime, *, limit: int = 10_000
    ) -> list[StoredMessage]:
        """Payloads whose delivery to this endpoint ended failed or dropped since ``since``."""
        unsuccessful = [s.value for s in TERMINAL - {Status.DELIVERED}]
        query = (
            select(messages)
            .join(notices, notices.c.event_id == messages.c.event_id)
            .where(
                notices.c.channel == CHANNEL,
                notices.c.recipient == endpoint_id,
                notices.c.status.in_(unsuccessful),
                notices.c.updated_at >= since,
            )
            .order_by(notices.c.updated_at)
            .limit(limit)
        )
        async with self.engine.connect() as connection:
            rows = (await connection.execute(query)).all()
        return [StoredMessage(r.event_id, r.event_type, r.body) for r in rows]

    # the order of an ordered endpoint's deliveries ------------------------------------

    async def queue_in_order(
        self, rows: Sequence[tuple[str, str, str]], *, connection: AsyncConnection
    ) -> None:
        """Number deliveries (endpoint id, partition key, event id) in the order given,
        after every one already numbered (one already numbered keeps its place)."""
        if not rows:
            return
        statement = _insert(connection)(key_order).on_conflict_do_nothing()
        await connection.execute(
            statement,
            [
                {"endpoint_id": endpoint_id, "key_hash": key_hash(key), "event_id": event_id}
                for endpoint_id, key, event_id in rows
            ],
        )

    async def key_places(
        self, pairs: Sequence[tuple[str, str]], *, connection: AsyncConnection
    ) -> dict[tuple[str, str], tuple[int, int | None]]:
        """For each numbered delivery of ``pairs`` (endpoint id, event id): its number and
        that of the first delivery of its key not settled (None if none is: itself settled)."""
        own: dict[tuple[str, str], tuple[str, int]] = {}
        for start in range(0, len(pairs), _CHUNK):
            chunk = pairs[start : start + _CHUNK]
            query = select(
                key_order.c.endpoint_id, key_order.c.event_id, key_order.c.key_hash, key_order.c.seq
            ).where(tuple_(key_order.c.endpoint_id, key_order.c.event_id).in_(chunk))
            for row in await connection.execute(query):
                own[(row.endpoint_id, row.event_id)] = (row.key_hash, row.seq)
        keys = sorted({(endpoint_id, key) for (endpoint_id, _), (key, _) in own.items()})
        first: dict[tuple[str, str], int] = {}
        for start in range(0, len(keys), _CHUNK):
            chunk = keys[start : start + _CHUNK]
            query = (
                select(key_order.c.endpoint_id, key_order.c.key_hash, func.min(key_order.c.seq))
                .select_from(key_order.outerjoin(notices, _notice_of(key_order)))
                .where(
                    tuple_(key_order.c.endpoint_id, key_order.c.key_hash).in_(chunk),
                    _unsettled(notices),
                )
                .group_by(key_order.c.endpoint_id, key_order.c.key_hash)
            )
            for found in await connection.execute(query):
                first[(found[0], found[1])] = int(found[2])
        return {pair: (seq, first.get((pair[0], key))) for pair, (key, seq) in own.items()}

    async def forget_order(
        self, pairs: Sequence[tuple[str, str]], *, connection: AsyncConnection
    ) -> None:
        """Settled deliveries (endpoint id, event id) leave the order of their key."""
        for start in range(0, len(pairs), _CHUNK):
            chunk = pairs[start : start + _CHUNK]
            await connection.execute(
                delete(key_order).where(
                    tuple_(key_order.c.endpoint_id, key_order.c.event_id).in_(chunk)
                )
            )

    async def clear_order(self, endpoint_id: str) -> None:
        """The endpoint no longer takes its deliveries in order: none waits for another."""
        async with self.engine.begin() as connection:
            await connection.execute(_order_of(endpoint_id))

    async def prune_order(self) -> int:
        """Remove the rows of deliveries settled (their rows are skipped anyway)."""
        settled = exists().where(_notice_of(key_order), ~_unsettled(notices))
        async with self.engine.begin() as connection:
            result = await connection.execute(delete(key_order).where(settled))
            return int(result.rowcount or 0)


def _order_of(endpoint_id: str) -> Any:
    return delete(key_order).where(key_order.c.endpoint_id == endpoint_id)


def key_hash(partition_key: str) -> str:
    """How a partition key is kept in ``key_order`` (keys have no length limit)."""
    return hashlib.sha256(partition_key.encode()).hexdigest()


def _notice_of(order: Any) -> Any:
    """The webhook notice of a ``key_order`` row."""
    return and_(
        notices.c.event_id == order.c.event_id,
        notices.c.channel == CHANNEL,
        notices.c.recipient == order.c.endpoint_id,
    )


def _unsettled(notice: Any) -> Any:
    """Not settled: no notice yet, or one in a state that is not final."""
    return or_(notice.c.status.is_(None), notice.c.status.not_in([s.value for s in TERMINAL]))


def _earlier_unsettled(mine: Any) -> Any:
    """An earlier delivery of the same endpoint and key than ``mine`` that is not settled
    (false when ``mine`` is no row: a delivery outside any order)."""
    earlier = key_order.alias("earlier")
    notice = notices.alias("earlier_notice")
    return (
        select(earlier.c.seq)
        .select_from(
            earlier.outerjoin(
                notice,
                and_(
                    notice.c.event_id == earlier.c.event_id,
                    notice.c.channel == CHANNEL,
                    notice.c.recipient == earlier.c.endpoint_id,
                ),
            )
        )
        .where(
            earlier.c.endpoint_id == mine.c.endpoint_id,
            earlier.c.key_hash == mine.c.key_hash,
            earlier.c.seq < mine.c.seq,
            _unsettled(notice),
        )
        .exists()
    )
