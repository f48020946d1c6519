"""A broker of a 3-node cluster killed with -9 in the middle of a burst of 10,000 notices
on each channel: nothing lost, nothing duplicated at receivers that deduplicate (by
Message-ID, by webhook-id).

The cluster is this test's own (``deploy/kafka.sh cluster`` on free ports); the services
create their topics with replication 3 and ``min.insync.replicas`` 2 and produce with
``acks=all``, idempotent. The burst is 1,000 announcements, each for 10 cities (10,000
emails) and for 10 partner endpoints (10,000 webhooks): three quarters of it on the
topic, the broker that coordinates the email group killed while both channels are in the
middle of it (the webhooks, the faster channel, a quarter through), the last quarter
produced while its partitions elect new leaders. The receivers are cheap ones
(a counting SMTP server, the benchmarks' HTTP sink in a process of its own) so that the
time goes to the services and the cluster.
"""

from __future__ import annotations

import asyncio
import re
import threading
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import yaml
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

from gnlc_core.events import Audience, encode_event
from gnlc_core.kafka import Topics, partitions_of
from gnlc_devtools.mailbox import LocalMailbox
from gnlc_webhook.partners import new_secret
from tests.integration.conftest import Receiver, System
from tests.integration.email_support import announcement
from tests.kafka_cluster import KafkaCluster
from tests.perf.bench_webhook import Sink
from tests.support import Service, eventually, free_port, wait_caught_up

pytestmark = [pytest.mark.integration, pytest.mark.long]

EVENTS = 1000
CITIES = [
    *("durban", "ibadan", "aswan", "amman", "suwon", "hangzhou", "kathmandu", "cork"),
    *("laval", "medellin"),
]
ENDPOINTS = 10
MESSAGE_ID = re.compile(rb"^Message-ID: *(<[^>\r\n]+>)", re.I | re.M)
EVENT_ID = re.compile(rb"^X-GNLC-Event-Id: *([0-9a-f-]+)", re.I | re.M)


class MessageIds:
    """An SMTP server (aiosmtpd) that keeps what a deduplicating receiver needs: how often
    each Message-ID arrived, and which (event, recipient) each one was."""

    def __init__(self) -> None:
        self.ids: Counter[str] = Counter()
        self.notices: set[tuple[str, str]] = set()
        self._lock = threading.Lock()
        self.controller = Controller(self, hostname="127.0.0.1", port=free_port())

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        raw = envelope.original_content or b""
        message_id, event_id = MESSAGE_ID.search(raw), EVENT_ID.search(raw)
        with self._lock:
            self.ids[message_id.group(1).decode() if message_id else "-"] += 1
            for rcpt in envelope.rcpt_tos:
                self.notices.add((event_id.group(1).decode() if event_id else "-", rcpt))
        return "250 OK"

    @property
    def unique(self) -> int:
        with self._lock:
            return len(self.ids)

    @property
    def duplicates(self) -> int:
        with self._lock:
            return sum(self.ids.values()) - len(self.ids)


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[KafkaCluster]:
    cluster = KafkaCluster(tmp_path / "cluster")
    try:
        yield cluster.start()
    finally:
        cluster.discard()


@pytest.fixture
def smtp() -> Iterator[MessageIds]:
    sink = MessageIds()
    sink.controller.start()
    try:
        yield sink
    finally:
        sink.controller.stop()


async def _produce(bootstrap: str, records: list[tuple[str, bytes, bytes]]) -> None:
    """Send every record and wait for all the acks (acks=all, idempotent, as the services)."""
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, acks="all", enable_idempotence=True, linger_ms=5
    )
    await producer.start()
    try:
        sent = [await producer.send(topic, value, key=key) for topic, value, key in records]
        await asyncio.gather(*sent)
    finally:
        await producer.stop()


async def _layout(bootstrap: str, topics: list[str]) -> dict[str, tuple[set[int], str]]:
    """Per topic: the replica counts of its partitions and its min.insync.replicas."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        described = await admin.describe_topics(topics)
        replicas = {t["topic"]: {len(p["replicas"]) for p in t["partitions"]} for t in described}
        responses = await admin.describe_configs(
            [ConfigResource(ConfigResourceType.TOPIC, name) for name in topics]
        )
        min_isr: dict[str, str] = {}
        for response in responses:
            for resource in response.to_object()["resources"]:
                for entry in resource["config_entries"]:
                    if entry["config_names"] == "min.insync.replicas":
                        min_isr[resource["resource_name"]] = entry["config_value"]
        return {name: (replicas.get(name, set()), min_isr.get(name, "")) for name in topics}
    finally:
        await admin.close()


async def _dead_letters(bootstrap: str, topics: list[str]) -> int:
    """Records on ``topics``."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap)
    await consumer.start()
    try:
        partitions = await partitions_of(consumer, topics)
        assert len(partitions) == len(topics) * 6, partitions
        return sum((await consumer.end_offsets(partitions)).values())
    finally:
        await consumer.stop()


