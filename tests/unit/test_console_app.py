"""The console in process, over the scheduler's API in process: sign-in and sessions,
the checks on every change (origin, CSRF token, role), forms that keep what was typed and
show each error at its field, and pages that never answer with a traceback."""

from __future__ import annotations

import hashlib
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

from gnlc_console.web import (
    ASSETS,
    CSP,
    PAGE_CACHE,
    PREVIEW_CSP,
    STATIC,
    STATIC_CHECKED,
    STATIC_KEPT,
    cache_control,
)
from tests.unit.console_support import (
    PASSWORD,
    console_harness,
    csrf,
    csrf_of,
    sign_in,
)


def _due(days: int = 40) -> str:
    """Noon in Paris: every step of the tests' cities falls before it on its own day, so
    the counts do not depend on the time of day the test runs."""
    return (datetime.now(UTC) + timedelta(days=days)).strftime("%Y-%m-%dT12:00")


def deadline_form(token: str, **fields: str) -> dict[str, str]:
    form = {
        "csrf_token": token,
        "id": "progress-report",
        "rows": "3",
        "lang_0": "en",
        "title_0": "Biennial progress report",
        "text_0": "Please submit your report.",
        "lang_1": "fr",
        "title_1": "Rapport d'étape",
        "due_local": _due(),
        "zone": "Europe/Paris",
        "audience_kind": "cities",
        "cities": "kathmandu aswan",
        "reminders": "-7d -1d 0d",
        "delivery_hour": "9",
    }
    form.update(fields)
    return form


async def test_sign_in_opens_a_new_session_with_a_safe_cookie(tmp_path: Path) -> None:
    async with console_harness(tmp_path) as h, h.client() as client:
        assert (await client.get("/")).headers["location"] == "/signin?next=/"
        first = await sign_in(client, "ed")
        assert first.status_code == 303
        cookie = first.headers["set-cookie"]
        assert "gnlc-console=" in cookie
        assert "HttpOnly" in cookie
        assert "SameSite=lax" in cookie
        assert "Path=/" in cookie
        old = client.cookies["gnlc-console"]
        assert (await client.get("/")).status_code == 200
        again = await sign_in(client, "ed")  # a new id at every sign-in; the old one ends
        assert again.status_code == 303
        assert client.cookies["gnlc-console"] != old
        async with h.client() as stale:
            stale.cookies.set("gnlc-console", old)
            assert (await stale.get("/")).status_code == 303


async def test_secure_cookie_outside_the_local_run(tmp_path: Path) -> None:
    secure = console_harness(tmp_path, console_cookie_secure=True)
    async with secure as h, h.client("https://console.test") as client:
        answer = await sign_in(client, "ed")
        assert answer.headers["set-cookie"].startswith("__Host-gnlc-console=")
        assert "Secure" in answer.headers["set-cookie"]


async def test_sign_out_ends_the_session(tmp_path: Path) -> None:
    async with console_harness(tmp_path) as h, h.client() as client:
        await sign_in(client, "vi")
        token = await csrf(client, "/")
        sid = client.cookies["gnlc-console"]
        answer = await client.post("/signout", data={"csrf_token": token})
        assert answer.status_code == 303
        client.cookies.set("gnlc-console", sid)
        assert (await client.get("/")).status_code == 303


async def test_wrong_passwords_are_limited_per_account(tmp_path: Path) -> None:
    async with console_harness(tmp_path) as h, h.client() as client:
        for _ in range(5):
            assert (await sign_in(client, "ed", "wrong password!")).status_code == 400
        limited = await sign_in(client, "ed")  # even the right password, for a while
        assert limited.status_code == 429
        assert "Too many failed sign-ins" in limited.text
        assert (await sign_in(client, "vi")).status_code == 303  # another account is not


async def test_a_forged_sign_in_is_refused(tmp_path: Path) -> None:
    async with console_harness(tmp_path) as h, h.client() as client:
        answer = await client.post(
            "/signin",
            data={"name": "ed", "password": PASSWORD, "signin_token": "guess"},
            headers={"origin": "https://evil.example"},
        )
        assert answer.status_code == 403
        assert "gnlc-console" not in client.cookies


async def test_every_page_has_the_security_headers(tmp_path: Path) -> None:
    async with console_harness(tmp_path) as h, h.client() as client:
        await sign_in(client, "ed")
        for path in ("/signin", "/", "/deadlines", "/announcements", "/deadlines/new"):
            answer = await client.get(path)
            assert answer.headers["content-security-policy"] == CSP, path
            assert "unsafe-inline" not in answer.headers["content-security-policy"]
            assert "frame-ancestors 'none'" in answer.headers["content-security-policy"]
            assert answer.headers["x-content-type-options"] == "nosniff"
            assert answer.headers["referrer-policy"] == "same-origin"
            assert "<script>" not in answer.text  # no inline script


