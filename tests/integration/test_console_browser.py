"""The operator console in a real browser (Debian's Chromium driven by Playwright) against
the real scheduler, webhook and status services on the real broker: an editor signs in,
creates a deadline in two languages, reads its plan in local times, records a submission
and sees the city leave the not-submitted list, publishes an announcement in two languages
and previews it; finds an announcement's deliveries and a delivery's attempts; redrives a
dead letter (a poison record, listed with its reason, redriven, and back as a new one when
it fails again); a viewer can change nothing and cannot redrive; a forged cross-site POST
is refused. axe-core
runs on every page (no serious or critical violation) and no page breaks its CSP or is
wider than 375 px on a phone.

One browser for the module, one set of services for the module, a context per test."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import (
    Browser,
    BrowserContext,
    Page,
    ViewportSize,
    expect,
    sync_playwright,
)

from gnlc_core.catalog import TEST_SOURCE
from gnlc_devtools.mailbox import LocalMailbox
from gnlc_devtools.receiver import BackgroundServer, Inbox, receiver_app
from gnlc_webhook.partners import new_secret
from tests.integration.conftest import Receiver, System
from tests.integration.hooks import Hooks, serving
from tests.integration.kafka_io import produce
from tests.support import HTTP, Service, eventually, free_port

pytestmark = pytest.mark.integration

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
AXE = Path(__file__).resolve().parents[1] / "vendor" / "axe-4.14.1.min.js"
PASSWORD = "a long local password"
PHONE: ViewportSize = {"width": 375, "height": 740}


class Stack:
    def __init__(self, system: System, console: Service) -> None:
        self.system = system
        self.console = console

    @property
    def url(self) -> str:
        return self.console.url


@pytest.fixture(scope="module")
def stack(kafka: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    tmp = tmp_path_factory.mktemp("console")
    secret = new_secret()
    with (
        LocalMailbox() as mailbox,
        BackgroundServer(receiver_app({"partner-a": [secret]}, Inbox())) as server,
    ):
        system = System(
            kafka,
            tmp,
            mailbox,
            Receiver(server, Inbox(), secret),
            f"sqlite+aiosqlite:///{tmp / 'unused.db'}",
        )
        try:
            # the services start side by side, and the accounts are made meanwhile
            scheduler = system.service("scheduler").launch()
            webhook = system.service("webhook").launch()
            status = system.service("status", GNLC_STATUS_WEBHOOK_API_URL=webhook.url).launch()
            console = system.service(
                "console",
                GNLC_CONSOLE_SCHEDULER_URL=scheduler.url,
                GNLC_CONSOLE_WEBHOOK_URL=webhook.url,
                GNLC_CONSOLE_STATUS_URL=status.url,
                # no email service in this stack (its start costs seconds): a port where
                # nothing listens, so a city's page says the email service is away
                GNLC_CONSOLE_EMAIL_URL=f"http://127.0.0.1:{free_port()}",
                GNLC_CONSOLE_COOKIE_SECURE="false",
            )
            for name, role in (("editor", "editor"), ("viewer", "viewer")):
                subprocess.run(
                    [
                        sys.executable,
                        "-m",
                        "gnlc_console",
                        "add-user",
                        name,
                        "--role",
                        role,
                        "--password-stdin",
                    ],
                    input=f"{PASSWORD}\n".encode(),
                    env=console.env,
                    check=True,
                    capture_output=True,
                    timeout=60,
                )
            for service in (scheduler, webhook, status):
                service.ready()
            console.start()
            yield Stack(system, console)
        finally:
            system.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not Path(CHROMIUM).exists():
        pytest.fail("no chromium: deploy/setup.sh installs Debian's chromium")
    with sync_playwright() as playwright:
        args = ["--no-sandbox"] if os.geteuid() == 0 else []
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=args)
        yield launched
        launched.close()


class Watched:
    """A browser context whose pages must not break the console's CSP."""

    def __init__(self, context: BrowserContext) -> None:
        self.context = context
        self.violations: list[str] = []
        self.page = context.new_page()
        self.page.on("console", self._console)

    def _console(self, message: Any) -> None:
        if "Content Security Policy" in message.text:
            self.violations.append(message.text)


