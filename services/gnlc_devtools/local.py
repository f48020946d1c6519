"""The whole system on one machine: mailbox, webhook receiver, the services (scheduler,
email, webhook, status) and the operator console as child processes, a demo deadline, and a
live view of what lands where.

Every port can be set (``GNLC_SCHEDULER_PORT``, ``GNLC_EMAIL_PORT``, ``GNLC_WEBHOOK_PORT``,
``GNLC_STATUS_PORT``, ``GNLC_MAILBOX_PORT``, ``GNLC_RECEIVER_PORT``, ``GNLC_CONSOLE_PORT``); an
unset one is its usual port when that is free, else any free port, and the banner says which.
Children run in sessions of their own, so Ctrl-C reaches only this runner, which stops them
all (SIGTERM to each process group, SIGKILL after a timeout); SIGTERM to the runner does the
same.
"""

from __future__ import annotations

import contextlib
import json
import mailbox
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import httpx
import yaml

from gnlc_webhook.partners import new_secret

DEMO_CITIES = ("kathmandu", "clermont-ferrand", "medellin", "aswan")
DEMO_LEAD_SECONDS = 75  # the demo deadline is due this long after the services are ready
DEMO_PLAN = ("-60s", "0d")  # so its first reminder goes out about 15 s after the banner
STOP_TIMEOUT_SECONDS = 20.0
TOKEN_FILE = Path("operator-token")
#: The partner of the demo endpoint; the banner gives it a token for the partner portal.
DEMO_PARTNER = "demo-institute"
#: The console account the run command makes (an editor, with a new password each run).
CONSOLE_USER = "local"
ADD_USER_OPTIONS = ("--role", "editor", "--password-stdin")


@dataclass(frozen=True)
class Ports:
    scheduler: int
    email: int
    webhook: int
    mailbox: int
    receiver: int
    console: int = 8103
    status: int = 8104


PORT_SETTINGS: dict[str, tuple[str, int]] = {
    "scheduler": ("GNLC_SCHEDULER_PORT", 8100),
    "email": ("GNLC_EMAIL_PORT", 8101),
    "webhook": ("GNLC_WEBHOOK_PORT", 8102),
    "mailbox": ("GNLC_MAILBOX_PORT", 8025),
    "receiver": ("GNLC_RECEIVER_PORT", 8090),
    "console": ("GNLC_CONSOLE_PORT", 8103),
    "status": ("GNLC_STATUS_PORT", 8104),
}


