"""Dead letters: the records every channel parks on ``<prefix><channel>.dead-letter``, kept
in the status service's table (``status_dead_letters``) so an operator can list them with
their reasons and redrive them.

What a record is, where a redrive sends it and what the body looks like on a page are pure
functions (``parked``, ``plan_redrive``, ``body_view``); the rest is the table's queries.

Where a redrive goes (``plan_redrive``):

- a record parked as a whole (it could not be decoded or handled: no recipient header)
  goes back to its source topic, value and key as they were, so every consumer of that
  topic reads it again;
- a webhook delivery parked for one endpoint (a recipient header: refused for good,
  retries exhausted) goes to that endpoint alone, as the webhook API's resend does (the
  channel's ``0s`` retry tier, recipient ``resend:<endpoint>``, attempt 1). Sent back to
  its source topic it would reach every endpoint and every city again: the webhook
  consumer looks up its ledger only for records below its fence;
- an email notice parked for one recipient cannot be redriven: its ledger row is settled
  (``failed``), so the email consumer would skip it, and the email service has no resend;
- a record whose source topic is not one the services read (``retry``) cannot either.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.sql.elements import ColumnElement

from gnlc_core.kafka import REASON_HEADER, RECIPIENT_HEADER, SOURCE_TOPIC_HEADER, Topics
from gnlc_core.tier_reader import ATTEMPT_HEADER, LAST_ERROR_HEADER, NOT_BEFORE_HEADER
from gnlc_status.tables import dead_letters as t

#: The recipient prefix the webhook consumer reads as "send even if settled" (its resend).
RESEND_PREFIX = "resend:"
#: The body shown by the API: at most this many characters.
MAX_BODY_CHARS = 8192
#: Header that says which dead letter a redriven record came from.
REDRIVEN_FROM_HEADER = "x-gnlc-redriven-from"
CHANNELS = ("scheduler", "email", "webhook")


def channel_of(topics: Topics, topic: str) -> str | None:
    """The channel whose dead-letter topic ``topic`` is, or None."""
    for channel in CHANNELS:
        if topic == getattr(topics, f"{channel}_dead_letter"):
            return channel
    return None


def _header(headers: Sequence[tuple[str, bytes | None]], name: str) -> str | None:
    for key, value in headers:
        if key == name and value is not None:
            return value.decode("utf-8", "replace")
    return None


def _event_of(value: bytes) -> tuple[str | None, str | None]:
    """The CloudEvent id and type in a value, where it is JSON that has them."""
    try:
        data = json.loads(value)
    except (ValueError, UnicodeDecodeError):
        return None, None
    if not isinstance(data, dict):
        return None, None
    ident, kind = data.get("id"), data.get("type")
    return (
        ident[:64] if isinstance(ident, str) and ident else None,
        kind[:64] if isinstance(kind, str) and kind else None,
    )


def parked(
    topics: Topics,
    *,
    topic: str,
    partition: int,
    offset: int,
    timestamp_ms: int,
    key: bytes | None,
    value: bytes | None,
    headers: Sequence[tuple[str, bytes | None]],
) -> dict[str, Any]:
    """The table's row for one record of a dead-letter topic (pure)."""
    body = value or b""
    event_id, event_type = _event_of(body)
    return {
        "topic": topic[:255],
        "partition": partition,
        "offset": offset,
        "channel": channel_of(topics, topic) or "unknown",
        "source_topic": (_header(headers, SOURCE_TOPIC_HEADER) or "")[:255] or None,
        "reason": (_header(headers, REASON_HEADER) or "no reason given")[:1000],
        "recipient": (_header(headers, RECIPIENT_HEADER) or "")[:320] or None,
        "key": key,
        "value": body,
        "digest": hashlib.sha256(body).hexdigest(),
        "size": len(body),
        "event_id": event_id,
        "event_type": event_type,
        "parked_at": datetime.fromtimestamp(timestamp_ms / 1000, UTC),
    }


# -- redrive ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Redrive:
    """Publish ``value`` with ``key`` and ``headers`` to ``topic``."""

    topic: str
    key: bytes | None
    value: bytes
    headers: dict[str, str]
    #: the record goes back to its source topic (every consumer reads it again)
    to_source: bool


@dataclass(frozen=True)
class Refusal:
    why: str


def redrivable_sources(topics: Topics) -> frozenset[str]:
    """The topics a record may go back to: those the services read."""
    return frozenset((*topics.domain, *topics.changes, topics.deadline_submitted))


