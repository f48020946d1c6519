"""Every service's /metrics after real traffic (the real broker, an SMTP server and a
webhook receiver on loopback): the families are there with the values the traffic implies,
and promtool finds nothing wrong with the exposition. Readiness names the database."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from gnlc_core.events import Audience
from tests.integration.conftest import System
from tests.integration.email_support import announcement, publish
from tests.integration.kafka_io import produce
from tests.metrics_support import Samples, check_metrics, samples, total
from tests.support import HTTP, Service, eventually, start_all

pytestmark = pytest.mark.integration
POISON = b"\xff\xfe this is not JSON"


def scrape(service: Service) -> tuple[str, Samples]:
    answer = HTTP.get(f"{service.url}/metrics", timeout=10)
    assert answer.status_code == 200, answer.text
    return answer.text, samples(answer.text)


def when(
    service: Service, condition: str, check: Callable[[Samples], object]
) -> tuple[str, Samples]:
    """The first scrape of ``service`` whose samples pass ``check``."""

    def attempt() -> tuple[str, Samples] | None:
        text, found = scrape(service)
        return (text, found) if check(found) else None

    scraped = eventually(attempt, timeout=60, what=f"{service.name}: {condition}", every=0.5)
    assert scraped is not None
    return scraped


def test_every_service_serves_its_metrics_after_real_traffic(system: System) -> None:
    scheduler, email, webhook = start_all(
        system.service("scheduler"), system.service("email"), system.service("webhook")
    )

    cities = ["kathmandu", "clermont-ferrand"]  # one contact each
    answer = system.api(
        "POST",
        "/v1/announcements",
        scheduler,
        json={
            "id": "metrics-day",
            "category": "event",
            "title": {"en": "Metrics day"},
            "body": {"en": "Counted."},
            "audience": {"cities": cities},
        },
    )
    assert answer.status_code == 202, answer.text
    assert system.mailbox.wait_for(2, timeout=60), [s.tail() for s in system.services]
    assert system.receiver.inbox.wait_for_unique(1, timeout=30)
    # a record that is no event: both consumers park it on their dead-letter topics
    asyncio.run(produce(system.kafka, f"{system.prefix}deadline.reminder", POISON))

    # the email service: two notices delivered, their latency, one dead letter, the pool
    text, found = when(
        email,
        "2 delivered, 1 dead letter",
        lambda f: (
            total(f, "gnlc_notices_total", channel="email", state="delivered") >= 2
            and total(f, "gnlc_dead_letters_total", channel="email") >= 1
        ),
    )
    assert total(found, "gnlc_notices_total", channel="email", state="delivered") == 2
    assert total(found, "gnlc_notices_total", channel="email", reason="none") == 2
    assert total(found, "gnlc_delivery_latency_seconds_count", channel="email") == 2
    assert 0 < total(found, "gnlc_delivery_latency_seconds_sum", channel="email") < 60
    assert total(found, "gnlc_notice_attempts_sum", channel="email", state="delivered") == 2
    assert total(found, "gnlc_smtp_connections_max") == 8
    idle = total(found, "gnlc_smtp_connections", state="idle")
    in_use = total(found, "gnlc_smtp_connections", state="in_use")
    assert 1 <= idle + in_use <= 8  # the pool kept its connection(s) open
    assert total(found, "gnlc_kafka_received_messages_total") >= 2  # the event, the poison
    check_metrics(text)

    # consumer lag: the group's partitions all read, the retry tiers empty
    group = f"{system.prefix}email"
    text, found = when(
        email,
        "the email group caught up",
        lambda f: (
            any(n == "gnlc_kafka_consumer_lag" for n, _ in f)
            and total(f, "gnlc_kafka_consumer_lag", group=group) == 0
        ),
    )
    partitions = {
        dict(labels)["partition"]
        for name, labels in found
        if name == "gnlc_kafka_consumer_lag"
        and dict(labels)["group"] == group
        and dict(labels)["topic"] == f"{system.prefix}deadline.reminder"
    }
    assert partitions == {str(n) for n in range(max(len(partitions), 3))}  # each partition
    assert total(found, "gnlc_retry_backlog", channel="email") == 0
    assert any(n == "gnlc_retry_backlog" for n, _ in found)

    # the webhook service: one delivery to the partner's endpoint, which is healthy
    text, found = when(
        webhook,
        "1 delivered, 1 dead letter",
        lambda f: (
            total(f, "gnlc_notices_total", channel="webhook", state="delivered") >= 1
            and total(f, "gnlc_dead_letters_total", channel="webhook") >= 1
        ),
    )
    assert total(found, "gnlc_notices_total", channel="webhook", state="delivered") == 1
    assert total(found, "gnlc_delivery_latency_seconds_count", channel="webhook") == 1
    state = "gnlc_webhook_endpoint_state"
    assert total(found, state, endpoint="partner-a", state="active") == 1
    assert total(found, state, endpoint="partner-a", state="disabled") == 0
    assert total(found, "gnlc_webhook_endpoint_failing_seconds", endpoint="partner-a") == 0
    assert total(found, "gnlc_webhook_held_deliveries", endpoint="partner-a") == 0
    check_metrics(text)

    # the scheduler: the API call counted by its route template, the event's lateness
    text, found = when(
        scheduler, "one event emitted", lambda f: total(f, "gnlc_scheduler_lateness_seconds_count")
    )
    requests = "gnlc_http_requests_total"
    assert total(found, requests, route="/v1/announcements", method="POST", status="202") == 1
    assert total(found, "gnlc_scheduler_lateness_seconds_count") == 1
    assert total(found, "gnlc_scheduler_outbox_rows", state="pending") == 0
    assert total(found, "gnlc_scheduler_outbox_rows", state="parked") == 0
    assert total(found, "gnlc_scheduler_outbox_overdue_seconds") == 0
    assert total(found, "gnlc_kafka_published_messages_total") >= 1
    assert any(n == "gnlc_kafka_consumer_lag" for n, _ in found)
    check_metrics(text)

    # readiness asks each service's database
    for service in (scheduler, email, webhook):
        ready = HTTP.get(f"{service.url}/health/ready", timeout=10).json()
        assert ready["checks"]["database"] is True, (service.name, ready)


def test_email_counts_smtp_failures_by_reason(system: System) -> None:
    """An SMTP server that refuses a recipient for good, and another once: a failed notice
    and a retry with their bounded reasons, and one dead letter."""
    system.mailbox.script_rcpt("lll@kathmandu.example.org", "550 5.1.1 No such user here")
    system.mailbox.script_rcpt("ville.apprenante@clermont.example.org", "451 4.3.0 try later")
    email = system.service("email").start()
    # the announcement straight onto its topic (the scheduler's part is counted above)
    publish(system, announcement(Audience(cities=("kathmandu", "clermont-ferrand"))))
    text, found = when(
        email,
        "a failed notice and a retry",
        lambda f: (
            total(f, "gnlc_notices_total", channel="email", state="failed") >= 1
            and total(f, "gnlc_notices_total", channel="email", state="retrying") >= 1
        ),
    )
    notices = "gnlc_notices_total"
    assert total(found, notices, state="failed", reason="smtp_permanent") == 1
    assert total(found, notices, state="retrying", reason="smtp_transient") == 1
    assert total(found, "gnlc_notice_attempts_count", channel="email", state="failed") == 1
    assert total(found, "gnlc_dead_letters_total", channel="email") == 1
    check_metrics(text)
