"""A deadline's revision: every change of what its calendar entry shows raises it and puts a
``deadline.updated`` event in the outbox; cancelling raises it once more with a
``deadline.cancelled``; a submission withdraws the entry from that city (a setting); pending
reminders carry the current revision. Through the operator API, in process."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator
from sqlalchemy import select, update

from gnlc_core.events import encode_event, envelope
from gnlc_scheduler import store
from gnlc_scheduler.tables import outbox
from tests.unit.scheduler_api import OperatorApi, operator_api

SCHEMAS = Path(__file__).resolve().parents[2] / "schemas"
DUE = (datetime.now(UTC) + timedelta(days=30)).replace(microsecond=0)


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[OperatorApi]:
    async with operator_api(tmp_path) as api:
        yield api


async def rows(api: OperatorApi, event_type: str) -> list[dict[str, Any]]:
    async with api.service.engine.connect() as connection:
        found = await connection.execute(
            select(outbox).where(outbox.c.type == event_type).order_by(outbox.c.fire_at)
        )
        return [dict(row) for row in found.mappings()]


async def published(api: OperatorApi) -> None:
    """What the dispatcher would do: every pending change is on Kafka."""
    async with api.service.engine.begin() as connection:
        await connection.execute(
            update(outbox)
            .where(outbox.c.type != "deadline.reminder", outbox.c.state == "pending")
            .values(state="emitted")
        )


async def create(api: OperatorApi) -> None:
    response = await api.client.post(
        "/v1/deadlines",
        json={
            "id": "report",
            "title": {"en": "Report"},
            "due_at": DUE.isoformat(),
            "audience": {"cities": ["kathmandu", "laval"]},
            "reminders": ["-7d", "-1d"],
        },
    )
    assert response.status_code == 201, response.text


def check_schema(row: dict[str, Any]) -> None:
    schema = json.loads((SCHEMAS / f"{row['type']}.schema.json").read_text())
    event = envelope(
        row["type"],
        event_id=row["event_id"],
        data=row["data"],
        time=row["fire_at"].replace(tzinfo=UTC),
        partition_key=row["partition_key"],
        subject=store.subject_of(row["type"], row["data"]),
    )
    Draft202012Validator(schema).validate(json.loads(encode_event(event)))


async def test_edits_of_the_entry_raise_the_revision_and_cancel_raises_it_again(
    api: OperatorApi,
) -> None:
    await create(api)
    assert {r["data"]["sequence"] for r in await rows(api, "deadline.reminder")} == {0}
    assert await rows(api, "deadline.updated") == []
    # what the entry does not show changes nothing
    patched = await api.client.patch("/v1/deadlines/report", json={"reminders": ["-2d"]})
    assert patched.status_code == 200, patched.text
    assert await rows(api, "deadline.updated") == []
    for days in (1, 2):
        moved = (DUE + timedelta(days=days)).isoformat()
        patched = await api.client.patch("/v1/deadlines/report", json={"due_at": moved})
        assert patched.status_code == 200, patched.text
        await published(api)
    for title in ("Rapport d'étape", "Rapport"):  # the first not yet published when replaced
        patched = await api.client.patch("/v1/deadlines/report", json={"title": {"fr": title}})
        assert patched.status_code == 200
    updates = await rows(api, "deadline.updated")
    assert [u["data"]["sequence"] for u in updates] == [1, 2, 4]
    assert [u["state"] for u in updates] == ["emitted", "emitted", "pending"]
    assert updates[-1]["data"]["title"] == {"en": "Report", "fr": "Rapport"}
    assert datetime.fromisoformat(updates[1]["data"]["due_at"]) == DUE + timedelta(days=2)
    assert len({u["event_id"] for u in updates}) == 3
    reminders = [r for r in await rows(api, "deadline.reminder") if r["state"] == "pending"]
    assert {r["data"]["sequence"] for r in reminders} == {4}
    assert {r["data"]["revised_at"] for r in reminders} == {updates[-1]["data"]["revised_at"]}
    assert (await api.client.delete("/v1/deadlines/report")).status_code == 200
    assert (await api.client.delete("/v1/deadlines/report")).status_code == 200  # again
    [cancel] = await rows(api, "deadline.cancelled")
    assert cancel["data"]["sequence"] == 5
    assert cancel["data"]["reason"] == "cancelled"
    assert cancel["state"] == "pending"
    for row in [*updates, cancel, *reminders]:
        check_schema(row)


async def test_a_submission_withdraws_the_entry_from_that_city_once(api: OperatorApi) -> None:
    await create(api)
    for _ in range(2):  # the API's own echo from the topic records it a second time
        response = await api.client.post(
            "/v1/deadlines/report/submissions", json={"city_id": "laval"}
        )
        assert response.status_code == 201
    [cancel] = await rows(api, "deadline.cancelled")
    assert cancel["city_id"] == "laval"
    assert cancel["state"] == "pending"  # the second record did not withdraw it
    assert cancel["data"]["audience"] == {"all_members": False, "regions": [], "cities": ["laval"]}
    assert cancel["data"]["reason"] == "submitted"
    assert store.subject_of(cancel["type"], cancel["data"]) == "deadlines/report/cities/laval"
    check_schema(cancel)


async def test_without_the_setting_a_submission_leaves_the_entry(api: OperatorApi) -> None:
    await create(api)
    api.service.settings = api.service.settings.model_copy(
        update={"calendar_cancel_on_submission": False}
    )
    response = await api.client.post("/v1/deadlines/report/submissions", json={"city_id": "laval"})
    assert response.status_code == 201
    assert await rows(api, "deadline.cancelled") == []
