"""A notice's history in the status view: one row per receipt whatever the order and
however often it is read, the latest 50 kept, a replay gives the same rows; the state that
stands is still decided as before."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from gnlc_core.db import create_engine, migrate
from gnlc_core.events import NoticeStatus
from gnlc_status import history, view
from gnlc_status.history import KEPT, NoticeKey

T0 = datetime(2027, 1, 10, 3, 15, tzinfo=UTC)
HOOK = NoticeKey("e1", "webhook", "partner-a")


def receipt(state: str, seconds: float, attempts: int = 1, reason: str | None = None,
            recipient: str = "partner-a") -> NoticeStatus:  # fmt: skip
    return NoticeStatus(
        event_id="e1",
        channel="webhook",
        recipient=recipient,
        state=state,
        attempts=attempts,
        reason=reason,
        state_time=T0 + timedelta(seconds=seconds),
    )


DELIVERY = [
    receipt("held", 0, 0, "endpoint paused"),
    receipt("retrying", 10, 1, "HTTP 503"),
    receipt("retrying", 40, 2, "timeout"),
    receipt("delivered", 100, 3),
]


async def _engine(path: Path) -> AsyncEngine:
    engine = create_engine(f"sqlite+aiosqlite:///{path}")
    await migrate(engine, "status")
    return engine


@pytest.fixture
async def engine(tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    engine = await _engine(tmp_path / "status.db")
    yield engine
    await engine.dispose()


def told(rows: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    """What a history says, without when the view read it."""
    return [(r["state"], r["attempts"], r["reason"], r["state_time"]) for r in rows]


async def test_every_receipt_once_latest_first(engine: AsyncEngine) -> None:
    await view.apply(engine, DELIVERY[:2])
    await view.apply(engine, DELIVERY + DELIVERY[1:2])  # read again, and twice in a batch
    rows = await history.of(engine, HOOK)
    assert told(rows) == [
        ("delivered", 3, None, T0 + timedelta(seconds=100)),
        ("retrying", 2, "timeout", T0 + timedelta(seconds=40)),
        ("retrying", 1, "HTTP 503", T0 + timedelta(seconds=10)),
        ("held", 0, "endpoint paused", T0),
    ]
    assert all(r["received_at"].tzinfo is not None for r in rows)
    assert await history.of(engine, NoticeKey("e1", "email", "partner-a")) == []


async def test_a_late_retrying_is_history_but_not_the_state(engine: AsyncEngine) -> None:
    await view.apply(engine, [DELIVERY[3]])
    await view.apply(engine, [DELIVERY[2]])  # arrives after delivered
    [row] = await view.notices(engine, view.Filters(event_id="e1"), limit=5, offset=0)
    assert row["state"] == "delivered"
    assert [r["state"] for r in await history.of(engine, HOOK)] == ["delivered", "retrying"]


@pytest.mark.parametrize("batch", [1, 7, 200])
async def test_pruned_to_the_latest_50_in_any_order(engine: AsyncEngine, batch: int) -> None:
    retries = [receipt("retrying", n, n, f"HTTP 503 #{n}") for n in range(1, 80)]
    shuffled = random.Random(batch).sample(retries, len(retries))
    for start in range(0, len(shuffled), batch):
        await view.apply(engine, shuffled[start : start + batch])
    rows = await history.of(engine, HOOK, limit=500)
    assert len(rows) == KEPT == 50
    assert [r["attempts"] for r in rows] == list(range(79, 29, -1))
    # another notice's history is left alone
    await view.apply(engine, [receipt("delivered", 1, 1, recipient="partner-b")])
    assert len(await history.of(engine, HOOK, limit=500)) == KEPT
    assert len(await history.of(engine, NoticeKey("e1", "webhook", "partner-b"))) == 1


async def test_a_replay_rebuilds_the_same_history(engine: AsyncEngine, tmp_path: Path) -> None:
    topic = DELIVERY + [receipt("retrying", n, n, recipient="partner-c") for n in range(60)]
    for start in range(0, len(topic), 9):
        await view.apply(engine, topic[start : start + 9])
    replayed = await _engine(tmp_path / "replayed.db")
    try:
        await view.apply(replayed, random.Random(3).sample(topic, len(topic)))
        for notice in (HOOK, NoticeKey("e1", "webhook", "partner-c")):
            first = await history.of(engine, notice)
            assert first
            assert told(first) == told(await history.of(replayed, notice))
    finally:
        await replayed.dispose()


def test_rows_of_a_batch_are_distinct() -> None:
    rows = history.rows_of(DELIVERY + DELIVERY, T0)
    assert len(rows) == 4
    assert {r["received_at"] for r in rows} == {T0}
