"""The status view: receipts folded in any order, any number of times, give the same rows;
a late ``retrying`` never overwrites ``delivered``."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from gnlc_core.db import create_engine, migrate
from gnlc_core.events import NoticeStatus
from gnlc_status import view
from gnlc_status.tables import status_notices

T0 = datetime(2027, 1, 10, 3, 15, tzinfo=UTC)


def receipt(
    event: str, recipient: str, state: str, seconds: float, attempts: int = 1, **facts: Any
) -> NoticeStatus:
    return NoticeStatus(
        event_id=event,
        channel="webhook" if not recipient.count(":") else "email",
        recipient=recipient,
        state=state,
        attempts=attempts,
        state_time=T0 + timedelta(seconds=seconds),
        **facts,
    )


async def _engine(path: Path) -> AsyncEngine:
    engine = create_engine(f"sqlite+aiosqlite:///{path}")
    await migrate(engine, "status")
    return engine


@pytest.fixture
async def engine(tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    engine = await _engine(tmp_path / "status.db")
    yield engine
    await engine.dispose()


async def rows(engine: AsyncEngine) -> list[tuple[Any, ...]]:
    async with engine.connect() as connection:
        result = await connection.execute(
            select(status_notices).order_by(status_notices.c.event_id, status_notices.c.recipient)
        )
        return [tuple(row) for row in result]


HISTORY = [
    # a webhook delivery: held, released, retried, delivered
    receipt("e1", "portal", "held", 0, 0, partner_id="uil"),
    receipt("e1", "portal", "retrying", 1, 0),
    receipt("e1", "portal", "retrying", 2, 1, reason="HTTP 503"),
    receipt("e1", "portal", "delivered", 3, 2, deadline_id="report", step="due"),
    # an email: retried, then failed for good
    receipt("e1", "kathmandu:a@x.org", "retrying", 0, 1, city_id="kathmandu"),
    receipt("e1", "kathmandu:a@x.org", "failed", 5, 2, reason="550"),
    # an email dropped at once
    receipt("e2", "laval:b@x.org", "unsubscribed", 0, 0, announcement_id="news"),
]


async def test_a_late_retrying_never_overwrites_delivered(engine: AsyncEngine) -> None:
    await view.apply(engine, [receipt("e1", "portal", "delivered", 3, 2)])
    await view.apply(engine, [receipt("e1", "portal", "retrying", 9, 3, reason="late")])
    [row] = await view.notices(engine, view.Filters(), limit=10, offset=0)
    assert (row["state"], row["attempts"], row["reason"]) == ("delivered", 2, None)


async def test_any_order_and_any_replay_rebuild_the_same_view(tmp_path: Path) -> None:
    reference = await _engine(tmp_path / "in-order.db")
    await view.apply(reference, HISTORY)
    expected = await rows(reference)
    await reference.dispose()
    states = {(r[0], r[2]): r[3] for r in expected}
    assert states == {
        ("e1", "portal"): "delivered",
        ("e1", "kathmandu:a@x.org"): "failed",
        ("e2", "laval:b@x.org"): "unsubscribed",
    }
    # facts from any receipt of the notice are kept
    [portal] = [r for r in expected if r[2] == "portal"]
    assert "uil" in portal
    assert "report" in portal
    shuffler = random.Random(12)
    for attempt in range(6):
        engine = await _engine(tmp_path / f"shuffled-{attempt}.db")
        receipts = HISTORY * 2  # every receipt twice (at-least-once)
        shuffler.shuffle(receipts)
        cut = shuffler.randrange(len(receipts))
        await view.apply(engine, receipts[:cut])  # batches of any size
        for one in receipts[cut:]:
            await view.apply(engine, [one])
        await view.apply(engine, HISTORY)  # then the whole topic again: a replay
        assert await rows(engine) == expected
        await engine.dispose()


async def test_queries_filter_page_and_count(engine: AsyncEngine) -> None:
    await view.apply(engine, HISTORY)
    page = await view.notices(engine, view.Filters(event_id="e1"), limit=1, offset=1)
    assert len(page) == 1
    counts = await view.summary(engine, view.Filters(since=T0, until=T0 + timedelta(seconds=6)))
    assert counts == {"webhook": {"delivered": 1}, "email": {"failed": 1, "unsubscribed": 1}}
    assert await view.summary(engine, view.Filters(since=T0 + timedelta(seconds=4))) == {
        "email": {"failed": 1}
    }
    mine = view.Filters(channel="webhook", recipients=("portal",))
    assert [r["recipient"] for r in await view.notices(engine, mine, limit=9, offset=0)] == [
        "portal"
    ]
    assert await view.notices(engine, view.Filters(recipients=()), limit=9, offset=0) == []
