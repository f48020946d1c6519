"""The first slice end to end, on the real broker, a real SMTP server and a real receiver.

The tests of the first slice share one scheduler, email and webhook service (started once
for the module, as production starts them): each plans its own deadline or announcement
and looks only at the mail and deliveries about it."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage

import pytest

from gnlc_devtools.receiver import Received
from tests.integration.conftest import System
from tests.support import HTTP, Service, eventually, free_port, start_all

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def slice_services(module_system: System) -> tuple[Service, Service, Service]:
    """The scheduler, email and webhook services of the module's tests."""
    scheduler, email, webhook = start_all(
        module_system.service("scheduler"),
        module_system.service("email"),
        module_system.service("webhook"),
    )
    return scheduler, email, webhook


def mail_about(system: System, *titles: str, count: int) -> list[EmailMessage]:
    """Once ``count`` messages whose subject names one of ``titles`` have arrived: those."""

    def found() -> list[EmailMessage]:
        return [
            m
            for m in system.mailbox.messages
            if any(title in str(m["Subject"]) for title in titles)
        ]

    eventually(lambda: len(found()) >= count, timeout=60, what=f"{count} messages on {titles}")
    return found()


def deliveries_of(
    system: System, which: Callable[[Received], bool], *, count: int
) -> list[Received]:
    """Once ``count`` distinct deliveries that ``which`` picks have arrived: those."""

    def found() -> list[Received]:
        return [d for d in list(system.receiver.inbox.unique.values()) if which(d)]

    eventually(lambda: len(found()) >= count, timeout=30, what=f"{count} deliveries")
    return found()


def test_reminder_reaches_mailbox_and_partner(
    module_system: System, slice_services: tuple[Service, Service, Service]
) -> None:
    system = module_system
    scheduler = slice_services[0]

    due = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=6)
    response = system.api(
        "POST",
        "/v1/deadlines",
        scheduler,
        json={
            "id": "progress-report",
            "title": {"en": "Biennial progress report", "fr": "Rapport d'étape biennal"},
            "due_at": due.isoformat(),
            "audience": {"cities": ["kathmandu", "clermont-ferrand"]},
            "reminders": ["-3s", "0d"],
            "delivery_hour": None,
        },
    )
    assert response.status_code == 201, response.text
    scheduled = sorted((s["city_id"], s["step"]) for s in response.json()["scheduled"])
    assert scheduled == [
        ("clermont-ferrand", "3s-before"),
        ("clermont-ferrand", "due"),
        ("kathmandu", "3s-before"),
        ("kathmandu", "due"),
    ]

    # two steps x two cities, one contact each
    messages = mail_about(system, "Biennial progress report", "Rapport d'étape biennal", count=4)
    assert len(messages) == 4
    assert datetime.now(UTC) >= due
    subjects = sorted(str(m["Subject"]) for m in messages)
    assert sum("Rapport d'étape biennal" in s for s in subjects) == 2
    assert sum("Biennial progress report" in s for s in subjects) == 2
    to = sorted(m["To"].addresses[0].addr_spec for m in messages)
    assert to == sorted(["lll@kathmandu.example.org", "ville.apprenante@clermont.example.org"] * 2)
    for message in messages:
        assert message.get_content_type() == "multipart/mixed"  # text and HTML, and an .ics
        assert message["Message-ID"]
        assert message["X-GNLC-Event-Id"]
    kathmandu = next(m for m in messages if "kathmandu" in str(m["To"]))
    body = kathmandu.get_body(("plain",))
    assert body is not None
    assert "GMT+05:45" in body.get_content()

    # one webhook per city and step, each verified by the official standardwebhooks package
    deliveries = deliveries_of(
        system, lambda d: d.event["data"].get("deadline_id") == "progress-report", count=4
    )
    assert len(deliveries) == 4
    assert system.receiver.inbox.rejected == 0
    assert {d.event["data"]["step"] for d in deliveries} == {"3s-before", "due"}
    for delivery in deliveries:
        assert delivery.event["type"] == "deadline.reminder"
        assert delivery.headers["webhook-id"] == delivery.event["id"]
        assert delivery.headers["webhook-signature"].startswith("v1,")
    # signed now: Standard Webhooks receivers refuse a timestamp more than 5 minutes off
    now = datetime.now(UTC).timestamp()
    assert all(abs(int(d.headers["webhook-timestamp"]) - now) < 300 for d in deliveries)


def test_announcement_reaches_region(
    module_system: System, slice_services: tuple[Service, Service, Service]
) -> None:
    system = module_system
    scheduler = slice_services[0]
    response = system.api(
        "POST",
        "/v1/announcements",
        scheduler,
        json={
            "id": "education-day",
            "category": "event",
            "title": {"en": "International Day of Education", "es": "Día de la Educación"},
            "body": {"en": "Join us on 24 January."},
            "audience": {"regions": ["Latin America and the Caribbean"]},
        },
    )
    assert response.status_code == 202, response.text
    messages = mail_about(system, "International Day of Education", "Día de la Educación", count=5)
    subjects = {str(m["Subject"]) for m in messages}
    assert "Evento: Día de la Educación" in subjects  # Spanish-speaking cities, in Spanish
    deliveries_of(
        system, lambda d: d.event["data"].get("announcement_id") == "education-day", count=1
    )


def test_health_reports_kafka_database_and_smtp(
    slice_services: tuple[Service, Service, Service],
) -> None:
    email = slice_services[1]
    assert HTTP.get(f"{email.url}/health/live").status_code == 204
    ready = HTTP.get(f"{email.url}/health/ready").json()
    assert ready == {
        "ready": True,
        "checks": {
            "kafka": True,
            "database": True,
            "views_ready": True,
            "consuming": True,
            "smtp": True,
        },
    }


def test_unreachable_smtp_server_is_degraded_not_down(system: System) -> None:
    email = system.service("email", GNLC_SMTP_PORT=str(free_port())).start()
    answer = HTTP.get(f"{email.url}/health/ready")
    assert answer.status_code == 200
    assert answer.json() == {
        "ready": True,
        "checks": {
            "kafka": True,
            "database": True,
            "views_ready": True,
            "consuming": True,
            "smtp": False,
        },
        "degraded": ["smtp"],
    }


def test_scheduled_announcement_goes_out_at_its_time(
    module_system: System, slice_services: tuple[Service, Service, Service]
) -> None:
    system = module_system
    scheduler = slice_services[0]
    publish_at = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=4)
    response = system.api(
        "POST",
        "/v1/announcements",
        scheduler,
        json={
            "id": "workshop",
            "category": "workshop",
            "title": {"en": "Capacity-building workshop"},
            "body": {"en": "Register by Friday."},
            "audience": {"cities": ["kathmandu"]},
            "publish_at": publish_at.isoformat(),
        },
    )
    assert response.status_code == 202, response.text
    assert response.json()["publish_at"].startswith(publish_at.isoformat()[:19])
    [message] = mail_about(system, "Capacity-building workshop", count=1)
    assert datetime.now(UTC) >= publish_at
    assert str(message["Subject"]) == "Workshop: Capacity-building workshop"
    shown = system.api("GET", "/v1/announcements/workshop", scheduler).json()
    assert shown["state"] == "published"
