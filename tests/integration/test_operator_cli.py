"""The operator CLI against a running scheduler: it does the job, and refusals are clear.

The commands run in this process (typer's runner: the same app, options and environment,
over real HTTP to the real service); the entry point itself (``python -m gnlc_cli.main``)
runs as a process for the refusals of a missing or wrong token."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from gnlc_cli.main import app
from tests.integration.conftest import System

pytestmark = pytest.mark.integration


def cli(
    system: System, url: str, *args: str, token: str | None = None
) -> subprocess.CompletedProcess[str]:
    """``gnlc-notify ARGS`` in process; its exit code and output as a process's would be."""
    env = {
        "GNLC_API_URL": url,
        "GNLC_WEBHOOK_API_URL": url,
        "GNLC_OPERATOR_TOKEN": token or system.token,
    }
    result = CliRunner().invoke(app, list(args), env=env)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return subprocess.CompletedProcess(list(args), result.exit_code, result.stdout, result.stderr)


def test_operator_cli_round_trip(system: System, tmp_path: Path) -> None:
    url = system.service("scheduler").start().url
    due = (datetime.now(UTC) + timedelta(days=20)).replace(microsecond=0).isoformat()

    added = cli(
        system,
        url,
        "deadlines",
        "add",
        "progress-report",
        "--title",
        "Progress report",
        "--due",
        due,
        "--remind",
        "-7d",
        "--remind",
        "0d",
        "--city",
        "kathmandu",
        "--city",
        "laval",
    )
    assert added.returncode == 0, added.stderr
    assert "4 reminders scheduled" in added.stdout

    listed = cli(system, url, "schedule", "--deadline", "progress-report")
    assert listed.returncode == 0, listed.stderr
    assert "Asia/Kathmandu" in listed.stdout
    assert "09:00 +05:45" in listed.stdout  # the city's local time beside UTC
    assert listed.stdout.splitlines()[0].split()[:2] == ["UTC", "city's"]

    submitted = cli(system, url, "deadlines", "submit", "progress-report", "laval")
    assert submitted.returncode == 0, submitted.stderr
    assert "2 pending reminders dropped" in submitted.stdout

    unknown = cli(
        system,
        url,
        "deadlines",
        "add",
        "other",
        "--title",
        "Other",
        "--due",
        due,
        "--city",
        "atlantis",
    )
    assert unknown.returncode == 1
    assert "audience.cities: unknown city id(s) atlantis" in unknown.stderr

    past = cli(
        system,
        url,
        "deadlines",
        "add",
        "late",
        "--title",
        "Late",
        "--due",
        "2020-01-01T00:00:00+00:00",
        "--all",
    )
    assert past.returncode == 1
    assert "due_at: 2020-01-01T00:00:00+00:00 is in the past" in past.stderr

    bad_plan = cli(
        system,
        url,
        "deadlines",
        "add",
        "odd",
        "--title",
        "Odd",
        "--due",
        due,
        "--all",
        "--remind",
        "-1w",
    )
    assert bad_plan.returncode == 1
    assert "reminder offset '-1w' is not like -30d" in bad_plan.stderr

    csv_file = tmp_path / "cities.csv"
    csv_file.write_text(
        "id,name,country,region,timezone,language,contact_email\n"
        "tromso,Tromsø,NO,Europe and North America,Europe/Oslo,nb,x@tromso.example.org\n"
        "tromso,Tromsø again,NO,Europe and North America,Europe/Oslo,nb,y@tromso.example.org\n",
        encoding="utf-8",
    )
    refused = cli(system, url, "cities", "import", str(csv_file))
    assert refused.returncode == 1
    assert "line 3" in refused.stderr
    assert "duplicate city id 'tromso'" in refused.stderr

    later = (datetime.now(UTC) + timedelta(hours=3)).isoformat()
    scheduled = cli(
        system,
        url,
        "announcements",
        "publish",
        "award-call",
        "--title",
        "Learning City Award",
        "--body",
        "Applications are open.",
        "--category",
        "award",
        "--all",
        "--at",
        later,
    )
    assert scheduled.returncode == 0, scheduled.stderr
    withdrawn = cli(system, url, "announcements", "withdraw", "award-call")
    assert withdrawn.returncode == 0, withdrawn.stderr

    no_token = subprocess.run(
        [sys.executable, "-m", "gnlc_cli.main", "schedule", "--api", url],
        env={k: v for k, v in os.environ.items() if k != "GNLC_OPERATOR_TOKEN"},
        cwd=tmp_path,  # no .local/operator-token here or above
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert no_token.returncode == 2
    assert "no operator token: set GNLC_OPERATOR_TOKEN" in no_token.stderr
    wrong = subprocess.run(
        [sys.executable, "-m", "gnlc_cli.main", "schedule", "--api", url, "--token", "nope"],
        env={k: v for k, v in os.environ.items() if k != "GNLC_OPERATOR_TOKEN"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert wrong.returncode == 1
    assert "error (401): missing or wrong bearer token" in wrong.stderr


def test_a_partner_is_onboarded_from_the_cli(system: System) -> None:
    url = system.service("webhook").start().url
    added = cli(system, url, "partners", "add", "city-portal", "--name", "City portal")
    assert added.returncode == 0, added.stderr
    partner_token = added.stdout.split()[-1]
    assert partner_token.startswith("gnlcp_")
    listed = cli(system, url, "partners", "list")
    assert listed.returncode == 0, listed.stderr
    assert listed.stdout.splitlines()[0].split()[:2] == ["id", "name"]
    assert any(line.split()[:1] == ["city-portal"] for line in listed.stdout.splitlines())

    target = system.receiver.url("partner-b")
    endpoint = cli(
        system, url, "endpoints", "add", "--partner", "city-portal", "--url", target,
        "--event-type", "deadline.reminder", "--city", "laval",
    )  # fmt: skip
    assert endpoint.returncode == 0, endpoint.stderr
    endpoint_id = next(
        line.split()[1] for line in endpoint.stdout.splitlines() if line.startswith("id ")
    )
    secret = endpoint.stdout.split()[-1]
    assert secret.startswith("whsec_")
    assert "laval" in endpoint.stdout

    mine = cli(system, url, "endpoints", "list", token=partner_token)
    assert mine.returncode == 0, mine.stderr
    assert endpoint_id in mine.stdout
    assert "partner-a" not in mine.stdout  # another partner's endpoint is not shown

    shown = cli(system, url, "endpoints", "show", endpoint_id, "--secret")
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.split()[-1] == secret
    edited = cli(system, url, "endpoints", "edit", endpoint_id, "--description", "the portal")
    assert edited.returncode == 0, edited.stderr
    assert "the portal" in edited.stdout
    assert "laval" in edited.stdout  # what was not named stays
    paused = cli(system, url, "endpoints", "pause", endpoint_id)
    assert paused.stdout.strip() == f"{endpoint_id} is paused"
    resumed = cli(system, url, "endpoints", "resume", endpoint_id)
    assert resumed.stdout.strip() == f"{endpoint_id} is active"
    rotated = cli(system, url, "endpoints", "rotate-secret", endpoint_id, "--grace", "60")
    assert rotated.returncode == 0, rotated.stderr
    assert rotated.stdout.split()[-1] not in (secret, "")
    attempts = cli(system, url, "endpoints", "attempts", endpoint_id)
    assert attempts.returncode == 0, attempts.stderr
    assert attempts.stdout.splitlines()[0].split()[:2] == ["UTC", "local"]
    replayed = cli(
        system, url, "endpoints", "replay", endpoint_id, "--since", "2026-01-01T00:00:00+00:00"
    )
    assert replayed.returncode == 0, replayed.stderr
    assert f"0 events queued for {endpoint_id}" in replayed.stdout
    new_token = cli(system, url, "partners", "token", "city-portal")
    assert new_token.returncode == 0, new_token.stderr
    assert new_token.stdout.split()[-1] != partner_token

    refused = cli(
        system, url, "endpoints", "add", "--partner", "city-portal",
        "--url", "http://169.254.169.254/latest", "--event-type", "nope",
    )  # fmt: skip
    assert refused.returncode == 1
    assert "event_types.0: unknown event type 'nope'" in refused.stderr

    deleted = cli(system, url, "endpoints", "delete", endpoint_id, "--yes")
    assert deleted.returncode == 0, deleted.stderr
    gone = cli(system, url, "endpoints", "show", endpoint_id)
    assert gone.returncode == 1
    assert f"error (404): no endpoint '{endpoint_id}'" in gone.stderr
