"""``one_of`` finds what ``column.in_(values)`` finds, on SQLite and on PostgreSQL, with the
list as one parameter: one statement whatever the list's length."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import insert, select

from gnlc_core.db import create_engine, migrate
from gnlc_core.ledger import notices
from gnlc_core.one_of import one_of

both = pytest.mark.parametrize("database_url", ["sqlite", "postgresql"], indirect=True)

STORED = [
    "evt-1",
    "evt-2",
    'quote " and \\ backslash',
    "it's",
    "日本語-é",
    '["json", "looking"]',
    "100%_like",
    "",
]
MANY = [f"absent-{i}" for i in range(5_000)]

CASES = [
    pytest.param([], id="empty"),
    pytest.param(["evt-1"], id="one"),
    pytest.param(["evt-2", "nope", "evt-1", "evt-1"], id="some-absent-and-twice"),
    pytest.param(STORED, id="every-awkward-string"),
    pytest.param(["EVT-1", "evt-1 ", "evt"], id="near-misses"),
    pytest.param([*MANY, "it's"], id="5000-values"),
]


@both
async def test_one_of_finds_what_in_finds(database_url: str) -> None:
    engine = create_engine(database_url)
    try:
        await migrate(engine, "webhook")
        now = datetime(2027, 1, 10, tzinfo=UTC)
        async with engine.begin() as connection:
            await connection.execute(
                insert(notices),
                [
                    {"event_id": e, "channel": "webhook", "recipient": "r", "status": "delivered"}
                    | {"attempts": 1, "updated_at": now}
                    for e in STORED
                ],
            )
        async with engine.connect() as connection:
            dialect = connection.dialect
            statements: set[str] = set()
            for case in CASES:
                values = case.values[0]
                assert isinstance(values, list)
                ours = select(notices.c.event_id).where(one_of(notices.c.event_id, values, dialect))
                theirs = select(notices.c.event_id).where(notices.c.event_id.in_(values))
                found = set((await connection.execute(ours)).scalars())
                assert found == set((await connection.execute(theirs)).scalars()), case.id
                assert found == set(values) & set(STORED), case.id
                compiled = ours.compile(dialect=dialect)
                # no parameter expanded per value at execution (as ``in_`` does)
                assert not any(bind.expanding for bind in compiled.binds.values()), case.id
                statements.add(str(compiled))
            # one statement for every length: compiled and prepared once
            assert len(statements) == 1, statements
    finally:
        await engine.dispose()
