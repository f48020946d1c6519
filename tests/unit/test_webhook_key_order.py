"""The order of an ordered endpoint's deliveries in the database (``Store.queue_in_order``,
``key_places``, ``held``, ``forget_order``, ``prune_order``, ``clear_order``), on SQLite."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from gnlc_core.db import create_engine, migrate
from gnlc_core.ledger import Ledger, Notice, Status
from gnlc_webhook.store import CHANNEL, Store, StoredMessage


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'order.db'}")
    await migrate(engine, "webhook")
    yield Store(engine)
    await engine.dispose()


async def places(store: Store, *event_ids: str) -> dict[str, tuple[int, int | None]]:
    async with store.engine.begin() as connection:
        found = await store.key_places([("e1", i) for i in event_ids], connection=connection)
    return {event_id: place for (_, event_id), place in found.items()}


async def record(store: Store, *notices: Notice) -> None:
    async with store.engine.begin() as connection:
        await store.add_messages(
            [StoredMessage(n.event_id, "deadline.reminder", "{}") for n in notices],
            connection=connection,
        )
        await Ledger(store.engine, CHANNEL).record_many(list(notices), connection=connection)


async def test_deliveries_are_numbered_per_key_and_the_first_unsettled_goes(store: Store) -> None:
    async with store.engine.begin() as connection:
        rows = [("e1", "a", "a1"), ("e1", "b", "b1"), ("e1", "a", "a2"), ("e1", "a", "a3")]
        await store.queue_in_order(rows, connection=connection)
        await store.queue_in_order([("e1", "a", "a1")], connection=connection)  # read again
    found = await places(store, "a1", "b1", "a2", "a3", "x")
    assert "x" not in found  # not numbered: outside any order
    first_a = found["a1"][0]
    assert found["a1"] == (first_a, first_a)
    assert found["b1"] == (found["b1"][0], found["b1"][0])
    assert found["a2"][1] == first_a < found["a2"][0] < found["a3"][0]

    held = Notice("a2", "e1", Status.HELD, 0, "held: waiting")
    await record(
        store, Notice("a1", "e1", Status.RETRYING, 1), held, Notice("a3", "e1", Status.HELD, 0)
    )
    assert await store.held("e1", limit=10) == []  # a2 and a3 wait behind a1
    await record(store, Notice("a1", "e1", Status.DELIVERED, 2))
    assert [row[0] for row in await store.held("e1", limit=10)] == ["a2"]  # a2's turn only
    assert (await places(store, "a2"))["a2"][1] == (await places(store, "a2"))["a2"][0]

    assert await store.prune_order() == 1  # a1's row: settled
    await record(store, Notice("a2", "e1", Status.DELIVERED, 1))
    async with store.engine.begin() as connection:  # as the consumer does with it
        await store.forget_order([("e1", "a2")], connection=connection)
    assert [row[0] for row in await store.held("e1", limit=10)] == ["a3"]
    await store.clear_order("e1")
    assert await places(store, "a3", "b1") == {}
