"""Operator accounts: a name, an argon2id password hash and a role."""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from gnlc_console.tables import users

NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,62}$")
MIN_PASSWORD = 12
MAX_PASSWORD = 1024
_hasher = PasswordHasher()  # argon2id with the library's current (RFC 9106) parameters
#: Verified against when the name is unknown, so a wrong name costs what a wrong password does.
_DUMMY_HASH = _hasher.hash("no such account: the time of a real check")


class Role(StrEnum):
    """A viewer reads everything; an editor also changes things."""

    VIEWER = "viewer"
    EDITOR = "editor"


@dataclass(frozen=True)
class User:
    name: str
    role: Role

    @property
    def can_edit(self) -> bool:
        return self.role is Role.EDITOR


def account_problem(name: str, password: str) -> str | None:
    """Why ``name`` and ``password`` cannot make an account, or ``None``."""
    if not NAME.match(name):
        return (
            f"name {name!r}: 1 to 63 of a-z, 0-9, '.', '_' and '-', starting with a letter or digit"
        )
    if not MIN_PASSWORD <= len(password) <= MAX_PASSWORD:
        return f"the password needs {MIN_PASSWORD} to {MAX_PASSWORD} characters"
    return None


async def add_user(
    engine: AsyncEngine, name: str, password: str, role: Role, now: datetime
) -> bool:
    """Create the account, or set a new password and role for an existing one; ``True`` when
    it is new. Raises ``ValueError`` naming what is wrong."""
    problem = account_problem(name, password)
    if problem:
        raise ValueError(problem)
    hashed = await asyncio.to_thread(_hasher.hash, password)
    async with engine.begin() as connection:
        found = await connection.scalar(select(users.c.name).where(users.c.name == name))
        if found is None:
            await connection.execute(
                insert(users).values(name=name, password_hash=hashed, role=role, created_at=now)
            )
            return True
        await connection.execute(
            update(users).where(users.c.name == name).values(password_hash=hashed, role=role)
        )
        return False


async def remove_user(engine: AsyncEngine, name: str) -> bool:
    async with engine.begin() as connection:
        result = await connection.execute(delete(users).where(users.c.name == name))
    return bool(result.rowcount)


async def authenticate(engine: AsyncEngine, name: str, password: str) -> User | None:
    """The account when the password is right, else ``None`` (same cost either way)."""
    async with engine.connect() as connection:
        row = (
            await connection.execute(
                select(users.c.password_hash, users.c.role).where(users.c.name == name)
            )
        ).first()
    stored = row.password_hash if row else _DUMMY_HASH
    # argon2 takes tens of milliseconds of CPU on purpose: off the event loop
    if not await asyncio.to_thread(_matches, stored, password[:MAX_PASSWORD]) or row is None:
        return None
    if _hasher.check_needs_rehash(stored):
        async with engine.begin() as connection:
            await connection.execute(
                update(users)
                .where(users.c.name == name)
                .values(password_hash=_hasher.hash(password))
            )
    return User(name, Role(row.role))


def _matches(stored: str, password: str) -> bool:
    try:
        return _hasher.verify(stored, password)
    except (VerificationError, InvalidHashError):
        return False
