"""A row the real broker refuses (its event is larger than a Kafka request) is parked with
the producer's reason, once, while the rows behind it still go out: the dispatcher never
retries it in a loop."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from typing import Any

import pytest

from gnlc_core.db import create_engine
from gnlc_core.events import AnnouncementPublished, Audience, stable_id
from gnlc_scheduler.tables import outbox
from tests.integration.conftest import System
from tests.support import eventually

pytestmark = pytest.mark.integration


def oversized_row(announcement_id: str) -> dict[str, Any]:
    """A valid announcement whose event is about 1.3 MB: what the API now refuses, written
    straight into the outbox as an older version could have."""
    text = "\N{GRINNING FACE}" * 20_000
    data = AnnouncementPublished(
        announcement_id=announcement_id,
        category="news",
        title={"en": "Too large"},
        body={f"l{chr(97 + n // 26)}{chr(97 + n % 26)}": text for n in range(16)},
        audience=Audience(all_members=True),
        published_at=datetime.now(UTC),
    )
    return {
        "event_id": stable_id("announcement.published", announcement_id),
        "type": "announcement.published",
        "fire_at": datetime.now(UTC),
        "state": "pending",
        "announcement_id": announcement_id,
        "partition_key": announcement_id,
        "data": data.model_dump(mode="json"),
    }


async def insert(url: str, row: dict[str, Any]) -> None:
    engine = create_engine(url)
    async with engine.begin() as connection:
        await connection.execute(outbox.insert(), [row])
    await engine.dispose()


def test_an_event_kafka_refuses_is_parked_with_the_reason(system: System) -> None:
    scheduler = system.service("scheduler").start()
    asyncio.run(insert(system.database_url_for("scheduler"), oversized_row("too-large")))
    parked: list[dict[str, Any]] = eventually(
        lambda: system.api("GET", "/v1/outbox", scheduler, params={"state": "parked"}).json(),
        timeout=30,
        what="the oversized event to be parked",
    )
    assert [row["announcement_id"] for row in parked] == ["too-large"], scheduler.tail()
    assert parked[0]["attempts"] == 1
    assert "MessageSizeTooLarge" in parked[0]["last_error"]
    # the dispatcher goes on with everything else
    body = {
        "id": "after",
        "category": "news",
        "title": {"en": "After"},
        "body": {"en": "Still delivered."},
        "audience": {"cities": ["kathmandu"]},
    }
    assert system.api("POST", "/v1/announcements", scheduler, json=body).status_code == 202
    eventually(
        lambda: (
            system.api("GET", "/v1/announcements/after", scheduler).json()["outbox"]["state"]
            == "emitted"
        ),
        timeout=30,
        what="the next announcement to be emitted",
    )
    time.sleep(2)  # several sweeps later, still one attempt
    again = system.api("GET", "/v1/outbox", scheduler, params={"state": "parked"}).json()
    assert again[0]["attempts"] == 1