async def test_an_editor_creates_a_deadline_and_reads_its_plan(tmp_path: Path) -> None:
    async with console_harness(tmp_path) as h, h.client() as client:
        await sign_in(client, "ed")
        token = await csrf(client, "/deadlines/new")
        answer = await client.post("/deadlines", data=deadline_form(token))
        assert answer.status_code == 303, answer.text
        assert answer.headers["location"] == "/deadlines/progress-report"
        page = await client.get("/deadlines/progress-report")
        assert "Deadline progress-report saved: 6 reminder(s) scheduled" in page.text
        assert "Asia/Kathmandu, UTC+05:45" in page.text  # the plan in the city's time
        assert "09:00 (Asia/Kathmandu" in page.text
        assert "Record submission" in page.text
        stored = (await h.scheduler.client.get("/v1/deadlines/progress-report")).json()
        assert stored["title"] == {"en": "Biennial progress report", "fr": "Rapport d'étape"}


async def test_collapsed_steps_are_warned_of(tmp_path: Path) -> None:
    async with console_harness(tmp_path) as h, h.client() as client:
        await sign_in(client, "ed")
        token = await csrf(client, "/deadlines/new")
        form = deadline_form(token, reminders="-1d -2h 0d", due_local=_due(10)[:11] + "10:00")
        answer = await client.post("/deadlines", data=form)
        assert answer.status_code == 303, answer.text
        page = (await client.get(answer.headers["location"])).text
        assert "warning: collapsed" in page
        assert "not scheduled (collapsed)" in page


async def test_a_refused_form_keeps_what_was_typed_and_shows_errors_in_place(
    tmp_path: Path,
) -> None:
    async with console_harness(tmp_path) as h, h.client() as client:
        await sign_in(client, "ed")
        token = await csrf(client, "/deadlines/new")
        # caught by the console: the zone; by the API: the plan and the unknown city
        local = await client.post(
            "/deadlines", data=deadline_form(token, zone="Mars/Base", id="Bad Id", reminders="-7x")
        )
        assert local.status_code == 422
        for field in ("zone", "id", "reminders"):  # every error at once
            assert f'id="{field}-error"' in local.text
        assert "Mars/Base" in local.text
        api = await client.post(
            "/deadlines",
            data=deadline_form(token, reminders="-7x", cities="kathmandu atlantis"),
        )
        assert api.status_code == 422
        assert 'id="reminders-error"' in api.text
        assert 'value="-7x"' in api.text
        assert "Rapport d&#39;étape" in api.text  # what was typed stays
        assert (await h.scheduler.client.get("/v1/deadlines")).json() == []


async def test_an_api_error_on_a_language_lands_on_its_row(tmp_path: Path) -> None:
    async with console_harness(tmp_path) as h, h.client() as client:
        await sign_in(client, "ed")
        token = await csrf(client, "/deadlines/new")
        answer = await client.post("/deadlines", data=deadline_form(token, title_1="x" * 301))
        assert answer.status_code == 422
        assert 'id="title_1-error"' in answer.text


async def test_a_submission_takes_the_city_off_the_list(tmp_path: Path) -> None:
    async with console_harness(tmp_path) as h, h.client() as client:
        await sign_in(client, "ed")
        token = await csrf(client, "/deadlines/new")
        await client.post("/deadlines", data=deadline_form(token))
        page = (await client.get("/deadlines/progress-report")).text
        assert "Not submitted (2 of 2)" in page
        answer = await client.post(
            "/deadlines/progress-report/submissions",
            data={"csrf_token": csrf_of(page), "city_id": "aswan"},
        )
        assert answer.status_code == 303
        page = (await client.get("/deadlines/progress-report")).text
        assert "Not submitted (1 of 2)" in page
        assert "aswan has submitted: 3 reminder(s) cancelled" in page


async def test_a_viewer_reads_but_changes_nothing(tmp_path: Path) -> None:
    async with console_harness(tmp_path) as h:
        async with h.client() as client:
            await sign_in(client, "ed")
            token = await csrf(client, "/deadlines/new")
            await client.post("/deadlines", data=deadline_form(token))
        async with h.client() as client:
            await sign_in(client, "vi")
            page = await client.get("/deadlines/progress-report")
            assert page.status_code == 200
            assert "Record submission" not in page.text
            assert "Cancel this deadline" not in page.text
            assert "New deadline" not in (await client.get("/deadlines")).text
            token = csrf_of(page.text)
            assert (await client.get("/deadlines/new")).status_code == 403
            for path, data in (
                ("/deadlines", deadline_form(token, id="other")),
                ("/deadlines/progress-report/cancel", {"csrf_token": token}),
                (
                    "/deadlines/progress-report/submissions",
                    {"csrf_token": token, "city_id": "aswan"},
                ),
                ("/announcements/x/withdraw", {"csrf_token": token}),
                ("/endpoints/partner-a/pause", {"csrf_token": token}),
                ("/endpoints/partner-a/rotate-secret", {"csrf_token": token}),
            ):
                answer = await client.post(path, data=data)
                assert answer.status_code == 403, path
                assert "is a viewer" in answer.text
        assert (
            await h.scheduler.client.get("/v1/deadlines/progress-report/submissions")
        ).json() == []


