"""Blocking until the process is asked to stop."""

from __future__ import annotations

import signal
import threading


def wait_for_signal() -> None:
    """Return on SIGINT or SIGTERM."""
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    stop.wait()
