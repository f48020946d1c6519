"""Commands without an API: the mailbox, the AsyncAPI document, topics with no broker."""

from __future__ import annotations

import json
import mailbox
import os
import subprocess
import sys
import time
from email.message import EmailMessage
from pathlib import Path

import pytest
from typer.testing import CliRunner

from gnlc_cli.main import app
from tests.support import free_port

runner = CliRunner()


def _maildir(path: Path, count: int) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    box = mailbox.Maildir(path, create=True)
    for n in range(count, 0, -1):  # stored out of order: listed by date
        message = EmailMessage()
        message["To"] = f"city{n}@example.org"
        message["Subject"] = f"Reminder {n}"
        message["Date"] = f"Wed, 25 Nov 2026 10:0{n}:00 +0000"
        message.set_content(f"Text of reminder {n}.")
        box.add(message)
    return path


def test_mailbox_lists_and_shows(tmp_path: Path) -> None:
    box = _maildir(tmp_path / "mail", 2)
    listed = runner.invoke(app, ["mailbox", "--dir", str(box)])
    assert listed.exit_code == 0, listed.output
    lines = listed.output.splitlines()
    assert lines[0].split()[:3] == ["#", "sent", "(UTC)"]
    assert "2026-11-25 10:01 UTC" in lines[1]
    assert "Reminder 1" in lines[1]
    shown = runner.invoke(app, ["mailbox", "--dir", str(box), "--show", "2"])
    assert shown.exit_code == 0, shown.output
    assert "Subject: Reminder 2" in shown.output
    assert "Text of reminder 2." in shown.output


@pytest.mark.parametrize(
    ("args", "problem"),
    [
        (["--show", "999"], "no message 999: the mailbox holds 2"),
        (["--dir", "nowhere"], "no mailbox at"),
        (["--dir", "plain"], "is not a Maildir"),
    ],
)
def test_mailbox_problems_are_messages(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, args: list[str], problem: str
) -> None:
    monkeypatch.chdir(tmp_path)
    _maildir(tmp_path / ".local" / "mailbox", 2)
    (tmp_path / "plain").mkdir()
    result = runner.invoke(app, ["mailbox", *args])
    assert result.exit_code == 1
    assert problem in result.output
    assert "Traceback" not in result.output


def test_asyncapi_names_the_topics_of_the_prefix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GNLC_TOPIC_PREFIX", "staging.")
    result = runner.invoke(app, ["asyncapi"])
    assert result.exit_code == 0, result.output
    addresses = {c["address"] for c in json.loads(result.output)["channels"].values()}
    assert "staging.deadline.reminder" in addresses
    assert all(address.startswith("staging.") for address in addresses)


def test_topics_without_a_broker_is_one_line_and_exit_1() -> None:
    env = dict(os.environ, KAFKA_BOOTSTRAP_SERVERS=f"127.0.0.1:{free_port()}")
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-m", "gnlc_cli.main", "topics", "--timeout", "5"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert time.monotonic() - started < 30
    assert result.returncode == 1
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: cannot reach the Kafka broker at 127.0.0.1:")


def test_mailbox_is_found_from_a_subdirectory_of_the_root(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _maildir(tmp_path / ".local" / "mailbox", 1)
    (tmp_path / "services" / "deep").mkdir(parents=True)
    monkeypatch.chdir(tmp_path / "services" / "deep")
    result = runner.invoke(app, ["mailbox", "--show", "1"])
    assert result.exit_code == 0, result.output
    assert "Subject: Reminder 1" in result.output
