"""The console's pure decisions, table by table: cross-site checks, session expiry, the
sign-in limiter, where an API error lands in a form, what a form sends, times shown."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from gnlc_console.auth_pages import safe_next
from gnlc_console.forms import deadline_payload, field_errors, field_for, label_of, text_rows
from gnlc_console.guards import Limits, SignInLimiter, cross_site_problem
from gnlc_console.plans import outgoing
from gnlc_console.sessions import SessionState, session_state
from gnlc_console.times import shown, viewer_zone

OWN = "https://console.example.org"
T0 = datetime(2027, 1, 10, 9, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("method", "origin", "referer", "token", "refused"),
    [
        ("GET", "https://evil.example", None, None, None),
        ("POST", OWN, None, "tok", None),
        ("POST", None, f"{OWN}/deadlines/new", "tok", None),
        ("POST", "https://EVIL.example", None, "tok", "another site"),
        ("POST", "null", "https://evil.example/x", "tok", "another site"),
        ("POST", None, None, "tok", "names no origin"),
        ("POST", OWN, None, None, "token is missing"),
        ("POST", OWN, None, "", "token is missing"),
        ("POST", OWN, None, "tok2", "not this session's"),
        ("DELETE", "http://console.example.org", None, "tok", "another site"),  # scheme
        ("PUT", "https://console.example.org:444", None, "tok", "another site"),  # port
    ],
)
def test_cross_site_checks(
    method: str, origin: str | None, referer: str | None, token: str | None, refused: str | None
) -> None:
    problem = cross_site_problem(
        method,
        own_origin=OWN,
        origin=origin,
        referer=referer,
        expected_token="tok",
        given_token=token,
    )
    if refused is None:
        assert problem is None
    else:
        assert problem is not None
        assert refused in problem


@pytest.mark.parametrize(
    ("age", "unused", "state"),
    [
        (timedelta(0), timedelta(0), SessionState.ACTIVE),
        (timedelta(hours=11), timedelta(minutes=29), SessionState.ACTIVE),
        (timedelta(hours=1), timedelta(minutes=30), SessionState.IDLE),
        (timedelta(hours=12), timedelta(0), SessionState.EXPIRED),
        (timedelta(hours=13), timedelta(hours=2), SessionState.EXPIRED),
    ],
)
def test_session_expiry(age: timedelta, unused: timedelta, state: SessionState) -> None:
    now = T0 + timedelta(days=1)
    assert (
        session_state(
            now,
            now - age,
            now - unused,
            idle=timedelta(minutes=30),
            absolute=timedelta(hours=12),
        )
        is state
    )


def test_sign_in_limits_per_account_and_address() -> None:
    limiter = SignInLimiter(Limits(per_account=3, per_address=5, window=timedelta(minutes=10)))
    for i in range(3):
        assert limiter.wait("ed", "10.0.0.1", T0) is None
        limiter.failed("ed", "10.0.0.1", T0 + timedelta(minutes=i))
    assert limiter.wait("ed", "10.0.0.2", T0 + timedelta(minutes=3)) == timedelta(minutes=7)
    assert limiter.wait("vi", "10.0.0.2", T0 + timedelta(minutes=3)) is None
    assert limiter.wait("ed", "10.0.0.2", T0 + timedelta(minutes=10)) is None  # window passed
    for name in ("a", "b"):
        limiter.failed(name, "10.0.0.1", T0 + timedelta(minutes=4))
    assert limiter.wait("zz", "10.0.0.1", T0 + timedelta(minutes=5)) is not None  # address
    limiter.succeeded("ed")
    assert limiter.wait("ed", "10.0.0.9", T0 + timedelta(minutes=5)) is None


@pytest.mark.parametrize(
    ("loc", "field"),
    [
        (["body", "id"], "id"),
        (["body", "due_at"], "due_local"),
        (["body", "publish_at"], "publish_local"),
        (["body", "reminders", 0], "reminders"),
        (["body", "delivery_hour"], "delivery_hour"),
        (["body", "title"], "title_0"),
        (["body", "title", "fr"], "title_1"),
        (["body", "description", "fr"], "text_1"),
        (["body", "body", "en"], "text_0"),
        (["body", "link", "dict[str,str]", "fr"], "link_1"),
        (["body", "link", "str"], "link_0"),
        (["body", "audience", "cities"], "cities"),
        (["body", "audience", "regions", 2], "regions"),
        (["body", "audience"], "audience"),
        (["body"], ""),
        (["body", "unknown"], ""),
        ([], ""),
    ],
)
def test_api_errors_land_on_their_field(loc: list[Any], field: str) -> None:
    assert field_for(loc, ["en", "fr"]) == field


def test_each_message_once_per_field() -> None:
    problems = [
        {"loc": ["body", "title", "fr"], "msg": "too long"},
        {"loc": ["body", "title", "fr", "x"], "msg": "too long"},
        {"loc": ["body"], "msg": "bad"},
    ]
    assert field_errors(problems, ["en", "fr"]) == {"title_1": ["too long"], "": ["bad"]}


def test_a_deadline_form_becomes_the_api_body() -> None:
    values = {
        "id": " report ",
        "rows": "3",
        "lang_0": "en",
        "title_0": "Report",
        "text_0": "Please.",
        "link_0": "https://e.org/en",
        "lang_1": "fr",
        "title_1": "Rapport",
        "link_1": "https://e.org/fr",
        "due_local": "2027-01-17T23:59",
        "zone": "Asia/Kathmandu",
        "audience_kind": "cities",
        "cities": "kathmandu, aswan",
        "reminders": "-7d, 0d",
        "delivery_hour": "",
    }
    payload, errors = deadline_payload(values)
    assert errors == {}
    assert payload == {
        "id": "report",
        "title": {"en": "Report", "fr": "Rapport"},
        "description": {"en": "Please."},
        "due_at": "2027-01-17T23:59:00+05:45",
        "audience": {"cities": ["kathmandu", "aswan"]},
        "reminders": ["-7d", "0d"],
        "delivery_hour": None,
        "link": {"en": "https://e.org/en", "fr": "https://e.org/fr"},
    }


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        ({"zone": "Mars/Base"}, "zone", "not a time zone"),
        ({"due_local": "tomorrow"}, "due_local", "give a date and time"),
        ({"due_local": ""}, "due_local", "give a date and time"),
        ({"delivery_hour": "25"}, "delivery_hour", "0 to 23"),
        ({"lang_1": ""}, "lang_1", "name the language"),
        ({"lang_1": "en"}, "lang_1", "given twice"),
    ],
)
def test_what_the_console_refuses_before_asking_the_api(
    changes: dict[str, str], field: str, message: str
) -> None:
    values = {
        "rows": "2",
        "lang_0": "en",
        "title_0": "A",
        "lang_1": "fr",
        "title_1": "B",
        "due_local": "2027-01-17T10:00",
        "zone": "UTC",
        "reminders": "0d",
        **changes,
    }
    _payload, errors = deadline_payload(values)
    assert any(message in m for m in errors[field]), errors


def test_one_link_for_every_language_stays_one_link() -> None:
    values = {
        "rows": "2",
        "lang_0": "en",
        "title_0": "A",
        "link_0": "https://e.org",
        "lang_1": "fr",
        "title_1": "B",
        "link_1": "https://e.org",
        "due_local": "2027-01-17T10:00",
        "zone": "UTC",
    }
    assert deadline_payload(values)[0]["link"] == "https://e.org"


def test_stored_texts_become_rows() -> None:
    values = text_rows({"title": {"en": "A", "fr": "B"}, "text": None, "link": "https://e.org"})
    assert values == {
        "rows": 4,
        "lang_0": "en",
        "title_0": "A",
        "link_0": "https://e.org",
        "lang_1": "fr",
        "title_1": "B",
        "link_1": "https://e.org",
    }


@pytest.mark.parametrize(
    ("city_zone", "viewer", "main", "beside"),
    [
        (
            "Asia/Kathmandu",
            "Europe/Paris",
            "Sun 17 Jan 2027, 09:00 (Asia/Kathmandu, UTC+05:45)",
            "04:15 your time (Europe/Paris)",
        ),
        (
            "Pacific/Chatham",
            "America/St_Johns",
            "Sun 17 Jan 2027, 17:00 (Pacific/Chatham, UTC+13:45)",
            "Sat 16 Jan, 23:45 your time (America/St_Johns)",
        ),
        (None, "Europe/Paris", "Sun 17 Jan 2027, 04:15 (Europe/Paris, UTC+01:00)", None),
        (
            "Asia/Kathmandu",
            "Asia/Kathmandu",
            "Sun 17 Jan 2027, 09:00 (Asia/Kathmandu, UTC+05:45)",
            None,
        ),
    ],
)
def test_times_in_the_city_zone_and_the_viewers(
    city_zone: str | None, viewer: str, main: str, beside: str | None
) -> None:
    result = shown("2027-01-17T03:15:00+00:00", viewer_zone(viewer), city_zone)
    assert result is not None
    assert (result.main, result.viewer) == (main, beside)


@pytest.mark.parametrize("cookie", [None, "", "Not/AZone", "../../etc/passwd"])
def test_an_unknown_viewer_zone_is_utc(cookie: str | None) -> None:
    assert viewer_zone(cookie).key == "UTC"


@pytest.mark.parametrize(
    ("target", "safe"),
    [
        ("/deadlines/x", "/deadlines/x"),
        ("//evil.example/x", "/"),
        ("https://evil.example/", "/"),
        ("deadlines", "/"),
        (None, "/"),
        ("/\\evil.example", "/\\evil.example"),
    ],
)
def test_only_local_paths_after_sign_in(target: str | None, safe: str) -> None:
    assert safe_next(target) == safe


def test_outgoing_groups_what_is_due_within_the_window() -> None:
    def row(hours: float, deadline: str | None, announcement: str | None = None) -> dict[str, Any]:
        at = (T0 + timedelta(hours=hours)).isoformat()
        return {
            "fire_at_utc": at,
            "deadline_id": deadline,
            "announcement_id": announcement,
            "event_id": "e",
        }

    rows = [row(1, "a"), row(2, None, "n"), row(3, "a"), row(30, "b"), row(200, "c")]
    day = outgoing(rows, T0, timedelta(days=1))
    assert [(o.kind, o.id, o.count) for o in day] == [
        ("deadline", "a", 2),
        ("announcement", "n", 1),
    ]
    week = outgoing(rows, T0, timedelta(days=7))
    assert [(o.id, o.count) for o in week] == [("a", 2), ("n", 1), ("b", 1)]


@pytest.mark.parametrize(
    ("field", "label"),
    [
        ("due_local", "Due date and time"),
        ("title_1", "Title (2)"),
        ("lang_0", "Language (1)"),
        ("", ""),
        ("odd_x", "odd_x"),
    ],
)
def test_error_summaries_name_fields_as_the_form_does(field: str, label: str) -> None:
    assert label_of(field) == label
