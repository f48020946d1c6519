"""Pictures of the operator console's and the partner portal's main pages for the README:
the scheduler, the email, webhook and status services and the console as child processes
on free ports (on the broker of ``KAFKA_BOOTSTRAP_SERVERS``), a mailbox and a webhook
receiver in process, a sample deadline and announcements (one sent now, so there are
deliveries), a poison record (so there are dead letters), a sample partner whose test
events reach a receiver on loopback, and headless Chromium (Debian's, driven by
Playwright, a development dependency) photographing each page.

``deploy/screenshots.sh`` runs it (``python -m gnlc_devtools.console_shots DIR``) inside
``deploy/with-services.sh --scratch``."""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import yaml
from aiokafka import AIOKafkaProducer

from gnlc_devtools.local import ADD_USER_OPTIONS, Children, _http_ready, any_free_port
from gnlc_devtools.mailbox import LocalMailbox
from gnlc_devtools.receiver import BackgroundServer, Inbox, receiver_app
from gnlc_email.preview import chromium
from gnlc_webhook.partners import new_secret

USER = "secretariat"
CITIES = ["kathmandu", "aswan", "clermont-ferrand", "medellin", "hamilton"]
PARTNER = "lifelong-institute"


@dataclass(frozen=True)
class PartnerSample:
    token: str
    endpoint: str
    event: str


