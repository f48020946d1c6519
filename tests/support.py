"""Helpers the integration tests and the benchmarks share."""

from __future__ import annotations

import asyncio
import atexit
import os
import random
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Protocol, TypeVar

import httpx

from tests.forkserver import ForkServer

#: The tests' one HTTP client for the services they start: pooled connections, and one
#: TLS context (httpx builds one for every client, about 30 ms of CPU, which ``httpx.get``
#: would pay on every call, every poll of a wait included).
HTTP = httpx.Client(timeout=10)


#: The ports tests hand out: below the kernel's ephemeral range (32768-60999 by default,
#: where outgoing connections and ``bind(0)`` take theirs), split between the xdist
#: workers. A port asked of the kernel (``bind(0)``) and let go could be handed to the
#: other worker too before the service meant to take it did: a webhook service once failed
#: to bind, and the other worker's service answered its readiness checks.
PORTS = range(10_000, 32_000)
_handed: set[int] = set()  # handed out by this process already: never twice


def worker_ports(worker: str | None = None, workers: int | None = None) -> range:
    """This xdist worker's share of ``PORTS`` (all of them outside xdist)."""
    worker = worker if worker is not None else os.environ.get("PYTEST_XDIST_WORKER", "")
    count = workers if workers is not None else int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", 1))
    index = int(worker[2:]) if worker[:2] == "gw" and worker[2:].isdigit() else 0
    span = len(PORTS) // max(count, 1)
    start = PORTS.start + (index % max(count, 1)) * span
    return range(start, start + span)


def free_port() -> int:
    """A loopback port free now, from this worker's own share, never handed out before by
    this process (so not one a stopped service may still hold in TIME_WAIT)."""
    ports = worker_ports()
    first = random.randrange(len(ports))
    for step in range(min(len(ports), 2_000)):
        port = ports[(first + step) % len(ports)]
        if port in _handed:
            continue
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue  # taken (by anything on the machine)
        _handed.add(port)
        return port
    raise RuntimeError(f"no free port in {ports}")


class Process(Protocol):
    """What ``Service`` uses of its process (``subprocess.Popen``, or a fork of the test
    suite's fork server: ``tests.forkserver.Forked``)."""

    pid: int
    returncode: int | None

    def poll(self) -> int | None: ...

    def wait(self, timeout: float | None = None) -> int: ...

    def send_signal(self, sig: int) -> None: ...

    def kill(self) -> None: ...


#: The test suite's fork server (``use_fork_server``); None: services are started as new
#: interpreters (the benchmarks, which time start-up).
_fork_server: ForkServer | None = None
_fork_server_wanted = False


def use_fork_server() -> None:
    """From now on, this process starts its services as forks of a fork server that has
    imported them once (``tests.forkserver``), started with the first of them."""
    global _fork_server_wanted
    _fork_server_wanted = True


def _forks() -> ForkServer | None:
    global _fork_server
    if _fork_server is None and _fork_server_wanted:
        _fork_server = ForkServer()
        atexit.register(_fork_server.close)
    return _fork_server


class Service:
    """One service as a child process, with its own log file."""

    def __init__(self, name: str, env: dict[str, str], port: int, log: Path) -> None:
        self.name = name
        self.env = env
        self.port = port
        self.log = log
        self.proc: Process | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 60) -> Service:
        """Start the process and wait until it is ready."""
        return self.launch().ready(timeout)

    def launch(self) -> Service:
        """Start the process without waiting (``ready`` waits; see ``start_all``)."""
        forks = _forks()
        if forks is not None:
            self.proc = forks.start(self.name, self.env, self.log)
            return self
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", f"gnlc_{self.name}"],
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        return self

    def ready(self, timeout: float = 60) -> Service:
        """Wait until the launched process answers ``/health/ready`` with 200."""
        assert self.proc is not None, f"{self.name} was not launched"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited at start:\n{self.tail()}")
            try:
                if HTTP.get(f"{self.url}/health/ready", timeout=2).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"{self.name} not ready in {timeout}s:\n{self.tail()}")

    def stop(self) -> None:
        self.terminate()
        self.wait_stopped()

    def terminate(self) -> None:
        """SIGTERM, without waiting (``wait_stopped`` waits; see ``stop_all``)."""
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)

    def wait_stopped(self, timeout: float = 30) -> None:
        if self.proc and self.proc.poll() is None:
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def kill(self) -> None:
        """SIGKILL: a crash, with no chance to commit or clean up."""
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait()

    def tail(self, lines: int = 40) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])


