"""Email benchmarks.

* ``renders``: rendering alone, in process: events for all members (29 cities, about as
  many languages as a real fan-out has) rendered per city, and the same with the MIME
  message composed; plus single-city events, where no draft is shared.
* ``throughput``: the email service as a child process (as in production) on the real
  broker, an SMTP sink (aiosmtpd, counting, in its own process) on loopback; events for all
  members produced as fast as possible; timed from the first send to the last message the
  sink accepted. An event for all members is 29 emails.

Run with ``deploy/bench.sh email`` (``--events N``, ``--connections C``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from multiprocessing.sharedctypes import Synchronized
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaProducer

from gnlc_core.directory import load_csv
from gnlc_core.events import (
    AnnouncementPublished,
    Audience,
    DeadlineReminder,
    announcement_event,
    encode_event,
    reminder_event,
)
from gnlc_core.settings import SAMPLE_DIRECTORY
from gnlc_email.message import Recipient, compose
from gnlc_email.render import Event, Renderer
from tests.perf.bench_pipeline import machine
from tests.support import Service, free_port, seed_directory

DIRECTORY = load_csv(SAMPLE_DIRECTORY)
CITIES = [city for city in DIRECTORY if city.active]
TITLES = {"en": "Biennial progress report", "fr": "Rapport d'étape biennal", "es": "Informe"}


def events(kind: str, count: int, audience: Audience) -> list[Event]:
    """``count`` distinct events of a kind, each with its own due moment (nothing cached
    between them)."""
    start = datetime(2027, 1, 1, tzinfo=UTC)
    made: list[Event] = []
    for i in range(count):
        moment = start + timedelta(minutes=37 * i)
        if kind == "announcement":
            made.append(
                announcement_event(
                    AnnouncementPublished(
                        announcement_id=f"bench-{uuid.uuid4().hex[:12]}",
                        category="event",
                        title={"en": "International Day of Education", "es": "Día"},
                        body={"en": "Join us.\n\nProgrammes at the link below."},
                        audience=audience,
                        published_at=moment,
                        link="https://example.org/e",
                    )
                )
            )
            continue
        offset = 3 * 86400 if kind == "overdue-reminder" else -7 * 86400
        made.append(
            reminder_event(
                DeadlineReminder(
                    deadline_id=f"bench-{uuid.uuid4().hex[:12]}",
                    title=TITLES,
                    description={"en": "Please submit your city's report."},
                    due_at=moment,
                    step="3d-overdue" if offset > 0 else "7d-before",
                    offset_seconds=offset,
                    audience=audience,
                    link="https://example.org/report",
                ),
                fired_at=moment,
            )
        )
    return made


def bench_renders(per_kind: int) -> dict[str, Any]:
    results: dict[str, Any] = {}
    renderer = Renderer()
    for warm in events("deadline-reminder", 2, Audience(all_members=True)):
        renderer.render_many(warm, CITIES)
    sent_at = datetime.now(UTC)
    for kind in ("deadline-reminder", "overdue-reminder", "announcement"):
        batch = events(kind, per_kind, Audience(all_members=True))
        started = time.perf_counter()
        rendered = 0
        for event in batch:
            rendered += len(renderer.render_many(event, CITIES))
        render_seconds = time.perf_counter() - started
        started = time.perf_counter()
        composed = 0
        for event in batch:
            for city, mail in zip(CITIES, renderer.render_many(event, CITIES), strict=True):
                address = city.contacts[0]
                compose(
                    mail,
                    sender="GNLC <gnlc@example.org>",
                    recipient=Recipient(city.name, address, f"{city.id}:{address}"),
                    event_id=event.id,
                    sent_at=sent_at,
                    message_id_domain="notify.example.org",
                    unsubscribe_url="https://notify.example.org/unsubscribe?token=x",
                )
                composed += 1
        compose_seconds = time.perf_counter() - started
        singles = events(kind, 200, Audience(all_members=True))
        started = time.perf_counter()
        for i, event in enumerate(singles):
            renderer.render(event, CITIES[i % len(CITIES)])
        single_seconds = time.perf_counter() - started
        results[f"renders_{kind}"] = {
            "emails": rendered,
            "renders_per_second": round(rendered / render_seconds),
            "rendered_and_composed_per_second": round(composed / compose_seconds),
            "single_city_renders_per_second": round(len(singles) / single_seconds),
        }
    return results


def _sink(port: int, count: Synchronized[int], last: Synchronized[float], ready: Any) -> None:
    from aiosmtpd.controller import Controller
    from aiosmtpd.smtp import SMTP, Envelope, Session

    class Counting:
        async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
            with count.get_lock():
                count.value += 1
                last.value = time.time()
            return "250 OK"

    controller = Controller(Counting(), hostname="127.0.0.1", port=port, ready_timeout=30)
    controller.start()
    ready.set()
    try:
        while True:
            time.sleep(1)
    finally:
        controller.stop()


async def _produce(bootstrap: str, topic: str, values: list[tuple[bytes, bytes]]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=True, linger_ms=5)
    await producer.start()
    try:
        futures = [await producer.send(topic, value, key=key) for key, value in values]
        await asyncio.gather(*futures)
    finally:
        await producer.stop()


def bench_throughput(bootstrap: str, count_events: int, connections: int) -> dict[str, Any]:
    tmp = Path(tempfile.mkdtemp(prefix="gnlc-bench-email-"))
    port = free_port()
    count: Synchronized[int] = multiprocessing.Value("l", 0)
    last: Synchronized[float] = multiprocessing.Value("d", 0.0)
    ready = multiprocessing.Event()
    sink = multiprocessing.Process(target=_sink, args=(port, count, last, ready), daemon=True)
    sink.start()
    ready.wait(30)
    prefix = f"b{uuid.uuid4().hex[:8]}."
    http_port = free_port()
    env = dict(
        os.environ,
        KAFKA_BOOTSTRAP_SERVERS=bootstrap,
        GNLC_TOPIC_PREFIX=prefix,
        GNLC_SMTP_PORT=str(port),
        GNLC_SMTP_CONNECTIONS=str(connections),
        GNLC_LOG_LEVEL="WARNING",
        GNLC_EMAIL_PORT=str(http_port),
        GNLC_DATABASE_URL=f"sqlite+aiosqlite:///{tmp / 'email.db'}",
    )
    seed_directory(bootstrap, prefix)
    service = Service("email", env, http_port, tmp / "email.log")
    topic = f"{prefix}deadline.reminder"
    results: dict[str, Any] = {}
    try:
        service.start()
        warm = events("deadline-reminder", 1, Audience(all_members=True))
        asyncio.run(_produce(bootstrap, topic, [(b"w", encode_event(warm[0]))]))
        deadline = time.monotonic() + 120
        while count.value < len(CITIES) and time.monotonic() < deadline:
            time.sleep(0.1)
        base = count.value
        batch = events("deadline-reminder", count_events, Audience(all_members=True))
        values = [(e.partitionkey.encode(), encode_event(e)) for e in batch]
        expected = base + count_events * len(CITIES)
        started = time.time()
        asyncio.run(_produce(bootstrap, topic, values))
        produced = time.time() - started
        deadline = time.monotonic() + 900
        while count.value < expected and time.monotonic() < deadline:
            time.sleep(0.1)
        delivered = count.value - base
        elapsed = last.value - started
        results["throughput_all_members_events"] = {
            "events": count_events,
            "emails": count_events * len(CITIES),
            "delivered": delivered,
            "complete": count.value >= expected,
            "produce_seconds": round(produced, 2),
            "seconds": round(elapsed, 2),
            "emails_per_second": round(delivered / elapsed, 1),
            "smtp_connections": connections,
        }
    finally:
        service.stop()
        sink.terminate()
        sink.join(10)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--events", type=int, default=300, help="all-member events (x29 mails)")
    parser.add_argument("--connections", type=int, default=32, help="GNLC_SMTP_CONNECTIONS")
    parser.add_argument("--renders", type=int, default=200, help="events per kind, render run")
    parser.add_argument("--only", choices=("renders", "throughput"), default=None)
    args = parser.parse_args()
    bootstrap = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:19092")
    results: dict[str, Any] = {}
    if args.only in (None, "renders"):
        results.update(bench_renders(args.renders))
    if args.only in (None, "throughput"):
        results.update(bench_throughput(bootstrap, args.events, args.connections))
    print(f"machine: {machine()}")
    print(f"broker: single-node Kafka on loopback ({bootstrap})")
    for name, figures in results.items():
        print(f"{name}: " + ", ".join(f"{k}={v}" for k, v in figures.items()))
    print(json.dumps({"machine": machine(), "results": results}))


if __name__ == "__main__":
    main()
