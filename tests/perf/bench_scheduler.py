"""Scheduler benchmark on the real broker, with 100,000 pending reminders in its database.

* start: a scheduler process started on a database holding 100,000 pending reminders,
  timed from spawn to ``/health/ready`` (dispatcher armed, Kafka connected);
* steady-state lateness: reminders due at distinct instants over ~40 s, lateness = the
  broker's append time of the record (LogAppendTime) minus the reminder's instant;
* burst: 10,000 reminders due in the same second, timed from that second to the last
  record appended.

Run with ``deploy/bench.sh --scheduler`` (or ``python -m tests.perf.bench_scheduler``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from aiokafka import AIOKafkaConsumer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from gnlc_core.db import create_engine, migrate
from gnlc_core.directory import load_csv
from gnlc_core.events import Audience
from gnlc_core.kafka import partitions_of
from gnlc_core.settings import SAMPLE_DIRECTORY
from gnlc_scheduler import store
from gnlc_scheduler.deadlines import Deadline
from tests.perf.bench_pipeline import machine
from tests.support import Service, free_port, scratch_postgres_database

TOKEN = "bench-operator-token"


async def fill(url: str, pending: int) -> int:
    """Deadlines far in the future until ``pending`` reminders wait in the outbox."""
    engine = create_engine(url)
    await migrate(engine, "scheduler")
    directory = load_csv(SAMPLE_DIRECTORY)
    now = datetime.now(UTC)
    await store.import_cities(engine, directory, now)
    total = 0
    n = 0
    while total < pending:
        deadline = Deadline(
            id=f"bench-far-{n}",
            title={"en": f"Far deadline {n}"},
            due_at=now + timedelta(days=200 + n % 100, minutes=n),
            audience=Audience(all_members=True),
            reminders=("-30d", "-7d", "-1d", "0d", "+3d"),
        )
        planned = await store.save_deadline(engine, deadline, now=now, grace=timedelta(hours=1))
        total += len(planned.rows)
        n += 1
    await engine.dispose()
    return total


async def make_topic(bootstrap: str, name: str) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics(
            [
                NewTopic(
                    name=name,
                    num_partitions=6,
                    replication_factor=1,
                    topic_configs={"message.timestamp.type": "LogAppendTime"},
                )
            ]
        )
    finally:
        await admin.close()


async def read_all(bootstrap: str, topic: str, expected: int, wait: float) -> list[Any]:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    records: list[Any] = []
    try:
        partitions = await partitions_of(consumer, [topic])
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        deadline = time.monotonic() + wait
        while len(records) < expected and time.monotonic() < deadline:
            for batch in (await consumer.getmany(timeout_ms=500, max_records=10000)).values():
                records.extend(batch)
    finally:
        await consumer.stop()
    return records


def lateness_ms(records: list[Any], only: set[str]) -> list[float]:
    result = []
    for record in records:
        event = json.loads(record.value)
        if event["data"]["deadline_id"] in only:
            fire_at = datetime.fromisoformat(event["time"]).timestamp() * 1000
            result.append(record.timestamp - fire_at)
    return result


def summary(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    cuts = statistics.quantiles(ordered, n=100, method="inclusive")
    return {
        "count": len(ordered),
        "p50_ms": round(cuts[49], 1),
        "p99_ms": round(cuts[98], 1),
        "max_ms": round(ordered[-1], 1),
    }


def api(scheduler: Service, method: str, path: str, body: Any) -> httpx.Response:
    response = httpx.request(
        method,
        f"{scheduler.url}{path}",
        json=body,
        headers={"authorization": f"Bearer {TOKEN}"},
        timeout=60,
    )
    response.raise_for_status()
    return response


def run(bootstrap: str, pending: int, burst: int, database_url: str | None) -> dict[str, Any]:
    tmp = Path(tempfile.mkdtemp(prefix="gnlc-bench-scheduler-"))
    url = database_url or f"sqlite+aiosqlite:///{tmp / 'scheduler.db'}"
    prefix = f"bs{uuid.uuid4().hex[:8]}."
    results: dict[str, Any] = {"database": url.split(":", 1)[0]}
    t0 = time.monotonic()
    results["pending"] = asyncio.run(fill(url, pending))
    results["fill_seconds"] = round(time.monotonic() - t0, 1)
    topic = f"{prefix}deadline.reminder"
    asyncio.run(make_topic(bootstrap, topic))

    port = free_port()
    env = dict(
        os.environ,
        KAFKA_BOOTSTRAP_SERVERS=bootstrap,
        GNLC_TOPIC_PREFIX=prefix,
        GNLC_DATABASE_URL=url,
        GNLC_OPERATOR_TOKEN=TOKEN,
        GNLC_SCHEDULER_PORT=str(port),
        GNLC_LOG_LEVEL="WARNING",
    )
    scheduler = Service("scheduler", env, port, tmp / "scheduler.log")
    started = time.monotonic()
    scheduler.start(timeout=120)
    results["start_to_ready_seconds"] = round(time.monotonic() - started, 2)
    try:
        cities = len(load_csv(SAMPLE_DIRECTORY))
        # steady state: 40 instants, one second apart, every city
        steady_due = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=45)
        api(
            scheduler,
            "POST",
            "/v1/deadlines",
            {
                "id": "bench-steady",
                "title": {"en": "Steady"},
                "due_at": steady_due.isoformat(),
                "audience": {"all_members": True},
                "reminders": [f"-{n}s" for n in range(40, 0, -1)],
                "delivery_hour": None,
            },
        )
        # burst: enough deadlines for `burst` reminders due in the same second
        burst_due = steady_due + timedelta(seconds=30)
        burst_ids = [f"bench-burst-{n}" for n in range(-(-burst // cities))]
        for deadline_id in burst_ids:
            api(
                scheduler,
                "POST",
                "/v1/deadlines",
                {
                    "id": deadline_id,
                    "title": {"en": "Burst"},
                    "due_at": burst_due.isoformat(),
                    "audience": {"all_members": True},
                    "reminders": ["0d"],
                    "delivery_hour": None,
                },
            )
        time.sleep(max(0.0, (burst_due - datetime.now(UTC)).total_seconds()) + 8)
        expected = 40 * cities + len(burst_ids) * cities
        records = asyncio.run(read_all(bootstrap, topic, expected, wait=60))
    finally:
        scheduler.stop()
    results["steady"] = summary(lateness_ms(records, {"bench-steady"}))
    burst_lateness = lateness_ms(records, set(burst_ids))
    results["burst"] = summary(burst_lateness) | {
        "all_on_kafka_within_s": round(max(burst_lateness) / 1000, 2)
    }
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pending", type=int, default=100_000)
    parser.add_argument("--burst", type=int, default=10_000)
    parser.add_argument("--database-url", default=os.environ.get("GNLC_BENCH_DATABASE_URL"))
    args = parser.parse_args()
    bootstrap = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:19092")
    if args.database_url and args.database_url.startswith("postgresql"):
        with scratch_postgres_database(args.database_url) as url:
            results = run(bootstrap, args.pending, args.burst, url)
    else:
        results = run(bootstrap, args.pending, args.burst, None)
    print(f"machine: {machine()}")
    for name, value in results.items():
        print(f"{name}: {value}")
    print(json.dumps({"machine": machine(), "results": results}))


if __name__ == "__main__":
    main()