async def test_forged_cross_site_posts_are_refused(tmp_path: Path) -> None:
    async with console_harness(tmp_path) as h, h.client() as client:
        await sign_in(client, "ed")
        token = await csrf(client, "/deadlines/new")
        cases = [
            ({"origin": "https://evil.example"}, deadline_form(token)),
            ({}, deadline_form("")),  # no token
            ({}, deadline_form("not-the-token")),
        ]
        for headers, data in cases:
            answer = await client.post("/deadlines", data=data, headers=headers)
            assert answer.status_code == 403
            assert "Refused" in answer.text
        request = client.build_request("POST", "/deadlines", data=deadline_form(token))
        del request.headers["origin"]  # neither Origin nor Referer
        assert (await client.send(request)).status_code == 403
        assert (await h.scheduler.client.get("/v1/deadlines")).json() == []
        # the same form from the console itself goes through
        assert (await client.post("/deadlines", data=deadline_form(token))).status_code == 303


async def test_an_announcement_in_two_languages_and_its_preview(tmp_path: Path) -> None:
    async with console_harness(tmp_path) as h, h.client() as client:
        await sign_in(client, "ed")
        token = await csrf(client, "/announcements/new")
        form = {
            "csrf_token": token,
            "id": "education-day",
            "category": "event",
            "rows": "3",
            "lang_0": "en",
            "title_0": "International Day of Education",
            "text_0": "Join us on 24 January.",
            "lang_1": "fr",
            "title_1": "Journée internationale de l'éducation",
            "text_1": "Rejoignez-nous le 24 janvier.",
            "publish_local": _due(5),
            "zone": "UTC",
            "audience_kind": "all",
        }
        answer = await client.post("/announcements", data=form)
        assert answer.status_code == 303, answer.text
        page = await client.get("/announcements/education-day?city=clermont-ferrand&language=fr")
        assert page.status_code == 200
        assert "Rejoignez-nous le 24 janvier." in page.text  # the text part
        assert (
            'sandbox src="/announcements/education-day/preview.html?city=clermont-ferrand'
            in page.text
        )
        html = await client.get(
            "/announcements/education-day/preview.html?city=kathmandu&language=en"
        )
        assert html.headers["content-security-policy"] == PREVIEW_CSP
        assert "Join us on 24 January." in html.text
        edit_token = csrf_of(page.text)
        withdrawn = await client.post(
            "/announcements/education-day/withdraw", data={"csrf_token": edit_token}
        )
        assert withdrawn.status_code == 303
        assert "withdrawn" in (await client.get("/announcements/education-day")).text


async def test_an_unreachable_service_is_a_clear_page_not_a_traceback(tmp_path: Path) -> None:
    async with console_harness(tmp_path, scheduler_down=True) as h, h.client() as client:
        await sign_in(client, "ed")
        answer = await client.get("/deadlines")
        assert answer.status_code == 503
        assert "The scheduler does not answer" in answer.text
        assert "Traceback" not in answer.text


async def test_the_dashboard_says_when_the_webhook_service_is_down(tmp_path: Path) -> None:
    async with console_harness(tmp_path) as h, h.client() as client:
        await sign_in(client, "vi")
        page = await client.get("/")
        assert page.status_code == 200
        assert "webhook service does not answer" in page.text
        assert "Nothing goes out." in page.text
        endpoints = await client.get("/endpoints")
        assert endpoints.status_code == 503
        assert "The webhook service does not answer" in endpoints.text


async def test_unknown_things_are_404_pages(tmp_path: Path) -> None:
    async with console_harness(tmp_path) as h, h.client() as client:
        await sign_in(client, "vi")
        for path in ("/deadlines/nope", "/announcements/nope", "/nowhere"):
            answer = await client.get(path)
            assert answer.status_code == 404, path
            assert "<h1>Not found</h1>" in answer.text


BAD_CSV = (
    "id,name,country,region,timezone,language,contact_email\n"
    "new-town,New Town,NP,Asia and the Pacific,Asia/Kathmandu,en,focal@new-town.example.org\n"
    "bad-zone,Bad Zone,NP,Asia and the Pacific,Mars/Base,en,focal@bad.example.org\n"
    "bad-mail,Bad Mail,XYZ,Asia and the Pacific,Asia/Kathmandu,en,not-an-address\n"
)


