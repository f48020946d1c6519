"""The pieces that read Kafka back: compacted views and the take-over check."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select, update

from gnlc_core.db import create_engine, migrate
from gnlc_core.directory import City, load_csv
from gnlc_core.events import Audience, DeadlineSubmitted, encode_event, submission_event
from gnlc_core.kafka import Topics, ensure_topics, make_broker, publish_event
from gnlc_core.settings import SAMPLE_DIRECTORY, Settings
from gnlc_core.views import DirectoryView, SubmissionView
from gnlc_scheduler import store
from gnlc_scheduler.deadlines import Deadline
from gnlc_scheduler.recovery import already_published
from gnlc_scheduler.tables import outbox
from tests.integration.conftest import System
from tests.integration.kafka_io import produce, read_all
from tests.support import eventually

pytestmark = pytest.mark.integration


def settings_for(kafka: str) -> Settings:
    return Settings(KAFKA_BOOTSTRAP_SERVERS=kafka, topic_prefix=f"v{uuid.uuid4().hex[:8]}.")


async def publish_city(kafka: str, topics: Topics, city: City) -> None:
    await produce(kafka, topics.directory, city.model_dump_json().encode(), key=city.id.encode())


async def test_directory_and_submission_views_follow_their_topics(kafka: str) -> None:
    settings = settings_for(kafka)
    topics = Topics(settings.topic_prefix)
    await ensure_topics(settings)
    directory = load_csv(SAMPLE_DIRECTORY)
    for city in list(directory)[:3]:
        await produce(
            kafka, topics.directory, city.model_dump_json().encode(), key=city.id.encode()
        )
    submitted = submission_event(
        DeadlineSubmitted(
            deadline_id="report", city_id="durban", submitted_at=datetime.now(UTC), source="t"
        ),
        source="/tests",
    )
    await produce(kafka, topics.deadline_submitted, encode_event(submitted), key=b"report/durban")
    cities = DirectoryView(kafka, topics.directory)
    submissions = SubmissionView(kafka, topics.deadline_submitted)
    await cities.start()
    await submissions.start()
    try:
        assert len(cities.directory) == 3  # caught up before start returned
        assert submissions.submitted("report", "durban")
        assert not submissions.submitted("report", "ibadan")
        late = list(directory)[5]
        await publish_city(kafka, topics, late)
        for _ in range(300):  # at most 15 s
            if late.id in cities.directory.by_id:
                break
            await asyncio.sleep(0.05)
        assert late.id in cities.directory.by_id  # followed after start
    finally:
        await cities.stop()
        await submissions.stop()


async def test_already_published_finds_what_is_on_the_topic(kafka: str) -> None:
    topic = f"v{uuid.uuid4().hex[:8]}.deadline.reminder"
    settings = settings_for(kafka)
    await ensure_topics(settings, [topic])
    since = datetime.now(UTC)
    await produce(kafka, topic, *(json.dumps({"id": i}).encode() for i in ("a", "b", "c")))
    found = await already_published(kafka, [topic], since, {"a", "c", "z"})
    assert found == {"a", "c"}


def test_takeover_does_not_publish_again_what_a_dead_instance_published(
    system: System,
) -> None:
    """The crash window made deterministic: rows claimed by a dead instance, half of them
    already on Kafka. The next instance publishes only the other half."""

    async def prepare() -> list[str]:
        engine = create_engine(system.database_url_for("scheduler"))
        await migrate(engine, "scheduler")
        now = datetime.now(UTC)
        await store.import_cities(engine, load_csv(SAMPLE_DIRECTORY), now)
        deadline = Deadline(
            id="report",
            title={"en": "Report"},
            due_at=now + timedelta(hours=2),
            audience=Audience(cities=("kathmandu", "laval", "durban", "ibadan")),
            reminders=("-1h",),
            delivery_hour=None,
        )
        await store.save_deadline(engine, deadline, now=now, grace=timedelta(hours=1))
        async with engine.begin() as connection:  # due now, claimed a minute ago by the dead
            await connection.execute(  # the reminders (the plan's receipts went at once)
                update(outbox)
                .where(outbox.c.type == "deadline.reminder")
                .values(fire_at=now - timedelta(seconds=61))
            )
        claimed = await store.claim_due(
            engine, now=now - timedelta(seconds=60), instance="dead", limit=10
        )
        assert len(claimed) == 4
        settings = Settings(KAFKA_BOOTSTRAP_SERVERS=system.kafka, topic_prefix=system.prefix)
        await ensure_topics(settings)
        broker = make_broker(settings, client_id="the-dead-instance")
        await broker.start()
        from gnlc_core.events import envelope

        for due in claimed[:2]:  # it published two, then died before settling
            await publish_event(
                broker,
                Topics(system.prefix),
                envelope(
                    due.type,
                    event_id=due.event_id,
                    data=due.data,
                    time=due.fire_at,
                    partition_key=due.partition_key,
                ),
            )
        await broker.stop()
        await engine.dispose()
        return [d.event_id for d in claimed]

    ids = asyncio.run(prepare())
    system.service("scheduler", GNLC_CLAIM_TIMEOUT_SECONDS="5").start()

    async def reminders_not_emitted() -> int:
        engine = create_engine(system.database_url_for("scheduler"))
        try:
            async with engine.connect() as connection:
                left = await connection.scalar(
                    select(func.count())
                    .select_from(outbox)
                    .where(outbox.c.type == "deadline.reminder", outbox.c.state != "emitted")
                )
        finally:
            await engine.dispose()
        return int(left or 0)

    # settled: the next instance took the rows over and emitted them (instead of waiting
    # out a quiet period for a fifth record), then the topic is read to its end
    eventually(
        lambda: asyncio.run(reminders_not_emitted()) == 0,
        timeout=60,
        every=0.5,
        what="the dead instance's rows to be taken over and emitted",
    )
    records = asyncio.run(read_all(system.kafka, f"{system.prefix}deadline.reminder"))
    published = [json.loads(r.value)["id"] for r in records if r.value is not None]
    assert sorted(published) == sorted(ids)  # all four, each once
