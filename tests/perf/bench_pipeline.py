"""Baseline benchmark of the pipeline on the real broker.

* throughput of each consumer: N events produced as fast as possible to a fresh topic,
  timed from the first send to the last notice accepted by the sink (events per second);
* end-to-end latency at a steady rate: event ``time`` (the fire instant) to the moment the
  SMTP sink accepted the mail / the HTTP sink received the webhook; p50, p95, p99, max.

The sinks are deliberately cheap (they count and timestamp) so the figures are about our
services. Run it with ``deploy/bench.sh`` (it starts the broker if needed).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import re
import secrets
import statistics
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml
from aiokafka import AIOKafkaProducer
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

from gnlc_devtools.receiver import BackgroundServer
from gnlc_webhook.partners import new_secret
from tests.support import Service, free_port, seed_directory

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "schemas" / "examples" / "deadline.reminder" / "valid" / "overdue-minimal.json"
EVENT_ID = re.compile(rb"X-GNLC-Event-Id: ([0-9a-f-]+)", re.I)


@dataclass
class Arrivals:
    """Arrival wall-clock time per event id, thread-safe."""

    times: dict[str, float] = field(default_factory=dict)
    lock: threading.Condition = field(default_factory=threading.Condition)

    def record(self, event_id: str) -> None:
        with self.lock:
            self.times.setdefault(event_id, time.time())
            self.lock.notify_all()

    def wait(self, count: int, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        with self.lock:
            while len(self.times) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self.lock.wait(left)
        return True

    def reset(self) -> None:
        with self.lock:
            self.times.clear()


class SmtpSink:
    def __init__(self, arrivals: Arrivals) -> None:
        self.arrivals = arrivals

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        match = EVENT_ID.search(envelope.original_content or b"")
        if match:
            self.arrivals.record(match.group(1).decode())
        return "250 OK"


def http_sink(arrivals: Arrivals) -> Any:
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        more = True
        while more:
            message = await receive()
            more = message.get("more_body", False)
        for name, value in scope["headers"]:
            if name == b"webhook-id":
                arrivals.record(value.decode())
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    return app


def make_event(city: str) -> tuple[str, bytes]:
    event = json.loads(EXAMPLE.read_text())
    event["id"] = str(uuid.uuid4())
    event["time"] = datetime.now(UTC).isoformat()
    event["data"]["audience"] = {"cities": [city]}
    return event["id"], json.dumps(event).encode()


async def produce(bootstrap: str, topic: str, count: int, rate: float = 0) -> dict[str, float]:
    """Send ``count`` events (as fast as possible, or at ``rate`` per second); returns the
    wall-clock send time per event id."""
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, enable_idempotence=True, linger_ms=2 if not rate else 0
    )
    await producer.start()
    await producer.partitions_for(topic)  # metadata first: the first send is not timed with it
    sent: dict[str, float] = {}
    try:
        start = time.monotonic()
        futures = []
        for i in range(count):
            if rate:
                delay = start + i / rate - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
            event_id, value = make_event("durban")
            sent[event_id] = time.time()
            futures.append(await producer.send(topic, value, key=event_id.encode()))
        await asyncio.gather(*futures)
    finally:
        await producer.stop()
    return sent


def percentiles(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    cuts = statistics.quantiles(ordered, n=100, method="inclusive")
    return {"p50": cuts[49], "p95": cuts[94], "p99": cuts[98], "max": ordered[-1]}


def run(bootstrap: str, events: int, rate: float, seconds: float) -> dict[str, Any]:
    tmp = Path(tempfile.mkdtemp(prefix="gnlc-bench-"))
    mail_arrivals, hook_arrivals = Arrivals(), Arrivals()
    smtp = Controller(SmtpSink(mail_arrivals), hostname="127.0.0.1", port=free_port())
    smtp.start()
    http = BackgroundServer(http_sink(hook_arrivals)).__enter__()
    partners = tmp / "partners.yaml"
    partners.write_text(
        yaml.safe_dump(
            {
                "endpoints": [
                    {
                        "id": "sink",
                        "partner": "bench",
                        "url": f"{http.url}/hooks/sink",
                        "event_types": ["deadline.reminder"],
                        "secret": new_secret(),
                    }
                ]
            }
        )
    )
    results: dict[str, Any] = {}
    services: list[Service] = []
    try:

        def start(name: str, prefix: str) -> Service:
            seed_directory(bootstrap, prefix)
            port = free_port()
            env = dict(
                os.environ,
                KAFKA_BOOTSTRAP_SERVERS=bootstrap,
                GNLC_TOPIC_PREFIX=prefix,
                GNLC_SMTP_PORT=str(smtp.port),
                GNLC_PARTNERS_PATH=str(partners),
                GNLC_LOG_LEVEL="WARNING",
                GNLC_OPERATOR_TOKEN=secrets.token_urlsafe(24),  # the webhook service needs one
                GNLC_WEBHOOK_ALLOWED_NETWORKS="127.0.0.0/8",
                GNLC_DATABASE_URL=f"sqlite+aiosqlite:///{tmp / name}-{prefix}db",
                **{f"GNLC_{name.upper()}_PORT": str(port)},
            )
            service = Service(name, env, port, tmp / f"{name}-{prefix}log")
            services.append(service)
            return service.start()

        for name, arrivals in (("email", mail_arrivals), ("webhook", hook_arrivals)):
            prefix = f"b{uuid.uuid4().hex[:8]}."
            service = start(name, prefix)
            arrivals.reset()
            t0 = time.time()
            asyncio.run(produce(bootstrap, f"{prefix}deadline.reminder", events))
            complete = arrivals.wait(events, timeout=300)
            elapsed = max(arrivals.times.values()) - t0
            results[f"{name}_throughput"] = {
                "events": events,
                "delivered": len(arrivals.times),
                "complete": complete,
                "seconds": round(elapsed, 2),
                "per_second": round(len(arrivals.times) / elapsed, 1),
            }
            service.stop()

        prefix = f"b{uuid.uuid4().hex[:8]}."
        start("email", prefix)
        start("webhook", prefix)
        mail_arrivals.reset()
        hook_arrivals.reset()
        count = int(rate * seconds)
        sent = asyncio.run(produce(bootstrap, f"{prefix}deadline.reminder", count, rate))
        mail_arrivals.wait(count, timeout=120)
        hook_arrivals.wait(count, timeout=120)
        for name, arrivals in (("email", mail_arrivals), ("webhook", hook_arrivals)):
            latencies = [
                (arrivals.times[event_id] - at) * 1000
                for event_id, at in sent.items()
                if event_id in arrivals.times
            ]
            results[f"{name}_latency_ms_at_{rate:g}_per_s"] = {
                "events": count,
                "delivered": len(latencies),
                **{k: round(v, 1) for k, v in percentiles(latencies).items()},
            }
    finally:
        for service in services:
            service.stop()
        http.__exit__(None, None, None)
        smtp.stop()
    return results


def machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return (
        f"{os.cpu_count()} cores ({cpu}), {memory:.0f} GiB, {platform.system()} "
        f"{platform.release()}, Python {platform.python_version()}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=2000, help="events per throughput run")
    parser.add_argument("--rate", type=float, default=100.0, help="events/s in the latency run")
    parser.add_argument("--seconds", type=float, default=10.0, help="length of the latency run")
    args = parser.parse_args()
    bootstrap = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:19092")
    results = run(bootstrap, args.events, args.rate, args.seconds)
    print(f"machine: {machine()}")
    print(f"broker: single-node Kafka on loopback ({bootstrap})")
    for name, figures in results.items():
        print(f"{name}: " + ", ".join(f"{k}={v}" for k, v in figures.items()))
    print(json.dumps({"machine": machine(), "results": results}))


if __name__ == "__main__":
    main()
