"""The operator CLI against a running scheduler: it does the job, and refusals are clear."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.integration.conftest import System

pytestmark = pytest.mark.integration


def cli(system: System, url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, GNLC_API_URL=url, GNLC_OPERATOR_TOKEN=system.token)
    return subprocess.run(
        [sys.executable, "-m", "gnlc_cli.main", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


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
    assert "T09:00:00+05:45" in listed.stdout

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
    assert "line 3: duplicate city id 'tromso'" in refused.stderr

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
