"""Real parts for integration tests: the Kafka broker (started by deploy/kafka.sh when none
is given), an aiosmtpd mailbox, a webhook receiver on loopback, and the services as real
child processes started the way production starts them (``python -m gnlc_...``)."""

from __future__ import annotations

import os
import secrets
import socket
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from gnlc_devtools.mailbox import LocalMailbox
from gnlc_devtools.receiver import BackgroundServer, Inbox, receiver_app
from gnlc_webhook.partners import new_secret
from tests.perf.bench_webhook import Sink, start_sink
from tests.support import (
    HTTP,
    Service,
    free_port,
    scratch_postgres_database,
    seed_directory,
    stop_all,
    wait_caught_up,
)

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.integration


def _reachable(address: str) -> bool:
    host, _, port = address.split(",")[0].rpartition(":")
    try:
        with socket.create_connection((host, int(port)), timeout=2):
            return True
    except OSError:
        return False


@pytest.fixture(scope="session")
def kafka() -> Iterator[str]:
    """The broker's bootstrap address; started for this session if none answers."""
    address = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:19092")
    started = False
    if not _reachable(address):
        if "KAFKA_BOOTSTRAP_SERVERS" in os.environ:
            pytest.fail(f"KAFKA_BOOTSTRAP_SERVERS={address} does not answer")
        subprocess.run([ROOT / "deploy" / "kafka.sh", "start"], check=True)
        started = True
    yield address
    if started:
        subprocess.run([ROOT / "deploy" / "kafka.sh", "stop"], check=True)


@pytest.fixture
def mailbox() -> Iterator[LocalMailbox]:
    with LocalMailbox() as box:
        yield box


class Receiver:
    def __init__(self, server: BackgroundServer, inbox: Inbox, secret: str) -> None:
        self.server = server
        self.inbox = inbox
        self.secret = secret

    def url(self, endpoint: str) -> str:
        return f"{self.server.url}/hooks/{endpoint}"


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    secret = new_secret()
    inbox = Inbox()
    with BackgroundServer(receiver_app({"partner-a": [secret]}, inbox)) as server:
        yield Receiver(server, inbox, secret)


@pytest.fixture
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """SQLite by default; ``parametrize("database_url", ["sqlite", "postgresql"],
    indirect=True)`` runs a test on both. Each test gets a database of its own."""
    kind = getattr(request, "param", "sqlite")
    if kind == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'state.db'}"
        return
    admin = os.environ.get("GNLC_TEST_POSTGRES_URL")
    if not admin:
        if os.environ.get("CI"):
            pytest.fail("GNLC_TEST_POSTGRES_URL is not set (deploy/test.sh sets it)")
        pytest.skip("no PostgreSQL: run through deploy/test.sh")
    with scratch_postgres_database(admin) as url:
        yield url


