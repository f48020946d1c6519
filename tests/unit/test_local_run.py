"""The run command's decisions: ports, the first reminder's time, the token file, a fresh
mailbox."""

from __future__ import annotations

import mailbox
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from gnlc_devtools.local import (
    Ports,
    choose_ports,
    demo_deadline,
    first_reminder,
    fresh_maildir,
    write_token,
)

USUAL = Ports(scheduler=8100, email=8101, webhook=8102, mailbox=8025, receiver=8090)


def _free_ports(start: int) -> Callable[[], int]:
    counter = iter(range(start, start + 100))
    return lambda: next(counter)


@pytest.mark.parametrize(
    ("env", "busy", "wanted"),
    [
        ({}, set(), USUAL),
        ({"GNLC_SCHEDULER_PORT": "9100"}, set(), Ports(9100, 8101, 8102, 8025, 8090)),
        ({}, {8090, 8100}, Ports(40000, 8101, 8102, 8025, 40001)),
        # a port that is set is used even if busy (the service then says so)
        ({"GNLC_MAILBOX_PORT": "8100"}, {8100}, Ports(40000, 8101, 8102, 8100, 8090)),
        ({"GNLC_RECEIVER_PORT": " 2525 "}, set(), Ports(8100, 8101, 8102, 8025, 2525)),
        ({}, {8103}, Ports(8100, 8101, 8102, 8025, 8090, 40000)),
        ({"GNLC_CONSOLE_PORT": "9103"}, set(), Ports(8100, 8101, 8102, 8025, 8090, 9103)),
        ({}, {8104}, Ports(8100, 8101, 8102, 8025, 8090, 8103, 40000)),
    ],
)
def test_choose_ports(env: dict[str, str], busy: set[int], wanted: Ports) -> None:
    assert choose_ports(env, lambda p: p not in busy, _free_ports(40000)) == wanted


@pytest.mark.parametrize(
    ("env", "problem"),
    [
        ({"GNLC_EMAIL_PORT": "http"}, "GNLC_EMAIL_PORT='http' is not a port"),
        ({"GNLC_EMAIL_PORT": "70000"}, "is not a port"),
        ({"GNLC_EMAIL_PORT": "9000", "GNLC_WEBHOOK_PORT": "9000"}, "two services on one port"),
    ],
)
def test_bad_ports_are_named(env: dict[str, str], problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        choose_ports(env, lambda p: True, _free_ports(40000))


def test_first_reminder_from_the_plan_or_from_the_due_moment() -> None:
    now = datetime(2026, 11, 25, 12, 0, 0, tzinfo=UTC)
    deadline = demo_deadline(now)
    assert deadline["due_at"] == "2026-11-25T12:01:15+00:00"
    assert first_reminder(deadline, None) == now + timedelta(seconds=15)
    answer = {
        "scheduled": [
            {"city_id": "a", "step": "due", "fire_at": "2026-11-25T12:01:15+00:00"},
            {"city_id": "b", "step": "60s-before", "fire_at": "2026-11-25T13:00:16+01:00"},
            {"city_id": "c", "step": "60s-before", "fire_at": "2026-11-25T12:00:17"},
        ]
    }
    assert first_reminder(deadline, answer) == datetime(2026, 11, 25, 12, 0, 16, tzinfo=UTC)


def test_the_token_file_is_for_its_owner_only(tmp_path: Path) -> None:
    path = tmp_path / ".local" / "operator-token"
    path.parent.mkdir()
    path.write_text("old")
    path.chmod(0o644)
    write_token(path, "new-token")
    assert path.read_text() == "new-token\n"
    assert path.stat().st_mode & 0o777 == 0o600


def test_a_fresh_mailbox_keeps_the_last_one_beside_it(tmp_path: Path) -> None:
    maildir = tmp_path / "mailbox"
    fresh_maildir(maildir)
    mailbox.Maildir(maildir).add(b"Subject: one\r\n\r\n1\r\n")
    fresh_maildir(maildir)
    assert list(mailbox.Maildir(maildir).keys()) == []
    assert len(mailbox.Maildir(tmp_path / "mailbox.previous").keys()) == 1
