"""A notice's history: every state its receipts told, beside the one that stands.

``append`` runs in the transaction of ``view.apply``: each receipt becomes one row, and a
receipt read twice is still one row (the table is unique on what the receipt's id is made
of: the notice, its moment, its state and its attempts). A notice keeps its ``KEPT``
latest rows (by moment, then attempts, then state): older ones are deleted when a batch
adds to it. That order is total, so whatever order receipts come in, and a replay of the
whole topic, keep the same rows (``received_at`` alone differs: when the view read them).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import delete, func, select, tuple_
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from gnlc_core.events import NoticeStatus
from gnlc_status.tables import status_history as h

#: Rows kept per notice (a webhook retried for days has a few dozen attempts at most).
KEPT = 50
_CHUNK = 300  # notices or rows per statement: far below every database's parameter limit
_LATEST = (h.c.state_us.desc(), h.c.attempts.desc(), h.c.state.desc())


@dataclass(frozen=True)
class NoticeKey:
    event_id: str
    channel: str
    recipient: str


def rows_of(receipts: Sequence[NoticeStatus], received_at: datetime) -> list[dict[str, Any]]:
    """One row per distinct receipt of a batch (pure)."""
    rows: dict[tuple[Any, ...], dict[str, Any]] = {}
    for r in receipts:
        micros = round(r.state_time.timestamp() * 1_000_000)
        identity = (r.event_id, r.channel, r.recipient, micros, r.state, r.attempts)
        rows.setdefault(
            identity,
            {
                "event_id": r.event_id,
                "channel": r.channel,
                "recipient": r.recipient,
                "state_us": micros,
                "state": r.state,
                "attempts": r.attempts,
                "reason": r.reason,
                "state_time": r.state_time,
                "received_at": received_at,
            },
        )
    return list(rows.values())


async def append(
    connection: AsyncConnection, receipts: Sequence[NoticeStatus], received_at: datetime
) -> None:
    """Add the receipts' rows (those already there are left as they are), then prune each
    notice touched to its ``KEPT`` latest rows."""
    rows = rows_of(receipts, received_at)
    if not rows:
        return
    insert = postgresql.insert if connection.dialect.name == "postgresql" else sqlite.insert
    statement = insert(h).on_conflict_do_nothing(
        index_elements=["event_id", "channel", "recipient", "state_us", "state", "attempts"]
    )
    for start in range(0, len(rows), _CHUNK):
        await connection.execute(statement, rows[start : start + _CHUNK])
    notices = sorted({(r["event_id"], r["channel"], r["recipient"]) for r in rows})
    for start in range(0, len(notices), _CHUNK):
        await _prune(connection, notices[start : start + _CHUNK])


async def _prune(connection: AsyncConnection, notices: list[tuple[str, str, str]]) -> None:
    key = tuple_(h.c.event_id, h.c.channel, h.c.recipient)
    # most notices have far fewer than KEPT rows: find those over it first
    over = (
        await connection.execute(
            select(h.c.event_id, h.c.channel, h.c.recipient)
            .where(key.in_(notices))
            .group_by(h.c.event_id, h.c.channel, h.c.recipient)
            .having(func.count() > KEPT)
        )
    ).all()
    for event_id, channel, recipient in over:
        mine = (h.c.event_id == event_id, h.c.channel == channel, h.c.recipient == recipient)
        kept = select(h.c.id).where(*mine).order_by(*_LATEST).limit(KEPT)
        await connection.execute(delete(h).where(*mine, h.c.id.not_in(kept)))


async def of(engine: AsyncEngine, notice: NoticeKey, *, limit: int = KEPT) -> list[dict[str, Any]]:
    """A notice's history, latest first."""
    query = (
        select(h.c.state, h.c.attempts, h.c.reason, h.c.state_time, h.c.received_at)
        .where(
            h.c.event_id == notice.event_id,
            h.c.channel == notice.channel,
            h.c.recipient == notice.recipient,
        )
        .order_by(*_LATEST)
        .limit(limit)
    )
    async with engine.connect() as connection:
        rows = (await connection.execute(query)).mappings().all()
    return [
        {
            **row,
            "state_time": _aware(row["state_time"]),
            "received_at": _aware(row["received_at"]),
        }
        for row in rows
    ]


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)
