"""Where digests wait, on SQLite: a held notice is kept with its ledger state, claimed into
at most one digest, leased while sent, and a process killed at any point loses nothing and
never makes a second digest of the same notices (it may send the same one again, with the
same Message-ID, only if killed between the server's answer and the ledger write)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from gnlc_core.db import create_engine, migrate
from gnlc_core.ledger import Ledger, Notice, Status, notices
from gnlc_email.digest import LEASE, MAX_NOTICES
from gnlc_email.digest_store import DigestStore, Held

DAY = date(2027, 1, 10)
CLOSE = datetime(2027, 1, 10, 7, 5, tzinfo=UTC)
BEFORE = CLOSE - timedelta(hours=3)
DURBAN = "durban:focal.point@durban.example.org"


@pytest.fixture
async def engine(tmp_path: Path) -> AsyncIterator[Any]:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'digests.db'}")
    await migrate(engine, "email")
    yield engine
    await engine.dispose()


class Told:
    """A ledger listener: every state the ledger tells of (receipts hook here)."""

    def __init__(self) -> None:
        self.rows: list[Notice] = []

    async def __call__(self, channel: str, rows: Sequence[Notice]) -> None:
        self.rows.extend(rows)


def held(n: int, recipient: str = DURBAN, day: date = DAY, close: datetime = CLOSE) -> Held:
    city, _, address = recipient.partition(":")
    return Held(
        f"event-{n:03}",
        recipient,
        city,
        address,
        day,
        close,
        "{}",
        BEFORE + timedelta(seconds=n),
    )


async def states(engine: Any) -> dict[str, tuple[str, str | None]]:
    async with engine.connect() as connection:
        rows = await connection.execute(
            select(notices.c.event_id, notices.c.status, notices.c.last_error)
        )
        return {row.event_id: (row.status, row.last_error) for row in rows}


async def test_a_held_notice_is_in_the_ledger_and_told_to_its_listeners(engine: Any) -> None:
    told = Told()
    store = DigestStore(engine, Ledger(engine, "email", listeners=[told]))
    await store.hold([held(1), held(2)])
    assert await states(engine) == {
        "event-001": ("held", "digest 2027-01-10"),
        "event-002": ("held", "digest 2027-01-10"),
    }
    assert [(r.event_id, r.status, r.error) for r in told.rows] == [
        ("event-001", Status.HELD, "digest 2027-01-10"),
        ("event-002", Status.HELD, "digest 2027-01-10"),
    ]
    assert [h.event_id for h in await store.waiting()] == ["event-001", "event-002"]


async def test_nothing_is_claimed_before_the_digest_closes(engine: Any) -> None:
    store = DigestStore(engine, Ledger(engine, "email"))
    await store.hold([held(1), held(2)])
    assert await store.claim_due(CLOSE - timedelta(seconds=1)) == 0
    assert await store.take(CLOSE - timedelta(seconds=1)) == []
    assert await store.claim_due(CLOSE) == 1
    (digest,) = await store.take(CLOSE)
    assert digest.id == "durban:focal.point@durban.example.org:2027-01-10:1"
    assert [h.event_id for h in digest.notices] == ["event-001", "event-002"]
    assert await store.waiting() == []


async def test_a_day_with_more_than_the_limit_gets_more_digests(engine: Any) -> None:
    store = DigestStore(engine, Ledger(engine, "email"))
    await store.hold([held(n) for n in range(MAX_NOTICES + 3)])
    assert await store.claim_due(CLOSE) == 2
    (first,) = await store.take(CLOSE, limit=1)  # a few at a time: each within its lease
    (second,) = await store.take(CLOSE)
    assert (first.part, len(first.notices)) == (1, MAX_NOTICES)
    assert (second.part, len(second.notices)) == (2, 3)
    assert {h.event_id for h in first.notices}.isdisjoint(h.event_id for h in second.notices)


async def test_claiming_twice_makes_no_second_digest_of_the_same_notices(engine: Any) -> None:
    """Two instances (or one after a restart) claiming the same day: each notice is in one
    digest only; one held after the claim goes in a digest of its own (part 2)."""
    one = DigestStore(engine, Ledger(engine, "email"))
    other = DigestStore(engine, Ledger(engine, "email"))
    await one.hold([held(1), held(2)])
    assert await one.claim_due(CLOSE) == 1
    assert await other.claim_due(CLOSE) == 0
    await one.hold([held(3)])  # a late one for the same day (a record handled late)
    assert await other.claim_due(CLOSE + timedelta(minutes=1)) == 1
    taken = await one.take(CLOSE + timedelta(minutes=1))
    assert [(d.part, [h.event_id for h in d.notices]) for d in taken] == [
        (1, ["event-001", "event-002"]),
        (2, ["event-003"]),
    ]


async def test_a_digest_taken_is_leased_and_taken_again_after_a_kill(engine: Any) -> None:
    """Killed after taking it (before or after the send): the lease runs out and the same
    digest, with the same notices, is taken again; never while the lease runs."""
    store = DigestStore(engine, Ledger(engine, "email"))
    await store.hold([held(1), held(2)])
    await store.claim_due(CLOSE)
    (first,) = await store.take(CLOSE)
    assert await store.take(CLOSE + LEASE - timedelta(seconds=1)) == []  # another instance
    # ... the process is killed here: a new one starts and looks after the lease
    restarted = DigestStore(engine, Ledger(engine, "email"))
    (again,) = await restarted.take(CLOSE + LEASE)
    assert again == first


async def test_a_finished_digest_is_never_sent_again_nor_its_notices_held_again(
    engine: Any,
) -> None:
    told = Told()
    ledger = Ledger(engine, "email", listeners=[told])
    store = DigestStore(engine, ledger)
    await store.hold([held(1), held(2)])
    await store.claim_due(CLOSE)
    (digest,) = await store.take(CLOSE)
    outcomes = [Notice(h.event_id, h.recipient, Status.DELIVERED) for h in digest.notices]
    await store.finish(digest.id, outcomes, CLOSE)
    assert await store.take(CLOSE + 2 * LEASE) == []
    # the record is handled again (a crash before its offset was committed): nothing
    # changes, not even in a race with the digest (the ledger keeps 'delivered')
    told.rows.clear()
    await store.hold([held(1)])
    assert (await states(engine))["event-001"] == ("delivered", None)
    assert told.rows == []
    assert await store.claim_due(CLOSE + 2 * LEASE) == 0
    assert await store.waiting() == []


async def test_old_digests_are_purged(engine: Any) -> None:
    store = DigestStore(engine, Ledger(engine, "email"))
    await store.hold([held(1)])
    await store.claim_due(CLOSE)
    (digest,) = await store.take(CLOSE)
    await store.finish(digest.id, [Notice("event-001", DURBAN, Status.DELIVERED)], CLOSE)
    assert await store.purge(CLOSE) == 0  # sent at CLOSE: not before it
    assert await store.purge(CLOSE + timedelta(seconds=1)) == 1
