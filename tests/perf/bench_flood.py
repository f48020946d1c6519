"""First attempts beside a retry flood: an endpoint that comes back after an outage with
50,000 retries due at once must not slow first attempts to the healthy endpoints.

The webhook service runs as a child process on the real broker, the cheap HTTP sink
(``tests/perf/sink.py``) in a process of its own, two endpoints on it from a partners file:
``ok-0`` (healthy) and ``back-0`` (the one that comes back).

One stream of first attempts at ``--rate`` events/s: a second of warm-up, then
``--seconds`` of it on a quiet system ("quiet": latency from the send to Kafka to the
arrival of ``ok-0``'s delivery at the sink, p50 / p95 / p99 / max), then ``--retries``
retry records for ``back-0`` come due at once while it goes on for ``--flood-seconds``
more (95 s by default: while first attempts flow, the retries take a quarter of the time,
so at 500 events/s the stream ends before the drain does, and the flood figures cover it
all; ``arrived_after_the_stream`` says how many retries were left)
("flood": the first attempts sent from then until the last retry arrived). The retries are
put there the way the service puts them after failed first attempts: their payloads and
ledger rows (``retrying`` after one request) in the service's database, the records on a
tier topic with the recipient, the attempt and the absolute due time in headers, as
``Retrier.schedule_many`` writes them. They are pending, as they would be during the outage:
put on the tier before the stream starts, on the shortest tier that holds them until their
due time, all due at the end of the quiet run. (``--put-when-due`` puts them on the ``0s``
tier at that moment instead, as the first version of this benchmark did: the burst of the
benchmark's own producer and the broker's writes then falls into the measured window.) The
drain is from the due time (or the first record put on the tier) to the last retry's arrival.

The ratio is flood p99 / quiet p99 (target at most 2). ``deploy/bench.sh flood`` runs it
(``python -m tests.perf.bench_flood --help``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaProducer

from gnlc_core.db import create_engine
from gnlc_core.kafka import RECIPIENT_HEADER, Topics
from gnlc_core.ladder import LADDER
from gnlc_core.ledger import Ledger, Notice, Status
from gnlc_core.tier_reader import ATTEMPT_HEADER, LAST_ERROR_HEADER, NOT_BEFORE_HEADER
from gnlc_webhook.store import CHANNEL, Store, StoredMessage
from tests.perf.bench_pipeline import machine, make_event, percentiles, produce
from tests.perf.bench_webhook import Run, Sink, start_sink

HEALTHY = "ok-0"
BACK = "back-0"


def retry_headers(recipient: str, attempt: int, due: float) -> list[tuple[str, bytes]]:
    """The headers ``Retrier.schedule_many`` gives a retry record."""
    return [
        (RECIPIENT_HEADER, recipient.encode()),
        (ATTEMPT_HEADER, str(attempt).encode()),
        (NOT_BEFORE_HEADER, str(int(due * 1000)).encode()),
        (LAST_ERROR_HEADER, b"HTTP 503"),
    ]


async def failed_first_attempts(database_url: str, recipient: str, events: list[bytes]) -> None:
    """What the service wrote for first attempts to ``recipient`` that failed: the payloads
    and the notices, retrying after one request."""
    engine = create_engine(database_url)
    store, ledger = Store(engine), Ledger(engine, CHANNEL)
    try:
        for start in range(0, len(events), 5000):
            chunk = events[start : start + 5000]
            parsed = [json.loads(value) for value in chunk]
            async with engine.begin() as connection:
                await store.add_messages(
                    [
                        StoredMessage(e["id"], e["type"], value.decode())
                        for e, value in zip(parsed, chunk, strict=True)
                    ],
                    connection=connection,
                )
                await ledger.record_many(
                    [Notice(e["id"], recipient, Status.RETRYING, 1, "http 503") for e in parsed],
                    connection=connection,
                )
    finally:
        await engine.dispose()


async def flood(
    bootstrap: str, topic: str, recipient: str, events: list[bytes], due: float
) -> None:
    """The retry records (attempt 2) of ``events`` for ``recipient``, due at ``due``, on
    ``topic``."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=5, max_batch_size=512_000)
    await producer.start()
    try:
        headers = retry_headers(recipient, 2, due)
        futures = [await producer.send(topic, value, headers=headers) for value in events]
        await asyncio.gather(*futures)
    finally:
        await producer.stop()


