"""Server-side sessions: a random id in an HttpOnly cookie (the table holds its sha256),
a synchronizer CSRF token per session, and two expiries (idle and absolute)."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum

from sqlalchemy import delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from gnlc_console.accounts import Role, User
from gnlc_console.tables import sessions, users

#: last_seen_at is written at most this often (a page view is not a write each time).
TOUCH_EVERY = timedelta(seconds=60)


class SessionState(StrEnum):
    ACTIVE = "active"
    IDLE = "idle"  # unused for longer than the idle limit
    EXPIRED = "expired"  # older than the absolute limit


def session_state(
    now: datetime,
    created_at: datetime,
    last_seen_at: datetime,
    *,
    idle: timedelta,
    absolute: timedelta,
) -> SessionState:
    """Whether a session may still be used at ``now``."""
    if now - created_at >= absolute:
        return SessionState.EXPIRED
    if now - last_seen_at >= idle:
        return SessionState.IDLE
    return SessionState.ACTIVE


def id_hash(session_id: str) -> str:
    return hashlib.sha256(session_id.encode()).hexdigest()


@dataclass(frozen=True)
class Session:
    id: str
    user: User
    csrf_token: str


@dataclass(frozen=True)
class Lifetimes:
    idle: timedelta
    absolute: timedelta


async def open_session(
    engine: AsyncEngine, user: User, now: datetime, replaces: str | None = None
) -> Session:
    """A new session (a new id, always: the id is rotated at each sign-in); the session
    ``replaces`` names, if any, ends."""
    session_id = secrets.token_urlsafe(32)
    csrf = secrets.token_urlsafe(32)
    async with engine.begin() as connection:
        if replaces:
            await connection.execute(
                delete(sessions).where(sessions.c.id_hash == id_hash(replaces))
            )
        await connection.execute(
            insert(sessions).values(
                id_hash=id_hash(session_id),
                user_name=user.name,
                csrf_token=csrf,
                created_at=now,
                last_seen_at=now,
            )
        )
    return Session(session_id, user, csrf)


async def find_session(
    engine: AsyncEngine, session_id: str, now: datetime, lifetimes: Lifetimes
) -> Session | None:
    """The session the cookie names while it is active (and marks it used); an idle or
    expired one is deleted."""
    key = id_hash(session_id)
    async with engine.connect() as connection:
        row = (
            await connection.execute(
                select(
                    sessions.c.csrf_token,
                    sessions.c.created_at,
                    sessions.c.last_seen_at,
                    users.c.name,
                    users.c.role,
                )
                .join(users, users.c.name == sessions.c.user_name)
                .where(sessions.c.id_hash == key)
            )
        ).first()
    if row is None:
        return None
    created, seen = _aware(row.created_at), _aware(row.last_seen_at)
    state = session_state(now, created, seen, idle=lifetimes.idle, absolute=lifetimes.absolute)
    if state is not SessionState.ACTIVE:
        await close_session(engine, session_id)
        return None
    if now - seen >= TOUCH_EVERY:
        async with engine.begin() as connection:
            await connection.execute(
                update(sessions).where(sessions.c.id_hash == key).values(last_seen_at=now)
            )
    return Session(session_id, User(row.name, Role(row.role)), row.csrf_token)


async def close_session(engine: AsyncEngine, session_id: str) -> None:
    async with engine.begin() as connection:
        await connection.execute(delete(sessions).where(sessions.c.id_hash == id_hash(session_id)))


async def forget_expired(engine: AsyncEngine, now: datetime, lifetimes: Lifetimes) -> int:
    """Delete the sessions no request can use any more."""
    async with engine.begin() as connection:
        result = await connection.execute(
            delete(sessions).where(
                (sessions.c.created_at <= now - lifetimes.absolute)
                | (sessions.c.last_seen_at <= now - lifetimes.idle)
            )
        )
    return int(result.rowcount or 0)


def _aware(value: datetime) -> datetime:
    """SQLite hands back naive datetimes; they were written in UTC."""
    return value if value.tzinfo else value.replace(tzinfo=UTC)
