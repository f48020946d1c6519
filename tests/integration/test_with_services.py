"""deploy/with-services.sh: one signal stops the command it runs (and, after it, what the
script started), whichever of SIGTERM or SIGINT it is: the command gets the same signal
(SIGINT lets pytest tear its fixtures down and the run command stop its services)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.integration

CHILD = """
import signal, sys, time
from pathlib import Path
Path(sys.argv[1]).write_text("started")
signal.signal(signal.SIGTERM, lambda *_: (Path(sys.argv[1]).write_text("SIGTERM"), sys.exit(0)))
try:
    for _ in range(600):
        time.sleep(0.1)
except KeyboardInterrupt:
    Path(sys.argv[1]).write_text("SIGINT")
"""


@pytest.mark.parametrize("sent", [signal.SIGTERM, signal.SIGINT])
def test_one_signal_stops_the_command(kafka: str, tmp_path: Path, sent: signal.Signals) -> None:
    marker = tmp_path / "child"
    wrapper = subprocess.Popen(
        [ROOT / "deploy" / "with-services.sh", sys.executable, "-c", CHILD, str(marker)],
        env={**os.environ, "KAFKA_BOOTSTRAP_SERVERS": kafka},  # a broker that answers
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while not marker.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert marker.read_text() == "started"
        wrapper.send_signal(sent)
        assert wrapper.wait(timeout=10) != 0
        assert marker.read_text() == sent.name  # the command got the same signal, and ended
    finally:
        if wrapper.poll() is None:
            wrapper.kill()
