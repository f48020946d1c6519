"""``gnlc-notify dead-letters``: the list as a table with reasons and states, one record
with its body, redrive one (who asks is sent along; a 409 is printed and exits 1), redrive
all with filters."""

from __future__ import annotations

import json
from typing import Any

import httpx

from tests.unit.test_cli import FakeApi, api, run

__all__ = ["api"]  # the fixture


def row(ident: int, **extra: Any) -> dict[str, Any]:
    return {
        "id": ident,
        "topic": "webhook.dead-letter",
        "partition": 0,
        "offset": ident,
        "channel": "webhook",
        "source_topic": "announcement.published",
        "reason": "invalid event: data.title: Field required",
        "recipient": None,
        "size": 42,
        "event_id": f"evt-{ident}",
        "event_type": "announcement.published",
        "parked_at": "2027-01-10T03:15:00Z",
        "redriven_at": None,
        "redriven_by": None,
        "redrive_count": 0,
        "redrive_topic": None,
        "redrivable": True,
        "redrive_note": "back to announcement.published",
        **extra,
    }


def test_the_list_with_reasons_and_states(api: FakeApi) -> None:
    items = [row(2), row(1, redriven_at="2027-01-10T04:00:00Z", redriven_by="console:ed")]
    api.on("GET", "/v1/dead-letters", body={"items": items, "total": 7, "next_offset": 2})
    result = run("dead-letters", "list", "--channel", "webhook", "--parked", "--limit", "2")
    assert result.exit_code == 0, result.output
    first = next(line for line in result.output.splitlines() if "evt-2" in line)
    assert "invalid event: data.title" in first
    assert "parked" in first
    second = next(line for line in result.output.splitlines() if "evt-1" in line)
    assert "redriven" in second
    assert "console:ed" in second
    assert "2 shown of 7" in result.output
    [asked] = [r for r in api.requests if r.url.path == "/v1/dead-letters"]
    assert dict(asked.url.params) == {"channel": "webhook", "state": "parked", "limit": "2"}


def test_show_prints_the_body(api: FakeApi) -> None:
    detail = row(3, key="news", body='{\n  "id": "evt-3"\n}', body_truncated=True)
    api.on("GET", "/v1/dead-letters/3", body=detail)
    result = run("dead-letters", "show", "3")
    assert result.exit_code == 0, result.output
    assert "webhook.dead-letter partition 0 offset 3" in result.output
    assert '"id": "evt-3"' in result.output
    assert "[... cut]" in result.output


def test_redrive_one_and_a_refusal(api: FakeApi) -> None:
    api.on("POST", "/v1/dead-letters/3/redrive", body=row(3, redriven_at="2027-01-10T04:00:00Z"))
    result = run("dead-letters", "redrive", "3")
    assert result.exit_code == 0, result.output
    assert "dead letter 3 redriven: back to announcement.published" in result.output
    sent = json.loads(api.requests[-1].content)
    assert sent["by"].startswith("cli")
    assert sent["force"] is False
    api.on(
        "POST",
        "/v1/dead-letters/3/redrive",
        status=409,
        body={"detail": "dead letter 3 was already redriven; ask again with force"},
    )
    again = run("dead-letters", "redrive", "3")
    assert again.exit_code == 1
    assert "already redriven" in again.output


def test_redrive_all_with_filters(api: FakeApi) -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            200,
            json={
                "matched": 3,
                "redriven": [1, 2],
                "skipped": [{"id": 3, "why": "its source topic 'retry' is not ..."}],
                "skipped_count": 1,
            },
        )

    api.routes[("POST", "/v1/dead-letters/redrive")] = answer
    result = run("dead-letters", "redrive", "--all", "--channel", "email", "--reason", "invalid")
    assert result.exit_code == 0, result.output
    assert "2 redriven of 3 selected; 1 not" in result.output
    assert "'retry' is not" in result.output
    sent = json.loads(api.requests[-1].content)
    assert (sent["channel"], sent["reason"], sent["force"]) == ("email", "invalid", False)


def test_an_id_or_all_not_both_nor_neither(api: FakeApi) -> None:
    assert run("dead-letters", "redrive").exit_code == 2
    assert run("dead-letters", "redrive", "3", "--all").exit_code == 2
    assert not api.requests