def pending_margin(retries: int) -> float:
    """Seconds allowed for putting ``retries`` records on their tier (about 35,000 a second
    here), before the stream of first attempts starts."""
    return 2.0 + retries / 10_000


def pending_tier(topics: Topics, remaining: float) -> str:
    """The shortest tier topic that holds a record until it is due in ``remaining`` seconds
    (it is then ready at its due time: ``gnlc_core.ladder.ready_at``)."""
    tier = min((t for t in LADDER if t >= remaining), default=None)
    if tier is None:
        raise SystemExit(f"no tier holds a retry for {remaining:.0f} s; use fewer --seconds")
    return topics.retry_tier("webhook", tier)


def first_attempts(
    run: Run, sent: dict[str, float], arrivals: dict[tuple[str, str], float], until: float
) -> dict[str, Any]:
    """Latency of the first attempts to the healthy endpoint sent before ``until``."""
    path = run.path(HEALTHY)
    samples = [
        (arrivals[(event_id, path)] - at) * 1000
        for event_id, at in sent.items()
        if at <= until and (event_id, path) in arrivals
    ]
    counted = sum(1 for at in sent.values() if at <= until)
    if len(samples) < 2:
        return {"events": counted, "delivered": len(samples)}
    return {
        "events": counted,
        "delivered": len(samples),
        **{k: round(v, 1) for k, v in percentiles(samples).items()},
    }