def choose_ports(
    env: Mapping[str, str], is_free: Callable[[int], bool], any_free: Callable[[], int]
) -> Ports:
    """A port set in the environment is used as it is; an unset one is the usual port if
    free, else any free port. Raises ValueError naming a setting that is not a port."""
    chosen: dict[str, int] = {}
    for name, (variable, usual) in PORT_SETTINGS.items():
        given = env.get(variable, "").strip()
        if given:
            if not given.isdigit() or not 0 < int(given) < 65536:
                raise ValueError(f"{variable}={given!r} is not a port number (1-65535)")
            chosen[name] = int(given)
            continue
        port = usual
        if port in chosen.values() or not is_free(port):
            port = any_free()
            while port in chosen.values():
                port = any_free()
        chosen[name] = port
    ports = list(chosen.values())
    if len(set(ports)) != len(ports):
        raise ValueError(f"two services on one port: {chosen}")
    return Ports(**chosen)


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as sock:
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def any_free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def write_token(path: Path, token: str) -> None:
    """The operator token, readable by its owner only (the CLI reads it)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        handle.write(token + "\n")
    path.chmod(0o600)


def fresh_maildir(maildir: Path) -> None:
    """Start from an empty mailbox, so everything in it is from this run (the last run's
    mail is kept beside it, in ``mailbox.previous``)."""
    if maildir.exists():
        previous = maildir.with_name(maildir.name + ".previous")
        shutil.rmtree(previous, ignore_errors=True)
        maildir.rename(previous)
    mailbox.Maildir(maildir, create=True)


def _write_yaml(path: Path, data: dict[str, Any]) -> None:
    path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")


def prepare(state: Path, ports: Ports, environ: Mapping[str, str]) -> dict[str, str]:
    """Write the local config (a partner endpoint with a fresh secret) and the operator
    token; return the services' environment."""
    state.mkdir(parents=True, exist_ok=True)
    partners = state / "partners.yaml"
    _write_yaml(
        partners,
        {
            "endpoints": [
                {
                    "id": "demo-partner",
                    "partner": DEMO_PARTNER,
                    "url": f"http://127.0.0.1:{ports.receiver}/hooks/demo-partner",
                    "event_types": ["deadline.reminder", "announcement.published"],
                    "secret": new_secret(),
                    "description": "the local webhook receiver",
                }
            ]
        },
    )
    env = dict(environ)
    env.pop("GNLC_DEADLINES_PATH", None)
    token = env.get("GNLC_OPERATOR_TOKEN") or secrets.token_urlsafe(24)
    write_token(state / TOKEN_FILE, token)
    env.update(
        {
            "GNLC_PARTNERS_PATH": str(partners),
            "GNLC_SMTP_HOST": "127.0.0.1",
            "GNLC_SMTP_PORT": str(ports.mailbox),
            "GNLC_SCHEDULER_PORT": str(ports.scheduler),
            "GNLC_EMAIL_PORT": str(ports.email),
            "GNLC_WEBHOOK_PORT": str(ports.webhook),
            "GNLC_CONSOLE_PORT": str(ports.console),
            "GNLC_CONSOLE_SCHEDULER_URL": f"http://127.0.0.1:{ports.scheduler}",
            "GNLC_CONSOLE_WEBHOOK_URL": f"http://127.0.0.1:{ports.webhook}",
            "GNLC_CONSOLE_STATUS_URL": f"http://127.0.0.1:{ports.status}",
            "GNLC_CONSOLE_EMAIL_URL": f"http://127.0.0.1:{ports.email}",
            # plain http on loopback: the local run's console cookie cannot be Secure
            "GNLC_CONSOLE_COOKIE_SECURE": "false",
            "GNLC_STATUS_PORT": str(ports.status),
            "GNLC_STATUS_WEBHOOK_API_URL": f"http://127.0.0.1:{ports.webhook}",
            "GNLC_OPERATOR_TOKEN": token,
            "GNLC_LOG_FORMAT": "json",
            # the local receiver is on loopback, which the webhook SSRF guard refuses
            "GNLC_WEBHOOK_ALLOWED_NETWORKS": "127.0.0.0/8,::1/128",
        }
    )
    env.setdefault("GNLC_EMAIL_PUBLIC_URL", f"http://127.0.0.1:{ports.email}")
    # the bounce loop on loopback: VERP return paths signed with a secret made for this run,
    # and the inbound listener for DSNs and complaints on a free port
    env.setdefault("GNLC_BOUNCE_DOMAIN", "bounces.localhost")
    env.setdefault("GNLC_BOUNCE_SECRETS", json.dumps([secrets.token_urlsafe(32)]))
    env.setdefault("GNLC_BOUNCE_SMTP_PORT", str(any_free_port()))
    return env


def demo_deadline(now: datetime) -> dict[str, Any]:
    due = (now + timedelta(seconds=DEMO_LEAD_SECONDS)).replace(microsecond=0)
    return {
        "id": f"demo-report-{now:%H%M%S}",
        "title": {
            "en": "Biennial progress report",
            "fr": "Rapport d'étape biennal",
            "es": "Informe bienal de progreso",
        },
        "description": {
            "en": "Please submit your city's biennial progress report.",
            "fr": "Merci de soumettre le rapport d'étape biennal de votre ville.",
            "es": "Envíe el informe bienal de progreso de su ciudad.",
        },
        "due_at": due.isoformat(),
        "audience": {"cities": list(DEMO_CITIES)},
        "reminders": list(DEMO_PLAN),
        "delivery_hour": None,
        "link": "https://example.org/gnlc/report",
    }


def first_reminder(deadline: Mapping[str, Any], answer: Mapping[str, Any] | None) -> datetime:
    """When the demo deadline's first reminder goes out: the earliest step the scheduler
    planned, else the due moment plus the plan's earliest offset."""
    planned = [
        datetime.fromisoformat(str(step["fire_at"]))
        for step in (answer or {}).get("scheduled") or []
        if step.get("fire_at")
    ]
    if planned:
        earliest = min(p if p.tzinfo else p.replace(tzinfo=UTC) for p in planned)
        return earliest.astimezone(UTC)
    due = datetime.fromisoformat(str(deadline["due_at"]))
    return (due - timedelta(seconds=60)).astimezone(UTC)


class Children:
    """Child processes, each in a session (and process group) of its own, stopped
    together: SIGTERM to every group, then SIGKILL to what is left after a timeout."""

    def __init__(self, logs: Path, stop_timeout: float = STOP_TIMEOUT_SECONDS) -> None:
        self._logs = logs
        self._stop_timeout = stop_timeout
        self._procs: dict[str, subprocess.Popen[bytes]] = {}
        logs.mkdir(parents=True, exist_ok=True)

    def start(self, name: str, args: list[str], env: dict[str, str]) -> None:
        with (self._logs / f"{name}.log").open("ab") as log:
            self._procs[name] = subprocess.Popen(  # noqa: S603 - our own interpreter and modules
                [sys.executable, *args],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,  # Ctrl-C in the terminal reaches the runner only
            )

    def dead(self) -> list[str]:
        return [name for name, proc in self._procs.items() if proc.poll() is not None]

    def _signal_groups(self, sig: signal.Signals) -> None:
        for proc in self._procs.values():
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, sig)  # the child's whole group: workers included

    def stop(self) -> None:
        self._signal_groups(signal.SIGTERM)
        deadline = time.monotonic() + self._stop_timeout
        for proc in self._procs.values():
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        self._signal_groups(signal.SIGKILL)
        for proc in self._procs.values():
            proc.wait()


