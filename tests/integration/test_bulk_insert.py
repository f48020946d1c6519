"""``BulkInsert`` writes what SQLAlchemy's own ``execute(statement, [dict, ...])`` writes, on
SQLite and on PostgreSQL: the same rows read back (instants, nulls, numbers), and an upsert
updates the columns it names and no other."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import delete, insert, select
from sqlalchemy.ext.asyncio import AsyncEngine

from gnlc_core.bulk import BulkInsert
from gnlc_core.db import create_engine, migrate
from gnlc_core.ledger import notices
from gnlc_webhook.store import attempts

both = pytest.mark.parametrize("database_url", ["sqlite", "postgresql"], indirect=True)

T0 = datetime(2027, 1, 10, 3, 15, 7, 250_000, tzinfo=UTC)
COLUMNS = ["event_id", "endpoint_id", "partner_id", "attempt", "at", "status", "status_code"]
COLUMNS += ["latency_ms", "response_body", "error"]
ROWS = [
    ("e-1", "ok-0", "uil", 1, T0, "delivered", 204, 12.5, "", None),
    ("e-2", "ok-0", "uil", 2, T0 + timedelta(seconds=1), "retrying", None, None, None, 'é "x"'),
]


@both
async def test_the_rows_read_back_as_sqlalchemy_writes_them(database_url: str) -> None:
    engine = create_engine(database_url)
    try:
        await migrate(engine, "webhook")
        by_orm: list[tuple[object, ...]] = []
        for write in ("sqlalchemy", "bulk"):
            async with engine.begin() as connection:
                await connection.execute(delete(attempts))
                if write == "bulk":
                    await BulkInsert(attempts, COLUMNS)(connection, ROWS)
                else:
                    await connection.execute(
                        insert(attempts), [dict(zip(COLUMNS, row, strict=True)) for row in ROWS]
                    )
            async with engine.connect() as connection:
                found = (
                    await connection.execute(
                        select(*[attempts.c[c] for c in COLUMNS]).order_by(attempts.c.event_id)
                    )
                ).all()
            if write == "sqlalchemy":
                by_orm = [tuple(row) for row in found]
            else:
                assert [tuple(row) for row in found] == by_orm
        assert len(by_orm) == 2
        at = by_orm[0][COLUMNS.index("at")]
        assert isinstance(at, datetime)
        assert at.replace(tzinfo=UTC) == T0
    finally:
        await engine.dispose()


def _state_upsert(key: list[str] | None = None) -> BulkInsert:
    """Notices' state columns upserted on their key (``key``: given to ``BulkInsert``)."""
    return BulkInsert(
        notices,
        ["event_id", "channel", "recipient", "status", "attempts", "updated_at"],
        conflict=lambda statement: statement.on_conflict_do_update(
            index_elements=["event_id", "channel", "recipient"],
            set_={c: statement.excluded[c] for c in ("status", "attempts", "updated_at")},
        ),
        key=key,
    )


async def _states(engine: AsyncEngine) -> list[tuple[object, ...]]:
    """(event id, status, attempts) of every notice, by event id."""
    async with engine.connect() as connection:
        query = select(notices.c.event_id, notices.c.status, notices.c.attempts)
        rows = (await connection.execute(query.order_by(notices.c.event_id))).all()
    return [tuple(row) for row in rows]


@both
async def test_an_upsert_updates_the_columns_it_names(database_url: str) -> None:
    engine = create_engine(database_url)
    upsert = _state_upsert()
    try:
        await migrate(engine, "webhook")
        async with engine.begin() as connection:
            await upsert(connection, [("e-1", "webhook", "ok-0", "retrying", 1, T0)])
            await upsert(
                connection,
                [
                    ("e-1", "webhook", "ok-0", "delivered", 2, T0 + timedelta(seconds=5)),
                    ("e-2", "webhook", "ok-0", "held", 0, T0),
                ],
            )
            await upsert(connection, [])  # nothing to write: no statement
        assert await _states(engine) == [("e-1", "delivered", 2), ("e-2", "held", 0)]
    finally:
        await engine.dispose()


def test_columns_the_table_does_not_have_are_refused() -> None:
    with pytest.raises(ValueError, match="webhook_attempts has no column no_such_column"):
        BulkInsert(attempts, ["event_id", "no_such_column"])


