"""Service processes for the test suite, forked from a process that imported them once.

``python -m gnlc_<name>`` spends about 1.5 s of CPU on its imports alone, and the test
suite starts about a hundred services: on two cores that was over a minute of the run. A
fork server (one per test process, started with its first service) imports every
service's modules once; each service is then a fork of it that runs ``gnlc_<name>``'s
``__main__`` with its own environment, working directory and log file. It is still a
process of its own, with its own pid, signals (SIGTERM, kill -9), sockets, and the
service's real code. Nothing of a service runs in the server: it only imports.

The benchmarks start real interpreters (``tests.support.Service`` without the server):
they time start-up.

``python -m tests.forkserver FD``: serve the requests coming on the socket ``FD`` (JSON
lines; ``{"start": {...}}`` answers ``{"pid": N}``, ``{"status": N}`` answers
``{"code": C}``, None while N runs) until it closes.
"""

from __future__ import annotations

import contextlib
import importlib
import io
import json
import os
import runpy
import select
import signal
import socket
import subprocess
import sys
import threading
import time
import traceback
from pathlib import Path
from typing import Any

#: What ``python -m gnlc_<name>`` imports, imported once by the server.
SERVICES = ("scheduler", "email", "webhook", "status", "console")
PRELOAD = (
    "gnlc_core.service",
    *(f"gnlc_{name}.app" for name in SERVICES),
    "gnlc_console.cli",
    "uvicorn.loops.auto",
    "uvicorn.protocols.http.auto",
    "uvicorn.lifespan.on",
)
#: A process that has exited gets its status from the server within this many seconds.
STATUS_SECONDS = 10.0


# -- the server ---------------------------------------------------------------------------

_exited: dict[int, int] = {}


def _reap(_signum: int = 0, _frame: object = None) -> None:
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        _exited[pid] = os.waitstatus_to_exitcode(status)


def _child(request: dict[str, Any]) -> None:
    """In the fork: become ``python -m gnlc_<name>`` with the request's environment."""
    code = 1
    try:
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        log = os.open(request["log"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        os.dup2(log, 1)
        os.dup2(log, 2)
        os.closerange(3, 1 << 16)
        if isinstance(sys.stdout, io.TextIOWrapper):
            sys.stdout.reconfigure(line_buffering=True)
        os.environ.clear()
        os.environ.update(request["env"])
        os.chdir(request["cwd"])
        module = f"gnlc_{request['name']}"
        sys.argv = [module]
        runpy.run_module(module, run_name="__main__", alter_sys=True)
        code = 0
    except SystemExit as exc:
        if isinstance(exc.code, int) or exc.code is None:
            code = exc.code or 0
        else:
            print(exc.code, file=sys.stderr)
    except BaseException:
        traceback.print_exc()
    finally:
        with contextlib.suppress(Exception):
            sys.stdout.flush()
            sys.stderr.flush()
        os._exit(code)


def serve(fd: int) -> None:
    for module in PRELOAD:
        importlib.import_module(module)
    signal.signal(signal.SIGCHLD, _reap)
    connection = socket.socket(fileno=fd)
    reader = connection.makefile("r", encoding="utf-8")
    for line in reader:  # until the test process closes its end (or dies)
        request = json.loads(line)
        if "start" in request:
            sys.stdout.flush()
            sys.stderr.flush()
            pid = os.fork()
            if pid == 0:
                connection.close()
                _child(request["start"])
            answer: dict[str, Any] = {"pid": pid}
        else:
            _reap()
            answer = {"code": _exited.pop(request["status"], None)}
        connection.sendall(json.dumps(answer).encode() + b"\n")


# -- the test process's side --------------------------------------------------------------


class ForkServer:
    """The test process's connection to its fork server (started by ``start``)."""

    def __init__(self) -> None:
        mine, theirs = socket.socketpair()
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "tests.forkserver", str(theirs.fileno())],
            pass_fds=[theirs.fileno()],
            stdin=subprocess.DEVNULL,
        )
        theirs.close()
        self._socket = mine
        self._reader = mine.makefile("r", encoding="utf-8")
        self._lock = threading.Lock()

    def _ask(self, request: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            self._socket.sendall(json.dumps(request).encode() + b"\n")
            line = self._reader.readline()
        if not line:
            raise RuntimeError(f"the fork server stopped (exit code {self._proc.poll()})")
        answer: dict[str, Any] = json.loads(line)
        return answer

    def start(self, name: str, env: dict[str, str], log: Path) -> Forked:
        """``python -m gnlc_<name>`` with ``env``, its output appended to ``log``."""
        request = {"name": name, "env": env, "log": str(log), "cwd": os.getcwd()}
        pid = int(self._ask({"start": request})["pid"])
        return Forked(self, pid)

    def status(self, pid: int) -> int | None:
        code = self._ask({"status": pid})["code"]
        return None if code is None else int(code)

    def close(self) -> None:
        self._socket.close()
        try:
            self._proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()


class Forked:
    """A service forked by the server: what the tests use of ``subprocess.Popen``. Its
    exit is seen through a pidfd (it is the server's child, not this process's)."""

    def __init__(self, server: ForkServer, pid: int) -> None:
        self._server = server
        self.pid = pid
        self._pidfd = os.pidfd_open(pid)
        self.returncode: int | None = None

    def _ended(self, timeout: float | None) -> bool:
        return bool(select.select([self._pidfd], [], [], timeout)[0])

    def _collect(self) -> int:
        deadline = time.monotonic() + STATUS_SECONDS
        while (code := self._server.status(self.pid)) is None:
            if time.monotonic() > deadline:
                raise RuntimeError(f"no exit status for {self.pid} from the fork server")
            time.sleep(0.01)
        self.returncode = code
        os.close(self._pidfd)
        return code

    def poll(self) -> int | None:
        if self.returncode is None and self._ended(0):
            return self._collect()
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        if self.returncode is not None:
            return self.returncode
        if not self._ended(timeout):
            raise subprocess.TimeoutExpired(f"gnlc service {self.pid}", timeout or 0)
        return self._collect()

    def send_signal(self, sig: int) -> None:
        if self.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                signal.pidfd_send_signal(self._pidfd, sig)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)


if __name__ == "__main__":
    serve(int(sys.argv[1]))
