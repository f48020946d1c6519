"""Receipts: the precedence of states (pure, table-driven), what a receipt says about a
recorded notice, and the receipts' schema."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import get_args

import pytest
from jsonschema import Draft202012Validator

from gnlc_core.events import (
    AnnouncementPublished,
    Audience,
    DeadlineReminder,
    NoticeState,
    announcement_event,
    encode_event,
    receipt_event,
    reminder_event,
)
from gnlc_core.ledger import TERMINAL, Notice, Status
from gnlc_core.receipts import (
    PHASES,
    Phase,
    StateAt,
    Subject,
    Subjects,
    email_recipient,
    receipt_of,
    supersedes,
)

T0 = datetime(2027, 1, 10, 3, 15, tzinfo=UTC)
LATER = T0 + timedelta(seconds=1)
SCHEMA = Path(__file__).resolve().parents[2] / "schemas" / "notice.status.schema.json"
S = Status


def at(state: Status, time: datetime = T0, attempts: int = 1) -> StateAt:
    return StateAt(state, time, attempts)


@pytest.mark.parametrize(
    ("new", "old", "stands"),
    [
        (at(S.RETRYING), None, True),  # the first state of a notice
        (at(S.RETRYING, T0), at(S.DELIVERED, LATER), False),
        (at(S.RETRYING, LATER), at(S.DELIVERED, T0), False),  # a late retrying never wins
        (at(S.DELIVERED, T0), at(S.RETRYING, LATER), True),
        (at(S.HELD, LATER, 0), at(S.FAILED, T0), False),
        (at(S.RETRYING, LATER, 2), at(S.RETRYING, T0, 1), True),  # the next attempt
        (at(S.RETRYING, T0, 1), at(S.RETRYING, LATER, 2), False),  # an older one, late
        (at(S.RETRYING, LATER, 1), at(S.HELD, T0, 1), True),  # released
        (at(S.HELD, T0, 1), at(S.RETRYING, LATER, 1), False),
        (at(S.RETRYING, T0, 3), at(S.RETRYING, T0, 2), True),  # same moment: more attempts
        (at(S.SENT, T0, 0), at(S.SCHEDULED, LATER, 0), True),  # the plan went out
        (at(S.SCHEDULED, LATER, 0), at(S.SENT, T0, 0), False),
        (at(S.SCHEDULED, LATER, 0), at(S.SCHEDULED, T0, 0), True),  # re-planned
        (at(S.DROPPED, T0, 0), at(S.SCHEDULED, LATER, 0), True),  # submitted: cancelled
        (at(S.UNSUBSCRIBED, T0, 0), at(S.RETRYING, LATER), True),
        (at(S.BOUNCED, T0), at(S.DELIVERED, LATER), True),  # reported after delivery
        (at(S.DELIVERED, LATER), at(S.BOUNCED, T0), False),
        (at(S.DELIVERED, LATER), at(S.FAILED, T0), True),  # settled twice: the later
        (at(S.DELIVERED, T0), at(S.DELIVERED, T0), False),  # the same receipt again
    ],
)
def test_which_state_stands(new: StateAt, old: StateAt | None, stands: bool) -> None:
    assert supersedes(new, old) is stands


def test_precedence_is_a_total_order_of_distinct_states() -> None:
    """Two different states at the same moment and attempts: exactly one stands, so any
    order of the receipts ends the same."""
    for a in Status:
        for b in Status:
            if a is not b:
                assert supersedes(at(a), at(b)) != supersedes(at(b), at(a)), (a, b)


def test_every_state_has_a_phase_and_settled_means_terminal() -> None:
    assert set(PHASES) == set(Status)
    assert {s for s, p in PHASES.items() if p >= Phase.SETTLED} == set(TERMINAL)
    assert set(get_args(NoticeState)) == {s.value for s in Status}  # events and ledger agree


REMINDER = reminder_event(
    DeadlineReminder(
        deadline_id="progress-report-2027",
        title={"en": "Progress report"},
        due_at=T0 + timedelta(days=7),
        step="7d-before",
        offset_seconds=-7 * 86400,
        audience=Audience(cities=("kathmandu",)),
    ),
    fired_at=T0,
)
ANNOUNCEMENT = announcement_event(
    AnnouncementPublished(
        announcement_id="education-day",
        category="event",
        title={"en": "International Day of Education"},
        body={"en": "24 January"},
        audience=Audience(all_members=True),
        published_at=T0,
    )
)


@pytest.mark.parametrize(
    ("channel", "notice", "subject", "facts", "expected"),
    [
        (
            "email",
            Notice(REMINDER.id, "kathmandu:a@x.org", S.DELIVERED, 1, at=LATER),
            Subject.of(REMINDER),
            email_recipient("kathmandu:a@x.org"),
            {
                "state": "delivered",
                "attempts": 1,
                "city_id": "kathmandu",
                "deadline_id": "progress-report-2027",
                "step": "7d-before",
                "event_type": "deadline.reminder",
                "event_time": T0,
                "state_time": LATER,
            },
        ),
        (
            "email",
            Notice(ANNOUNCEMENT.id, "laval:b@x.org", S.UNSUBSCRIBED, 0, "unsubscribed", at=T0),
            Subject.of(ANNOUNCEMENT),
            email_recipient("laval:b@x.org"),
            {
                "state": "unsubscribed",
                "reason": "unsubscribed",
                "announcement_id": "education-day",
                "city_id": "laval",  # from the recipient: the audience is every member
                "deadline_id": None,
            },
        ),
        (
            "webhook",
            Notice(REMINDER.id, "portal-main", S.RETRYING, 2, "HTTP 503", at=T0),
            Subject.of(REMINDER),
            {"partner_id": "uil-portal"},
            {
                "recipient": "portal-main",
                "partner_id": "uil-portal",
                "city_id": "kathmandu",  # the reminder's one city
                "attempts": 2,
                "reason": "HTTP 503",
            },
        ),
        (  # an event this process no longer remembers: the notice and its state alone
            "webhook",
            Notice("e-unknown", "portal-main", S.FAILED, 7, "gave up", at=T0),
            None,
            {},
            {"event_id": "e-unknown", "state": "failed", "deadline_id": None, "city_id": None},
        ),
    ],
)
def test_receipt_of_a_recorded_notice(
    channel: str,
    notice: Notice,
    subject: Subject | None,
    facts: dict[str, str],
    expected: dict[str, object],
) -> None:
    receipt = receipt_of(channel, notice, subject, facts)
    assert receipt.channel == channel
    assert {k: getattr(receipt, k) for k in expected} == expected
    event = receipt_event(receipt, source=f"/gnlc-notify/{channel}")
    schema = json.loads(SCHEMA.read_text())
    Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER).validate(
        json.loads(encode_event(event))
    )
    assert receipt_event(receipt, source="x").id == event.id  # the same write, the same id


def test_subjects_keep_the_most_recent_events() -> None:
    subjects = Subjects(kept=1)
    subjects.remember(REMINDER)
    subjects.remember(ANNOUNCEMENT)
    assert subjects.get(REMINDER.id) is None
    found = subjects.get(ANNOUNCEMENT.id)
    assert found is not None
    assert found.announcement_id == "education-day"
