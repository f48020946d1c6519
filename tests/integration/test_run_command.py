"""The README's run command brings the system up and shows a rendered reminder."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration


def test_dev_up_shows_a_rendered_reminder(kafka: str, tmp_path: Path) -> None:
    env = dict(
        os.environ, KAFKA_BOOTSTRAP_SERVERS=kafka, GNLC_TOPIC_PREFIX=f"r{uuid.uuid4().hex[:8]}."
    )
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "gnlc_cli.main",
            "dev",
            "up",
            "--exit-after-mail",
            "4",
            "--timeout",
            "120",
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert "GNLC Notify is running locally" in out
    assert "mail #1 landed in the mailbox" in out
    assert "rendered text part" in out
    assert "Biennial progress report" in out or "Rapport d'étape biennal" in out
    assert "(signature verified)" in out
    assert len(list((tmp_path / ".local" / "mailbox" / "new").iterdir())) >= 4
