"""The README's run command: it brings the system up on the ports it is given, shows the
first reminder with its text (timed as the banner says), gives the second terminal its
token, and SIGTERM stops every process it started."""

from __future__ import annotations

import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import IO

import httpx
import pytest

from tests.support import free_port

pytestmark = [pytest.mark.integration, pytest.mark.long]


def _children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        text = (task / "children").read_text()
        found += [int(p) for p in text.split()]
    return found


def _process_groups() -> dict[int, int]:
    """pid -> process group of every process on the machine (Linux)."""
    groups = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        groups[int(entry.name)] = int(fields[2])
    return groups


def _reader(stream: IO[str], lines: queue.Queue[str]) -> None:
    for line in stream:
        lines.put(line)


def _read_until(
    lines: queue.Queue[str],
    seen: list[str],
    done: Callable[[list[str]], bool],
    timeout: float,
    runner: subprocess.Popen[str],
) -> bool:
    """Read output until ``done`` says so, the runner exits, or the time is up."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            seen.append(lines.get(timeout=0.5))
        except queue.Empty:
            if runner.poll() is not None and lines.empty():
                return done(seen)
            continue
        if done(seen):
            return True
    return False


def _console_signs_in(url: str, name: str, password: str) -> bool:
    with httpx.Client(base_url=url, headers={"origin": url}, timeout=30) as client:
        page = client.get("/signin").text
        token = re.search(r'name="signin_token" value="([^"]+)"', page)
        assert token, page
        answer = client.post(
            "/signin",
            data={"name": name, "password": password, "signin_token": token.group(1)},
        )
        return answer.status_code == 303 and client.get("/").status_code == 200


def _partner_signs_in(url: str, token: str) -> bool:
    with httpx.Client(base_url=url, headers={"origin": url}, timeout=30) as client:
        page = client.get("/partner/signin").text
        found = re.search(r'name="signin_token" value="([^"]+)"', page)
        assert found, page
        answer = client.post(
            "/partner/signin", data={"token": token, "signin_token": found.group(1)}
        )
        return answer.status_code == 303 and "demo-partner" in client.get("/partner").text


@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="reads /proc (Linux)")
def test_dev_up_shows_the_first_reminder_and_sigterm_stops_everything(
    kafka: str, tmp_path: Path
) -> None:
    names = ("SCHEDULER", "EMAIL", "WEBHOOK", "STATUS", "MAILBOX", "RECEIVER", "CONSOLE")
    ports = {name: free_port() for name in names}
    env = dict(
        os.environ,
        KAFKA_BOOTSTRAP_SERVERS=kafka,
        GNLC_TOPIC_PREFIX=f"r{uuid.uuid4().hex[:8]}.",
        **{f"GNLC_{name}_PORT": str(port) for name, port in ports.items()},
    )
    env.pop("GNLC_OPERATOR_TOKEN", None)
    env.pop("GNLC_DATABASE_URL", None)
    # mail left from an earlier run must neither be shown nor hide this run's first mail
    old = tmp_path / ".local" / "mailbox" / "new"
    old.mkdir(parents=True)
    (old / "1.old").write_bytes(b"Subject: left over\r\n\r\nold\r\n")
    runner = subprocess.Popen(
        [sys.executable, "-m", "gnlc_cli.main", "dev", "up"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: queue.Queue[str] = queue.Queue()
    assert runner.stdout is not None
    reader = threading.Thread(target=_reader, args=(runner.stdout, lines), daemon=True)
    reader.start()
    seen: list[str] = []
    try:
        shown = _read_until(
            lines,
            seen,
            lambda s: (
                any("----------------------------" in x for x in s)
                and any("(signature verified)" in x for x in s)
            ),
            timeout=240,
            runner=runner,
        )
        output = "".join(seen)
        assert shown, output
        children = _children(runner.pid)
        assert len(children) == 7, output  # mailbox, receiver, five services
        # the console answers, and the banner's account signs in
        console = f"http://127.0.0.1:{ports['CONSOLE']}"
        login = re.search(r"sign in as (\S+), password (\S+);", output)
        assert login, output
        assert _console_signs_in(console, login.group(1), login.group(2)), output
        # and the banner's partner token opens the partner portal
        partner = re.search(rf"{console}/partner \(partner demo-institute .* token (\S+)\)", output)
        assert partner, output
        assert _partner_signs_in(console, partner.group(1)), output
        groups = set(children)  # each child leads a process group of its own
        assert all(_process_groups().get(child) == child for child in children)
    finally:
        runner.send_signal(signal.SIGTERM)
        code = runner.wait(timeout=90)
        _read_until(lines, seen, lambda s: any("stopped." in x for x in s), 5, runner)
        reader.join(timeout=10)
        runner.stdout.close()
    output = "".join(seen)
    assert code == 0, output
    assert "stopped." in output
    left = [pid for pid, group in _process_groups().items() if group in groups]
    assert not left, f"processes left running: {left}"

    # the banner's ports, token and first reminder time
    assert "GNLC Notify is running locally" in output
    assert f"http://127.0.0.1:{ports['SCHEDULER']}/docs" in output
    assert f"SMTP 127.0.0.1:{ports['MAILBOX']}" in output
    assert f"http://127.0.0.1:{ports['STATUS']}/docs" in output
    assert f"export GNLC_STATUS_API_URL=http://127.0.0.1:{ports['STATUS']}" in output
    token_file = tmp_path / ".local" / "operator-token"
    token = token_file.read_text().strip()
    assert f"export GNLC_OPERATOR_TOKEN={token}" in output
    assert token_file.stat().st_mode & 0o777 == 0o600
    announced = re.search(r"first reminder goes out at (\d\d:\d\d:\d\d) UTC", output)
    assert announced, output
    # the first mail is shown with its text, and it is this run's (not the left-over one)
    assert "left over" not in output
    first = output.index("mail #1 landed in the mailbox")
    assert output.index(announced.group(0)) < first
    text = output[first : output.index("----------------------------", first)]
    assert "rendered text part" in text
    assert re.search(r"Biennial progress report|Rapport d'étape biennal|Informe bienal", text)
    assert "  | " in text
    mail = sorted((tmp_path / ".local" / "mailbox" / "new").iterdir())
    assert mail, "no mail in this run's mailbox"
    assert (tmp_path / ".local" / "mailbox.previous" / "new" / "1.old").exists()
    # the reminder went out when the banner said (to the second, give or take the sweep)
    stamp = datetime.strptime(announced.group(1), "%H:%M:%S").time()
    sent = min(p.stat().st_mtime for p in mail)
    sent_at = datetime.fromtimestamp(sent, UTC)
    planned = datetime.combine(sent_at.date(), stamp, UTC)
    assert abs((sent_at - planned).total_seconds()) < 30, (sent_at, planned)
