"""The view: receipts in, one row per notice out; and the queries the API answers.

``apply`` is idempotent and order-tolerant: the upsert keeps a row's state unless the
receipt's precedence key (``gnlc_core.receipts.precedence``) is greater, compared in the
statement itself, so any order of the same receipts, and a replay of the whole topic, ends
in the same rows. What a receipt says about the event (deadline, step, city ...) is a fact
that never changes: the first one known is kept. Every receipt is also kept in the
notice's history (``gnlc_status.history``), in the same transaction.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import and_, case, func, or_, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.sql.elements import ColumnElement

from gnlc_core.events import NoticeStatus
from gnlc_core.ledger import Status
from gnlc_core.receipts import StateAt, precedence, supersedes
from gnlc_status import history
from gnlc_status.tables import status_notices as t

KEY = ("event_id", "channel", "recipient")
STATE = ("state", "reason", "attempts", "state_time", "phase", "state_us", "tie")
FACTS = (
    "event_type",
    "event_time",
    "deadline_id",
    "step",
    "announcement_id",
    "city_id",
    "partner_id",
    "send_at",
)
_CHUNK = 500  # rows per statement: far below every database's parameter limit


def state_at(receipt: NoticeStatus) -> StateAt:
    return StateAt(Status(receipt.state), receipt.state_time, receipt.attempts)


def row_of(receipt: NoticeStatus) -> dict[str, Any]:
    phase, micros, _attempts, tie = precedence(state_at(receipt))
    values = receipt.model_dump(include=set(KEY) | set(STATE) | set(FACTS))
    values.update(phase=phase, state_us=micros, tie=tie, reason=receipt.reason)
    for name in FACTS:
        values.setdefault(name, None)
    return values


def collapse(receipts: Sequence[NoticeStatus]) -> list[dict[str, Any]]:
    """One row per notice of a batch: the state that stands among its receipts, with every
    fact any of them gave (pure)."""
    best: dict[tuple[str, str, str], NoticeStatus] = {}
    facts: dict[tuple[str, str, str], dict[str, Any]] = {}
    for receipt in receipts:
        key = (receipt.event_id, receipt.channel, receipt.recipient)
        current = best.get(key)
        if supersedes(state_at(receipt), state_at(current) if current else None):
            best[key] = receipt
        known = facts.setdefault(key, {})
        for name in FACTS:
            value = getattr(receipt, name)
            if value is not None and known.get(name) is None:
                known[name] = value
    return [{**row_of(receipt), **facts[key]} for key, receipt in best.items()]


def _newer(excluded: Any) -> ColumnElement[bool]:
    """The receipt's precedence key is greater than the row's (lexicographic)."""
    same_phase = excluded.phase == t.c.phase
    same_time = and_(same_phase, excluded.state_us == t.c.state_us)
    same_attempts = and_(same_time, excluded.attempts == t.c.attempts)
    return or_(
        excluded.phase > t.c.phase,
        and_(same_phase, excluded.state_us > t.c.state_us),
        and_(same_time, excluded.attempts > t.c.attempts),
        and_(same_attempts, excluded.tie > t.c.tie),
    )


async def apply(
    engine: AsyncEngine, receipts: Sequence[NoticeStatus], *, received_at: datetime | None = None
) -> int:
    """Fold receipts into the view, and add them to their notices' histories; returns the
    notices touched. ``received_at``: when the view read them (default now)."""
    rows = collapse(receipts)
    if not rows:
        return 0
    async with engine.begin() as connection:
        insert = postgresql.insert if connection.dialect.name == "postgresql" else sqlite.insert
        statement = insert(t)
        excluded = statement.excluded
        newer = _newer(excluded)
        set_: dict[str, Any] = {name: func.coalesce(t.c[name], excluded[name]) for name in FACTS}
        for name in STATE:
            # every expression of SET reads the row as it was before the update
            set_[name] = case((newer, excluded[name]), else_=t.c[name])
        statement = statement.on_conflict_do_update(index_elements=list(KEY), set_=set_)
        for start in range(0, len(rows), _CHUNK):
            await connection.execute(statement, rows[start : start + _CHUNK])
        await history.append(connection, receipts, received_at or datetime.now(UTC))
    return len(rows)


# -- queries ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Filters:
    """What to select; every field optional."""

    deadline_id: str | None = None
    announcement_id: str | None = None
    city_id: str | None = None
    step: str | None = None
    channel: str | None = None
    state: str | None = None
    recipient: str | None = None
    recipients: tuple[str, ...] | None = None  # a partner's endpoints
    event_id: str | None = None
    partner_id: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    #: a deadline id, an announcement id or an event id (any of the three)
    subject: str | None = None

    def where(self) -> list[ColumnElement[bool]]:
        conditions: list[ColumnElement[bool]] = []
        for name in (
            "deadline_id",
            "announcement_id",
            "city_id",
            "step",
            "channel",
            "state",
            "recipient",
            "event_id",
            "partner_id",
        ):
            value = getattr(self, name)
            if value is not None:
                conditions.append(t.c[name] == value)
        if self.recipients is not None:
            conditions.append(t.c.recipient.in_(self.recipients))
        if self.subject is not None:
            conditions.append(
                or_(
                    t.c.deadline_id == self.subject,
                    t.c.announcement_id == self.subject,
                    t.c.event_id == self.subject,
                )
            )
        if self.since is not None:
            conditions.append(t.c.state_us >= _micros(self.since))
        if self.until is not None:
            conditions.append(t.c.state_us < _micros(self.until))
        return conditions


def _micros(moment: datetime) -> int:
    return round(moment.timestamp() * 1_000_000)


def _aware(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


ORDERS = {
    "plan": (t.c.city_id, t.c.step, t.c.channel, t.c.recipient, t.c.event_id),
    "recent": (t.c.state_us.desc(), t.c.event_id, t.c.channel, t.c.recipient),
}


async def notices(
    engine: AsyncEngine, filters: Filters, *, limit: int, offset: int, order: str = "plan"
) -> list[dict[str, Any]]:
    query = select(t).where(*filters.where()).order_by(*ORDERS[order]).limit(limit).offset(offset)
    async with engine.connect() as connection:
        rows = (await connection.execute(query)).mappings().all()
    return [
        {
            **{k: v for k, v in row.items() if k not in ("phase", "state_us", "tie")},
            "state_time": _aware(row["state_time"]),
            "event_time": _aware(row["event_time"]),
            "send_at": _aware(row["send_at"]),
        }
        for row in rows
    ]


async def summary(engine: AsyncEngine, filters: Filters) -> dict[str, dict[str, int]]:
    """Counts by channel and state of the notices selected."""
    query = (
        select(t.c.channel, t.c.state, func.count())
        .where(*filters.where())
        .group_by(t.c.channel, t.c.state)
    )
    counts: dict[str, dict[str, int]] = {}
    async with engine.connect() as connection:
        for channel, state, count in (await connection.execute(query)).all():
            counts.setdefault(channel, {})[state] = int(count)
    return counts


async def all_states(engine: AsyncEngine, channel: str) -> dict[tuple[str, str], str]:
    """Every (event id, recipient) of ``channel`` with its state (tests compare it with the
    channel's ledger)."""
    query = select(t.c.event_id, t.c.recipient, t.c.state).where(t.c.channel == channel)
    async with engine.connect() as connection:
        return {(r.event_id, r.recipient): r.state for r in await connection.execute(query)}