@pytest.fixture
def watched(browser: Browser) -> Iterator[Watched]:
    context = browser.new_context(timezone_id="Europe/Paris", locale="en-GB")
    context.set_default_timeout(20_000)
    try:
        yield Watched(context)
    finally:
        context.close()


def accessible(page: Page) -> None:
    """axe-core finds no serious or critical violation, and the page fits a phone.

    Both are judged once the page has loaded: a click returns when the new page's document
    is there, and until its stylesheet has arrived (late on a loaded machine) the page is
    laid out without it, wider than any phone (a table outside its scrolling box)."""
    page.wait_for_load_state("load")
    if not page.evaluate("typeof window.axe !== 'undefined'"):
        page.evaluate(AXE.read_text(encoding="utf-8"))
    results = page.evaluate("async () => (await axe.run(document)).violations")
    bad = [
        f"{v['id']} ({v['impact']}): {[n['target'] for n in v['nodes']][:3]}"
        for v in results
        if v["impact"] in ("serious", "critical")
    ]
    assert not bad, f"{page.url}: {bad}"
    size = page.viewport_size
    page.set_viewport_size(PHONE)
    width = page.evaluate("document.documentElement.scrollWidth")
    if size:
        page.set_viewport_size(size)
    assert width <= PHONE["width"], f"{page.url} is {width} px wide at 375 px"


def sign_in(page: Page, url: str, name: str) -> None:
    page.goto(f"{url}/")
    expect(page).to_have_url(f"{url}/signin?next=/")
    accessible(page)
    page.get_by_label("Name").fill(name)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Dashboard")).to_be_visible()


def _due(days: int) -> str:
    return (datetime.now(UTC) + timedelta(days=days)).strftime("%Y-%m-%dT%H:%M")