def _wait(
    check: Callable[[], bool], name: str, children: Children, logs: Path, timeout: float = 90
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        dead = children.dead()
        if dead:
            name = dead[0]  # the log that says why
            break
        time.sleep(0.3)
    tail = (logs / f"{name}.log").read_text(errors="replace").splitlines()[-15:]
    raise SystemExit(f"{name} did not become ready:\n" + "\n".join(tail))


def _samples(api: httpx.Client, now: datetime) -> None:
    due = (now + timedelta(days=9)).replace(hour=22, minute=59, second=0, microsecond=0)
    answers = [
        api.post(
            "/v1/deadlines",
            json={
                "id": "progress-report-2027",
                "title": {
                    "en": "Biennial progress report",
                    "fr": "Rapport d'étape biennal",
                    "es": "Informe bienal de progreso",
                },
                "description": {"en": "Please submit your city's biennial progress report."},
                "due_at": due.isoformat(),
                "audience": {"cities": CITIES},
                "reminders": ["-30d", "-7d", "-1d", "-20h", "0d", "+3d"],
                "link": "https://example.org/gnlc/report",
            },
        ),
        api.post(
            "/v1/deadlines/progress-report-2027/submissions", json={"city_id": "clermont-ferrand"}
        ),
        api.post(
            "/v1/announcements",
            json={
                "id": "education-day",
                "category": "event",
                "title": {
                    "en": "International Day of Education",
                    "fr": "Journée internationale de l'éducation",
                    "ar": "اليوم الدولي للتعليم",
                },
                "body": {
                    "en": "Join us on 24 January.\n\nProgrammes and registration below.",
                    "fr": "Rejoignez-nous le 24 janvier.\n\nProgramme et inscription ci-dessous.",
                    "ar": "انضموا إلينا في 24 يناير.",
                },
                "audience": {"all_members": True},
                "publish_at": (now + timedelta(days=2)).isoformat(),
                "link": "https://example.org/gnlc/education-day",
            },
        ),
    ]
    for answer in answers:
        if answer.status_code >= 300:
            raise SystemExit(f"sample refused ({answer.status_code}): {answer.text}")


def _sent_now(api: httpx.Client) -> None:
    """An announcement published now: deliveries for the deliveries page and the chart."""
    answer = api.post(
        "/v1/announcements",
        json={
            "id": "study-visit",
            "category": "event",
            "title": {"en": "Mayors' study visit", "fr": "Visite d'étude des maires"},
            "body": {"en": "Mayors visit Aswan in March.", "fr": "Les maires visitent Assouan."},
            "audience": {"cities": CITIES},
        },
    )
    if answer.status_code >= 300:
        raise SystemExit(f"sample refused ({answer.status_code}): {answer.text}")


async def _poison(bootstrap: str, topic: str) -> None:
    """A record that is no event: the email and webhook consumers each park it."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap.split(","))
    await producer.start()
    try:
        value = json.dumps({"type": "announcement.published", "data": {"title": None}})
        await producer.send_and_wait(topic, value.encode(), key=b"broken")
    finally:
        await producer.stop()


def _settled(status: httpx.Client) -> bool:
    """The deliveries and the dead letters have reached the status view."""
    notices = status.get("/v1/status/announcements/study-visit").json().get("items", [])
    channels = {n["channel"] for n in notices if n["state"] != "scheduled"}
    dead = status.get("/v1/dead-letters").json().get("total", 0)
    return {"email", "webhook"} <= channels and dead >= 2


def _partners(path: Path, receiver: str, secret: str) -> None:
    """Two endpoints on the local receiver: one it verifies, one it refuses (401)."""
    common = {"event_types": ["deadline.reminder", "announcement.published"], "secret": secret}
    path.write_text(
        yaml.safe_dump(
            {
                "endpoints": [
                    {
                        "id": "city-portal",
                        "partner": "learning-portal",
                        "url": f"{receiver}/hooks/city-portal",
                        **common,
                    },
                    {
                        "id": "regional-site",
                        "partner": "regional-network",
                        "url": f"{receiver}/hooks/regional-site",
                        **common,
                    },
                ]
            }
        )
    )


@contextmanager
def _partner_samples(webhooks: httpx.Client) -> Iterator[PartnerSample]:
    """A partner with two endpoints on a receiver on loopback (one verifies its deliveries,
    one refuses them) and test events to both, delivered or retried by the time it yields."""
    made = webhooks.post(
        "/v1/partners", json={"id": PARTNER, "name": "Lifelong Learning Institute"}
    )
    token = made.json()["token"]
    receiver = any_free_port()
    mine = {"authorization": f"Bearer {token}"}
    endpoints = [
        webhooks.post(
            "/v1/endpoints",
            headers=mine,
            json={
                "url": f"http://127.0.0.1:{receiver}/hooks/{name}",
                "event_types": ["deadline.reminder", "announcement.published"],
                "description": description,
            },
        ).json()
        for name, description in (
            ("portal", "the institute's portal"),
            ("intranet", "the staff intranet (refuses: wrong secret)"),
        )
    ]
    app = receiver_app({"portal": [endpoints[0]["secret"]]}, Inbox())
    with BackgroundServer(app, port=receiver):
        sent = [
            webhooks.post(
                f"/v1/endpoints/{endpoint['id']}/test", headers=mine, json={"event_type": kind}
            ).json()["event_id"]
            for endpoint in endpoints
            for kind in ("deadline.reminder", "announcement.published")
        ]
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            log = webhooks.get(f"/v1/endpoints/{endpoints[1]['id']}/attempts", headers=mine)
            if len(log.json()) >= 2:
                break
            time.sleep(0.5)
        yield PartnerSample(token, endpoints[0]["id"], sent[0])


def _photograph_portal(browser: Any, console: str, sample: PartnerSample, out: Path) -> list[Path]:
    pictures: list[Path] = []
    context = browser.new_context(
        viewport={"width": 1200, "height": 800}, timezone_id="Africa/Nairobi", locale="en-GB"
    )
    page = context.new_page()

    def shot(name: str, full: bool = True) -> None:
        path = out / f"portal-{name}.png"
        page.screenshot(path=str(path), full_page=full)
        pictures.append(path)

    page.goto(f"{console}/partner/signin")
    shot("signin", full=False)
    page.get_by_label("API token").fill(sample.token)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("heading", name="Your endpoints").wait_for()
    page.reload()  # the browser's zone is known from the second page on
    shot("endpoints", full=False)
    page.goto(f"{console}/partner/endpoints/{sample.endpoint}")
    shot("endpoint")
    page.goto(f"{console}/partner/endpoints/{sample.endpoint}/events/{sample.event}")
    shot("event")
    page.goto(f"{console}/partner/events")
    shot("catalog", full=False)
    page.set_viewport_size({"width": 375, "height": 800})
    page.goto(f"{console}/partner/endpoints/{sample.endpoint}")
    shot("endpoint-phone", full=False)
    context.close()
    return pictures


def _photograph(
    console: str, password: str, out: Path, partner: PartnerSample | None = None
) -> list[Path]:
    from playwright.sync_api import sync_playwright  # a development dependency

    pictures: list[Path] = []
    with sync_playwright() as playwright:
        args = ["--no-sandbox"] if os.geteuid() == 0 else []
        browser = playwright.chromium.launch(executable_path=chromium(), args=args)
        context = browser.new_context(
            viewport={"width": 1200, "height": 800}, timezone_id="Europe/Paris", locale="en-GB"
        )
        page = context.new_page()

        def shot(name: str, full: bool = True) -> None:
            path = out / f"console-{name}.png"
            page.screenshot(path=str(path), full_page=full)
            pictures.append(path)

        page.goto(f"{console}/signin")
        shot("signin", full=False)
        page.get_by_label("Name").fill(USER)
        page.get_by_label("Password").fill(password)
        page.get_by_role("button", name="Sign in").click()
        page.get_by_role("heading", name="Dashboard").wait_for()
        page.reload()  # the browser's zone is known from the second page on
        shot("dashboard")
        page.goto(f"{console}/deadlines/progress-report-2027")
        shot("deadline")
        page.goto(f"{console}/deadlines/new")
        page.get_by_label("Id", exact=True).fill("Award 2027")
        page.get_by_label("Title (1)").fill("Learning City Award: applications")
        page.get_by_label("Steps").fill("-7d -1w")
        page.get_by_role("button", name="Create deadline").click()
        page.locator("#form-errors").wait_for()
        shot("deadline-form-errors")
        page.goto(f"{console}/announcements/education-day?city=aswan&language=ar")
        page.frame_locator("#preview iframe").locator("body").wait_for()
        shot("announcement-preview")
        page.goto(f"{console}/deliveries?event=study-visit")
        shot("deliveries")
        page.goto(f"{console}/deliveries?event=study-visit&channel=webhook")
        page.get_by_role("link", name="Attempts of webhook to city-portal").click()
        page.get_by_role("heading", name="Delivery: webhook to city-portal").wait_for()
        shot("delivery-attempts")
        page.goto(f"{console}/dead-letters")
        shot("dead-letters")
        page.locator("main table a").first.click()
        page.get_by_role("heading", name="Body").wait_for()
        shot("dead-letter")
        page.goto(f"{console}/endpoints")
        shot("endpoints")
        page.set_viewport_size({"width": 375, "height": 800})
        page.goto(f"{console}/deadlines/progress-report-2027")
        shot("deadline-phone", full=False)
        if partner is not None:
            pictures.extend(_photograph_portal(browser, console, partner, out))
        browser.close()
    return pictures


def main(argv: list[str]) -> int:
    out = Path(argv[0] if argv else "docs/screenshots")
    out.mkdir(parents=True, exist_ok=True)
    token, password = secrets.token_urlsafe(24), secrets.token_urlsafe(12)
    ports = {
        name: any_free_port() for name in ("scheduler", "email", "webhook", "status", "console")
    }
    secret = new_secret()
    with (
        tempfile.TemporaryDirectory() as tmp,
        LocalMailbox() as mailbox,
        BackgroundServer(receiver_app({"city-portal": [secret]}, Inbox())) as receiver,
    ):
        state = Path(tmp)
        _partners(state / "partners.yaml", receiver.url, secret)
        prefix = f"shots{uuid.uuid4().hex[:8]}."
        env: dict[str, Any] = {
            **os.environ,
            "GNLC_TOPIC_PREFIX": prefix,
            "GNLC_OPERATOR_TOKEN": token,
            "GNLC_STATE_DIR": str(state),
            "GNLC_SCHEDULER_PORT": str(ports["scheduler"]),
            "GNLC_WEBHOOK_PORT": str(ports["webhook"]),
            "GNLC_EMAIL_PORT": str(ports["email"]),
            "GNLC_STATUS_PORT": str(ports["status"]),
            "GNLC_SMTP_HOST": "127.0.0.1",
            "GNLC_SMTP_PORT": str(mailbox.port),
            "GNLC_PARTNERS_PATH": str(state / "partners.yaml"),
            "GNLC_WEBHOOK_ALLOWED_NETWORKS": "127.0.0.0/8",
            "GNLC_STATUS_WEBHOOK_API_URL": f"http://127.0.0.1:{ports['webhook']}",
            "GNLC_CONSOLE_STATUS_URL": f"http://127.0.0.1:{ports['status']}",
            "GNLC_CONSOLE_EMAIL_URL": f"http://127.0.0.1:{ports['email']}",
            "GNLC_CONSOLE_PORT": str(ports["console"]),
            "GNLC_CONSOLE_SCHEDULER_URL": f"http://127.0.0.1:{ports['scheduler']}",
            "GNLC_CONSOLE_WEBHOOK_URL": f"http://127.0.0.1:{ports['webhook']}",
            "GNLC_CONSOLE_COOKIE_SECURE": "false",
        }
        env.pop("GNLC_DATABASE_URL", None)
        subprocess.run(  # noqa: S603 - our own interpreter and module
            [sys.executable, "-m", "gnlc_console", "add-user", USER, *ADD_USER_OPTIONS],
            input=f"{password}\n",
            env=env,
            check=True,
            capture_output=True,
            text=True,
        )
        logs = state / "logs"
        children = Children(logs)
        try:
            for name in ports:
                children.start(name, ["-m", f"gnlc_{name}"], env)
            for name, port in ports.items():
                _wait(_http_ready(f"http://127.0.0.1:{port}/health/ready"), name, children, logs)
            scheduler = f"http://127.0.0.1:{ports['scheduler']}"
            with httpx.Client(
                base_url=scheduler, headers={"authorization": f"Bearer {token}"}, timeout=30
            ) as api:
                _samples(api, datetime.now(UTC))
                _sent_now(api)
            bootstrap = env.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:19092")
            asyncio.run(_poison(bootstrap, f"{prefix}announcement.published"))
            with httpx.Client(
                base_url=f"http://127.0.0.1:{ports['status']}",
                headers={"authorization": f"Bearer {token}"},
                timeout=30,
            ) as status:
                _wait(lambda: _settled(status), "status", children, logs, timeout=60)
            with (
                httpx.Client(
                    base_url=f"http://127.0.0.1:{ports['webhook']}",
                    headers={"authorization": f"Bearer {token}"},
                    timeout=30,
                ) as webhooks,
                _partner_samples(webhooks) as partner,
            ):
                console = f"http://127.0.0.1:{ports['console']}"
                for picture in _photograph(console, password, out, partner):
                    print(picture)
        finally:
            children.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
