"""``gnlc-notify bounces``: what each command asks the email service and prints."""

from __future__ import annotations

from tests.unit.test_cli import FakeApi, api, run

__all__ = ["api"]  # the fixture, shared


def test_bounces_list_clear_and_alerts(api: FakeApi) -> None:
    api.on(
        "GET",
        "/v1/bouncing",
        body=[
            {"city_id": "kathmandu", "address": "a@k.example.org", "reason": "hard bounce: 5.1.1",
             "event_id": "e1", "since": "2027-01-10T03:15:00+00:00", "in_directory": True},
        ],
    )  # fmt: skip
    listed = run("bounces", "list")
    assert listed.exit_code == 0, listed.output
    assert "kathmandu" in listed.output
    assert "hard bounce: 5.1.1" in listed.output
    assert "2027-01-10 03:15" in listed.output

    api.on("DELETE", "/v1/bouncing/kathmandu/a@k.example.org", status=204)
    cleared = run("bounces", "clear", "kathmandu", "a@k.example.org")
    assert cleared.exit_code == 0, cleared.output
    assert api.sent("DELETE", "/v1/bouncing/kathmandu/a@k.example.org")

    api.on("DELETE", "/v1/bouncing/laval/b@l.example.org", 404, {"detail": "not marked"})
    refused = run("bounces", "clear", "laval", "b@l.example.org")
    assert refused.exit_code == 1
    assert "not marked" in refused.output

    api.on(
        "GET",
        "/v1/alerts",
        body=[
            {"id": 1, "kind": "no-deliverable-contact", "city_id": "kathmandu", "address": None,
             "event_id": None, "detail": "every contact of Kathmandu is bouncing (1)",
             "created_at": "2027-01-10T03:15:00+00:00"},
        ],
    )  # fmt: skip
    alerts = run("bounces", "alerts")
    assert alerts.exit_code == 0, alerts.output
    assert "no-deliverable-contact" in alerts.output
