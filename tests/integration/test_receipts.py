"""Receipts on the real broker: the status view agrees with the channels' ledgers after a
burst of 10,000 notices (5,800 emails, 4,200 webhook deliveries) with the email consumer and
the status consumer killed (kill -9) midway and restarted."""

from __future__ import annotations

import asyncio
import resource
import sqlite3
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml
from aiokafka import AIOKafkaProducer
from typer.testing import CliRunner

from gnlc_cli.main import app
from gnlc_core.events import AnnouncementPublished, Audience, announcement_event, encode_event
from gnlc_devtools.mailbox import LocalMailbox
from tests.integration.conftest import System
from tests.perf.bench_webhook import Sink
from tests.support import HTTP, Service, eventually, free_port

pytestmark = [pytest.mark.integration, pytest.mark.long]
EVENTS = 200  # announcements to all 29 members: 5,800 emails
SINK_ENDPOINTS = 19  # + the verifying receiver + one that refuses: 4,200 webhook deliveries
ENDPOINTS = SINK_ENDPOINTS + 2
SETTLED = ("delivered", "failed", "dropped", "unsubscribed")


def start_together(*services: Service) -> list[Service]:
    """Start services side by side (each waits for its own readiness)."""
    with ThreadPoolExecutor(len(services)) as pool:
        return list(pool.map(lambda service: service.start(), services))


def burst(count: int) -> list[bytes]:
    start = datetime.now(UTC)
    return [
        encode_event(
            announcement_event(
                AnnouncementPublished(
                    announcement_id=f"burst-{i}",
                    category="news",
                    title={"en": f"News {i}"},
                    body={"en": "Short."},
                    audience=Audience(all_members=True),
                    published_at=start + timedelta(milliseconds=i),
                )
            )
        )
        for i in range(count)
    ]


async def produce_all(bootstrap: str, topic: str, values: list[bytes]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=True, acks="all")
    await producer.start()
    try:
        sent = [await producer.send(topic, value) for value in values]
        await asyncio.gather(*sent)
    finally:
        await producer.stop()


def states(database: Path, query: str) -> dict[tuple[str, str], str]:
    if not database.exists():
        return {}
    with sqlite3.connect(database, timeout=30) as connection:
        return {(e, r): s for e, r, s in connection.execute(query)}


def ledger(system: System, channel: str) -> dict[tuple[str, str], str]:
    return states(
        system.tmp / f"{channel}.db",
        f"SELECT event_id, recipient, status FROM notices WHERE channel = '{channel}'",  # noqa: S608
    )


def settled(system: System, channel: str) -> int:
    """The channel's notices settled in its ledger (0 while any is not)."""
    database = system.tmp / f"{channel}.db"
    if not database.exists():
        return 0
    states = ", ".join(f"'{state}'" for state in SETTLED)
    with sqlite3.connect(database, timeout=30) as connection:
        total, done = connection.execute(
            f"SELECT count(*), sum(status IN ({states})) FROM notices "  # noqa: S608
            f"WHERE channel = '{channel}'"
        ).fetchone()
    return int(done) if total == done else 0


def status_view(system: System, channel: str) -> dict[tuple[str, str], str]:
    return states(
        system.tmp / "status.db",
        "SELECT event_id, recipient, state FROM status_notices "  # noqa: S608
        f"WHERE channel = '{channel}'",
    )


def diagnosis(system: System, expected: dict[str, int]) -> str:
    """What differs, for the failure message."""
    found = []
    for channel, count in expected.items():
        recorded = ledger(system, channel)
        seen = status_view(system, channel)
        differ = {k: (v, seen.get(k)) for k, v in recorded.items() if seen.get(k) != v}
        found.append(
            f"{channel}: {len(recorded)} of {count} in the ledger, "
            f"states {sorted(Counter(recorded.values()).items())}; view {len(seen)} rows, "
            f"{len(differ)} differ, e.g. {list(differ.items())[:3]}"
        )
    return "; ".join(found)


