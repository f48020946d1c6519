"""Partner portal sessions: a partner signed in with its webhook API token. Like the
operators' sessions (``sessions``: a random id in an HttpOnly cookie, stored as its
sha256, a CSRF token, idle and absolute expiry), in a table of their own, so an operator
page never finds a partner's session and a partner page never finds an operator's.

The partner's token is needed server-side for every page (the portal calls the webhook API
as the partner). It is kept in the row *sealed*: AES-256-GCM under a key derived (HKDF)
from the session id, which only the browser's cookie holds; the row is bound to its id
hash. A copy of the database opens neither a session nor a token; the token is never in the
cookie or a page."""

from __future__ import annotations

import base64
import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from sqlalchemy import delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from gnlc_console.sessions import TOUCH_EVERY, Lifetimes, SessionState, id_hash, session_state
from gnlc_console.tables import partner_sessions

_INFO = b"gnlc-console partner token"
_NONCE = 12


@dataclass(frozen=True)
class PartnerSession:
    id: str = field(repr=False)
    partner_id: str
    partner_name: str
    token: str = field(repr=False)
    csrf_token: str = field(repr=False)


def _key(session_id: str) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_INFO).derive(
        session_id.encode()
    )


def seal(session_id: str, token: str) -> str:
    """``token`` encrypted under the session id's key, bound to the session (base64)."""
    nonce = secrets.token_bytes(_NONCE)
    sealed = AESGCM(_key(session_id)).encrypt(nonce, token.encode(), id_hash(session_id).encode())
    return base64.b64encode(nonce + sealed).decode()


def unseal(session_id: str, sealed: str) -> str | None:
    """The token, or ``None`` when ``sealed`` is not this session's (or was altered)."""
    try:
        raw = base64.b64decode(sealed, validate=True)
        plain = AESGCM(_key(session_id)).decrypt(
            raw[:_NONCE], raw[_NONCE:], id_hash(session_id).encode()
        )
    except (InvalidTag, ValueError):
        return None
    return plain.decode()


async def open_partner_session(
    engine: AsyncEngine,
    partner_id: str,
    partner_name: str,
    token: str,
    now: datetime,
    replaces: str | None = None,
) -> PartnerSession:
    """A new session (always a new id); the one ``replaces`` names, if any, ends."""
    session_id = secrets.token_urlsafe(32)
    csrf = secrets.token_urlsafe(32)
    async with engine.begin() as connection:
        if replaces:
            await connection.execute(
                delete(partner_sessions).where(partner_sessions.c.id_hash == id_hash(replaces))
            )
        await connection.execute(
            insert(partner_sessions).values(
                id_hash=id_hash(session_id),
                partner_id=partner_id,
                partner_name=partner_name[:200],
                token_sealed=seal(session_id, token),
                csrf_token=csrf,
                created_at=now,
                last_seen_at=now,
            )
        )
    return PartnerSession(session_id, partner_id, partner_name, token, csrf)


async def find_partner_session(
    engine: AsyncEngine, session_id: str, now: datetime, lifetimes: Lifetimes
) -> PartnerSession | None:
    """The active session the cookie names (marked used); an idle, expired or unreadable
    one is deleted."""
    key = id_hash(session_id)
    async with engine.connect() as connection:
        row = (
            await connection.execute(
                select(partner_sessions).where(partner_sessions.c.id_hash == key)
            )
        ).first()
    if row is None:
        return None
    created, seen = _aware(row.created_at), _aware(row.last_seen_at)
    state = session_state(now, created, seen, idle=lifetimes.idle, absolute=lifetimes.absolute)
    token = unseal(session_id, row.token_sealed) if state is SessionState.ACTIVE else None
    if token is None:
        await close_partner_session(engine, session_id)
        return None
    if now - seen >= TOUCH_EVERY:
        async with engine.begin() as connection:
            await connection.execute(
                update(partner_sessions)
                .where(partner_sessions.c.id_hash == key)
                .values(last_seen_at=now)
            )
    return PartnerSession(session_id, row.partner_id, row.partner_name, token, row.csrf_token)


async def close_partner_session(engine: AsyncEngine, session_id: str) -> None:
    async with engine.begin() as connection:
        await connection.execute(
            delete(partner_sessions).where(partner_sessions.c.id_hash == id_hash(session_id))
        )


async def forget_expired_partner_sessions(
    engine: AsyncEngine, now: datetime, lifetimes: Lifetimes
) -> int:
    async with engine.begin() as connection:
        result = await connection.execute(
            delete(partner_sessions).where(
                (partner_sessions.c.created_at <= now - lifetimes.absolute)
                | (partner_sessions.c.last_seen_at <= now - lifetimes.idle)
            )
        )
    return int(result.rowcount or 0)


def _aware(value: datetime) -> datetime:
    """SQLite hands back naive datetimes; they were written in UTC."""
    return value if value.tzinfo else value.replace(tzinfo=UTC)
