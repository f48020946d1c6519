"""GNLC_WEBHOOK_WORKERS=2: two worker processes share the consumer group and the endpoints;
each event reaches the endpoint once; a worker that dies is replaced and nothing is lost;
stopping the service leaves no process behind."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from pathlib import Path

import pytest

from tests.integration.conftest import System
from tests.integration.kafka_io import produce
from tests.integration.webhook_support import Api, event, hooks_server
from tests.support import wait_stable_group

pytestmark = pytest.mark.integration


def children(pid: int) -> set[int]:
    """Every living descendant of ``pid`` (from /proc)."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            fields = stat.rsplit(")", 1)[1].split()
            if fields[0] != "Z":
                parents[int(entry.name)] = int(fields[1])
    found: set[int] = set()
    frontier = {pid}
    while frontier:
        frontier = {child for child, parent in parents.items() if parent in frontier} - found
        found |= frontier
    return found


def alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def test_two_workers_share_the_work_and_a_dead_one_is_replaced(system: System) -> None:
    env = {"GNLC_WEBHOOK_WORKERS": "2", "GNLC_WEBHOOK_ENDPOINT_REFRESH_SECONDS": "1"}
    service = system.service("webhook", **env).start()
    assert service.proc is not None
    api = Api(service, system.token)
    group = f"{system.prefix}webhook"
    topic = f"{system.prefix}deadline.reminder"
    with hooks_server() as (hooks, base):
        token = api.partner("partner-w")
        endpoint = api.endpoint(token, f"{base}/w")
        hooks.secrets["w"] = [endpoint["secret"]]
        assert wait_stable_group(system.kafka, group, 2), service.tail()
        time.sleep(2)  # both workers have re-read the endpoints

        first = [event() for _ in range(40)]
        asyncio.run(produce(system.kafka, topic, *(v for _, v in first)))
        assert hooks.wait("w", len(first), timeout=60, unique=True), service.tail()
        system.caught_up("webhook")  # all handled: anything sent twice has arrived
        assert len(hooks.of("w", verified=False)) == len(first)  # no worker sent one twice

        workers = children(service.proc.pid)
        assert len(workers) >= 2, workers
        victim = max(workers)
        os.kill(victim, signal.SIGKILL)  # the supervisor starts another
        second = [event() for _ in range(40)]
        asyncio.run(produce(system.kafka, topic, *(v for _, v in second)))
        ids = {i for i, _ in first + second}
        assert hooks.wait("w", len(ids), timeout=120, unique=True), service.tail()
        assert set(hooks.unique("w")) == ids
        assert all(h.verified for h in hooks.of("w", verified=False))
        assert wait_stable_group(system.kafka, group, 2), "the dead worker was not replaced"

        survivors = children(service.proc.pid)
        service.stop()
        assert service.proc.returncode is not None
        time.sleep(1)
        assert not [pid for pid in survivors if alive(pid)], "a worker outlived the service"