def test_an_editor_plans_tracks_and_publishes(stack: Stack, watched: Watched) -> None:
    page, url = watched.page, stack.url
    sign_in(page, url, "editor")
    accessible(page)

    # a deadline in two languages, with a field error first: kept and shown in place
    page.get_by_role("link", name="Deadlines").click()
    accessible(page)
    page.get_by_role("link", name="New deadline").click()
    accessible(page)
    page.get_by_label("Id", exact=True).fill("progress-report")
    page.get_by_label("Language 1").fill("en")
    page.get_by_label("Title (1)").fill("Biennial progress report")
    page.get_by_label("Description (1)").fill("Please submit your report.")
    page.get_by_label("Language 2").fill("fr")
    page.get_by_label("Title (2)").fill("Rapport d'étape biennal")
    page.get_by_label("Due date and time").fill(_due(40))
    page.get_by_label("In the time zone").fill("Europe/Paris")
    page.get_by_label("Cities:").check()
    page.get_by_label("City ids").fill("kathmandu aswan medellin")
    page.get_by_label("Steps").fill("-7d -1d 0d +3y")
    page.get_by_role("button", name="Create deadline").click()
    expect(page.locator("#reminders-error")).to_be_visible()
    expect(page.get_by_label("Title (2)")).to_have_value("Rapport d'étape biennal")
    accessible(page)
    page.get_by_label("Steps").fill("-7d -1d 0d +3d")
    page.get_by_role("button", name="Create deadline").click()

    # its plan, per city, in local time
    expect(page.get_by_text("Deadline progress-report saved")).to_be_visible()
    plan = page.locator("table.plan")
    expect(plan).to_contain_text("(Asia/Kathmandu, UTC+05:45)")
    expect(plan).to_contain_text("09:00 (Asia/Kathmandu")
    expect(plan).to_contain_text("your time (Europe/Paris)")
    accessible(page)

    # a submission: the city leaves the not-submitted list (htmx swaps the section)
    listed = page.locator("#not-submitted")
    expect(listed).to_contain_text("Aswan")
    listed.get_by_role("button", name="Record submission of أسوان (Aswan)").click()
    expect(listed).not_to_contain_text("Aswan")
    expect(page.locator("#submitted")).to_contain_text("aswan")
    page.reload()
    expect(page.locator("#not-submitted")).not_to_contain_text("Aswan")

    # an announcement in two languages, published now, and its preview
    page.get_by_role("link", name="Announcements").click()
    page.get_by_role("link", name="New announcement").click()
    accessible(page)
    page.get_by_label("Id", exact=True).fill("education-day")
    page.get_by_label("Category").select_option("event")
    page.get_by_label("Language 1").fill("en")
    page.get_by_label("Title (1)").fill("International Day of Education")
    page.get_by_label("Body (1)").fill("Join us on 24 January.")
    page.get_by_label("Language 2").fill("fr")
    page.get_by_label("Title (2)").fill("Journée internationale de l'éducation")
    page.get_by_label("Body (2)").fill("Rejoignez-nous le 24 janvier.")
    page.get_by_role("button", name="Schedule announcement").click()
    expect(page.get_by_text("Announcement education-day scheduled.")).to_be_visible()
    page.get_by_label("City", exact=True).select_option("clermont-ferrand")
    page.get_by_label("Language", exact=True).select_option("fr")
    page.get_by_role("button", name="Show").click()
    expect(page.locator("#preview-text")).to_contain_text("Rejoignez-nous le 24 janvier.")
    frame = page.frame_locator("#preview iframe")
    expect(frame.locator("body")).to_contain_text("Journée internationale de l'éducation")
    accessible(page)
    page.get_by_label("Language", exact=True).select_option("en")
    page.get_by_role("button", name="Show").click()
    expect(page.locator("#preview-text")).to_contain_text("Join us on 24 January.")
    published = stack.system.api_at("GET", stack.system.services[0].url, "/v1/announcements")
    assert [a["id"] for a in published.json()] == ["education-day"]

    # partner endpoints: pause (the dashboard lists it), resume, a new secret shown once
    page.get_by_role("link", name="Endpoints").click()
    row = page.locator("tr#partner-a")
    expect(row).to_contain_text("active")
    accessible(page)
    row.get_by_role("button", name="Pause partner-a").click()
    expect(page.locator("tr#partner-a")).to_contain_text("paused")
    page.get_by_role("link", name="Dashboard").click()
    expect(page.locator("main")).to_contain_text("deadline.reminder progress-report 7d-before")
    expect(page.locator("main")).to_contain_text("partner-a")
    accessible(page)
    page.get_by_role("link", name="Endpoints").click()
    page.locator("tr#partner-a").get_by_role("button", name="Resume partner-a").click()
    expect(page.locator("tr#partner-a")).to_contain_text("active")
    page.get_by_role("button", name="Rotate secret of partner-a").click()
    expect(page.locator(".flash")).to_contain_text("whsec_")

    # the directory, and a city's form
    page.get_by_role("link", name="Directory").click()
    expect(page.locator("#city-kathmandu")).to_contain_text("Asia/Kathmandu")
    accessible(page)
    page.get_by_role("link", name="Edit Kathmandu").click()
    expect(page.get_by_label("Time zone")).to_have_value("Asia/Kathmandu")
    expect(page.locator("main")).to_contain_text("The email service does not answer")
    expect(page.get_by_role("heading", name="Recent notices")).to_be_visible()
    accessible(page)
    assert not watched.violations


