"""Benchmark: how fast the consumer services are back. Each service runs as a child process
on the real broker (the email service with a local SMTP mailbox, the webhook service with
the benchmark's HTTP sink), while events arrive at 10 per second:

* start to ready: from the process's start to ``/health/ready`` answering 200, which needs
  the broker, the views and both consumer groups joined (the domain topics and the retry
  tiers): on fresh topics, after a clean stop (SIGTERM), and after a kill -9;
* the CPU time the process used until it was ready (on a busy machine, the wall-clock
  figures also include waiting for a core);
* resume: from the restart to the first delivery that lands afterwards (the mailbox or the
  sink), after a clean stop and after a kill -9.

``deploy/bench.sh restart`` runs it (``python -m tests.perf.bench_restart --help``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import statistics
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from aiokafka import AIOKafkaProducer

from gnlc_devtools.mailbox import LocalMailbox
from gnlc_webhook.partners import new_secret
from tests.perf.bench_pipeline import machine, make_event
from tests.perf.bench_webhook import start_sink
from tests.support import Service, free_port, seed_directory

RATE = 10.0  # events per second while the service starts, stops and is killed


class Feed:
    """Events to one topic at ``RATE`` per second, from a thread, until stopped."""

    def __init__(self, bootstrap: str, topic: str) -> None:
        self._bootstrap = bootstrap
        self._topic = topic
        self._stop = threading.Event()
        self._thread = threading.Thread(target=lambda: asyncio.run(self._run()), daemon=True)

    async def _run(self) -> None:
        producer = AIOKafkaProducer(bootstrap_servers=self._bootstrap, enable_idempotence=True)
        await producer.start()
        try:
            while not self._stop.is_set():
                event_id, value = make_event("durban")
                await producer.send_and_wait(self._topic, value, key=event_id.encode())
                await asyncio.sleep(1 / RATE)
        finally:
            await producer.stop()

    def __enter__(self) -> Feed:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)


class Arrivals:
    """When deliveries land: ``count()`` polled every 20 ms from a thread."""

    def __init__(self, count: Callable[[], int]) -> None:
        self._count = count
        self._stop = threading.Event()
        self.times: list[float] = []
        self._thread = threading.Thread(target=self._watch, daemon=True)

    def _watch(self) -> None:
        seen = self._count()
        while not self._stop.is_set():
            now = self._count()
            if now > seen:
                self.times.extend([time.monotonic()] * (now - seen))
                seen = now
            time.sleep(0.02)

    def first_after(self, moment: float, timeout: float = 60) -> float | None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            later = [t for t in self.times if t > moment]
            if later:
                return later[0] - moment
            time.sleep(0.02)
        return None

    def __enter__(self) -> Arrivals:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)


def start_timed(service: Service) -> tuple[float, float]:
    """Start ``service``; returns (the moment it was started, seconds until it was ready)."""
    started = time.monotonic()
    service.start(timeout=90)
    return started, time.monotonic() - started


def cpu_seconds(service: Service) -> float:
    """CPU time (user and system) the service's process has used so far: on a busy machine
    the wall-clock figures include waiting for a core, this does not."""
    assert service.proc is not None
    fields = Path(f"/proc/{service.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def round_of(
    name: str, bootstrap: str, env: dict[str, str], tmp: Path, arrivals: Callable[[], int]
) -> dict[str, float | None]:
    """One service on a fresh prefix: fresh start, clean restart, kill -9 and restart."""
    prefix = f"rb{uuid.uuid4().hex[:8]}."
    seed_directory(bootstrap, prefix)
    port = free_port()
    service_env = dict(
        os.environ,
        KAFKA_BOOTSTRAP_SERVERS=bootstrap,
        GNLC_TOPIC_PREFIX=prefix,
        GNLC_LOG_LEVEL="WARNING",
        GNLC_OPERATOR_TOKEN=secrets.token_urlsafe(32),  # the webhook service asks for one
        GNLC_DATABASE_URL=f"sqlite+aiosqlite:///{tmp / prefix}db",
        **{f"GNLC_{name.upper()}_PORT": str(port)},
        **env,
    )

    def service() -> Service:
        return Service(name, service_env, port, tmp / f"{name}-{prefix}log")

    figures: dict[str, float | None] = {}
    first = service()
    _, figures["fresh start to ready"] = start_timed(first)
    figures["CPU seconds used until ready (fresh start)"] = cpu_seconds(first)
    with Feed(bootstrap, f"{prefix}deadline.reminder"), Arrivals(arrivals) as landed:
        if landed.first_after(time.monotonic()) is None:
            raise RuntimeError(f"{name}: no delivery before the restarts:\n{first.tail()}")
        first.stop()
        second = service()
        started, figures["restart to ready (after SIGTERM)"] = start_timed(second)
        figures["restart to first delivery (after SIGTERM)"] = landed.first_after(started)
        time.sleep(2)  # deliveries flowing again before the crash
        second.kill()
        third = service()
        started, figures["restart to ready (after kill -9)"] = start_timed(third)
        figures["CPU seconds used until ready (after kill -9)"] = cpu_seconds(third)
        figures["restart to first delivery (after kill -9)"] = landed.first_after(started)
    third.stop()
    return figures


@contextmanager
def receivers(tmp: Path) -> Iterator[dict[str, tuple[dict[str, str], Callable[[], int]]]]:
    """Per service: its environment (where it delivers) and how many deliveries landed."""
    sink = start_sink(tmp)
    partners = tmp / "partners.yaml"
    partners.write_text(
        json.dumps(
            {
                "endpoints": [
                    {
                        "id": "restart",
                        "partner": "bench",
                        "url": f"{sink.url}/hooks/restart",
                        "event_types": ["deadline.reminder"],
                        "secret": new_secret(),
                    }
                ]
            }
        )
    )
    try:
        with LocalMailbox(keep_in_memory=False) as mailbox:
            yield {
                "email": ({"GNLC_SMTP_PORT": str(mailbox.port)}, lambda: mailbox.count),
                "webhook": (
                    {
                        "GNLC_PARTNERS_PATH": str(partners),
                        "GNLC_WEBHOOK_ALLOWED_NETWORKS": "127.0.0.0/8",
                    },
                    lambda: len(sink.arrivals("/hooks/restart")),
                ),
            }
    finally:
        sink.proc.terminate()
        sink.proc.wait()


def run(bootstrap: str, rounds: int) -> dict[str, dict[str, dict[str, float | None]]]:
    results: dict[str, dict[str, dict[str, float | None]]] = {}
    with tempfile.TemporaryDirectory() as tmp_name, receivers(Path(tmp_name)) as targets:
        for name, (env, landed) in targets.items():
            runs = [round_of(name, bootstrap, env, Path(tmp_name), landed) for _ in range(rounds)]
            results[name] = {measure: summary([r[measure] for r in runs]) for measure in runs[0]}
    return results


def summary(samples: list[float | None]) -> dict[str, float | None]:
    known = [s for s in samples if s is not None]
    if len(known) < len(samples):  # a delivery that never came is a failure, not a figure
        return {"median": None, "max": None}
    return {"median": round(statistics.median(known), 2), "max": round(max(known), 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3, help="rounds per service")
    args = parser.parse_args()
    bootstrap = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:19092")
    results = run(bootstrap, args.rounds)
    print(f"machine: {machine()}")
    print(f"broker: single-node Kafka on loopback ({bootstrap}); {args.rounds} rounds")
    for name, measures in results.items():
        for measure, figure in measures.items():
            print(f"{name:8} {measure:46} median {figure['median']} s, max {figure['max']} s")
    print(json.dumps({"machine": machine(), "results": results}))


if __name__ == "__main__":
    main()
