from __future__ import annotations

import json
from pathlib import Path

from gnlc_core.asyncapi import specification
from gnlc_core.kafka import Topics

COMMITTED = Path(__file__).resolve().parents[2] / "schemas" / "asyncapi.json"


def test_committed_asyncapi_matches_the_code() -> None:
    fresh = specification(Topics("gnlc."))
    assert json.loads(fresh) == json.loads(COMMITTED.read_text()), (
        "schemas/asyncapi.json is stale: run `gnlc-notify asyncapi > schemas/asyncapi.json`"
    )


def test_asyncapi_carries_the_event_payloads() -> None:
    document = json.loads(COMMITTED.read_text())
    assert document["asyncapi"].startswith("3.")
    schemas = document["components"]["schemas"]
    assert {
        "DeadlineReminderEvent",
        "AnnouncementPublishedEvent",
        "DeadlineSubmittedEvent",
        "DeadlineUpdatedEvent",
        "DeadlineCancelledEvent",
    } <= set(schemas)
    addresses = {channel["address"] for channel in document["channels"].values()}
    assert addresses == {
        "gnlc.notice.status",
        "gnlc.deadline.reminder",
        "gnlc.announcement.published",
        "gnlc.deadline.submitted",
        "gnlc.deadline.updated",
        "gnlc.deadline.cancelled",
        "gnlc.directory.cities",
        "gnlc.email.dead-letter",
        "gnlc.webhook.dead-letter",
    }
