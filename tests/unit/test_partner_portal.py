"""The partner portal in process, over the webhook API in process: a partner signs in with
its token (kept server-side only), sees only its own endpoints (another partner's is a
404), reads attempts with request and response, the event catalog, sends a test event,
rotates its secret, replays since a time (field errors in place); partner and operator
sessions never cross; forged requests are refused; and the pure decisions, tabled."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from gnlc_console.partner_pages import replay_since, safe_partner_next
from gnlc_console.partner_sessions import seal, unseal
from gnlc_console.tables import partner_sessions
from gnlc_console.web import CSP
from gnlc_core.catalog import TEST_SOURCE
from gnlc_core.events import parse_event
from gnlc_core.ledger import Status
from gnlc_webhook.consumer import RESEND_PREFIX
from gnlc_webhook.test_events import sample_record
from tests.integration.webhook_api_app import OPERATOR_TOKEN, api_client
from tests.unit.console_support import csrf, csrf_of, sign_in
from tests.unit.portal_support import partner_sign_in, portal_harness
from tests.unit.webhook_log import delivered

COOKIE = "gnlc-partner"


async def test_a_partner_signs_in_with_its_token_which_stays_on_the_server(
    tmp_path: Path,
) -> None:
    async with portal_harness(tmp_path) as h, h.client() as client:
        assert (await client.get("/partner")).headers["location"] == "/partner/signin?next=/partner"
        answer = await partner_sign_in(client, h.alpha.token)
        assert answer.status_code == 303
        assert answer.headers["location"] == "/partner"
        cookie = answer.headers["set-cookie"]
        assert cookie.startswith(f"{COOKIE}=")
        assert "HttpOnly" in cookie
        assert "SameSite=lax" in cookie
        assert h.alpha.token not in cookie
        page = await client.get("/partner")
        assert page.status_code == 200
        assert h.alpha.token not in page.text
        assert "alpha inc (alpha)" in page.text
        # the database holds the token sealed, never in the clear
        async with h.console.engine.connect() as connection:
            [sealed] = (await connection.execute(select(partner_sessions.c.token_sealed))).all()
        assert h.alpha.token not in sealed[0]
        assert unseal(client.cookies[COOKIE], sealed[0]) == h.alpha.token


async def test_a_partner_sees_only_its_own_endpoints(tmp_path: Path) -> None:
    async with portal_harness(tmp_path) as h, h.client() as client:
        mine, theirs = h.alpha.endpoint, h.beta.endpoint
        await delivered(h.webhooks.engine, theirs["id"], "beta", "evt-b", '{"id": "evt-b"}')
        await partner_sign_in(client, h.alpha.token)
        page = await client.get("/partner")
        assert mine["id"] in page.text
        assert mine["url"] in page.text
        assert "HMAC-SHA256 (v1)" in page.text
        assert theirs["id"] not in page.text
        assert theirs["url"] not in page.text
        for path in (
            f"/partner/endpoints/{theirs['id']}",
            f"/partner/endpoints/{theirs['id']}/events/evt-b",
        ):
            answer = await client.get(path)
            assert answer.status_code == 404, path
            assert theirs["url"] not in answer.text
            assert "Back to your endpoints" in answer.text
        token = await csrf(client, "/partner")
        for action, form in (
            ("test", {"event_type": "deadline.reminder"}),
            ("rotate-secret", {}),
            ("replay", {"since_local": "2026-01-01T00:00", "zone": "UTC"}),
        ):
            answer = await client.post(
                f"/partner/endpoints/{theirs['id']}/{action}", data={"csrf_token": token, **form}
            )
            assert answer.status_code == 404, action
        assert h.webhooks.resent.calls == []
        row = await h.webhooks.store.endpoint(theirs["id"])
        assert row is not None
        assert row.previous_secret is None  # not rotated


async def test_partner_and_operator_sessions_never_cross(tmp_path: Path) -> None:
    async with portal_harness(tmp_path) as h:
        async with h.client() as partner:
            await partner_sign_in(partner, h.alpha.token)
            for path in ("/", "/endpoints", "/deadlines", "/directory"):
                answer = await partner.get(path)
                assert answer.status_code == 303, path
                assert answer.headers["location"].startswith("/signin")
            token = await csrf(partner, "/partner")
            forged = await partner.post(
                f"/endpoints/{h.alpha.endpoint['id']}/pause", data={"csrf_token": token}
            )
            assert forged.status_code == 303  # to the operators' sign-in: no session there
            assert (await h.webhooks.store.endpoint(h.alpha.endpoint["id"])).state == "active"  # type: ignore[union-attr]
        async with h.client() as operator:
            assert (await sign_in(operator, "ed")).status_code == 303
            listed = await operator.get("/endpoints")  # the operator's own page: every endpoint
            assert listed.status_code == 200
            assert h.beta.endpoint["id"] in listed.text
            for path in (
                "/partner",
                "/partner/events",
                f"/partner/endpoints/{h.alpha.endpoint['id']}",
            ):
                answer = await operator.get(path)
                assert answer.status_code == 303, path
                assert answer.headers["location"].startswith("/partner/signin")
            token = await csrf(operator, "/endpoints")
            answer = await operator.post(
                f"/partner/endpoints/{h.alpha.endpoint['id']}/test",
                data={"csrf_token": token, "event_type": "deadline.reminder"},
            )
            assert answer.status_code == 303
            assert answer.headers["location"].startswith("/partner/signin")
        assert h.webhooks.resent.calls == []


async def test_wrong_tokens_are_refused_and_limited_per_address(tmp_path: Path) -> None:
    async with portal_harness(tmp_path) as h, h.client() as client:
        operator = await partner_sign_in(client, OPERATOR_TOKEN)
        assert operator.status_code == 400
        assert "operator token" in operator.text
        assert COOKIE not in client.cookies
        for _ in range(9):
            wrong = await partner_sign_in(client, "gnlcp_wrong")
            assert wrong.status_code == 400
            assert "not a partner&#39;s token" in wrong.text
        limited = await partner_sign_in(client, h.alpha.token)  # even the right one, for a while
        assert limited.status_code == 429
        assert "Too many failed sign-ins" in limited.text
        assert COOKIE not in client.cookies


async def test_forged_partner_requests_are_refused(tmp_path: Path) -> None:
    async with portal_harness(tmp_path) as h, h.client() as client:
        forged_signin = await client.post(
            "/partner/signin",
            data={"token": h.alpha.token, "signin_token": "guess"},
            headers={"origin": "https://evil.example"},
        )
        assert forged_signin.status_code == 403
        assert COOKIE not in client.cookies
        await partner_sign_in(client, h.alpha.token)
        token = await csrf(client, "/partner")
        path = f"/partner/endpoints/{h.alpha.endpoint['id']}/test"
        form = {"csrf_token": token, "event_type": "deadline.reminder"}
        other_site = await client.post(path, data=form, headers={"origin": "https://evil.example"})
        assert other_site.status_code == 403
        assert "comes from another site" in other_site.text
        no_token = await client.post(path, data={"event_type": "deadline.reminder"})
        assert no_token.status_code == 403
        wrong_token = await client.post(path, data={**form, "csrf_token": "guess"})
        assert wrong_token.status_code == 403
        assert h.webhooks.resent.calls == []
        signout = await client.post("/partner/signout", data={})
        assert signout.status_code == 403  # signing out is a change too


async def test_a_partner_sends_a_test_event(tmp_path: Path) -> None:
    async with portal_harness(tmp_path) as h, h.client() as client:
        endpoint = h.alpha.endpoint["id"]
        await partner_sign_in(client, h.alpha.token)
        page = await client.get(f"/partner/endpoints/{endpoint}")
        assert '<option value="announcement.published"' in page.text
        answer = await client.post(
            f"/partner/endpoints/{endpoint}/test",
            data={"csrf_token": csrf_of(page.text), "event_type": "announcement.published"},
        )
        assert answer.status_code == 303
        [(recipient, value)] = h.webhooks.resent.calls
        assert recipient == f"{RESEND_PREFIX}{endpoint}"
        event = parse_event(value)
        assert (event.type, event.source) == ("announcement.published", TEST_SOURCE)
        after = await client.get(answer.headers["location"])
        assert f"Test event announcement.published queued for {endpoint}" in after.text
        assert event.id in after.text
        refused = await client.post(
            f"/partner/endpoints/{endpoint}/test",
            data={"csrf_token": csrf_of(page.text), "event_type": "deadline.cancelled"},
        )
        assert refused.status_code == 422
        assert 'id="event_type-error"' in refused.text
        assert "unknown event type" in refused.text
        async with api_client(h.webhooks, h.alpha.token) as http:
            await http.post(f"/endpoints/{endpoint}/pause")
        paused = await client.post(
            f"/partner/endpoints/{endpoint}/test",
            data={"csrf_token": csrf_of(page.text), "event_type": "deadline.reminder"},
        )
        assert paused.status_code == 303
        told = await client.get(paused.headers["location"])
        assert "No test event sent: endpoint" in told.text
        assert "is paused: resume it" in told.text
        assert len(h.webhooks.resent.calls) == 1
        malformed = await client.get("/partner/endpoints/Not_An_Id")
        assert malformed.status_code == 422


async def test_an_ed25519_endpoint_shows_its_public_key_and_rotates_to_a_new_one(
    tmp_path: Path,
) -> None:
    async with portal_harness(tmp_path) as h, h.client() as client:
        endpoint = h.beta.endpoint
        await partner_sign_in(client, h.beta.token)
        page = await client.get(f"/partner/endpoints/{endpoint['id']}")
        assert endpoint["public_key"] in page.text
        assert "ed25519 (<code>v1a</code>)" in page.text
        answer = await client.post(
            f"/partner/endpoints/{endpoint['id']}/rotate-secret",
            data={"csrf_token": csrf_of(page.text)},
        )
        after = await client.get(answer.headers["location"])
        row = await h.webhooks.store.endpoint(endpoint["id"])
        assert row is not None
        assert "New signing public key" in after.text
        assert row.secret not in after.text  # the signing key never leaves the service
        new_key = re.search(r"<li>(whpk_[^<]+)</li>", after.text)
        assert new_key
        assert new_key.group(1) != endpoint["public_key"]


async def test_attempts_show_the_request_and_each_response(tmp_path: Path) -> None:
    async with portal_harness(tmp_path) as h, h.client() as client:
        endpoint = h.alpha.endpoint["id"]
        body = '{"id":"evt-1","type":"deadline.reminder","data":{"deadline_id":"report"}}'
        await delivered(
            h.webhooks.engine,
            endpoint,
            "alpha",
            "evt-1",
            body,
            answers=[(503, "busy, " + "x" * 5000, "HTTP 503"), (204, "", None)],
        )
        await partner_sign_in(client, h.alpha.token)
        page = await client.get(f"/partner/endpoints/{endpoint}")
        assert f'href="/partner/endpoints/{endpoint}/events/evt-1"' in page.text
        assert "HTTP 503" in page.text
        assert "12 ms" in page.text  # the latency (12.5 ms)
        event = await client.get(f"/partner/endpoints/{endpoint}/events/evt-1")
        assert event.status_code == 200
        text = event.text
        for header in ("webhook-id", "webhook-timestamp", "webhook-signature", "content-type"):
            assert f"<code>{header}</code>" in text
        assert "v1,&lt;base64 HMAC-SHA256" in text
        assert "&#34;deadline_id&#34;: &#34;report&#34;" in text  # the body, indented
        assert "Attempt 1: retrying, HTTP 503" in text
        assert "Attempt 2: delivered, HTTP 204" in text
        assert "busy, xxx" in text
        assert "more characters)" in text  # bounded
        assert not re.search(r"whsec_[A-Za-z0-9+/]{8}", text)  # no secret, only its name
        secret = (await h.webhooks.store.endpoint(endpoint)).secret  # type: ignore[union-attr]
        assert secret not in text
        assert (await client.get(f"/partner/endpoints/{endpoint}/events/evt-9")).status_code == 404


async def test_rotating_shows_the_new_secret_once(tmp_path: Path) -> None:
    async with portal_harness(tmp_path) as h, h.client() as client:
        endpoint = h.alpha.endpoint["id"]
        await partner_sign_in(client, h.alpha.token)
        token = await csrf(client, f"/partner/endpoints/{endpoint}")
        answer = await client.post(
            f"/partner/endpoints/{endpoint}/rotate-secret", data={"csrf_token": token}
        )
        assert answer.status_code == 303
        row = await h.webhooks.store.endpoint(endpoint)
        assert row is not None
        assert row.secret != h.alpha.endpoint["secret"]
        first = await client.get(answer.headers["location"])
        assert row.secret in first.text
        assert "shown this once" in first.text
        assert "signs too until" in first.text
        again = await client.get(answer.headers["location"])
        assert row.secret not in again.text


@pytest.mark.parametrize(
    ("since_local", "zone", "field", "words"),
    [
        ("yesterday", "Europe/Paris", "since_local", "give a date and time"),
        ("", "Europe/Paris", "since_local", "give a date and time"),
        ("2026-01-01T00:00", "Mars/Olympus", "zone", "not a time zone"),
        ("2999-01-01T00:00", "UTC", "since_local", "in the future"),
    ],
)
async def test_replay_shows_field_errors_in_place_and_keeps_what_was_typed(
    tmp_path: Path, since_local: str, zone: str, field: str, words: str
) -> None:
    async with portal_harness(tmp_path) as h, h.client() as client:
        endpoint = h.alpha.endpoint["id"]
        await partner_sign_in(client, h.alpha.token)
        token = await csrf(client, f"/partner/endpoints/{endpoint}")
        answer = await client.post(
            f"/partner/endpoints/{endpoint}/replay",
            data={"csrf_token": token, "since_local": since_local, "zone": zone},
        )
        assert answer.status_code == 422
        assert f'id="{field}-error"' in answer.text
        assert words in answer.text
        assert 'aria-invalid="true"' in answer.text
        assert f'value="{since_local}"' in answer.text
        assert f'value="{zone}"' in answer.text
        assert 'id="form-errors"' in answer.text
        assert h.webhooks.resent.calls == []


async def test_replay_queues_what_failed_since(tmp_path: Path) -> None:
    async with portal_harness(tmp_path) as h, h.client() as client:
        endpoint = h.alpha.endpoint["id"]
        event_id, value = sample_record("deadline.reminder", datetime.now(UTC))
        await delivered(
            h.webhooks.engine,
            endpoint,
            "alpha",
            event_id,
            value.decode(),
            answers=[(500, "", "HTTP 500")],
            status=Status.FAILED,
        )
        await partner_sign_in(client, h.alpha.token)
        token = await csrf(client, f"/partner/endpoints/{endpoint}")
        since = (datetime.now(UTC) - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M")
        answer = await client.post(
            f"/partner/endpoints/{endpoint}/replay",
            data={"csrf_token": token, "since_local": since, "zone": "UTC"},
        )
        assert answer.status_code == 303, answer.text
        assert [r for r, _ in h.webhooks.resent.calls] == [f"{RESEND_PREFIX}{endpoint}"]
        page = await client.get(answer.headers["location"])
        assert "Replay queued: 1 event(s)" in page.text


async def test_the_event_catalog_shows_every_type_its_fields_and_example(tmp_path: Path) -> None:
    async with portal_harness(tmp_path) as h, h.client() as client:
        await partner_sign_in(client, h.alpha.token)
        page = await client.get("/partner/events")
        assert page.status_code == 200
        for event_type in ("deadline.reminder", "announcement.published"):
            assert f'<section id="{event_type}"' in page.text
            assert f'aria-label="Example of {event_type}"' in page.text
        assert "<code>data.audience.regions</code>" in page.text
        assert "array of string" in page.text
        assert "progress-report-2027" in page.text  # from schemas/examples
        assert "The JSON Schema of deadline.reminder" in page.text


async def test_sign_out_expiry_and_a_token_that_was_replaced(tmp_path: Path) -> None:
    async with portal_harness(tmp_path, console_session_idle_seconds=60) as h:
        async with h.client() as client:
            await partner_sign_in(client, h.alpha.token)
            sid = client.cookies[COOKIE]
            token = await csrf(client, "/partner")
            assert (
                await client.post("/partner/signout", data={"csrf_token": token})
            ).status_code == 303
            client.cookies.set(COOKIE, sid)
            assert (await client.get("/partner")).status_code == 303
        async with h.client() as client:
            await partner_sign_in(client, h.alpha.token)
            async with h.console.engine.begin() as connection:  # a session unused for a while
                await connection.execute(
                    partner_sessions.update().values(
                        last_seen_at=datetime.now(UTC) - timedelta(seconds=61)
                    )
                )
            assert (await client.get("/partner")).status_code == 303
        async with h.client() as client:
            await partner_sign_in(client, h.alpha.token)
            async with api_client(h.webhooks) as operator:
                await operator.post("/partners/alpha/token")  # a new token: the old one ends
            answer = await client.get("/partner")
            assert answer.headers["location"] == "/partner/signin?ended=1"
            page = await client.get(answer.headers["location"])
            assert "no longer accepted" in page.text


async def test_portal_pages_carry_the_security_headers(tmp_path: Path) -> None:
    async with portal_harness(tmp_path) as h, h.client() as client:
        assert (await client.get("/partner/signin")).headers["content-security-policy"] == CSP
        await partner_sign_in(client, h.alpha.token)
        for path in ("/partner", "/partner/events", f"/partner/endpoints/{h.alpha.endpoint['id']}"):
            answer = await client.get(path)
            assert answer.headers["content-security-policy"] == CSP, path
            assert answer.headers["cache-control"] == "no-store"
            assert "<script>" not in answer.text


# -- pure decisions --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        (None, "/partner"),
        ("", "/partner"),
        ("/partner", "/partner"),
        ("/partner/events", "/partner/events"),
        ("/partner/endpoints/ep-1?x=1", "/partner/endpoints/ep-1?x=1"),
        ("/", "/partner"),  # an operator page
        ("/endpoints", "/partner"),
        ("/partnership", "/partner"),
        ("//evil.example/partner", "/partner"),
        ("https://evil.example/partner", "/partner"),
    ],
)
def test_where_a_partner_goes_after_signing_in(target: str | None, expected: str) -> None:
    assert safe_partner_next(target) == expected


NOW = datetime(2027, 1, 10, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("values", "since", "errors"),
    [
        (
            {"since_local": "2027-01-10T09:00", "zone": "Asia/Kathmandu"},
            "2027-01-10T09:00:00+05:45",
            set(),
        ),
        ({"since_local": "2027-01-10T09:00", "zone": "UTC"}, "2027-01-10T09:00:00+00:00", set()),
        ({"since_local": "", "zone": "UTC"}, None, {"since_local"}),
        ({"since_local": "2027-01-10T09:00", "zone": ""}, None, {"zone"}),
        ({"since_local": "", "zone": "Nowhere/City"}, None, {"since_local", "zone"}),
        ({"since_local": "10/01/2027", "zone": "UTC"}, None, {"since_local"}),
        ({"since_local": "2027-01-10T13:00", "zone": "UTC"}, None, {"since_local"}),  # future
        ({"since_local": "2025-12-01T00:00", "zone": "UTC"}, None, {"since_local"}),  # > 1 year
    ],
)
def test_replay_since(values: dict[str, str], since: str | None, errors: set[str]) -> None:
    found, problems = replay_since(values, NOW)
    assert found == since
    assert set(problems) == errors


def test_a_sealed_token_opens_only_with_its_own_session_id() -> None:
    sealed = seal("session-one", "gnlcp_secret")
    assert "gnlcp_secret" not in sealed
    assert unseal("session-one", sealed) == "gnlcp_secret"
    assert unseal("session-two", sealed) is None
    assert unseal("session-one", sealed[:-4] + "AAAA") is None
    assert unseal("session-one", "not base64!") is None
    assert seal("session-one", "gnlcp_secret") != sealed  # a fresh nonce each time