def test_a_viewer_changes_nothing(stack: Stack, watched: Watched) -> None:
    system, scheduler = stack.system, stack.system.services[0]
    created = system.api_at(
        "POST",
        scheduler.url,
        "/v1/deadlines",
        json={
            "id": "viewer-sees-this",
            "title": {"en": "Survey"},
            "due_at": (datetime.now(UTC) + timedelta(days=20)).isoformat(),
            "audience": {"cities": ["kathmandu"]},
            "reminders": ["-1d"],
        },
    )
    assert created.status_code == 201, created.text
    page, url = watched.page, stack.url
    sign_in(page, url, "viewer")
    page.goto(f"{url}/deadlines/viewer-sees-this")
    expect(page.locator("#not-submitted")).to_contain_text("Kathmandu")
    expect(page.get_by_role("button", name="Record submission")).to_have_count(0)
    expect(page.get_by_role("button", name="Cancel this deadline")).to_have_count(0)
    accessible(page)
    token = page.locator('meta[name="csrf-token"]').get_attribute("content")
    answer = page.request.post(
        f"{url}/deadlines/viewer-sees-this/submissions",
        form={"csrf_token": token or "", "city_id": "kathmandu"},
        headers={"origin": url},
    )
    assert answer.status == 403
    assert "is a viewer" in answer.text()
    assert page.goto(f"{url}/deadlines/new").status == 403  # type: ignore[union-attr]
    page.goto(f"{url}/endpoints")
    expect(page.locator("tr#partner-a")).to_be_visible()
    expect(page.get_by_role("button", name="Pause partner-a")).to_have_count(0)
    paused = page.request.post(
        f"{url}/endpoints/partner-a/pause",
        form={"csrf_token": token or ""},
        headers={"origin": url},
    )
    assert paused.status == 403
    accessible(page)
    submissions = system.api_at("GET", scheduler.url, "/v1/deadlines/viewer-sees-this/submissions")
    assert submissions.json() == []
    assert not watched.violations


class _Forger(BaseHTTPRequestHandler):
    target = ""

    def do_GET(self) -> None:
        page = f"""<!doctype html><html lang="en"><title>Win a prize</title>
<form method="post" action="{self.target}/deadlines">
<input type="hidden" name="id" value="forged"><input type="hidden" name="rows" value="1">
<input type="hidden" name="lang_0" value="en"><input type="hidden" name="title_0" value="x">
<input type="hidden" name="due_local" value="{_due(30)}">
<input type="hidden" name="zone" value="UTC"><input type="hidden" name="reminders" value="0d">
<input type="hidden" name="csrf_token" value="guess">
<button>Claim</button></form></html>"""
        self.send_response(200)
        self.send_header("content-type", "text/html; charset=utf-8")
        self.end_headers()
        self.wfile.write(page.encode())

    def log_message(self, *_args: Any) -> None:
        pass