class System:
    """Settings shared by one test's services: a private topic prefix on the real broker."""

    def __init__(
        self,
        kafka: str,
        tmp: Path,
        mailbox: LocalMailbox,
        receiver: Receiver,
        database_url: str,
    ) -> None:
        self.prefix = f"t{uuid.uuid4().hex[:10]}."
        self.kafka = kafka
        self.tmp = tmp
        self.token = secrets.token_urlsafe(16)
        self.mailbox = mailbox
        self.receiver = receiver
        self.partners = tmp / "partners.yaml"
        self.partners.write_text(
            yaml.safe_dump(
                {
                    "endpoints": [
                        {
                            "id": "partner-a",
                            "partner": "institute-a",
                            "url": receiver.url("partner-a"),
                            "event_types": ["deadline.reminder", "announcement.published"],
                            "secret": receiver.secret,
                        }
                    ]
                }
            )
        )
        self.services: list[Service] = []
        seed_directory(kafka, self.prefix)
        self.database_url = database_url

    def env(self, **extra: str) -> dict[str, str]:
        env = dict(os.environ)
        env.update(
            {
                "KAFKA_BOOTSTRAP_SERVERS": self.kafka,
                "GNLC_TOPIC_PREFIX": self.prefix,
                "GNLC_TOPIC_PARTITIONS": "3",
                "GNLC_SMTP_PORT": str(self.mailbox.port),
                "GNLC_PARTNERS_PATH": str(self.partners),
                "GNLC_OPERATOR_TOKEN": self.token,
                "GNLC_LOG_LEVEL": "INFO",
                "GNLC_DATABASE_URL": self.database_url,
                # the receivers of the tests are on loopback, which the SSRF guard refuses
                "GNLC_WEBHOOK_ALLOWED_NETWORKS": "127.0.0.0/8,::1/128",
            }
        )
        env.update(extra)
        return env

    def database_url_for(self, service: str) -> str:
        """The test's own state: one SQLite file per service (as in production), or the
        test's PostgreSQL database, shared by its services."""
        if self.database_url.startswith("sqlite"):
            return f"sqlite+aiosqlite:///{self.tmp / service}.db"
        return self.database_url

    def service(self, name: str, **extra: str) -> Service:
        port = free_port()
        database = self.database_url_for(name)
        env = self.env(
            **{f"GNLC_{name.upper()}_PORT": str(port), "GNLC_DATABASE_URL": database, **extra}
        )
        service = Service(name, env, port, self.tmp / f"{name}-{len(self.services)}.log")
        self.services.append(service)
        return service

    def api_at(self, method: str, base: str, path: str, **kwargs: Any) -> httpx.Response:
        headers = {"authorization": f"Bearer {self.token}", **kwargs.pop("headers", {})}
        return HTTP.request(method, f"{base}{path}", headers=headers, timeout=10, **kwargs)

    def api(self, method: str, path: str, scheduler: Service, **kwargs: Any) -> httpx.Response:
        headers = {"authorization": f"Bearer {self.token}", **kwargs.pop("headers", {})}
        return HTTP.request(method, f"{scheduler.url}{path}", headers=headers, timeout=10, **kwargs)

    def caught_up(self, *channels: str, timeout: float = 60) -> None:
        """Each channel's service has committed every record now on the events' topics:
        all of it handled, so whatever it would send about them has been sent (instead of
        a quiet period)."""
        topics = [f"{self.prefix}{t}" for t in ("deadline.reminder", "announcement.published")]
        for channel in channels:
            wait_caught_up(self.kafka, f"{self.prefix}{channel}", topics, timeout=timeout)

    def settled(self, *channels: str, timeout: float = 60) -> None:
        """As ``caught_up``, and each channel's retry tiers are empty too: every record on
        them committed (a retry waiting on its tier is committed only once it has been
        sent, moved on or parked), so nothing more will be sent (instead of a quiet period
        longer than the retry schedule)."""
        from gnlc_core.kafka import Topics
        from gnlc_core.ladder import LADDER

        self.caught_up(*channels, timeout=timeout)
        topics = Topics(self.prefix)
        for channel in channels:
            tiers = [topics.retry_tier(channel, seconds) for seconds in (0.0, *LADDER)]
            wait_caught_up(self.kafka, topics.group(f"{channel}-retry"), tiers, timeout=timeout)

    def stop(self) -> None:
        stop_all(list(reversed(self.services)))


@pytest.fixture
def system(
    kafka: str, tmp_path: Path, mailbox: LocalMailbox, receiver: Receiver, database_url: str
) -> Iterator[System]:
    system = System(kafka, tmp_path, mailbox, receiver, database_url)
    try:
        yield system
    finally:
        system.stop()


@pytest.fixture(scope="module")
def module_system(kafka: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[System]:
    """One System for a whole module (SQLite, a mailbox and a receiver of its own), for
    tests that only read or are refused, so they share the services they start."""
    tmp = tmp_path_factory.mktemp("module")
    secret = new_secret()
    inbox = Inbox()
    with (
        LocalMailbox() as mailbox,
        BackgroundServer(receiver_app({"partner-a": [secret]}, inbox)) as server,
    ):
        system = System(
            kafka,
            tmp,
            mailbox,
            Receiver(server, inbox, secret),
            f"sqlite+aiosqlite:///{tmp / 'state.db'}",
        )
        try:
            yield system
        finally:
            system.stop()


class PrivateBroker:
    """A broker of this test's own (never the shared one), stopped at the end."""

    def __init__(self, state: Path) -> None:
        self.port = free_port()
        self.env = {
            k: v
            for k, v in os.environ.items()
            if k not in ("KAFKA_BOOTSTRAP_SERVERS", "GNLC_KAFKA_BOOTSTRAP_SERVERS")
        }
        self.env.update(
            KAFKA_PORT=str(self.port),
            KAFKA_CONTROLLER_PORT=str(free_port()),
            KAFKA_STATE_DIR=str(state),
            # the default heap: with 256 MiB the log cleaner's 128 MiB buffer sometimes found
            # no room at start (OutOfMemoryError)
            KAFKA_START_TIMEOUT="180",
            # a throw-away broker: the JIT's first tier only, about half the CPU to start
            KAFKA_JVM_FLAGS="-XX:TieredStopAtLevel=1",
        )

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def run(self, command: str) -> None:
        subprocess.run(
            [ROOT / "deploy" / "kafka.sh", command], env=self.env, check=True, timeout=240
        )


@pytest.fixture
def private_broker(tmp_path: Path) -> Iterator[PrivateBroker]:
    broker = PrivateBroker(tmp_path / "kafka")
    broker.run("start")
    try:
        yield broker
    finally:
        broker.run("stop")


@pytest.fixture
def http_sink(tmp_path: Path) -> Iterator[Sink]:
    """The benchmarks' cheap HTTP sink (answers 204) in a process of its own, stopped at the
    end of the test whatever its outcome."""
    sink = start_sink(tmp_path)
    try:
        yield sink
    finally:
        sink.proc.terminate()
        sink.proc.wait(timeout=10)