def by_slice(
    sent: dict[str, float],
    arrivals: dict[tuple[str, str], float],
    path: str,
    start: float,
    end: float,
    width: float = 5.0,
) -> list[str]:
    """p99 latency (ms) of the first attempts sent in each ``width`` seconds from ``start``
    to ``end``: where in the drain the tail is."""
    slices: dict[int, list[float]] = {}
    for event_id, at in sent.items():
        if start <= at <= end and (event_id, path) in arrivals:
            slices.setdefault(int((at - start) // width), []).append(
                (arrivals[(event_id, path)] - at) * 1000
            )
    return [
        f"{i * width:g}s:{percentiles(v)['p99']:.0f}" if len(v) > 1 else f"{i * width:g}s:-"
        for i, v in sorted(slices.items())
    ]


def wait_for(sink: Sink, path: str, ids: set[str], timeout: float) -> dict[str, float]:
    """Arrival time of each of ``ids`` at ``path`` (those that arrived within ``timeout``)."""
    deadline = time.monotonic() + timeout
    while True:
        seen = {i: at for (i, p), at in sink.arrivals(path).items() if p == path and i in ids}
        if len(seen) >= len(ids) or time.monotonic() > deadline:
            return seen
        time.sleep(0.5)


def measure(
    bootstrap: str,
    tmp: Path,
    sink: Sink,
    database: str | None,
    *,
    rate: float,
    seconds: float,
    flood_seconds: float,
    retries: int,
    profile: Path | None = None,
    put_when_due: bool = False,
) -> dict[str, Any]:
    env: dict[str, str] = {}
    results: dict[str, Any] = {}
    with Run(bootstrap, tmp, sink, database, env, seeded=[HEALTHY, BACK]) as run:
        run.settle()
        made = [make_event("durban") for _ in range(retries)]
        ids = {event_id for event_id, _ in made}
        values = [value for _, value in made]
        asyncio.run(failed_first_attempts(run.database_url, BACK, values))
        # one stream of first attempts: a second of warm-up, ``seconds`` quiet, then the
        # retries come due while it goes on for ``flood_seconds`` more
        warm, count, more = int(rate), int(rate * seconds), int(rate * flood_seconds)
        put = 0.0
        if not put_when_due:  # pending: on the tier before the stream, due after the quiet run
            put_started = time.time()
            due = put_started + pending_margin(retries) + 1 + seconds
            tier = pending_tier(Topics(run.prefix), due - put_started)
            asyncio.run(flood(bootstrap, tier, BACK, values, due))
            put = time.time() - put_started
            if time.time() > due - 1 - seconds:
                raise SystemExit(
                    f"putting {retries} retries on the tier took {put:.1f} s: too long"
                )
            time.sleep(due - 1 - seconds - time.time())
        box: dict[str, dict[str, float]] = {}

        def stream() -> None:
            box["sent"] = asyncio.run(produce(bootstrap, run.topic, warm + count + more, rate))

        producer = threading.Thread(target=stream)
        producer.start()
        time.sleep(1 + seconds)
        spy = None
        if profile is not None and run.service.proc is not None:  # py-spy, if installed
            pid, duration = str(run.service.proc.pid), str(int(flood_seconds))
            command = ["py-spy", "record", "--pid", pid, "--format", "raw", "--duration"]
            command += [duration, "--output", str(profile)]
            spy = subprocess.Popen(command, stdout=subprocess.DEVNULL)
        if put_when_due:
            started = time.time()
            asyncio.run(
                flood(
                    bootstrap, Topics(run.prefix).retry_tier("webhook", 0.0), BACK, values, started
                )
            )
            put = time.time() - started
        else:
            started = due
        producer.join()
        sent = list(box["sent"].items())[warm:]
        quiet = {event_id: at for event_id, at in sent if at < started}
        during = {event_id: at for event_id, at in sent if at >= started}
        back = wait_for(sink, run.path(BACK), ids, timeout=900)
        drained = max(back.values()) if back else float("nan")
        wait_for(sink, run.path(HEALTHY), {event_id for event_id, _ in sent}, timeout=300)
        if spy is not None:
            spy.wait()
        arrivals = sink.arrivals(run.path(HEALTHY))
        results["quiet"] = first_attempts(run, quiet, arrivals, float("inf"))
        results["flood"] = first_attempts(run, during, arrivals, drained)
        results["flood_all"] = first_attempts(run, during, arrivals, float("inf"))
        results["flood_p99_by_5s"] = {
            "from_due": " ".join(by_slice(during, arrivals, run.path(HEALTHY), started, drained))
        }
        results["retries"] = {
            "records": retries,
            "put_on_the_tier": "when due" if put_when_due else "before the stream",
            "put_on_the_tier_seconds": round(put, 2),
            "delivered": len(back),
            "drain_seconds": round(drained - started, 2),
            "per_second": round(len(back) / (drained - started), 1),
            "first_attempts_sent_while_draining": sum(1 for a in during.values() if a <= drained),
            # retries still arriving after the last first attempt was sent: the flood
            # figures cover the drain up to then (the whole drain if none)
            "arrived_after_the_stream": sum(
                1 for at in back.values() if at > max(during.values(), default=0.0)
            ),
        }
    quiet_p99 = results["quiet"].get("p99")
    flood_p99 = results["flood"].get("p99")
    if quiet_p99 and flood_p99:
        results["ratio"] = {"p99_flood_over_quiet": round(flood_p99 / quiet_p99, 2), "target": 2.0}
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=500.0, help="first attempts per second")
    parser.add_argument("--seconds", type=float, default=10.0, help="length of the quiet run")
    parser.add_argument(
        "--flood-seconds",
        type=float,
        default=95.0,
        help="how long first attempts go on once the retries are due",
    )
    parser.add_argument("--retries", type=int, default=50_000, help="retry records due at once")
    parser.add_argument(
        "--database-url",
        default="sqlite",
        help="'sqlite' (the default store) or a PostgreSQL server (a scratch database)",
    )
    parser.add_argument(
        "--profile", type=Path, help="py-spy's collapsed stacks of the service during the flood"
    )
    parser.add_argument(
        "--put-when-due",
        action="store_true",
        help="put the retries on the 0 s tier when they come due (the first version's way)",
    )
    args = parser.parse_args()
    database = args.database_url if args.database_url != "sqlite" else None
    bootstrap = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:19092")
    tmp = Path(tempfile.mkdtemp(prefix="gnlc-bench-flood-"))
    sink = start_sink(tmp)
    load = os.getloadavg()
    try:
        results = measure(
            bootstrap,
            tmp,
            sink,
            database,
            rate=args.rate,
            seconds=args.seconds,
            flood_seconds=args.flood_seconds,
            retries=args.retries,
            profile=args.profile,
            put_when_due=args.put_when_due,
        )
    finally:
        sink.proc.terminate()
        sink.proc.wait(timeout=10)
    print(f"machine: {machine()}")
    print(f"load average at the start: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    print(
        f"broker: single-node Kafka on loopback ({bootstrap}); "
        f"database: {'PostgreSQL' if database else 'SQLite'}"
    )
    for name, figures in results.items():
        print(f"{name}: " + ", ".join(f"{k}={v}" for k, v in figures.items()))
    print(json.dumps({"machine": machine(), "load": load, "results": results}))


if __name__ == "__main__":
    main()
