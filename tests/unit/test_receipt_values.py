"""A receipt's record value written straight from the notice (``receipt_value``) says exactly
what the models say (``encode_event(receipt_event(receipt_of(...)))``), and steps aside
(None) whenever a field is one the models would refuse, so a refusal stays theirs."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from gnlc_core.events import encode_event, receipt_event
from gnlc_core.ledger import Notice, Status
from gnlc_core.receipts import Subject, receipt_of, receipt_value

SOURCE = "/gnlc-notify/webhook"
T0 = datetime(2027, 1, 10, 3, 15, 7, 250_000, tzinfo=UTC)

slugs = st.from_regex(r"[a-z0-9][a-z0-9-]{0,62}", fullmatch=True)
texts = st.text(max_size=80)
zones = st.sampled_from(
    [UTC, timezone(timedelta(hours=5, minutes=45)), timezone(-timedelta(hours=5))]
)
times = st.builds(
    lambda moment, zone: moment.replace(tzinfo=UTC).astimezone(zone),
    st.datetimes(min_value=datetime(1999, 6, 1), max_value=datetime(2200, 6, 1)),
    zones,
)
steps = st.one_of(
    st.just("due"), st.from_regex(r"\d{1,3}[dhms]-(before|overdue)", fullmatch=True), texts
)
subjects = st.one_of(
    st.none(),
    st.builds(
        Subject,
        event_type=st.sampled_from(
            ["deadline.reminder", "announcement.published", "deadline.updated"]
        ),
        event_time=times,
        deadline_id=st.one_of(st.none(), slugs, texts),
        step=st.one_of(st.none(), steps),
        announcement_id=st.one_of(st.none(), slugs),
        city_id=st.one_of(st.none(), slugs),
    ),
)
notices = st.builds(
    Notice,
    event_id=st.one_of(st.text(min_size=1, max_size=70), st.just("")),
    recipient=st.one_of(texts, st.text(min_size=300, max_size=340)),
    status=st.sampled_from(list(Status)),
    attempts=st.integers(min_value=-1, max_value=1002),
    error=st.one_of(st.none(), st.just(""), texts, st.text(min_size=1990, max_size=2010)),
    at=st.one_of(times, st.just(T0)),
)
facts = st.dictionaries(
    st.sampled_from(["city_id", "partner_id", "other"]),
    st.one_of(slugs, texts, st.just("")),
    max_size=3,
)
channels = st.sampled_from(["webhook", "email", "schedule", "Bad", "x" * 17])


def by_models(
    channel: str, notice: Notice, subject: Subject | None, known: dict[str, str]
) -> bytes | None:
    try:
        receipt = receipt_of(channel, notice, subject, known)
    except ValidationError:
        return None
    return encode_event(receipt_event(receipt, source=SOURCE))


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(channel=channels, notice=notices, subject=subjects, known=facts)
def test_the_straight_value_is_the_models_value_or_none(
    channel: str, notice: Notice, subject: Subject | None, known: dict[str, str]
) -> None:
    fast = receipt_value(channel, notice, subject, known, source=SOURCE)
    slow = by_models(channel, notice, subject, known)
    if slow is None:
        assert fast is None  # the models refuse it: so does the straight way (it asks them)
    elif fast is not None:
        assert json.loads(fast) == json.loads(slow)


@pytest.mark.parametrize(
    ("notice", "subject", "known"),
    [
        (
            Notice("e-1", "portal-main", Status.DELIVERED, 1, None, at=T0),
            Subject("deadline.reminder", T0, "biennial-report", "7d-before", city_id="kathmandu"),
            {"partner_id": "uil-portal"},
        ),
        (
            Notice("e-2", "laval:ops@laval.ca", Status.RETRYING, 2, 'HTTP 503 "busy"\n', at=T0),
            Subject("announcement.published", T0.replace(microsecond=0), announcement_id="day"),
            {"city_id": "laval"},
        ),
        (Notice("e-3", "portal-main", Status.FAILED, 7, "gave up", at=T0), None, {}),
    ],
)
def test_everyday_receipts_take_the_straight_way(
    notice: Notice, subject: Subject | None, known: dict[str, str]
) -> None:
    fast = receipt_value("webhook", notice, subject, known, source=SOURCE)
    assert fast is not None
    assert json.loads(fast) == json.loads(by_models("webhook", notice, subject, known) or b"")