def start_all(*services: Service, timeout: float = 60) -> tuple[Service, ...]:
    """Start several services side by side (each takes seconds to import and join its
    groups), and wait until every one is ready."""
    for service in services:
        service.launch()
    return tuple(service.ready(timeout) for service in services)


def stop_all(services: Sequence[Service]) -> None:
    """SIGTERM to every service at once, then wait for each (they stop side by side)."""
    for service in services:
        service.terminate()
    for service in services:
        service.wait_stopped()


async def _admin(url: str, statement: str) -> None:
    import asyncpg

    connection = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        await connection.execute(statement)
    finally:
        await connection.close()


@contextmanager
def scratch_postgres_database(admin_url: str) -> Iterator[str]:
    """A fresh database on the server of ``admin_url``, dropped afterwards; yields its URL."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    asyncio.run(_admin(admin_url, f"CREATE DATABASE {name}"))
    try:
        yield admin_url.rsplit("/", 1)[0] + f"/{name}"
    finally:
        asyncio.run(_admin(admin_url, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))


async def _seed_directory(bootstrap: str, prefix: str) -> None:
    from aiokafka import AIOKafkaProducer

    from gnlc_core.directory import load_csv
    from gnlc_core.kafka import Topics, ensure_topics
    from gnlc_core.settings import SAMPLE_DIRECTORY, Settings

    await ensure_topics(Settings(KAFKA_BOOTSTRAP_SERVERS=bootstrap, topic_prefix=prefix))
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=True)
    await producer.start()
    try:
        for city in load_csv(SAMPLE_DIRECTORY):
            await producer.send(
                Topics(prefix).directory, city.model_dump_json().encode(), key=city.id.encode()
            )
        await producer.flush()
    finally:
        await producer.stop()


def seed_directory(bootstrap: str, prefix: str) -> None:
    """Publish the sample directory under ``prefix``, as the scheduler does, for tests that
    run consumers without a scheduler."""
    asyncio.run(_seed_directory(bootstrap, prefix))


async def _stable_members(bootstrap: str, group: str) -> int:
    from aiokafka.admin import AIOKafkaAdminClient

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        (response,) = await admin.describe_consumer_groups([group])
        (described,) = response.to_object()["groups"]
        return len(described["members"]) if described["state"] == "Stable" else 0
    finally:
        await admin.close()


def wait_stable_group(bootstrap: str, group: str, members: int, timeout: float = 90) -> bool:
    """Wait until consumer ``group`` is stable with ``members`` members; False on timeout."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if asyncio.run(_stable_members(bootstrap, group)) == members:
            return True
        time.sleep(0.5)
    return False


T = TypeVar("T")


def eventually(check: Callable[[], T], *, timeout: float, what: str, every: float = 0.1) -> T:
    """Poll ``check`` until it returns something true and return that; fails the test with
    ``what`` after ``timeout`` seconds. The one wait of the tests: no fixed sleeps."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout:g}s waiting for {what}")
        time.sleep(every)


async def _wait_caught_up(
    bootstrap: str, group: str, topics: Sequence[str], seconds: float, what: str
) -> None:
    """Poll the records of ``topics`` that ``group`` has not committed yet until there are
    none (one admin client and one reader for the whole wait: starting them is most of
    the cost of a poll)."""
    from aiokafka import AIOKafkaConsumer
    from aiokafka.admin import AIOKafkaAdminClient

    from gnlc_core.kafka import partitions_of

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    reader = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await admin.start()
    await reader.start()
    deadline = time.monotonic() + seconds
    try:
        while True:
            # (the consumer's partitions_for_topic is not a coroutine, and knows no topic it
            # has not subscribed to: fresh metadata instead)
            partitions = await partitions_of(reader, topics)
            # committed first, then the ends: a record the group writes before it commits
            # the one it came from (a retry moved to a tier) is then always counted
            committed = await admin.list_consumer_group_offsets(group, partitions=partitions)
            ends = await reader.end_offsets(partitions)
            lag = 0
            for partition in partitions:
                offset = committed.get(partition)
                lag += ends[partition] - (max(offset.offset, 0) if offset is not None else 0)
            if lag == 0:
                return
            if time.monotonic() >= deadline:
                raise AssertionError(f"timed out after {seconds:g}s waiting for {what}")
            await asyncio.sleep(0.25)
    finally:
        await reader.stop()
        await admin.close()


def wait_caught_up(bootstrap: str, group: str, topics: Sequence[str], *, timeout: float) -> None:
    """Wait until consumer ``group`` has committed every record now on ``topics``: all of it
    handled, so anything it would do about them is done (instead of a quiet period)."""
    what = f"group {group} to commit everything on {', '.join(topics)}"
    asyncio.run(_wait_caught_up(bootstrap, group, topics, timeout, what))