def _wait(
    check: Callable[[], bool], timeout: float, children: Children, stopping: Callable[[], bool]
) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not children.dead() and not stopping():
        if check():
            return True
        time.sleep(0.3)
    return False


def _http_ready(url: str) -> Callable[[], bool]:
    def check() -> bool:
        try:
            return httpx.get(url, timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    return check


def _listening(port: int) -> Callable[[], bool]:
    def check() -> bool:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return True
        except OSError:
            return False

    return check


def _summary(message: EmailMessage) -> str:
    return f"  to {message['To']}\n  subject: {message['Subject']}"


def _say(text: str) -> None:
    print(text, flush=True)


def _local_time(moment: datetime) -> str:
    return moment.astimezone().strftime("%H:%M:%S %Z")


def up(
    root: Path, *, exit_after_mail: int = 0, timeout: float = 0, out: Callable[[str], None] = _say
) -> int:
    """Run everything until Ctrl-C or SIGTERM (or until ``exit_after_mail`` mails and a
    webhook landed, or ``timeout`` seconds passed). Returns a process exit code."""
    state = root / ".local"
    maildir = state / "mailbox"
    received = state / "webhooks" / "received.jsonl"
    try:
        ports = choose_ports(os.environ, port_is_free, any_free_port)
    except ValueError as exc:
        out(f"error: {exc}")
        return 2
    stopping = False

    def _stop(*_: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    received.parent.mkdir(parents=True, exist_ok=True)
    received.unlink(missing_ok=True)
    fresh_maildir(maildir)
    env = prepare(state, ports, os.environ)
    children = Children(state / "logs")
    try:
        children.start(
            "mailbox",
            ["-m", "gnlc_devtools.mailbox", "--port", str(ports.mailbox), "--dir", str(maildir)],
            env,
        )
        children.start(
            "receiver",
            [
                "-m",
                "gnlc_devtools.receiver",
                "--port",
                str(ports.receiver),
                "--partners",
                env["GNLC_PARTNERS_PATH"],
                "--out",
                str(received),
            ],
            env,
        )
        for name, port in (("mailbox", ports.mailbox), ("receiver", ports.receiver)):
            if not _wait(_listening(port), 30, children, lambda: stopping):
                return 0 if stopping else _failed(out, name, state)
        password = secrets.token_urlsafe(12)
        for service in ("scheduler", "email", "webhook", "status", "console"):
            service_env = dict(env)
            if "GNLC_DATABASE_URL" not in os.environ:  # this run's own state, under root
                (state / "state").mkdir(exist_ok=True)
                service_env["GNLC_DATABASE_URL"] = (
                    f"sqlite+aiosqlite:///{state / 'state' / service}.db"
                )
            if service == "console" and not _console_account(service_env, password, out):
                return 1
            children.start(service, ["-m", f"gnlc_{service}"], service_env)
        for service, port in (
            ("scheduler", ports.scheduler),
            ("email", ports.email),
            ("webhook", ports.webhook),
            ("status", ports.status),
            ("console", ports.console),
        ):
            url = f"http://127.0.0.1:{port}/health/ready"
            if not _wait(_http_ready(url), 90, children, lambda: stopping):
                return 0 if stopping else _failed(out, service, state)
        deadline = demo_deadline(datetime.now(UTC))
        answer = _create_demo(ports.scheduler, env["GNLC_OPERATOR_TOKEN"], deadline, out)
        if answer is None:
            return 1
        first = first_reminder(deadline, answer)
        partner_token = _partner_token(ports.webhook, env["GNLC_OPERATOR_TOKEN"], out)
        _banner(
            out,
            state,
            ports,
            env["GNLC_OPERATOR_TOKEN"],
            maildir,
            received,
            first,
            password,
            partner_token=partner_token,
        )
        return _watch(maildir, received, children, exit_after_mail, timeout, lambda: stopping, out)
    finally:
        out("stopping ...")
        children.stop()
        out("stopped.")


def _console_account(env: dict[str, str], password: str, out: Callable[[str], None]) -> bool:
    """The local run's console account (an editor), with this run's password."""
    done = subprocess.run(  # noqa: S603 - our own interpreter and module
        [sys.executable, "-m", "gnlc_console", "add-user", CONSOLE_USER, *ADD_USER_OPTIONS],
        input=f"{password}\n",
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if done.returncode != 0:
        out(f"could not make the console account: {done.stderr.strip()}")
    return done.returncode == 0


def _failed(out: Callable[[str], None], name: str, state: Path) -> int:
    out(f"{name} did not become ready; see {state / 'logs' / name}.log")
    return 1


def _create_demo(
    port: int, token: str, deadline: dict[str, Any], out: Callable[[str], None]
) -> dict[str, Any] | None:
    try:
        response = httpx.post(
            f"http://127.0.0.1:{port}/v1/deadlines",
            json=deadline,
            headers={"authorization": f"Bearer {token}"},
            timeout=30,
        )
    except httpx.HTTPError as exc:
        out(f"could not create the demo deadline: {exc}")
        return None
    if response.status_code >= 400:
        out(f"could not create the demo deadline ({response.status_code}): {response.text}")
        return None
    answer: dict[str, Any] = response.json()
    return answer


def _partner_token(port: int, token: str, out: Callable[[str], None]) -> str | None:
    """A new API token for the demo partner, to sign in to the partner portal with."""
    try:
        response = httpx.post(
            f"http://127.0.0.1:{port}/v1/partners/{DEMO_PARTNER}/token",
            headers={"authorization": f"Bearer {token}"},
            timeout=30,
        )
    except httpx.HTTPError as exc:
        out(f"could not issue the demo partner's token: {exc}")
        return None
    if response.status_code >= 400:
        out(f"could not issue the demo partner's token ({response.status_code}): {response.text}")
        return None
    return str(response.json()["token"])


def _banner(
    out: Callable[[str], None],
    state: Path,
    ports: Ports,
    token: str,
    maildir: Path,
    received: Path,
    first: datetime,
    console_password: str,
    *,
    partner_token: str | None = None,
) -> None:
    scheduler = f"http://127.0.0.1:{ports.scheduler}"
    webhook = f"http://127.0.0.1:{ports.webhook}"
    status = f"http://127.0.0.1:{ports.status}"
    out("GNLC Notify is running locally:")
    out(
        f"  console    http://127.0.0.1:{ports.console}/ "
        f"(sign in as {CONSOLE_USER}, password {console_password}; this run's only)"
    )
    if partner_token:
        out(
            f"  portal     http://127.0.0.1:{ports.console}/partner "
            f"(partner {DEMO_PARTNER} signs in with its token {partner_token})"
        )
    out(f"  scheduler  {scheduler}/docs")
    out(f"  webhooks   {webhook}/docs (partners and endpoints)")
    out(f"  email      http://127.0.0.1:{ports.email}/health/ready")
    out(f"  status     {status}/docs (every notice's state; gnlc-notify status ...)")
    out(f"  mailbox    SMTP 127.0.0.1:{ports.mailbox}, messages in {maildir / 'new'}")
    out(f"  receiver   http://127.0.0.1:{ports.receiver}/received, log {received}")
    out(f"  logs       {state / 'logs'}")
    out(f"The operator token is in {state / TOKEN_FILE}, which gnlc-notify reads; or:")
    out(f"  export GNLC_OPERATOR_TOKEN={token}")
    out(f"  export GNLC_API_URL={scheduler} GNLC_WEBHOOK_API_URL={webhook}")
    out(f"  export GNLC_STATUS_API_URL={status}")
    wait = max(0, round((first - datetime.now(UTC)).total_seconds()))
    out(
        f"The demo deadline's first reminder goes out at {first:%H:%M:%S} UTC "
        f"({_local_time(first)}), in {wait} s. Ctrl-C stops everything."
    )


def _watch(
    maildir: Path,
    received: Path,
    children: Children,
    exit_after_mail: int,
    timeout: float,
    stopping: Callable[[], bool],
    out: Callable[[str], None],
) -> int:
    """Show every mail and webhook of this run (the mailbox was emptied at start, so
    everything in it is new, whenever it landed)."""
    box = mailbox.Maildir(maildir, create=True)
    seen_mail: set[str] = set()
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
                text = body.get_content() if isinstance(body, EmailMessage) else ""
                out("  ---- rendered text part ----")
                out("\n".join(f"  | {line}" for line in text.splitlines()))
                out("  ----------------------------")
        if received.exists():
            text = received.read_text(encoding="utf-8")
            lines = text[: text.rfind("\n") + 1].splitlines()  # complete lines only
            for line in lines[seen_hooks:]:
                item = json.loads(line)
                verdict = "signature verified" if item["verified"] else "SIGNATURE REJECTED"
                out(
                    f"webhook to {item['endpoint']}: {item['event'].get('type', '?')} "
                    f"id={item['webhook_id']} ({verdict})"
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
