"""Metrics: the pure decisions (reasons, dead-letter channels, lag), the HTTP middleware,
the ledger listener, and every service's registry as promtool sees it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from aiokafka import TopicPartition
from fastapi import FastAPI
from prometheus_client import CollectorRegistry, generate_latest

from gnlc_core import metrics as core_metrics
from gnlc_core.lag import Group, LagProbe, lag_of, tier_label
from gnlc_core.ledger import Notice, Status
from gnlc_core.metrics import (
    UNMATCHED,
    HttpFamilies,
    HttpMetrics,
    NoticeMetrics,
    Reason,
    ServiceMetrics,
    dead_letter_channel,
    reason_of,
)
from gnlc_email.metrics import SmtpPoolMetrics
from gnlc_email.sender import SmtpPool
from gnlc_webhook.metrics import failing_seconds
from gnlc_webhook.store import EndpointRow
from tests.metrics_support import (
    SERVICES,
    build,
    check_metrics,
    family_names,
    samples,
    scrape,
    settings_for,
    total,
)


@pytest.mark.parametrize(
    ("error", "reason"),
    [
        (None, Reason.NONE),
        ("", Reason.NONE),
        ("unsubscribed", Reason.UNSUBSCRIBED),
        ("category off: award", Reason.CATEGORY_OFF),
        ("contact bouncing", Reason.CONTACT_BOUNCING),
        ("hard bounce: 5.1.1 user unknown", Reason.HARD_BOUNCE),
        ("3 soft bounces within 7 days: 4.2.2 mailbox full", Reason.SOFT_BOUNCES),
        ("not needed: should_send said no", Reason.NOT_WANTED),
        ("not sent: no longer applies", Reason.NOT_WANTED),
        ("no longer in the directory", Reason.NOT_IN_DIRECTORY),
        ("the endpoint is paused", Reason.ENDPOINT_INACTIVE),
        ("the endpoint is disabled (http 410: the endpoint is gone)", Reason.ENDPOINT_INACTIVE),
        ("the endpoint was deleted", Reason.ENDPOINT_INACTIVE),
        ("http 410: the endpoint is gone", Reason.ENDPOINT_GONE),
        ("the endpoint answered 410 Gone", Reason.ENDPOINT_GONE),
        ("released: the endpoint answers again", Reason.RELEASED),
        ("held: its lane is paused", Reason.ENDPOINT_SLOW),
        ("handed off while in flight", Reason.ENDPOINT_SLOW),
        ("the endpoint asked us to slow down", Reason.ENDPOINT_SLOW),
        ("endpoint busy: over the endpoint's rate limit", Reason.ENDPOINT_SLOW),
        ("smtp 451: try again later", Reason.SMTP_TRANSIENT),
        ("smtp 421 (SMTPConnectResponseError): busy", Reason.SMTP_TRANSIENT),
        ("smtp 550: no such user", Reason.SMTP_PERMANENT),
        ("invalid address: no @", Reason.INVALID_ADDRESS),
        ("smtp: SMTPConnectError: Error connecting to 127.0.0.1", Reason.CONNECTION),
        ("smtp: SMTPServerDisconnected: Connection lost", Reason.CONNECTION),
        ("smtp: SMTPTimeoutError: Timed out waiting", Reason.TIMEOUT),
        ("http 429", Reason.HTTP_RATE_LIMITED),
        ("http 302 (redirects are not followed)", Reason.HTTP_REDIRECT),
        ("http 404", Reason.HTTP_CLIENT_ERROR),
        ("http 503", Reason.HTTP_SERVER_ERROR),
        ("gave up: http 500", Reason.HTTP_SERVER_ERROR),
        ("ReadTimeout: no detail", Reason.TIMEOUT),
        ("no answer before the timeout", Reason.TIMEOUT),
        ("ConnectError: [Errno 111] Connection refused", Reason.CONNECTION),
        ("refused: 169.254.169.254 is not allowed (ssrf)", Reason.CONNECTION),
        ("something nobody foresaw", Reason.OTHER),
    ],
)
def test_reason_of(error: str | None, reason: Reason) -> None:
    assert reason_of(error) is reason


@pytest.mark.parametrize(
    ("topic", "channel"),
    [
        ("gnlc.email.dead-letter", "email"),
        ("t0123456789.webhook.dead-letter", "webhook"),
        ("scheduler.dead-letter", "scheduler"),
        ("gnlc.email.retry.30s", None),
        ("gnlc.deadline.reminder", None),
    ],
)
def test_dead_letter_channel(topic: str, channel: str | None) -> None:
    assert dead_letter_channel(topic) == channel


T0, T1 = TopicPartition("t", 0), TopicPartition("t", 1)


@pytest.mark.parametrize(
    ("end", "committed", "beginning", "lag"),
    [
        ({T0: 10}, {T0: 4}, {T0: 0}, {T0: 6}),
        ({T0: 10}, {}, {T0: 3}, {T0: 7}),  # nothing committed: from the log start
        ({T0: 10}, {T0: 10}, {T0: 0}, {T0: 0}),
        ({T0: 10}, {T0: 12}, {T0: 0}, {T0: 0}),  # never negative
        ({T0: 5, T1: 0}, {T0: 5}, {T0: 0, T1: 0}, {T0: 0, T1: 0}),
        ({T0: 5}, {}, {}, {T0: 0}),  # nothing known of the start: no lag claimed
    ],
)
def test_lag_of(
    end: dict[TopicPartition, int],
    committed: dict[TopicPartition, int],
    beginning: dict[TopicPartition, int],
    lag: dict[TopicPartition, int],
) -> None:
    assert lag_of(end, committed, beginning) == lag


@pytest.mark.parametrize(
    ("topic", "tier"),
    [
        ("gnlc.email.retry.30s", "30s"),
        ("t1.webhook.retry.0s", "0s"),
        ("gnlc.deadline.reminder", None),
        (".retry.5s", None),
    ],
)
def test_tier_label(topic: str, tier: str | None) -> None:
    assert tier_label(topic) == tier


def test_lag_probe_serves_its_reading_as_lag_and_backlog() -> None:
    registry = CollectorRegistry()
    probe = LagProbe(
        "127.0.0.1:9",
        [
            Group("p.email", ["p.deadline.reminder"]),
            Group("p.email-retry", ["p.email.retry.5s", "p.email.retry.30s"], "email"),
        ],
    ).register(registry)
    probe._reading.lag = {
        "p.email": {TopicPartition("p.deadline.reminder", 0): 3},
        "p.email-retry": {
            TopicPartition("p.email.retry.5s", 0): 2,
            TopicPartition("p.email.retry.5s", 1): 1,
            TopicPartition("p.email.retry.30s", 0): 4,
        },
    }
    found = samples(generate_latest(registry).decode())
    assert total(found, "gnlc_kafka_consumer_lag", group="p.email", partition="0") == 3
    assert total(found, "gnlc_kafka_consumer_lag", group="p.email-retry") == 7
    assert total(found, "gnlc_retry_backlog", channel="email", tier="5s") == 3
    assert total(found, "gnlc_retry_backlog", channel="email", tier="30s") == 4


@pytest.fixture
async def api() -> AsyncIterator[tuple[httpx.AsyncClient, CollectorRegistry]]:
    app = FastAPI()
    registry = CollectorRegistry()

    @app.get("/v1/things/{thing_id}")
    async def thing(thing_id: str) -> dict[str, str]:
        if thing_id == "boom":
            raise RuntimeError("boom")
        return {"id": thing_id}

    app.add_middleware(HttpMetrics, families=HttpFamilies(registry))
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://api") as client:
        yield client, registry


async def test_requests_are_counted_by_route_template_and_status(
    api: tuple[httpx.AsyncClient, CollectorRegistry],
) -> None:
    client, registry = api
    for path in ("/v1/things/a", "/v1/things/b", "/nowhere/1", "/nowhere/2", "/v1/things/boom"):
        await client.get(path)
    found = samples(generate_latest(registry).decode())
    requests = "gnlc_http_requests_total"
    assert total(found, requests, route="/v1/things/{thing_id}", status="200") == 2
    assert total(found, requests, route="/v1/things/{thing_id}", status="500") == 1
    assert total(found, requests, route=UNMATCHED, status="404") == 2  # no raw paths
    assert not any("/v1/things/a" in dict(labels).values() for _, labels in found)
    duration = "gnlc_http_request_duration_seconds_count"
    assert total(found, duration, route="/v1/things/{thing_id}", method="GET") == 3


async def test_notices_follow_the_ledger() -> None:
    registry = CollectorRegistry()
    listener = NoticeMetrics(registry)
    sent = datetime.now(UTC) - timedelta(seconds=3)
    await listener(
        "email",
        [
            Notice("e1", "r1", Status.DELIVERED, 1, event_time=sent),
            Notice("e2", "r1", Status.DELIVERED, 3, event_time=sent),
            Notice("e3", "r1", Status.RETRYING, 1, "smtp 451: later"),
            Notice("e4", "r1", Status.FAILED, 1, "smtp 550: no"),
            Notice("e5", "r1", Status.DROPPED, 0, "unsubscribed"),
        ],
    )
    found = samples(generate_latest(registry).decode())
    notices = "gnlc_notices_total"
    assert total(found, notices, channel="email", state="delivered", reason="none") == 2
    assert total(found, notices, state="retrying", reason="smtp_transient") == 1
    assert total(found, notices, state="failed", reason="smtp_permanent") == 1
    assert total(found, notices, state="dropped", reason="unsubscribed") == 1
    latency = "gnlc_delivery_latency_seconds"
    assert total(found, f"{latency}_count", channel="email") == 2
    assert 6 <= total(found, f"{latency}_sum", channel="email") < 60
    assert total(found, f"{latency}_bucket", channel="email", le="2.5") == 0
    assert total(found, f"{latency}_bucket", channel="email", le="5.0") == 2
    attempts = "gnlc_notice_attempts"
    assert total(found, f"{attempts}_count", state="delivered") == 2
    assert total(found, f"{attempts}_sum", state="delivered") == 4
    assert total(found, f"{attempts}_count", state="retrying") == 0  # terminal states only
    assert total(found, f"{attempts}_count", state="dropped") == 1


async def test_a_refresh_that_hangs_does_not_hold_the_scrape(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(core_metrics, "REFRESH_TIMEOUT_SECONDS", 0.2)
    metrics = ServiceMetrics("test")
    ran: list[str] = []

    async def hangs() -> None:
        await asyncio.sleep(60)

    async def fails() -> None:
        raise RuntimeError("database away")

    async def works() -> None:
        ran.append("works")

    for refresh in (hangs, fails, works):
        metrics.before_scrape(refresh)
    started = asyncio.get_running_loop().time()
    await metrics.exposition()
    assert asyncio.get_running_loop().time() - started < 2
    assert ran == ["works"]


def test_smtp_pool_metrics(tmp_path: Path) -> None:
    pool = SmtpPool(settings_for(tmp_path, smtp_connections=5))
    registry = CollectorRegistry()
    SmtpPoolMetrics(pool).register(registry)
    found = samples(generate_latest(registry).decode())
    assert total(found, "gnlc_smtp_connections", state="in_use") == 0
    assert total(found, "gnlc_smtp_connections", state="idle") == 0
    assert total(found, "gnlc_smtp_connections_max") == 5


@pytest.mark.parametrize(
    ("since", "seconds"),
    [
        (None, 0.0),
        (datetime(2027, 1, 1, 11, 0, tzinfo=UTC), 3600.0),
        (datetime(2027, 1, 1, 11, 59), 60.0),  # naive from SQLite: UTC
        (datetime(2027, 1, 1, 13, 0, tzinfo=UTC), 0.0),  # clocks apart: never negative
    ],
)
def test_endpoint_failing_seconds(since: datetime | None, seconds: float) -> None:
    endpoint = EndpointRow(
        id="e", partner_id="p", url="https://x", event_types=(), failing_since=since
    )
    assert failing_seconds(endpoint, datetime(2027, 1, 1, 12, 0, tzinfo=UTC)) == seconds


#: Families each service exposes from the start (others appear with their first sample).
EXPECTED = {
    "scheduler": {
        "gnlc_http_requests_total",
        "gnlc_http_request_duration_seconds",
        "gnlc_scheduler_outbox_overdue_seconds",
        "gnlc_scheduler_lateness_seconds",
        "gnlc_kafka_consumer_lag",
        "gnlc_dead_letters_total",
    },
    "email": {
        "gnlc_notices_total",
        "gnlc_delivery_latency_seconds",
        "gnlc_notice_attempts",
        "gnlc_smtp_connections",
        "gnlc_smtp_connections_max",
        "gnlc_kafka_consumer_lag",
        "gnlc_retry_backlog",
        "gnlc_dead_letters_total",
        "gnlc_http_requests_total",
    },
    "webhook": {
        "gnlc_notices_total",
        "gnlc_delivery_latency_seconds",
        "gnlc_notice_attempts",
        "gnlc_webhook_endpoint_state",
        "gnlc_webhook_endpoint_failing_seconds",
        "gnlc_webhook_held_deliveries",
        "gnlc_kafka_consumer_lag",
        "gnlc_retry_backlog",
        "gnlc_dead_letters_total",
        "gnlc_http_requests_total",
    },
}


@pytest.mark.parametrize("service", SERVICES)
async def test_each_service_serves_its_families_in_its_own_registry(
    service: str, tmp_path: Path
) -> None:
    first = build(service, settings_for(tmp_path / "a"))
    second = build(service, settings_for(tmp_path / "b"))  # same process: no cross-talk
    text = await scrape(first, also=["/health/live", "/health/live"])
    names = family_names(text)
    assert EXPECTED[service] <= names, EXPECTED[service] - names
    found = samples(text)
    assert total(found, "gnlc_http_requests_total", route="/health/live", status="204") == 2
    other = samples(await scrape(second))
    assert total(other, "gnlc_http_requests_total", route="/health/live") == 0
    check_metrics(text)
