"""Recovering what a dead instance left half done, without emitting anything twice.

An instance claims outbox rows, publishes their events, then marks them emitted. If it
dies between the publishing and the marking, its rows stay claimed; another instance takes
them over after the claim timeout. Before publishing them again it reads the topics back
from the moment of the claim and leaves out every event that is already there, so a crash
at any point neither loses an event nor emits one twice.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import datetime, timedelta

from aiokafka import AIOKafkaConsumer

from gnlc_core.kafka import partitions_of


async def already_published(
    bootstrap_servers: str, topics: Iterable[str], since: datetime, event_ids: set[str]
) -> set[str]:
    """The ids among ``event_ids`` found on ``topics`` in records written after ``since``."""
    if not event_ids:
        return set()
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap_servers,
        enable_auto_commit=False,
        group_id=None,
        isolation_level="read_committed",
    )
    await consumer.start()
    found: set[str] = set()
    try:
        partitions = await partitions_of(consumer, topics)
        if not partitions:
            return found
        consumer.assign(partitions)
        start_ms = int((since - timedelta(seconds=5)).timestamp() * 1000)
        starts = await consumer.offsets_for_times(dict.fromkeys(partitions, start_ms))
        ends = await consumer.end_offsets(partitions)
        remaining = {}
        for tp in partitions:
            start = starts.get(tp)
            if start is None or start.offset >= ends[tp]:
                continue
            consumer.seek(tp, start.offset)
            remaining[tp] = ends[tp]
        while remaining:
            batches = await consumer.getmany(*remaining, timeout_ms=1000)
            for tp, records in batches.items():
                for record in records:
                    if record.value is not None:
                        found.add(str(json.loads(record.value).get("id", "")))
                    if record.offset + 1 >= remaining.get(tp, 0):
                        remaining.pop(tp, None)
            for tp in list(remaining):
                if await consumer.position(tp) >= remaining[tp]:
                    remaining.pop(tp)
    finally:
        await consumer.stop()
    return found & event_ids