@both
async def test_the_ledger_written_forward_keeps_a_settled_notice(database_url: str) -> None:
    from gnlc_core.ledger import Ledger, Notice, Status

    engine = create_engine(database_url)
    try:
        await migrate(engine, "webhook")
        ledger = Ledger(engine, "webhook")
        await ledger.record_many([Notice("e-1", "ok-0", Status.FAILED, 2, "gave up")])
        await ledger.record_many([Notice("e-1", "ok-0", Status.RETRYING, 1)], forward=True)
        assert await ledger.status("e-1", "ok-0") is Status.FAILED
        await ledger.record_many([Notice("e-1", "ok-0", Status.DELIVERED, 3)], forward=True)
        assert await ledger.status("e-1", "ok-0") is Status.DELIVERED
    finally:
        await engine.dispose()


@both
async def test_more_rows_than_one_statement_takes(database_url: str) -> None:
    from sqlalchemy import func

    engine = create_engine(database_url)
    rows = [
        (f"e-{i}", "ok-0", "uil", 1, T0, "delivered", 204, 1.0, None, None) for i in range(3500)
    ]
    try:
        await migrate(engine, "webhook")
        async with engine.begin() as connection:  # 10 columns: 3,000 rows a SQLite statement
            await BulkInsert(attempts, COLUMNS)(connection, rows)
        async with engine.connect() as connection:
            count = (await connection.execute(select(func.count()).select_from(attempts))).scalar()
        assert count == 3500
    finally:
        await engine.dispose()


@both
async def test_rows_that_share_a_key_are_upserted_in_their_order(database_url: str) -> None:
    """PostgreSQL updates a row once per statement: rows of one key in one call go one by
    one, the last one written last, as on SQLite."""
    from gnlc_core.ledger import Ledger, Notice, Status

    engine = create_engine(database_url)
    upsert = _state_upsert(key=["event_id", "channel", "recipient"])
    try:
        await migrate(engine, "webhook")
        async with engine.begin() as connection:
            await upsert(
                connection,
                [
                    ("e-1", "webhook", "ok-0", "retrying", 1, T0),
                    ("e-2", "webhook", "ok-0", "held", 0, T0),
                    ("e-1", "webhook", "ok-0", "delivered", 2, T0 + timedelta(seconds=5)),
                ],
            )
        assert await _states(engine) == [("e-1", "delivered", 2), ("e-2", "held", 0)]
        # the ledger's own statements, many rows of distinct keys at once
        ledger = Ledger(engine, "webhook")
        await ledger.record_many(
            [Notice(f"e-{i}", "ok-1", Status.DELIVERED, 1) for i in range(1000)]
            + [Notice("e-1", "ok-0", Status.RETRYING, 3)],
            forward=True,
        )
        assert await ledger.status("e-999", "ok-1") is Status.DELIVERED
        assert await ledger.status("e-1", "ok-0") is Status.DELIVERED  # settled stays
    finally:
        await engine.dispose()


@both
async def test_rows_that_conflict_with_each_other_are_skipped_once(database_url: str) -> None:
    from gnlc_webhook.store import messages

    engine = create_engine(database_url)
    add = BulkInsert(
        messages,
        ["event_id", "event_type", "body", "created_at"],
        conflict=lambda statement: statement.on_conflict_do_nothing(),
    )
    try:
        await migrate(engine, "webhook")
        async with engine.begin() as connection:
            await add(connection, [("e-1", "t", "first", T0), ("e-1", "t", "second", T0)])
            await add(connection, [("e-1", "t", "third", T0), ("e-2", "t", "ü", T0)])
        async with engine.connect() as connection:
            rows = (
                await connection.execute(
                    select(messages.c.event_id, messages.c.body).order_by(messages.c.event_id)
                )
            ).all()
        assert [tuple(row) for row in rows] == [("e-1", "first"), ("e-2", "ü")]
    finally:
        await engine.dispose()


def test_postgresql_gets_the_delivery_rows_as_arrays() -> None:
    """The statements of a delivery's rows go as one statement of arrays on PostgreSQL (no
    silent fallback to a statement per row)."""
    from sqlalchemy.ext.asyncio import create_async_engine

    from gnlc_core.ledger import _UPSERTS
    from gnlc_webhook.store import _add_attempts, _add_messages

    dialect = create_async_engine("postgresql+asyncpg://nobody@127.0.0.1/none").dialect
    for bulk in [*_UPSERTS.values(), _add_messages, _add_attempts]:
        arrays = bulk._compile(dialect).arrays
        assert arrays is not None
        assert " SELECT * FROM unnest($1::VARCHAR[], " in arrays
        assert "VALUES" not in arrays
        assert "RETURNING" not in arrays