def plan_redrive(
    topics: Topics, row: dict[str, Any], *, now_ms: int | None = None
) -> Redrive | Refusal:
    """Where the dead letter ``row`` goes when redriven, or why it cannot be (pure)."""
    origin = f"{row['topic']}/{row['partition']}/{row['offset']}"
    recipient = row.get("recipient")
    channel = row.get("channel")
    if recipient:
        if channel == "webhook":
            moment = int(time.time() * 1000) if now_ms is None else now_ms
            return Redrive(
                topic=topics.retry_tier("webhook", 0),
                key=row.get("key"),
                value=row["value"],
                headers={
                    RECIPIENT_HEADER: f"{RESEND_PREFIX}{recipient.removeprefix(RESEND_PREFIX)}",
                    ATTEMPT_HEADER: "1",
                    NOT_BEFORE_HEADER: str(moment),
                    LAST_ERROR_HEADER: f"redrive of dead letter {row.get('id')}",
                    REDRIVEN_FROM_HEADER: origin,
                },
                to_source=False,
            )
        if channel == "email":
            return Refusal(
                "an email notice parked for one recipient is settled (failed) in the email "
                "ledger and the email service has no resend; sent back to its topic the event "
                "would reach every partner endpoint again"
            )
        return Refusal(f"a record of channel {channel!r} for one recipient cannot be redriven")
    source = row.get("source_topic")
    if not source or source not in redrivable_sources(topics):
        return Refusal(f"its source topic {source!r} is not a topic the services read")
    return Redrive(
        topic=source,
        key=row.get("key"),
        value=row["value"],
        headers={REDRIVEN_FROM_HEADER: origin},
        to_source=True,
    )


def body_view(value: bytes, limit: int = MAX_BODY_CHARS) -> tuple[str, bool]:
    """A record's value as text to show (pure): JSON indented, other bytes as UTF-8 with
    control characters and undecodable bytes escaped (``\\x1b``), at most ``limit``
    characters; and whether it was cut."""
    try:
        text = json.dumps(json.loads(value), indent=2, ensure_ascii=False)
    except (ValueError, UnicodeDecodeError):
        text = value.decode("utf-8", "backslashreplace")
    shown = "".join(
        c if c in "\n\t" or (c.isprintable() and c not in "\u2028\u2029") else f"\\x{ord(c):02x}"
        for c in text[: limit + 1]
    )
    cut = len(text) > limit or len(shown) > limit
    return shown[:limit], cut


# -- the table ----------------------------------------------------------------------------


async def record(engine: AsyncEngine, rows: Sequence[dict[str, Any]]) -> int:
    """Keep the records (a record read twice is kept once); returns the rows given."""
    if not rows:
        return 0
    async with engine.begin() as connection:
        insert = postgresql.insert if connection.dialect.name == "postgresql" else sqlite.insert
        statement = insert(t).on_conflict_do_nothing(
            index_elements=["topic", "partition", "offset"]
        )
        for start in range(0, len(rows), 200):
            await connection.execute(statement, list(rows[start : start + 200]))
    return len(rows)


@dataclass(frozen=True)
class Filters:
    channel: str | None = None
    source_topic: str | None = None
    reason: str | None = None  # a part of the reason, any case
    event_id: str | None = None
    redriven: bool | None = None
    since: datetime | None = None
    until: datetime | None = None

    def where(self) -> list[ColumnElement[bool]]:
        conditions: list[ColumnElement[bool]] = []
        if self.channel is not None:
            conditions.append(t.c.channel == self.channel)
        if self.source_topic is not None:
            conditions.append(t.c.source_topic == self.source_topic)
        if self.reason:
            escaped = self.reason.lower().replace("\\", "\\\\").replace("%", "\\%")
            escaped = escaped.replace("_", "\\_")
            conditions.append(func.lower(t.c.reason).like(f"%{escaped}%", escape="\\"))
        if self.event_id is not None:
            conditions.append(t.c.event_id == self.event_id)
        if self.redriven is not None:
            conditions.append(
                t.c.redriven_at.is_not(None) if self.redriven else t.c.redriven_at.is_(None)
            )
        if self.since is not None:
            conditions.append(t.c.parked_at >= self.since)
        if self.until is not None:
            conditions.append(t.c.parked_at < self.until)
        return conditions


