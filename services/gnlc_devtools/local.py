"""The whole system on one machine: mailbox, webhook receiver and the three services as
child processes, a demo deadline and announcement, and a live view of what lands where."""

from __future__ import annotations

import json
import mailbox
import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import httpx
import yaml

from gnlc_webhook.partners import new_secret

RECEIVER_PORT = 8090
MAILBOX_PORT = 8025
DEMO_CITIES = ("kathmandu", "clermont-ferrand", "medellin", "aswan")


def _write_yaml(path: Path, data: dict[str, Any]) -> None:
    path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")


def prepare(state: Path, now: datetime) -> dict[str, str]:
    """Write the local config (partner endpoint with a fresh secret, a demo deadline) and
    return the services' environment."""
    state.mkdir(parents=True, exist_ok=True)
    partners = state / "partners.yaml"
    _write_yaml(
        partners,
        {
            "endpoints": [
                {
                    "id": "demo-partner",
                    "partner": "demo-institute",
                    "url": f"http://127.0.0.1:{RECEIVER_PORT}/hooks/demo-partner",
                    "event_types": ["deadline.reminder", "announcement.published"],
                    "secret": new_secret(),
                    "description": "the local webhook receiver",
                }
            ]
        },
    )
    due = (now + timedelta(seconds=75)).replace(microsecond=0)
    deadlines = state / "deadlines.yaml"
    _write_yaml(
        deadlines,
        {
            "deadlines": [
                {
                    "id": f"demo-report-{now:%H%M%S}",
                    "title": {
                        "en": "Biennial progress report",
                        "fr": "Rapport d'étape biennal",
                        "es": "Informe bienal de progreso",
                    },
                    "description": {
                        "en": "Please submit your city's biennial progress report.",
                    },
                    "due_at": due.isoformat(),
                    "audience": {"cities": list(DEMO_CITIES)},
                    "reminders": ["-60s", "0d"],
                    "delivery_hour": None,
                    "link": "https://example.org/gnlc/report",
                }
            ]
        },
    )
    env = dict(os.environ)
    env.update(
        {
            "GNLC_PARTNERS_PATH": str(partners),
            "GNLC_DEADLINES_PATH": str(deadlines),
            "GNLC_SMTP_PORT": str(MAILBOX_PORT),
            "GNLC_OPERATOR_TOKEN": env.get("GNLC_OPERATOR_TOKEN") or secrets.token_urlsafe(24),
            "GNLC_LOG_FORMAT": "json",
            # the local receiver is on loopback, which the webhook SSRF guard refuses
            "GNLC_WEBHOOK_ALLOWED_NETWORKS": "127.0.0.0/8,::1/128",
        }
    )
    return env


class Children:
    """Child processes that are all stopped together."""

    def __init__(self, logs: Path) -> None:
        self._logs = logs
        self._procs: dict[str, subprocess.Popen[bytes]] = {}
        logs.mkdir(parents=True, exist_ok=True)

    def start(self, name: str, args: list[str], env: dict[str, str]) -> None:
        log = (self._logs / f"{name}.log").open("ab")
        self._procs[name] = subprocess.Popen(  # noqa: S603 - our own interpreter and modules
            [sys.executable, *args], env=env, stdout=log, stderr=subprocess.STDOUT
        )

    def dead(self) -> list[str]:
        return [name for name, proc in self._procs.items() if proc.poll() is not None]

    def stop(self) -> None:
        for proc in self._procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 20
        for proc in self._procs.values():
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def _wait_ready(url: str, timeout: float, children: Children) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not children.dead():
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return True
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    return False


def _summary(message: EmailMessage) -> str:
    return f"  to {message['To']}\n  subject: {message['Subject']}"


def up(
    root: Path, *, exit_after_mail: int = 0, timeout: float = 0, out: Callable[[str], None] = print
) -> int:
    """Run everything until Ctrl-C (or until ``exit_after_mail`` mails and a webhook landed,
    or ``timeout`` seconds passed). Returns a process exit code."""
    state = root / ".local"
    maildir = state / "mailbox"
    received = state / "webhooks" / "received.jsonl"
    received.parent.mkdir(parents=True, exist_ok=True)
    received.unlink(missing_ok=True)
    env = prepare(state, datetime.now(UTC))
    children = Children(state / "logs")
    stopping = False

    def _stop(*_: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    try:
        children.start(
            "mailbox",
            ["-m", "gnlc_devtools.mailbox", "--port", str(MAILBOX_PORT), "--dir", str(maildir)],
            env,
        )
        children.start(
            "receiver",
            [
                "-m",
                "gnlc_devtools.receiver",
                "--port",
                str(RECEIVER_PORT),
                "--partners",
                env["GNLC_PARTNERS_PATH"],
                "--out",
                str(received),
            ],
            env,
        )
        for service in ("scheduler", "email", "webhook"):
            children.start(service, ["-m", f"gnlc_{service}"], env)
        for service, port in (("scheduler", 8100), ("email", 8101), ("webhook", 8102)):
            if not _wait_ready(f"http://127.0.0.1:{port}/health/ready", 60, children):
                out(f"{service} did not become ready; see {state / 'logs' / service}.log")
                return 1
        out("GNLC Notify is running locally:")
        out("  scheduler  http://127.0.0.1:8100/docs (operator token in GNLC_OPERATOR_TOKEN)")
        out(f"  mailbox    SMTP 127.0.0.1:{MAILBOX_PORT}, messages in {maildir / 'new'}")
        out(f"  webhooks   http://127.0.0.1:{RECEIVER_PORT}/received, log {received}")
        out(f"  logs       {state / 'logs'}")
        out("A demo deadline sends its first reminder in about 15 s. Ctrl-C stops everything.")
        return _watch(maildir, received, children, exit_after_mail, timeout, lambda: stopping, out)
    finally:
        children.stop()
        out("stopped.")


def _watch(
    maildir: Path,
    received: Path,
    children: Children,
    exit_after_mail: int,
    timeout: float,
    stopping: Callable[[], bool],
    out: Callable[[str], None],
) -> int:
    box = mailbox.Maildir(maildir, create=True)
    seen_mail = set(box.keys())
    new_mail = 0
    seen_hooks = 0
    started = time.monotonic()
    while not stopping():
        for key in sorted(set(box.keys()) - seen_mail):
            seen_mail.add(key)
            message = message_from_bytes(box.get_bytes(key), policy=policy.default)
            assert isinstance(message, EmailMessage)
            new_mail += 1
            out(f"mail #{new_mail} landed in the mailbox:\n{_summary(message)}")
            if new_mail == 1:
                body = message.get_body(preferencelist=("plain",))
                text = body.get_content() if body is not None else ""
                out("  ---- rendered text part ----")
                out("\n".join(f"  | {line}" for line in text.splitlines()))
                out("  ----------------------------")
        if received.exists():
            lines = received.read_text(encoding="utf-8").splitlines()
            for line in lines[seen_hooks:]:
                item = json.loads(line)
                state = "signature verified" if item["verified"] else "SIGNATURE REJECTED"
                out(
                    f"webhook to {item['endpoint']}: {item['event'].get('type', '?')} "
                    f"id={item['webhook_id']} ({state})"
                )
            seen_hooks = len(lines)
        if dead := children.dead():
            out(f"stopped unexpectedly: {', '.join(dead)} (see .local/logs)")
            return 1
        if exit_after_mail and new_mail >= exit_after_mail and seen_hooks:
            return 0
        if timeout and time.monotonic() - started > timeout:
            out("timed out waiting for mail")
            return 1
        time.sleep(0.5)
    return 0
