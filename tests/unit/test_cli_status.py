"""``gnlc-notify status``: a deadline's notices as a table in the cities' local time (every
page read), the not-submitted list, announcements and cities."""

from __future__ import annotations

from typing import Any

import httpx

from tests.unit.test_cli import FakeApi, api, run

__all__ = ["api"]  # the fixture


def notice(city: str, step: str, channel: str, recipient: str, state: str) -> dict[str, Any]:
    return {
        "event_id": f"{city}-{step}",
        "channel": channel,
        "recipient": recipient,
        "state": state,
        "reason": "submitted" if state == "dropped" else None,
        "attempts": 1,
        "state_time": "2027-01-10T03:15:00Z",
        "city_id": city,
        "step": step,
        "deadline_id": "report",
    }


def test_a_deadline_as_a_table_in_local_time_over_every_page(api: FakeApi) -> None:
    pages = {
        0: {
            "items": [notice("kathmandu", "7d-before", "email", "kathmandu:a@k.org", "delivered")],
            "next_offset": 1,
        },
        1: {
            "items": [notice("laval", "7d-before", "schedule", "laval", "dropped")],
            "next_offset": None,
        },
    }

    def page(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json=pages[int(request.url.params["offset"])])

    api.routes[("GET", "/v1/status/deadlines/report")] = page
    result = run("status", "deadline", "report")
    assert result.exit_code == 0, result.output
    kathmandu = next(line for line in result.output.splitlines() if "kathmandu" in line)
    assert "delivered" in kathmandu
    assert "2027-01-10 09:00 +05:45" in kathmandu  # 03:15 UTC in Kathmandu
    laval = next(line for line in result.output.splitlines() if "laval" in line)
    assert "dropped" in laval
    assert "-05:00" in laval
    assert "submitted" in laval
    assert len([r for r in api.requests if r.url.path.startswith("/v1/status/")]) == 2


def test_not_submitted_asks_the_scheduler(api: FakeApi) -> None:
    api.on(
        "GET",
        "/v1/deadlines/report/not-submitted",
        body=[{"city_id": "laval", "name": "Laval", "timezone": "America/Toronto"}],
    )
    result = run("status", "deadline", "report", "--not-submitted")
    assert result.exit_code == 0, result.output
    assert "Laval" in result.output
    assert "1 cities have not submitted" in result.output


def test_an_unknown_deadline_is_named(api: FakeApi) -> None:
    api.on("GET", "/v1/deadlines/nope/not-submitted", 404, {"detail": "no deadline 'nope'"})
    result = run("status", "deadline", "nope", "--not-submitted")
    assert result.exit_code == 1
    assert "no deadline 'nope'" in result.output


def test_announcements_and_cities(api: FakeApi) -> None:
    item = {**notice("laval", "", "email", "laval:b@l.org", "unsubscribed"), "step": None}
    item.update(deadline_id=None, announcement_id="news")
    for path in ("/v1/status/announcements/news", "/v1/status/cities/laval"):
        api.on("GET", path, body={"items": [item], "next_offset": None})
    for args in (("announcement", "news"), ("city", "laval")):
        result = run("status", *args)
        assert result.exit_code == 0, result.output
        assert "unsubscribed" in result.output
        assert "news" in result.output