def _aware(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _out(row: Any) -> dict[str, Any]:
    values = dict(row)
    for name in ("parked_at", "redriven_at"):
        values[name] = _aware(values[name])
    return values


async def listed(
    engine: AsyncEngine, filters: Filters, *, limit: int, offset: int
) -> list[dict[str, Any]]:
    """The dead letters selected, latest first (without their values)."""
    columns = [c for c in t.c if c.name not in ("value", "key")]
    query = (
        select(*columns)
        .where(*filters.where())
        .order_by(t.c.parked_at.desc(), t.c.id.desc())
        .limit(limit)
        .offset(offset)
    )
    async with engine.connect() as connection:
        return [_out(row) for row in (await connection.execute(query)).mappings()]


async def count(engine: AsyncEngine, filters: Filters) -> int:
    query = select(func.count()).select_from(t).where(*filters.where())
    async with engine.connect() as connection:
        return int((await connection.execute(query)).scalar_one())


async def one(engine: AsyncEngine, ident: int) -> dict[str, Any] | None:
    async with engine.connect() as connection:
        row = (await connection.execute(select(t).where(t.c.id == ident))).mappings().first()
    return _out(row) if row is not None else None


async def ids_of(engine: AsyncEngine, filters: Filters, *, limit: int) -> list[int]:
    """The ids selected, oldest first (a redrive of many keeps their order)."""
    query = select(t.c.id).where(*filters.where()).order_by(t.c.parked_at, t.c.id).limit(limit)
    async with engine.connect() as connection:
        return [int(i) for i in (await connection.execute(query)).scalars()]


@dataclass(frozen=True)
class Claimed:
    """The rows a redrive marked (the record and, for a source-topic redrive, its twins:
    the same value parked from the same source topic by another channel, not redriven)."""

    ids: tuple[int, ...]
    before: tuple[tuple[Any, ...], ...]  # what to put back if the publish fails


async def claim(
    engine: AsyncEngine,
    row: dict[str, Any],
    *,
    by: str,
    topic: str,
    twins: bool,
    force: bool,
    now: datetime,
) -> Claimed | None:
    """Mark ``row`` (and its twins) redriven, unless already redriven and not ``force``
    (None: someone else was first). Conditional in the statement: two operators pressing
    at once redrive once."""
    marked = [t.c.id == row["id"]]
    if twins:
        marked.append(
            and_(
                t.c.source_topic == row["source_topic"],
                t.c.digest == row["digest"],
                t.c.recipient.is_(None),
                t.c.redriven_at.is_(None),
            )
        )
    async with engine.begin() as connection:
        condition = t.c.id == row["id"]
        if not force:
            condition = and_(condition, t.c.redriven_at.is_(None))
        before = (
            await connection.execute(
                select(
                    t.c.id, t.c.redriven_at, t.c.redriven_by, t.c.redrive_count, t.c.redrive_topic
                )
                .where(or_(*marked))
                .with_for_update()
            )
        ).all()
        mine = await connection.execute(
            update(t)
            .where(condition)
            .values(
                redriven_at=now,
                redriven_by=by,
                redrive_count=t.c.redrive_count + 1,
                redrive_topic=topic,
            )
        )
        if mine.rowcount != 1:
            return None
        others = [r.id for r in before if r.id != row["id"]]
        if others:
            await connection.execute(
                update(t)
                .where(t.c.id.in_(others), t.c.redriven_at.is_(None))
                .values(
                    redriven_at=now,
                    redriven_by=f"{by} (with {row['id']})"[:100],
                    redrive_count=t.c.redrive_count + 1,
                    redrive_topic=topic,
                )
            )
    return Claimed(tuple(int(r.id) for r in before), tuple(tuple(r) for r in before))


async def unclaim(engine: AsyncEngine, claimed: Claimed) -> None:
    """Put back what ``claim`` changed (the publish failed)."""
    async with engine.begin() as connection:
        for ident, at, by, times, topic in claimed.before:
            await connection.execute(
                update(t)
                .where(t.c.id == ident)
                .values(redriven_at=at, redriven_by=by, redrive_count=times, redrive_topic=topic)
            )


async def not_redriven(engine: AsyncEngine) -> dict[str, int]:
    """Dead letters not redriven, per channel (the dashboard's "needs attention")."""
    query = select(t.c.channel, func.count()).where(t.c.redriven_at.is_(None)).group_by(t.c.channel)
    async with engine.connect() as connection:
        return {channel: int(n) for channel, n in (await connection.execute(query)).all()}
