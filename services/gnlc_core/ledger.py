"""The idempotency ledger: what was delivered to whom, keyed by (event id, channel,
recipient). Redelivery after a crash, a rebalance or a restart asks it first, so a notice
goes out once in practice."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Sequence
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, NamedTuple

from sqlalchemy import Column, DateTime, Integer, String, Table, Text, select, text, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from gnlc_core.bulk import BulkInsert
from gnlc_core.db import metadata
from gnlc_core.one_of import one_of

notices = Table(
    "notices",
    metadata,
    Column("event_id", String(64), primary_key=True),
    Column("channel", String(16), primary_key=True),
    Column("recipient", String(320), primary_key=True),
    Column("status", String(16), nullable=False),
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("last_error", Text, nullable=True),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    # the language the notice was written in; on the email branch only (0201), so it is
    # written only for rows that carry one (``Notice.language``)
    Column("language", String(35), nullable=True),
)


class Status(StrEnum):
    """One state machine for every channel (README: "Notices: one state machine").

    The channels' ledgers record ``retrying`` .. ``unsubscribed``; the scheduler's plan
    (channel ``schedule`` on the ``notice.status`` topic) says ``scheduled``, ``sent`` (on
    Kafka, handed to the channels) or ``dropped``/``failed``. ``bounced`` is reserved for
    delivery status notifications coming back (a later issue)."""

    SCHEDULED = "scheduled"  # a reminder step planned for a city, not yet due
    SENT = "sent"  # the scheduler put the event on Kafka: handed to the channels
    DELIVERED = "delivered"
    RETRYING = "retrying"
    FAILED = "failed"  # permanently: retries exhausted or refused for good
    DROPPED = "dropped"  # not sent on purpose (submitted, gone from the directory, endpoint gone)
    UNSUBSCRIBED = "unsubscribed"  # not sent: the recipient unsubscribed from optional mail
    #: put aside while the recipient cannot take it (webhook), or until the recipient's
    #: daily digest goes (email, reason ``digest <local day>``)
    HELD = "held"
    BOUNCED = "bounced"  # delivered, then reported undeliverable (email: a bounce came back)


TERMINAL = frozenset(
    {Status.DELIVERED, Status.FAILED, Status.DROPPED, Status.UNSUBSCRIBED, Status.BOUNCED}
)
_CHUNK = 400  # rows per statement: far below every database's parameter limit
_LIST = 10_000  # event ids per query as one parameter (``one_of``): a bound on its size
_KEY = ["event_id", "channel", "recipient"]
_STATE = ["status", "attempts", "last_error", "updated_at"]


def _upsert(columns: list[str], *, forward: bool = False) -> BulkInsert:
    """Insert notices, or update a notice's state (and language, when ``columns`` has it);
    ``forward``: a settled notice is not moved back to a state under way."""
    updated = [c for c in columns if c not in _KEY]
    # the states as literals (our own constants): the statement's parameters are the rows'
    terminal = ", ".join(f"'{status.value}'" for status in sorted(TERMINAL))
    settled_stays = text(f"notices.status NOT IN ({terminal}) OR excluded.status IN ({terminal})")
    return BulkInsert(
        notices,
        columns,
        conflict=lambda statement: statement.on_conflict_do_update(
            index_elements=_KEY,
            set_={c: statement.excluded[c] for c in updated},
            where=settled_stays if forward else None,
        ),
        key=_KEY,
    )


#: ``record_many``'s statements (rows of these columns, in this order), by (language,
#: forward).
_UPSERTS = {
    (language, forward): _upsert(
        [*_KEY, *_STATE, "language"] if language else [*_KEY, *_STATE], forward=forward
    )
    for language in (False, True)
    for forward in (False, True)
}


class Notice(NamedTuple):
    """One row for ``Ledger.record_many``. The records made for every delivery (notices,
    log rows, outcomes, receipts' subjects) are named tuples: immutable, and made in a
    third of the time of a frozen dataclass (which sets each field through
    ``object.__setattr__``): about 10 us of CPU per delivery in all."""

    event_id: str
    recipient: str
    status: Status
    attempts: int = 1
    error: str | None = None
    #: The language it was written in (email: the wording's language along the city's
    #: chain); only channels whose ledger has the column (email) give one.
    language: str | None = None
    #: The event's own time (its CloudEvents ``time``), when the channel knows it: what the
    #: delivery latency is measured from (metrics); not stored.
    event_time: datetime | None = None
    #: When the ledger recorded it: set by the ledger on the rows it tells listeners of.
    at: datetime | None = None

    def written(self, at: datetime) -> Notice:
        """This notice as the ledger recorded it at ``at`` (``_replace`` without its cost:
        a notice per delivery)."""
        return Notice(
            self.event_id,
            self.recipient,
            self.status,
            self.attempts,
            self.error,
            self.language,
            self.event_time,
            at,
        )


#: Told of every change of notice state a ledger writes: the channel and the rows (each with
#: ``at``, the moment written), after they are written: inside the write's transaction,
#: before its commit, for ``record_many`` and ``move`` (a listener that raises rolls the
#: write back: the consumer then handles the record again), after the commit for
#: ``record``. The one seam through which receipts, metrics and anything else that follows
#: notices learn of them.
Listener = Callable[[str, Sequence[Notice]], Awaitable[None]]


class Ledger:
    """One channel's view of the ledger."""

    def __init__(
        self, engine: AsyncEngine, channel: str, *, listeners: Sequence[Listener] = ()
    ) -> None:
        self._engine = engine
        self._channel = channel
        self._listeners: list[Listener] = list(listeners)

    @property
    def channel(self) -> str:
        return self._channel

    def listen(self, listener: Listener) -> None:
        """Tell ``listener`` of every state this ledger records from now on."""
        self._listeners.append(listener)

    async def _tell(self, rows: Sequence[Notice]) -> None:
        for listener in self._listeners:
            await listener(self._channel, rows)

    async def settled(self, event_id: str, recipients: Iterable[str]) -> set[str]:
        """The recipients among ``recipients`` whose notice for this event is settled
        (delivered, failed for good, or dropped): these must not be sent again."""
        wanted = list(recipients)
        if not wanted:
            return set()
        query = select(notices.c.recipient).where(
            notices.c.event_id == event_id,
            notices.c.channel == self._channel,
            notices.c.recipient.in_(wanted),
            notices.c.status.in_([s.value for s in TERMINAL]),
        )
        async with self._engine.connect() as connection:
            return set((await connection.execute(query)).scalars())

    async def record(
        self,
        event_id: str,
        recipient: str,
        status: Status,
        *,
        attempts: int = 1,
        error: str | None = None,
    ) -> None:
        """Insert or update one notice's state."""
        error = error[:2000] if error else None
        values: dict[str, Any] = {
            "event_id": event_id,
            "channel": self._channel,
            "recipient": recipient,
            "status": status.value,
            "attempts": attempts,
            "last_error": error,
            "updated_at": datetime.now(UTC),
        }
        async with self._engine.begin() as connection:
            insert = postgresql.insert if connection.dialect.name == "postgresql" else sqlite.insert
            statement = insert(notices).values(values)
            statement = statement.on_conflict_do_update(
                index_elements=["event_id", "channel", "recipient"],
                set_={
                    k: statement.excluded[k]
                    for k in ("status", "attempts", "last_error", "updated_at")
                },
            )
            await connection.execute(statement)
        await self._tell(
            [Notice(event_id, recipient, status, attempts, error, at=values["updated_at"])]
        )

    async def record_many(
        self,
        rows: Sequence[Notice],
        *,
        connection: AsyncConnection | None = None,
        unless_settled: bool = False,
        forward: bool = False,
    ) -> None:
        """Insert or update many notices in one statement (inside ``connection``'s
        transaction when given, so they commit together with the caller's writes).
        ``unless_settled``: a notice already in a terminal state keeps it (and the listeners
        are told only of the rows written): for a state that must never overwrite an
        outcome written meanwhile by another writer (email: ``held`` for a digest).
        ``forward``: likewise a settled notice is not moved back to a state under way, but
        the listeners are told of every row (the status view's own rule, ``supersedes``,
        ignores such a receipt): for writers whose rows may land out of order (webhook: a
        batch written behind the next one, and a retry of it written first)."""
        if not rows:
            return
        if connection is None:
            async with self._engine.begin() as own:
                await self.record_many(
                    rows, connection=own, unless_settled=unless_settled, forward=forward
                )
            return
        now = datetime.now(UTC)
        last = {(row.event_id, row.recipient): row for row in rows}  # one upsert per key
        languages = any(row.language is not None for row in last.values())
        # a later state without a language keeps the one recorded: the column is written
        # only when some row of the batch has one
        columns = [*_KEY, *_STATE, "language"] if languages else [*_KEY, *_STATE]
        values = [
            (
                row.event_id,
                self._channel,
                row.recipient,
                row.status.value,
                row.attempts,
                row.error[:2000] if row.error else None,
                now,
                *((row.language,) if languages else ()),
            )
            for row in last.values()
        ]
        if unless_settled:
            insert = postgresql.insert if connection.dialect.name == "postgresql" else sqlite.insert
            written: set[tuple[str, str]] = set()
            for start in range(0, len(values), _CHUNK):
                chunk = [
                    dict(zip(columns, value, strict=True))
                    for value in values[start : start + _CHUNK]
                ]
                statement = insert(notices).values(chunk)
                statement = statement.on_conflict_do_update(
                    index_elements=_KEY,
                    set_={k: statement.excluded[k] for k in columns if k not in _KEY},
                    where=notices.c.status.not_in([s.value for s in TERMINAL]),
                )
                result = await connection.execute(
                    statement.returning(notices.c.event_id, notices.c.recipient)
                )
                written.update((row.event_id, row.recipient) for row in result)
            await self._tell([row.written(now) for key, row in last.items() if key in written])
            return
        await _UPSERTS[(languages, forward)](connection, values)
        await self._tell([row.written(now) for row in last.values()])

    async def move(
        self,
        recipient: str,
        event_ids: Sequence[str],
        *,
        source: Status,
        target: Status,
        not_after: datetime,
        reason: str | None = None,
    ) -> list[Notice]:
        """Move ``recipient``'s notices of ``event_ids`` that are still in ``source`` and
        were last written at or before ``not_after`` to ``target`` (e.g. held deliveries
        released: retrying); tells the listeners of the rows moved and returns them."""
        moved: list[Notice] = []
        now = datetime.now(UTC)
        async with self._engine.begin() as connection:
            for start in range(0, len(event_ids), _LIST):
                chunk = event_ids[start : start + _LIST]
                result = await connection.execute(
                    update(notices)
                    .where(
                        notices.c.channel == self._channel,
                        notices.c.recipient == recipient,
                        notices.c.status == source.value,
                        one_of(notices.c.event_id, chunk, connection.dialect),
                        notices.c.updated_at <= not_after,
                    )
                    .values(
                        status=target.value,
                        updated_at=now,
                        **({"last_error": reason} if reason is not None else {}),
                    )
                    .returning(notices.c.event_id, notices.c.attempts)
                )
                moved.extend(
                    Notice(row.event_id, recipient, target, row.attempts, reason, at=now)
                    for row in result
                )
            if moved:
                await self._tell(moved)
        return moved

    async def status(self, event_id: str, recipient: str) -> Status | None:
        query = select(notices.c.status).where(
            notices.c.event_id == event_id,
            notices.c.channel == self._channel,
            notices.c.recipient == recipient,
        )
        async with self._engine.connect() as connection:
            value = (await connection.execute(query)).scalar_one_or_none()
        return Status(value) if value is not None else None

    async def settled_many(self, pairs: Iterable[tuple[str, str]]) -> set[tuple[str, str]]:
        """``settled`` for many (event id, recipient) pairs at once: those settled."""
        wanted = set(pairs)
        found: set[tuple[str, str]] = set()
        if not wanted:
            return found
        # by event id alone (the key's prefix): a list every database plans as index
        # lookups, where a list of (event, recipient) tuples may be scanned
        event_ids = list({event_id for event_id, _ in wanted})
        async with self._engine.connect() as connection:
            for start in range(0, len(event_ids), _LIST):
                chunk = event_ids[start : start + _LIST]
                query = select(notices.c.event_id, notices.c.recipient).where(
                    one_of(notices.c.event_id, chunk, connection.dialect),
                    notices.c.channel == self._channel,
                    notices.c.status.in_([s.value for s in TERMINAL]),
                )
                for row in await connection.execute(query):
                    if (pair := (row.event_id, row.recipient)) in wanted:
                        found.add(pair)
        return found