def test_a_forged_cross_site_post_is_refused(stack: Stack, watched: Watched) -> None:
    page, url = watched.page, stack.url
    sign_in(page, url, "editor")
    handler = type("Forger", (_Forger,), {"target": url})
    server = ThreadingHTTPServer(("127.0.0.1", free_port()), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        # another origin (another port) on the same site: the session cookie goes along,
        # so only the console's own checks stand between this page and a change
        page.goto(f"http://127.0.0.1:{server.server_address[1]}/")
        with page.expect_response(f"{url}/deadlines") as response:
            page.get_by_role("button", name="Claim").click()
        assert response.value.status == 403
        expect(page.get_by_role("heading", name="Not allowed")).to_be_visible()
        expect(page.locator("main")).to_contain_text("comes from another site")
    finally:
        server.shutdown()
        server.server_close()
    scheduler = stack.system.services[0]
    deadlines = stack.system.api_at("GET", scheduler.url, "/v1/deadlines").json()
    assert "forged" not in [d["id"] for d in deadlines]


# -- the partner portal ----------------------------------------------------------------------


class _PartnerForger(BaseHTTPRequestHandler):
    target = ""

    def do_GET(self) -> None:
        page = f"""<!doctype html><html lang="en"><title>Free webinar</title>
<form method="post" action="{self.target}">
<input type="hidden" name="event_type" value="deadline.reminder">
<input type="hidden" name="csrf_token" value="guess"><button>Register</button></form></html>"""
        self.send_response(200)
        self.send_header("content-type", "text/html; charset=utf-8")
        self.end_headers()
        self.wfile.write(page.encode())

    def log_message(self, *_args: Any) -> None:
        pass


def _partner_with_endpoint(stack: Stack, partner_id: str, url: str) -> tuple[str, dict[str, Any]]:
    system, webhook = stack.system, stack.system.services[1]
    made = system.api_at(
        "POST", webhook.url, "/v1/partners", json={"id": partner_id, "name": partner_id.title()}
    )
    assert made.status_code == 201, made.text
    token = str(made.json()["token"])
    endpoint = HTTP.post(
        f"{webhook.url}/v1/endpoints",
        json={"url": url, "event_types": ["deadline.reminder", "announcement.published"]},
        headers={"authorization": f"Bearer {token}"},
        timeout=10,
    )
    assert endpoint.status_code == 201, endpoint.text
    return token, dict(endpoint.json())


def test_a_partner_sees_only_its_own_endpoints_and_receives_its_test_event(
    stack: Stack, watched: Watched
) -> None:
    page, url, webhook = watched.page, stack.url, stack.system.services[1]
    hooks = Hooks()
    with serving(hooks) as receiver:
        token, mine = _partner_with_endpoint(stack, "portal-one", f"{receiver.url}/hooks/one")
        _other, theirs = _partner_with_endpoint(stack, "portal-two", f"{receiver.url}/hooks/two")
        hooks.secrets["one"] = [mine["secret"]]

        page.goto(f"{url}/partner")
        expect(page).to_have_url(f"{url}/partner/signin?next=/partner")
        accessible(page)
        page.get_by_label("API token").fill(token)
        page.get_by_role("button", name="Sign in").click()
        expect(page.get_by_role("heading", name="Your endpoints")).to_be_visible()
        page.reload()  # the browser's zone is known from the second page on
        accessible(page)
        expect(page.locator(f"tr#{mine['id']}")).to_contain_text(f"{receiver.url}/hooks/one")
        expect(page.locator(f"tr#{theirs['id']}")).to_have_count(0)
        expect(page.locator("main")).not_to_contain_text("/hooks/two")
        assert token not in page.content()
        assert page.goto(f"{url}/partner/endpoints/{theirs['id']}").status == 404  # type: ignore[union-attr]
        assert page.goto(f"{url}/endpoints").url.startswith(f"{url}/signin")  # type: ignore[union-attr]

        # a test event, signed with its secret, arrives at the partner's receiver
        page.goto(f"{url}/partner")
        page.get_by_role("link", name=mine["id"]).click()
        accessible(page)
        page.get_by_label("Event type").select_option("deadline.reminder")
        page.get_by_role("button", name="Send test event").click()
        flash = page.locator(".flash.ok")
        expect(flash).to_contain_text("Test event deadline.reminder queued")
        event_id = (flash.text_content() or "").split("webhook-id ")[1].split(")")[0]
        assert hooks.wait("one", 1, timeout=30)
        [hit] = hooks.of("one")
        assert hit.verified  # by the official standardwebhooks package, with its secret
        assert hit.webhook_id == event_id
        assert hit.event["source"] == TEST_SOURCE
        assert hit.event["data"]["deadline_id"].startswith("test-")
        assert hooks.of("two", verified=False) == []

        # its attempt, with the request and the response
        attempts = page.locator("#attempts")

        def delivered_shown() -> bool:
            page.reload()
            return "delivered" in (attempts.text_content() or "")

        eventually(
            delivered_shown,
            timeout=20,
            every=0.5,
            what="the delivered attempt on the endpoint's page",
        )
        page.get_by_role("link", name=event_id).click()
        expect(page.locator("#request-body")).to_contain_text(event_id)
        expect(page.locator("main")).to_contain_text("Attempt 1: delivered, HTTP 204")
        expect(page.locator("main")).to_contain_text("webhook-signature")
        accessible(page)

        # a new secret, shown once; replay with a field error kept in place
        page.get_by_role("link", name=f"Back to endpoint {mine['id']}").click()
        page.get_by_role("button", name="Rotate secret").click()
        expect(page.locator(".flash.ok")).to_contain_text("shown this once")
        shown = page.locator(".flash.ok li").text_content() or ""
        keys = HTTP.get(
            f"{webhook.url}/v1/endpoints/{mine['id']}/secret",
            headers={"authorization": f"Bearer {token}"},
            timeout=10,
        ).json()
        assert shown == keys["secret"] != mine["secret"]
        page.get_by_label("Since").fill("2999-01-01T09:00")
        page.get_by_role("button", name="Replay failed deliveries").click()
        expect(page.locator("#since_local-error")).to_contain_text("in the future")
        expect(page.get_by_label("Since")).to_have_value("2999-01-01T09:00")
        expect(page.get_by_label("In the time zone")).to_have_value("Europe/Paris")
        accessible(page)
        page.get_by_role("link", name="Event catalog").click()
        expect(page.locator("section#deadline\\.reminder")).to_contain_text("data.deadline_id")
        accessible(page)

        # a page on another origin posts to the portal with the partner's cookie: refused
        target = f"{url}/partner/endpoints/{mine['id']}/test"
        handler = type("PartnerForger", (_PartnerForger,), {"target": target})
        server = ThreadingHTTPServer(("127.0.0.1", free_port()), handler)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            page.goto(f"http://127.0.0.1:{server.server_address[1]}/")
            with page.expect_response(target) as response:
                page.get_by_role("button", name="Register").click()
            assert response.value.status == 403
            expect(page.locator("main")).to_contain_text("comes from another site")
        finally:
            server.shutdown()
            server.server_close()
        assert len(hooks.of("one", verified=False)) == 1  # nothing more was sent
        page.goto(f"{url}/partner")
        page.get_by_role("button", name="Sign out").click()
        expect(page.get_by_role("heading", name="Partner sign-in")).to_be_visible()


def _park_poison(stack: Stack) -> int:
    """A record on ``announcement.published`` that is no event: the webhook consumer parks
    it; returns its dead letter's id once the status service lists it."""
    system = stack.system
    marker = uuid.uuid4().hex
    value = json.dumps({"not": "an event", "marker": marker}).encode()
    topic = f"{system.prefix}announcement.published"
    # in a thread of its own: Playwright's sync API keeps an event loop running in this one
    with ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, produce(system.kafka, topic, value, key=b"x")).result()
    found = eventually(
        lambda: _dead_letter_with(stack, marker), timeout=30, what="the poison record listed"
    )
    assert found is not None
    return found