async def test_a_directory_import_shows_every_rows_problems_and_imports_nothing(
    tmp_path: Path,
) -> None:
    async with console_harness(tmp_path) as h, h.client() as client:
        await sign_in(client, "ed")
        token = await csrf(client, "/directory")
        refused = await client.post(
            "/directory/import",
            data={"csrf_token": token},
            files={"file": ("cities.csv", BAD_CSV.encode(), "text/csv")},
        )
        assert refused.status_code == 422
        for where in ("line 3 · timezone", "line 4 · country", "line 4 · contacts"):
            assert where in refused.text
        assert "nothing is imported unless every row is valid" in refused.text
        cities = (await h.scheduler.client.get("/v1/cities")).json()
        assert "new-town" not in {c["id"] for c in cities}
        good = "\n".join(BAD_CSV.splitlines()[:2]) + "\n"
        answer = await client.post(
            "/directory/import",
            data={"csrf_token": token},
            files={"file": ("cities.csv", good.encode(), "text/csv")},
        )
        assert answer.status_code == 303
        page = (await client.get("/directory")).text
        assert "cities.csv: 1 cities imported." in page
        assert 'id="city-new-town"' in page
        wrong = await client.post(
            "/directory/import",
            data={"csrf_token": token},
            files={"file": ("cities.xlsx", b"x", "application/octet-stream")},
        )
        assert wrong.status_code == 422
        assert "give a .csv, .yaml or .json file" in wrong.text


async def test_editing_a_city_keeps_what_was_typed_and_names_the_field(tmp_path: Path) -> None:
    async with console_harness(tmp_path) as h, h.client() as client:
        await sign_in(client, "ed")
        page = await client.get("/directory/kathmandu/edit")
        assert page.status_code == 200
        token = csrf_of(page.text)
        form = {
            "csrf_token": token,
            "name": "Kathmandu Metropolitan City",
            "country": "NP",
            "region": "Asia and the Pacific",
            "timezone": "Asia/Katmandu-typo",
            "languages": "ne en",
            "contacts": "lll@kathmandu.example.org",
            "active": "on",
        }
        refused = await client.post("/directory/kathmandu/edit", data=form)
        assert refused.status_code == 422
        assert 'id="timezone-error"' in refused.text
        assert 'value="Kathmandu Metropolitan City"' in refused.text
        saved = await client.post(
            "/directory/kathmandu/edit", data={**form, "timezone": "Asia/Kathmandu"}
        )
        assert saved.status_code == 303
        city = (await h.scheduler.client.get("/v1/cities/kathmandu")).json()
        assert city["name"] == "Kathmandu Metropolitan City"
        assert city["languages"] == ["ne", "en"]


async def test_a_viewer_cannot_import_or_edit_cities(tmp_path: Path) -> None:
    async with console_harness(tmp_path) as h, h.client() as client:
        await sign_in(client, "vi")
        page = await client.get("/directory")
        assert "Import" not in page.text
        token = csrf_of(page.text)
        answer = await client.post(
            "/directory/import",
            data={"csrf_token": token},
            files={"file": ("cities.csv", BAD_CSV.encode(), "text/csv")},
        )
        assert answer.status_code == 403
        assert (await client.get("/directory/kathmandu/edit")).status_code == 403


async def test_static_files_are_versioned_and_kept_pages_never_stored(tmp_path: Path) -> None:
    async with console_harness(tmp_path) as h, h.client() as client:
        await sign_in(client, "ed")
        page = await client.get("/")
        assert page.headers["cache-control"] == PAGE_CACHE
        linked = re.findall(r'(?:href|src)="(/static/[^"]+)"', page.text)
        assert sorted(linked) == sorted(ASSETS.values())
        for url in linked:
            path, _, version = url.partition("?v=")
            kept = await client.get(url)
            assert kept.status_code == 200, url
            assert kept.headers["cache-control"] == STATIC_KEPT
            assert kept.content == (STATIC / path.removeprefix("/static/")).read_bytes()
            assert hashlib.sha256(kept.content).hexdigest().startswith(version)
            # without the version, or with an old one: stored, but checked again each time
            for other in (path, f"{path}?v=0123456789abcdef"):
                checked = await client.get(other)
                assert checked.status_code == 200
                assert checked.headers["cache-control"] == STATIC_CHECKED
                assert "etag" in checked.headers


def test_cache_control_by_path() -> None:
    css = ASSETS["css"]
    path, _, version = css.partition("?v=")
    cases = [
        ("/", None, PAGE_CACHE),
        ("/deadlines", version, PAGE_CACHE),
        (path, version, STATIC_KEPT),
        (path, None, STATIC_CHECKED),
        (path, version[:-1], STATIC_CHECKED),
        ("/static/unknown.css", version, STATIC_CHECKED),
    ]
    for request_path, asked, expected in cases:
        assert cache_control(request_path, asked) == expected, (request_path, asked)
