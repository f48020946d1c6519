"""Faults: the webhook consumer killed mid-delivery and restarted; the broker restarted.
Every event reaches every endpoint, and a receiver deduplicating on ``webhook-id`` sees
each exactly once."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from tests.integration.conftest import PrivateBroker, System
from tests.integration.hooks import Answer
from tests.integration.kafka_io import produce
from tests.integration.webhook_support import Api, event, hooks_server

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]


def test_killed_mid_delivery_then_restarted_loses_nothing(system: System) -> None:
    # a long hand-off threshold keeps the batch uncommitted while its requests hang
    env = {"GNLC_WEBHOOK_HANDOFF_SECONDS": "60", "GNLC_WEBHOOK_TIMEOUT_SECONDS": "90"}
    service = system.service("webhook", **env).start()
    api = Api(service, system.token)
    with hooks_server() as (hooks, base):
        token = api.partner("partner-f")
        endpoints = [api.endpoint(token, f"{base}/f{i}") for i in range(2)]
        for i, endpoint in enumerate(endpoints):
            hooks.secrets[f"f{i}"] = [endpoint["secret"]]
        hooks.scripts["f0"] = [Answer(hang=120)] * 5  # the first requests hang
        values = [event() for _ in range(10)]
        asyncio.run(
            produce(system.kafka, f"{system.prefix}deadline.reminder", *(v for _, v in values))
        )
        assert hooks.wait("f0", 1, timeout=60)  # a request is in flight ...
        service.kill()  # ... and the consumer dies: nothing of that batch was committed
        hooks.release.set()  # the hung requests end (their connections are gone anyway)
        hooks.scripts["f0"] = []

        system.service("webhook", **env).start()
        ids = {i for i, _ in values}
        for name in ("f0", "f1"):
            assert hooks.wait(name, len(ids), timeout=90, unique=True), name
            assert set(hooks.unique(name)) == ids
        system.caught_up("webhook")  # all handled: each event once per receiver
        for name in ("f0", "f1"):
            assert len(hooks.unique(name)) == len(ids)
            assert all(h.verified for h in hooks.of(name, verified=False))


def test_the_broker_restarted_loses_nothing(private_broker: PrivateBroker, system: System) -> None:
    system.kafka = private_broker.address
    service = system.service("webhook").start()
    api = Api(service, system.token)
    topic = f"{system.prefix}deadline.reminder"
    with hooks_server() as (hooks, base):
        token = api.partner("partner-b")
        endpoint = api.endpoint(token, f"{base}/b")
        hooks.secrets["b"] = [endpoint["secret"]]
        before = [event() for _ in range(10)]
        asyncio.run(produce(private_broker.address, topic, *(v for _, v in before)))
        assert hooks.wait("b", 10, timeout=90, unique=True)

        private_broker.run("stop")
        time.sleep(3)  # the consumer notices the broker is gone
        private_broker.run("start")

        after = [event() for _ in range(10)]
        asyncio.run(produce(private_broker.address, topic, *(v for _, v in after)))
        ids = {i for i, _ in before + after}
        assert hooks.wait("b", 20, timeout=180, unique=True), service.tail()
        assert set(hooks.unique("b")) == ids
        system.caught_up("webhook")  # all handled: nothing more will be sent
        assert len(hooks.unique("b")) == 20
