from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from gnlc_core.db import create_engine, migrate
from gnlc_core.ledger import Ledger, Notice, Status, notices


async def test_ledger_settles_and_updates(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'ledger.db'}")
    await migrate(engine, "email")
    await migrate(engine, "email")  # idempotent
    email = Ledger(engine, "email")
    webhook = Ledger(engine, "webhook")
    await email.record("evt-1", "kathmandu:a@x.org", Status.RETRYING, attempts=1, error="421")
    assert await email.settled("evt-1", ["kathmandu:a@x.org"]) == set()
    await email.record("evt-1", "kathmandu:a@x.org", Status.DELIVERED, attempts=2)
    await email.record("evt-1", "laval:b@x.org", Status.FAILED, error="550 no such user")
    assert await email.settled("evt-1", ["kathmandu:a@x.org", "laval:b@x.org", "c"]) == {
        "kathmandu:a@x.org",
        "laval:b@x.org",
    }
    assert await webhook.settled("evt-1", ["kathmandu:a@x.org"]) == set()
    assert await email.status("evt-1", "laval:b@x.org") is Status.FAILED
    assert await email.status("evt-2", "laval:b@x.org") is None
    await engine.dispose()


async def _languages(engine: AsyncEngine) -> dict[str, str | None]:
    async with engine.connect() as connection:
        rows = await connection.execute(select(notices.c.recipient, notices.c.language))
        return {row.recipient: row.language for row in rows}


@pytest.mark.parametrize(
    ("rows", "expected"),
    [
        ([Notice("e", "a", Status.DELIVERED, language="fr")], {"a": "fr"}),
        ([Notice("e", "a", Status.RETRYING)], {"a": None}),
        (
            # a retry without a language, then the delivery with one
            [Notice("e", "a", Status.RETRYING), Notice("e", "b", Status.DELIVERED, language="ar")],
            {"a": None, "b": "ar"},
        ),
    ],
)
async def test_email_notices_record_their_language(
    tmp_path: Path, rows: list[Notice], expected: dict[str, str | None]
) -> None:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'ledger.db'}")
    await migrate(engine, "email")
    ledger = Ledger(engine, "email")
    for row in rows:
        await ledger.record_many([row])
    assert await _languages(engine) == expected
    # a later state without a language keeps the one recorded
    await ledger.record_many([Notice("e", next(iter(expected)), Status.DELIVERED)])
    assert await _languages(engine) == expected
    await engine.dispose()


async def test_a_webhook_ledger_without_the_column_records_as_before(tmp_path: Path) -> None:
    """The column is on the email branch: the webhook's own database has no such column,
    and its notices (no language) are written without it."""
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'webhook.db'}")
    await migrate(engine, "webhook")
    ledger = Ledger(engine, "webhook")
    await ledger.record_many([Notice("e", "endpoint", Status.DELIVERED)])
    assert await ledger.settled_many([("e", "endpoint")]) == {("e", "endpoint")}
    await engine.dispose()


async def test_listeners_hear_every_recorded_state(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'ledger.db'}")
    await migrate(engine, "email")
    heard: list[tuple[str, list[tuple[str, str, Status]]]] = []

    async def listener(channel: str, rows: Sequence[Notice]) -> None:
        heard.append((channel, [(r.event_id, r.recipient, r.status) for r in rows]))

    ledger = Ledger(engine, "email", listeners=[listener])
    await ledger.record("e1", "a", Status.RETRYING, error="421")
    # two states of one key in one call: only the last is written, and only it is told
    await ledger.record_many(
        [
            Notice("e1", "a", Status.DELIVERED),
            Notice("e2", "b", Status.HELD),
            Notice("e2", "b", Status.DROPPED),
        ]
    )
    await ledger.record_many([])
    assert heard == [
        ("email", [("e1", "a", Status.RETRYING)]),
        ("email", [("e1", "a", Status.DELIVERED), ("e2", "b", Status.DROPPED)]),
    ]
    await engine.dispose()


async def test_moves_are_told_with_the_moment_written(tmp_path: Path) -> None:
    """Held deliveries released (``move``) reach the listeners like any other state, and
    every row told carries when it was written."""
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'ledger.db'}")
    await migrate(engine, "webhook")
    heard: list[Notice] = []

    async def listener(_channel: str, rows: Sequence[Notice]) -> None:
        heard.extend(rows)

    ledger = Ledger(engine, "webhook", listeners=[listener])
    await ledger.record_many(
        [Notice("e1", "ep", Status.HELD, 2), Notice("e2", "ep", Status.HELD, 0)]
    )
    await ledger.record_many([Notice("e3", "ep", Status.DELIVERED)])
    before = datetime.now(UTC)
    await ledger.record_many([Notice("e2", "ep", Status.HELD, 1)])  # held again since
    heard.clear()
    moved = await ledger.move(
        "ep", ["e1", "e2", "e3"], source=Status.HELD, target=Status.RETRYING, not_after=before
    )
    assert [(n.event_id, n.status, n.attempts) for n in moved] == [("e1", Status.RETRYING, 2)]
    assert heard == moved
    assert all(n.at is not None and n.at >= before for n in heard)
    assert await ledger.status("e1", "ep") is Status.RETRYING
    assert await ledger.status("e2", "ep") is Status.HELD
    assert await ledger.status("e3", "ep") is Status.DELIVERED
    await engine.dispose()


@pytest.mark.parametrize(
    ("before", "after", "forward", "stands"),
    [
        (Status.FAILED, Status.RETRYING, True, Status.FAILED),  # a batch written late
        (Status.DELIVERED, Status.HELD, True, Status.DELIVERED),
        (Status.RETRYING, Status.FAILED, True, Status.FAILED),  # forward: as usual
        (Status.FAILED, Status.DELIVERED, True, Status.DELIVERED),  # settled to settled
        (Status.HELD, Status.RETRYING, True, Status.RETRYING),
        (Status.FAILED, Status.RETRYING, False, Status.RETRYING),  # the last write, as before
    ],
)
async def test_written_forward_a_settled_notice_stays_settled(
    tmp_path: Path, before: Status, after: Status, forward: bool, stands: Status
) -> None:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'ledger.db'}")
    await migrate(engine, "webhook")
    told: list[Status] = []

    async def listener(channel: str, rows: Sequence[Notice]) -> None:
        told.extend(row.status for row in rows)

    ledger = Ledger(engine, "webhook", listeners=[listener])
    await ledger.record_many([Notice("e", "a", before, 2)], forward=forward)
    await ledger.record_many([Notice("e", "a", after, 1)], forward=forward)
    assert await ledger.status("e", "a") is stands
    assert told == [before, after]  # the listeners hear of both (the view ranks them)
    await engine.dispose()