def test_the_view_agrees_with_the_ledgers_after_a_burst_and_a_kill(
    system: System, http_sink: Sink
) -> None:
    started = time.monotonic()
    sink = http_sink
    with LocalMailbox(keep_in_memory=False) as mailbox:
        system.mailbox = mailbox
        # a mix of outcomes: one city refuses for good, one asks to try again later
        mailbox.script_rcpt("focal.point@durban.example.org", *["550 5.1.1 no such user"] * EVENTS)
        mailbox.script_rcpt("learning@ibadan.example.org", *["451 4.3.0 try later"] * 50)
        # partner-a's receiver verifies every delivery; a cheap sink in its own process
        # answers the others, but for one endpoint nobody listens on (failed after a retry)
        urls = {
            "partner-a": system.receiver.url("partner-a"),
            "gone": f"http://127.0.0.1:{free_port()}/hooks/gone",
            **{f"sink-{i}": f"{sink.url}/hooks/sink-{i}" for i in range(SINK_ENDPOINTS)},
        }
        endpoints = [
            {
                "id": name,
                "partner": "institute-a",
                "url": url,
                "event_types": ["announcement.published"],
                "secret": system.receiver.secret,
            }
            for name, url in urls.items()
        ]
        system.partners.write_text(yaml.safe_dump({"endpoints": endpoints}))
        quick = {
            "GNLC_EMAIL_RETRY_DELAYS_SECONDS": "[1]",
            "GNLC_WEBHOOK_RETRY_DELAYS": "[1]",
            "GNLC_WEBHOOK_RETRY_JITTER": "0",
        }
        status, email, _webhook = start_together(
            system.service("status"),
            system.service("email", **quick),
            system.service("webhook", **quick),
        )
        asyncio.run(
            produce_all(system.kafka, f"{system.prefix}announcement.published", burst(EVENTS))
        )
        # midway: both a channel consumer and the status consumer die without a word
        eventually(lambda: mailbox.count >= 2500, timeout=120, what="2,500 mails")
        email.kill()
        status.kill()
        killed_at = mailbox.count
        start_together(system.service("status"), system.service("email", **quick))

        expected = {"email": EVENTS * 29, "webhook": EVENTS * ENDPOINTS}

        def agreed() -> bool:
            for channel, count in expected.items():
                if settled(system, channel) != count:  # cheap: counts first
                    return False
            return all(
                status_view(system, channel) == ledger(system, channel) for channel in expected
            )

        try:
            eventually(agreed, timeout=180, what="every notice settled, the view equal", every=1)
        except AssertionError as exc:
            raise AssertionError(f"{exc}: {diagnosis(system, expected)}") from None
        took = time.monotonic() - started
    email_states = ledger(system, "email")
    webhook_states = ledger(system, "webhook")
    assert killed_at < EVENTS * 29  # the kill was midway
    assert set(email_states.values()) == {"delivered", "failed"}
    assert set(webhook_states.values()) == {"delivered", "failed"}
    assert status_view(system, "email") == email_states
    assert status_view(system, "webhook") == webhook_states
    system.stop()  # the services' CPU time is counted once they are waited for
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    own = resource.getrusage(resource.RUSAGE_SELF)
    print(
        f"10,000 notices, kill -9 at {killed_at} mails, agreed after {took:.1f} s; CPU: "
        f"services {children.ru_utime + children.ru_stime:.1f} s, "
        f"test process {own.ru_utime + own.ru_stime:.1f} s"
    )


def cli(system: System, *args: str, **urls: str) -> str:
    """``gnlc-notify ARGS`` in process (typer's runner: the same app, options and
    environment, over real HTTP to the real services); its standard output."""
    env = {"GNLC_OPERATOR_TOKEN": system.token, "COLUMNS": "200", **urls}
    done = CliRunner().invoke(app, list(args), env=env)
    assert done.exit_code == 0, (done.stderr, done.exception)
    return done.stdout


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)  # the other store
def test_a_deadlines_receipts_reach_the_view_api_and_cli(system: System) -> None:
    webhook = system.service("webhook")
    scheduler, _email, _webhook, status = start_together(
        system.service("scheduler"),
        system.service("email"),
        webhook,
        system.service("status", GNLC_STATUS_WEBHOOK_API_URL=webhook.url),
    )
    due = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=6)
    created = system.api(
        "POST",
        "/v1/deadlines",
        scheduler,
        json={
            "id": "progress-report",
            "title": {"en": "Biennial progress report"},
            "due_at": due.isoformat(),
            "audience": {"cities": ["kathmandu", "clermont-ferrand"]},
            "reminders": ["-3s", "0d"],
            "delivery_hour": None,
        },
    )
    assert created.status_code == 201, created.text
    submitted = system.api(
        "POST",
        "/v1/deadlines/progress-report/submissions",
        scheduler,
        json={"city_id": "clermont-ferrand"},
    )
    assert submitted.status_code == 201, submitted.text
    # submitted before the first step: both of Clermont's steps are dropped, none sent
    assert datetime.now(UTC) < due - timedelta(seconds=3), "the submission came after a step"

    expected = {
        ("clermont-ferrand", "3s-before", "schedule", "clermont-ferrand", "dropped"),
        ("clermont-ferrand", "due", "schedule", "clermont-ferrand", "dropped"),
        *(
            ("kathmandu", step, channel, recipient, state)
            for step in ("3s-before", "due")
            for channel, recipient, state in (
                ("schedule", "kathmandu", "sent"),
                ("email", "kathmandu:lll@kathmandu.example.org", "delivered"),
                ("webhook", "partner-a", "delivered"),
            )
        ),
    }

    def view() -> set[tuple[str, str, str, str, str]]:
        page = system.api_at("GET", status.url, "/v1/status/deadlines/progress-report").json()
        return {
            (i["city_id"], i["step"], i["channel"], i["recipient"], i["state"])
            for i in page["items"]
        }

    eventually(lambda: view() == expected, timeout=60, what=f"the view to be {expected}")

    # the partner sees its own endpoint, with its own token, and nothing else
    token = system.api_at("POST", webhook.url, "/v1/partners/institute-a/token").json()["token"]
    partner = {"authorization": f"Bearer {token}"}
    own = HTTP.get(f"{status.url}/v1/status/endpoints/partner-a", headers=partner, timeout=10)
    assert {i["state"] for i in own.json()["items"]} == {"delivered"}
    assert len(own.json()["items"]) == 2
    refused = HTTP.get(f"{status.url}/v1/status/deadlines/progress-report", headers=partner)
    assert refused.status_code == 403
    summary = system.api_at("GET", status.url, "/v1/status/summary").json()["counts"]
    assert summary["email"] == {"delivered": 2}

    urls = {"GNLC_API_URL": scheduler.url, "GNLC_STATUS_API_URL": status.url}
    table = cli(system, "status", "deadline", "progress-report", **urls)
    lines = [line for line in table.splitlines() if "kathmandu" in line]
    assert sum("delivered" in line for line in lines) == 4, table
    assert "+05:45" in table, table  # when, in the city's local time
    missing = cli(system, "status", "deadline", "progress-report", "--not-submitted", **urls)
    assert "kathmandu" in missing
    assert "clermont-ferrand" not in missing
    assert "1 cities have not submitted" in missing
