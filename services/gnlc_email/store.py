"""The email service's own tables: unsubscribe preferences, the choices made on the
preference page, and its generated keys.

Tables live on ``gnlc_core.db.metadata``; revisions ``0200`` (branch ``email``) and ``0220``
create them (``0230``: the digest choice of three values).
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import Column, DateTime, String, Table, delete, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from gnlc_core.db import metadata
from gnlc_core.one_of import one_of
from gnlc_email.choices import DEFAULT, Choice, Digest, decode_categories, encode_categories

unsubscribes = Table(
    "email_unsubscribes",
    metadata,
    Column("address", String(320), primary_key=True),  # lower case
    Column("city_id", String(64), nullable=False),
    Column("unsubscribed_at", DateTime(timezone=True), nullable=False),
)

choices = Table(
    "email_choices",
    metadata,
    Column("address", String(320), primary_key=True),  # lower case
    Column("city_id", String(64), nullable=False),
    Column("categories_off", String(64), nullable=False),  # choices.encode_categories
    Column("digest_choice", String(8), nullable=False),  # choices.Digest
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

keys = Table(
    "email_keys",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("value", String(256), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)


@dataclass(frozen=True)
class Recorded:
    """What the service keeps of one contact's choices, and when each last changed (None:
    never made, the default applies)."""

    choice: Choice = DEFAULT
    choice_at: datetime | None = None
    unsubscribed_at: datetime | None = None


def _aware(moment: datetime | None) -> datetime | None:
    """SQLite drops the zone of what it stores: the instants are UTC."""
    return moment.replace(tzinfo=UTC) if moment and moment.tzinfo is None else moment


def _insert(connection: AsyncConnection) -> type[sqlite.Insert] | type[postgresql.Insert]:
    return postgresql.Insert if connection.dialect.name == "postgresql" else sqlite.Insert


class Preferences:
    """Who opted out of optional mail (announcements). Required mail ignores it."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def unsubscribe(self, address: str, city_id: str) -> None:
        """Record the opt-out; doing it twice keeps the first moment."""
        async with self._engine.begin() as connection:
            insert = _insert(connection)
            statement = insert(unsubscribes).values(
                address=address.lower(), city_id=city_id, unsubscribed_at=datetime.now(UTC)
            )
            await connection.execute(statement.on_conflict_do_nothing(index_elements=["address"]))

    async def unsubscribed(self, addresses: Iterable[str]) -> set[str]:
        """The addresses among ``addresses`` (lower case) that opted out."""
        wanted = sorted({address.lower() for address in addresses})
        if not wanted:
            return set()
        async with self._engine.connect() as connection:
            found = one_of(unsubscribes.c.address, wanted, connection.dialect)
            return set(
                (await connection.execute(select(unsubscribes.c.address).where(found))).scalars()
            )

    async def choices(self, addresses: Iterable[str]) -> dict[str, Choice]:
        """The choices of those among ``addresses`` (lower case) who made any."""
        wanted = sorted({address.lower() for address in addresses})
        if not wanted:
            return {}
        async with self._engine.connect() as connection:
            query = select(
                choices.c.address, choices.c.categories_off, choices.c.digest_choice
            ).where(one_of(choices.c.address, wanted, connection.dialect))
            rows = (await connection.execute(query)).all()
        return {
            row.address: Choice(decode_categories(row.categories_off), _digest(row.digest_choice))
            for row in rows
        }

    async def recorded(self, addresses: Iterable[str]) -> dict[str, Recorded]:
        """What is kept of those among ``addresses`` (lower case) who chose anything or
        unsubscribed, with the moments."""
        wanted = sorted({address.lower() for address in addresses})
        if not wanted:
            return {}
        async with self._engine.connect() as connection:
            dialect = connection.dialect
            chosen = select(choices).where(one_of(choices.c.address, wanted, dialect))
            opted = select(unsubscribes).where(one_of(unsubscribes.c.address, wanted, dialect))
            chosen_rows = (await connection.execute(chosen)).all()
            opted_rows = (await connection.execute(opted)).all()
        found = {
            row.address: Recorded(
                Choice(decode_categories(row.categories_off), _digest(row.digest_choice)),
                _aware(row.updated_at),
            )
            for row in chosen_rows
        }
        for row in opted_rows:
            kept = found.get(row.address, Recorded())
            found[row.address] = Recorded(kept.choice, kept.choice_at, _aware(row.unsubscribed_at))
        return found

    async def of(self, address: str) -> tuple[Choice, bool]:
        """(choice, subscribed to announcements) of one contact."""
        found = await self.choices([address])
        opted_out = await self.unsubscribed([address])
        return found.get(address.lower(), DEFAULT), not opted_out

    async def save(self, address: str, city_id: str, choice: Choice, *, subscribed: bool) -> None:
        """Record a contact's choices and whether it receives announcements (``subscribed``
        after an unsubscribe is the resubscribe), in one transaction."""
        lower, now = address.lower(), datetime.now(UTC)
        values = {
            "city_id": city_id,
            "categories_off": encode_categories(choice.categories_off),
            "digest_choice": choice.digest.value,
            "updated_at": now,
        }
        async with self._engine.begin() as connection:
            insert = _insert(connection)
            await connection.execute(
                insert(choices)
                .values(address=lower, **values)
                .on_conflict_do_update(index_elements=["address"], set_=values)
            )
            if subscribed:
                await connection.execute(
                    delete(unsubscribes).where(unsubscribes.c.address == lower)
                )
            else:
                await connection.execute(
                    insert(unsubscribes)
                    .values(address=lower, city_id=city_id, unsubscribed_at=now)
                    .on_conflict_do_nothing(index_elements=["address"])
                )


def _digest(stored: str) -> Digest:
    """A stored digest choice; one no longer known reads as the default."""
    try:
        return Digest(stored)
    except ValueError:
        return DEFAULT.digest


async def shared_key(engine: AsyncEngine, name: str) -> str:
    """A random key made once and kept in the database, the same for every instance that
    shares it (``INSERT ... ON CONFLICT DO NOTHING`` then read: the first writer wins)."""
    async with engine.begin() as connection:
        insert = _insert(connection)
        await connection.execute(
            insert(keys)
            .values(name=name, value=secrets.token_urlsafe(32), created_at=datetime.now(UTC))
            .on_conflict_do_nothing(index_elements=["name"])
        )
        value = (
            await connection.execute(select(keys.c.value).where(keys.c.name == name))
        ).scalar_one()
    return str(value)