@pytest.mark.timeout(600)  # 20,000 notices: about a minute on 2 quiet cores, more when busy
def test_a_broker_killed_mid_burst_loses_and_duplicates_nothing(
    tmp_path: Path,
    cluster: KafkaCluster,
    smtp: MessageIds,
    http_sink: Sink,
    mailbox: LocalMailbox,
    receiver: Receiver,
    monkeypatch: pytest.MonkeyPatch,
    record_property: Any,
) -> None:
    started = time.monotonic()
    # the topics (created here by the test's seeding, and by the services) are replicated
    monkeypatch.setenv("GNLC_TOPIC_REPLICATION", "3")
    monkeypatch.setenv("GNLC_TOPIC_PARTITIONS", "6")
    system = System(cluster.bootstrap, tmp_path, mailbox, receiver, "sqlite")
    topics = Topics(system.prefix)
    names = [f"hook-{i}" for i in range(ENDPOINTS)]
    paths = {name: f"/hooks/ok/{system.prefix}{name}" for name in names}
    system.partners.write_text(
        yaml.safe_dump(
            {
                "endpoints": [
                    {
                        "id": name,
                        "partner": "cluster-drill",
                        "url": f"{http_sink.url}{paths[name]}",
                        "event_types": ["announcement.published"],
                        "secret": new_secret(),
                    }
                    for name in names
                ]
            }
        )
    )
    env = {"GNLC_TOPIC_PARTITIONS": "6", "GNLC_SMTP_PORT": str(smtp.controller.port)}
    try:
        email, webhook = system.service("email", **env), system.service("webhook", **env)
        with ThreadPoolExecutor(2) as starting:  # side by side: a core each
            list(starting.map(Service.start, (email, webhook)))
        ready = time.monotonic()

        tiers = [topics.retry_tier("email", 1), topics.retry_tier("webhook", 1)]
        layout = asyncio.run(_layout(cluster.bootstrap, [topics.announcement_published, *tiers]))
        assert all(layout[name] == ({3}, "2") for name in layout), layout

        events = [
            announcement(Audience(cities=CITIES), announcement_id=f"burst-{i}")
            for i in range(EVENTS)
        ]
        records = [
            (topics.announcement_published, encode_event(e), e.partitionkey.encode())
            for e in events
        ]
        emails, hooks = EVENTS * len(CITIES), EVENTS * ENDPOINTS

        def delivered_hooks() -> int:
            return len(http_sink.arrivals(prefix=f"/hooks/ok/{system.prefix}"))

        first = 3 * EVENTS // 4
        asyncio.run(_produce(cluster.bootstrap, records[:first]))
        # both channels under way: the webhooks (the faster channel) a quarter done, the
        # emails begun (when the webhooks waited for a twentieth of the emails, they had
        # all landed before the kill)
        eventually(
            lambda: smtp.unique >= 20 and delivered_hooks() >= hooks // 4,
            timeout=300,
            what="twenty emails and a quarter of the webhooks",
            every=0.05,
        )
        victim = cluster.group_coordinator(topics.group("email"))
        cluster.kill(victim)
        killed = time.monotonic()
        at_kill = (smtp.unique, delivered_hooks())
        on_topic = (first * len(CITIES), first * ENDPOINTS)
        assert at_kill[0] < on_topic[0], "the email channel had finished before the kill"
        assert at_kill[1] < on_topic[1], "the webhook channel had finished before the kill"
        asyncio.run(_produce(cluster.bootstrap, records[first:]))

        try:
            eventually(
                lambda: smtp.unique >= emails and delivered_hooks() >= hooks,
                timeout=420,
                what=f"{emails} emails and {hooks} webhooks",
                every=0.5,
            )
        except AssertionError as failed:
            raise AssertionError(
                f"{failed}: {smtp.unique} emails and {delivered_hooks()} webhooks arrived "
                f"(logs: {email.log}, {webhook.log})"
            ) from None
        domain = [topics.announcement_published]
        wait_caught_up(cluster.bootstrap, topics.group("email"), domain, timeout=60)
        wait_caught_up(cluster.bootstrap, topics.group("webhook"), domain, timeout=60)
        drained = time.monotonic()
    finally:
        system.stop()

    # nothing lost, nothing a stranger: exactly the notices of the burst
    event_ids = {e.id for e in events}
    addresses = {rcpt for _event, rcpt in smtp.notices}
    assert len(addresses) == len(CITIES)
    assert smtp.notices == {(e, a) for e in event_ids for a in addresses}
    assert smtp.unique == emails
    arrivals = http_sink.arrivals(prefix=f"/hooks/ok/{system.prefix}")
    assert set(arrivals) == {(e, paths[n]) for e in event_ids for n in names}
    # nothing parked: no notice gave up on the way
    dead = asyncio.run(
        _dead_letters(cluster.bootstrap, [topics.email_dead_letter, topics.webhook_dead_letter])
    )
    assert dead == 0
    # duplicates by id are what a deduplicating receiver drops; reported, and few
    hook_lines = [
        line
        for line in http_sink.out.read_text().splitlines()
        if f" /hooks/ok/{system.prefix}" in line
    ]
    hook_duplicates = len(hook_lines) - len(arrivals)
    figures = {
        "killed_node": victim,
        "delivered_when_killed": at_kill,
        "email_duplicates": smtp.duplicates,
        "webhook_duplicates": hook_duplicates,
        "seconds_services_ready": round(ready - started, 1),
        "seconds_burst_after_the_kill": round(drained - killed, 1),
    }
    for name, value in figures.items():
        record_property(name, value)
    print(f"broker-kill drill: {figures}")
    assert smtp.duplicates <= emails // 100, figures
    assert hook_duplicates <= hooks // 100, figures