def _dead_letter_with(stack: Stack, marker: str, *, besides: int = 0) -> int | None:
    status = stack.system.services[2].url
    listed = stack.system.api_at("GET", status, "/v1/dead-letters?channel=webhook").json()
    for item in listed["items"]:
        if item["id"] == besides:
            continue
        shown = stack.system.api_at("GET", status, f"/v1/dead-letters/{item['id']}").json()
        if marker in shown["body"]:
            return int(item["id"])
    return None


def test_an_operator_follows_deliveries_and_redrives_a_dead_letter(
    stack: Stack, watched: Watched
) -> None:
    system = stack.system
    scheduler, status = system.services[0].url, system.services[2].url
    created = system.api_at(
        "POST",
        scheduler,
        "/v1/announcements",
        json={
            "id": "ops-news",
            "category": "event",
            "title": {"en": "Study visit", "fr": "Visite d'étude"},
            "body": {"en": "Mayors visit Aswan.", "fr": "Les maires visitent Assouan."},
            "audience": {"cities": ["kathmandu"]},
        },
    )
    assert created.status_code == 202, created.text
    poison = _park_poison(stack)
    eventually(
        lambda: any(
            n["channel"] == "webhook" and n["state"] == "delivered"
            for n in system.api_at("GET", status, "/v1/status/announcements/ops-news").json()[
                "items"
            ]
        ),
        timeout=30,
        what="the webhook delivery in the status view",
    )

    page, url = watched.page, stack.url
    sign_in(page, url, "editor")
    expect(page.locator("main")).to_contain_text("Deliveries of the last 24 hours")
    expect(page.locator("table.chart-table")).to_contain_text("delivered")
    expect(page.locator("main")).to_contain_text("from webhook")  # dead letters to redrive
    accessible(page)

    # the announcement's deliveries and their states, then one delivery's attempts
    page.get_by_role("link", name="Deliveries", exact=True).click()
    page.get_by_label("Event").fill("ops-news")
    page.get_by_label("Channel").select_option("webhook")
    page.get_by_role("button", name="Search").click()
    results = page.locator("main table")
    expect(results).to_contain_text("partner-a")
    expect(results).to_contain_text("delivered")
    expect(page.get_by_label("Event")).to_have_value("ops-news")
    accessible(page)
    page.get_by_role("link", name="Attempts of webhook to partner-a").click()
    expect(page.get_by_role("heading", name="Delivery: webhook to partner-a")).to_be_visible()
    attempts = page.get_by_role("table", name="Attempts")
    expect(attempts).to_contain_text("delivered · HTTP 204")
    expect(page.get_by_role("table", name="History")).to_contain_text("delivered")
    expect(page.get_by_role("button", name="Resend to partner-a")).to_be_visible()
    accessible(page)

    # the endpoint's health beside its actions
    page.get_by_role("link", name="Endpoints").click()
    expect(page.locator("tr#partner-a td.health")).to_contain_text("request(s) succeeded")

    # the poison record: listed with its reason, redriven, back as a new one
    page.get_by_role("link", name="Dead letters", exact=True).click()
    row = page.locator(f"tr#dl-{poison}")
    expect(row).to_contain_text("invalid event")
    expect(row).to_contain_text("parked")
    accessible(page)
    row.get_by_role("button", name=f"Redrive dead letter {poison}").click()
    expect(page.locator(".flash.ok")).to_contain_text(f"Dead letter {poison} redriven")
    expect(page.locator(f"tr#dl-{poison}")).to_contain_text("redriven")
    expect(page.locator(f"tr#dl-{poison}")).to_contain_text("by console:editor")
    marker = json.loads(system.api_at("GET", status, f"/v1/dead-letters/{poison}").json()["body"])[
        "marker"
    ]
    again = eventually(
        lambda: _dead_letter_with(stack, marker, besides=poison),
        timeout=30,
        what="the redriven record parked again",
    )
    page.goto(f"{url}/dead-letters/{again}")
    expect(page.locator("main")).to_contain_text(marker)
    accessible(page)
    assert not watched.violations


def test_a_viewer_cannot_redrive(stack: Stack, watched: Watched) -> None:
    poison = _park_poison(stack)
    page, url = watched.page, stack.url
    sign_in(page, url, "viewer")
    page.goto(f"{url}/dead-letters")
    expect(page.locator(f"tr#dl-{poison}")).to_contain_text("invalid event")
    expect(page.get_by_role("button", name="Redrive")).to_have_count(0)
    token = page.locator('meta[name="csrf-token"]').get_attribute("content")
    for path in (f"/dead-letters/{poison}/redrive", "/dead-letters/redrive"):
        refused = page.request.post(
            f"{url}{path}", form={"csrf_token": token or ""}, headers={"origin": url}
        )
        assert refused.status == 403
        assert "is a viewer" in refused.text()
    status = stack.system.services[2].url
    shown = stack.system.api_at("GET", status, f"/v1/dead-letters/{poison}").json()
    assert shown["redriven_at"] is None
    assert not watched.violations
