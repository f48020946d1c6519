"""Delivery behaviour on the real broker with real receivers on loopback: the retry
schedule (on a scaled clock), Retry-After, 410, a hanging receiver, secret rotation,
pause, resend and replay. The tests that need no settings of their own share one service
(each with endpoints of its own, deleted after it)."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from aiokafka import ConsumerRecord
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from gnlc_core.kafka import REASON_HEADER, RECIPIENT_HEADER
from tests.integration.conftest import System
from tests.integration.hooks import Answer
from tests.integration.kafka_io import consume, headers_of, produce, read_all
from tests.integration.webhook_support import (
    SCALED,
    Api,
    delete_endpoints_of_the_test,
    event,
    hooks_server,
    start_webhook,
)
from tests.support import eventually

pytestmark = pytest.mark.integration
DEFAULT_DELAYS = (5, 300, 1800, 7200, 18000, 36000, 36000)


@pytest.fixture(scope="module")
def scaled_service(module_system: System) -> Api:
    """One webhook service on the scaled schedule for the module's tests that need no
    settings of their own (each registers endpoints of its own partner)."""
    _service, api = start_webhook(module_system, **SCALED)
    return api


@pytest.fixture
def scaled(module_system: System, scaled_service: Api) -> Iterator[tuple[System, Api]]:
    """The shared service for one test; afterwards the endpoints it registered are deleted
    (the module's own partner-a stays), so no later test's events go to them."""
    yield module_system, scaled_service
    delete_endpoints_of_the_test(scaled_service)


def records_of(
    system: System, topic: str, which: Callable[[ConsumerRecord[bytes, bytes]], bool]
) -> list[ConsumerRecord[bytes, bytes]]:
    """Once there is one: the records now on ``topic`` that ``which`` picks."""
    return eventually(
        lambda: [r for r in asyncio.run(read_all(system.kafka, system.prefix + topic)) if which(r)],
        timeout=30,
        what=f"a record on {topic}",
    )


def send(system: System, *values: bytes) -> None:
    asyncio.run(produce(system.kafka, f"{system.prefix}deadline.reminder", *values))


def test_retries_follow_the_schedule_then_the_notice_is_parked(system: System) -> None:
    scale = 0.00004  # the whole schedule (about 27.6 h) in about 4 s
    _service, api = start_webhook(system, GNLC_WEBHOOK_RETRY_TIME_SCALE=str(scale))
    with hooks_server() as (hooks, base):
        token = api.partner("partner-r")
        endpoint = api.endpoint(token, f"{base}/down")
        hooks.secrets["down"] = [endpoint["secret"]]
        hooks.scripts["down"] = [Answer(500)] * 20
        event_id, value = event()
        send(system, value)

        assert hooks.wait("down", 8, timeout=120), len(hooks.of("down"))
        hits = hooks.of("down")
        assert {h.webhook_id for h in hits} == {event_id}  # stable across retries
        gaps = [b.at - a.at for a, b in itertools.pairwise(hits)]
        for gap, delay in zip(gaps, DEFAULT_DELAYS, strict=True):
            assert gap >= delay * scale * 0.9 - 0.01, (gaps, delay)  # never early (jitter 10%)
        timestamps = [int(h.headers["webhook-timestamp"]) for h in hits]
        assert timestamps == sorted(timestamps)  # signed afresh at each attempt

        parked = asyncio.run(consume(system.kafka, f"{system.prefix}webhook.dead-letter", 1))
        assert len(parked) == 1
        assert headers_of(parked[0])[RECIPIENT_HEADER] == endpoint["id"]
        assert headers_of(parked[0])[REASON_HEADER] == "gave up after 8 attempts: http 500"
        system.settled("webhook")  # nothing waits on a retry tier any more
        assert len(hooks.of("down")) == 8  # nothing after the last attempt
        rows = eventually(
            lambda: [
                r
                for r in api.call("GET", f"/endpoints/{endpoint['id']}/attempts", token).json()
                if r["status"] == "failed"
            ],
            timeout=30,
            what="the failed attempt in the log",
        )
        assert rows[0]["attempt"] == 8
        log = api.call("GET", f"/endpoints/{endpoint['id']}/attempts", token).json()
        assert sorted(r["attempt"] for r in log) == list(range(1, 9))
        assert all(r["status_code"] == 500 for r in log)


def test_retry_after_is_honoured_and_410_disables_the_endpoint(
    scaled: tuple[System, Api],
) -> None:
    system, api = scaled
    with hooks_server() as (hooks, base):
        token = api.partner("partner-h")
        busy = api.endpoint(token, f"{base}/busy")
        gone = api.endpoint(token, f"{base}/gone")
        hooks.secrets["busy"] = [busy["secret"]]
        hooks.secrets["gone"] = [gone["secret"]]
        hooks.scripts["busy"] = [Answer(503, (("retry-after", "3"),))]
        hooks.scripts["gone"] = [Answer(410)]
        first_id, first = event()
        send(system, first)

        assert hooks.wait("busy", 2, timeout=60)
        a, b = hooks.of("busy")[:2]
        assert b.at - a.at >= 3 - 0.05  # the schedule alone would retry after 1 ms
        assert hooks.wait("gone", 1, timeout=60)

        eventually(
            lambda: (
                api.call("GET", f"/endpoints/{gone['id']}", token).json()["state"] == "disabled"
            ),
            timeout=30,
            what="the endpoint to be disabled",
        )
        detail = api.call("GET", f"/endpoints/{gone['id']}", token).json()
        assert "410" in detail["state_reason"]
        operations = records_of(
            system,
            "webhook.operations",
            lambda r: r.value is not None and gone["id"].encode() in r.value,
        )
        assert len(operations) == 1
        assert operations[0].value is not None
        assert b'"type": "webhook.endpoint.disabled"' in operations[0].value
        parked = records_of(
            system,
            "webhook.dead-letter",
            lambda r: headers_of(r).get(RECIPIENT_HEADER) == gone["id"],
        )
        assert len(parked) == 1
        assert "410" in headers_of(parked[0])[REASON_HEADER]

        # the next event is dropped for the disabled endpoint, and not sent there
        second_id, second = event()
        send(system, second)
        assert hooks.wait("busy", 3, timeout=60)
        dropped = eventually(
            lambda: api.call(
                "GET", f"/endpoints/{gone['id']}/attempts?event_id={second_id}", token
            ).json(),
            timeout=30,
            what="the dropped delivery in the log",
        )
        assert dropped[0]["status"] == "dropped"
        assert "disabled" in dropped[0]["error"]
        assert [h.webhook_id for h in hooks.of("gone")] == [first_id]


def test_deliveries_during_a_slow_down_wait_for_it_without_using_an_attempt(
    scaled: tuple[System, Api],
) -> None:
    system, api = scaled
    with hooks_server() as (hooks, base):
        token = api.partner("partner-s")
        calm = api.endpoint(token, f"{base}/calm")
        hooks.secrets["calm"] = [calm["secret"]]
        hooks.scripts["calm"] = [Answer(429, (("retry-after", "4"),))]
        first_id, first = event()
        send(system, first)
        assert hooks.wait("calm", 1, timeout=60)
        asked_at = hooks.of("calm")[0].at
        second_id, second = event()
        send(system, second)  # arrives while the endpoint has asked us to wait

        assert hooks.wait("calm", 3, timeout=60)
        hits = {h.webhook_id: h.at for h in hooks.of("calm")[1:]}
        assert set(hits) == {first_id, second_id}
        assert min(hits.values()) - asked_at >= 4 - 0.05
        log = eventually(
            lambda: api.call(
                "GET", f"/endpoints/{calm['id']}/attempts?event_id={second_id}", token
            ).json(),
            timeout=30,
            what="the delivery in the log",
        )
        assert [(row["attempt"], row["status"]) for row in log] == [(1, "delivered")]


def test_deliveries_for_a_hanging_endpoint_are_held_then_released_when_it_answers(
    system: System,
) -> None:
    _service, api = start_webhook(
        system,
        GNLC_WEBHOOK_TIMEOUT_SECONDS="2",
        GNLC_WEBHOOK_HANDOFF_SECONDS="0.3",
        GNLC_WEBHOOK_SLOW_DOWN_SECONDS="1",
        GNLC_WEBHOOK_HOLD_CHECK_SECONDS="0.5",
        GNLC_WEBHOOK_ENDPOINT_CONCURRENCY="4",
        **SCALED,
    )
    with hooks_server() as (hooks, base):
        token = api.partner("partner-u")
        stuck = api.endpoint(token, f"{base}/stuck")
        hooks.secrets["stuck"] = [stuck["secret"]]
        hooks.scripts["stuck"] = [Answer(hang=3)] * 4  # longer than the timeout, then 204
        values = [event() for _ in range(30)]
        send(system, *(v for _, v in values))
        ids = {event_id for event_id, _ in values}

        def log() -> list[dict[str, Any]]:
            path = f"/endpoints/{stuck['id']}/attempts?limit=500"
            rows: list[dict[str, Any]] = api.call("GET", path, token).json()
            return rows

        def delivered() -> set[str]:
            return {row["event_id"] for row in log() if row["status"] == "delivered"}

        eventually(
            lambda: delivered() >= ids, timeout=60, what="every delivery of the stuck endpoint"
        )
        rows: dict[str, list[tuple[int, str]]] = {}
        for row in log():
            rows.setdefault(row["event_id"], []).append((row["attempt"], row["status"]))
        # the four that hung were retried; the others were held (no attempt used, no
        # "endpoint busy" rows) and sent once the endpoint answered again
        held = [i for i in ids if rows[i] == [(1, "delivered")]]
        assert len(held) >= 20, rows
        assert set(hooks.unique("stuck")) == ids


def test_a_hanging_receiver_does_not_delay_a_healthy_one(system: System) -> None:
    # the hung requests would time out after 100 s: the healthy endpoint must get every
    # event long before that, whatever the machine's speed
    _service, api = start_webhook(system, GNLC_WEBHOOK_TIMEOUT_SECONDS="100")
    with hooks_server() as (hooks, base):
        token = api.partner("partner-x")
        slow = api.endpoint(token, f"{base}/slow")
        fast = api.endpoint(token, f"{base}/fast")
        hooks.secrets["slow"] = [slow["secret"]]
        hooks.secrets["fast"] = [fast["secret"]]
        hooks.scripts["slow"] = [Answer(hang=110)] * 200
        ids = []
        for _ in range(3):
            values = [event() for _ in range(20)]
            ids += [i for i, _ in values]
            send(system, *(v for _, v in values))
            time.sleep(1)
        assert hooks.wait("fast", 60, timeout=60, unique=True), len(hooks.unique("fast"))
        assert set(hooks.unique("fast")) == set(ids)
        assert hooks.of("slow")  # the slow one was indeed being called, and hangs
        in_flight = api.call("GET", f"/endpoints/{slow['id']}/attempts", token).json()
        assert all(r["status"] != "delivered" for r in in_flight)


def test_secret_rotation_signs_with_both_secrets_during_the_grace_period(
    scaled: tuple[System, Api],
) -> None:
    system, api = scaled
    with hooks_server() as (hooks, base):
        token = api.partner("partner-k")
        endpoint = api.endpoint(token, f"{base}/k")
        old = endpoint["secret"]
        rotated = api.call(
            "POST", f"/endpoints/{endpoint['id']}/rotate-secret", token, json={"grace_seconds": 600}
        ).json()
        new = rotated["secret"]
        assert new != old
        hooks.secrets["k"] = [old]  # a receiver that has not switched yet
        _id, value = event()
        send(system, value)
        assert hooks.wait("k", 1, timeout=60)
        hit = hooks.of("k")[0]
        Webhook(old).verify(hit.body.decode(), hit.headers)  # a receiver holding the old one
        Webhook(new).verify(hit.body.decode(), hit.headers)  # one holding the new one
        assert len(hit.headers["webhook-signature"].split()) == 2

        # rotate again with no grace: only the newest secret signs
        newest = api.call(
            "POST", f"/endpoints/{endpoint['id']}/rotate-secret", token, json={"grace_seconds": 0}
        ).json()["secret"]
        hooks.secrets["k"] = [newest]
        _id, value = event()
        send(system, value)
        assert hooks.wait("k", 2, timeout=60)
        last = hooks.of("k")[1]
        Webhook(newest).verify(last.body.decode(), last.headers)
        with pytest.raises(WebhookVerificationError):
            Webhook(new).verify(last.body.decode(), last.headers)


def test_pause_drops_then_replay_and_resend_deliver_again(scaled: tuple[System, Api]) -> None:
    system, api = scaled
    with hooks_server() as (hooks, base):
        token = api.partner("partner-p")
        endpoint = api.endpoint(token, f"{base}/p")
        hooks.secrets["p"] = [endpoint["secret"]]
        since = api.call("GET", f"/endpoints/{endpoint['id']}", token).json()["created_at"]
        assert api.call("POST", f"/endpoints/{endpoint['id']}/pause", token).json()["state"] == (
            "paused"
        )
        paused = [event() for _ in range(3)]
        send(system, *(v for _, v in paused))
        eventually(
            lambda: (
                len(api.call("GET", f"/endpoints/{endpoint['id']}/attempts", token).json()) >= 3
            ),
            timeout=60,
            what="the three dropped deliveries",
        )
        assert hooks.of("p", verified=False) == []

        assert api.call("POST", f"/endpoints/{endpoint['id']}/resume", token).json()["state"] == (
            "active"
        )
        replay = api.call(
            "POST", f"/endpoints/{endpoint['id']}/replay", token, json={"since": since}
        )
        assert replay.status_code == 202
        assert replay.json() == {"queued": 3}
        assert hooks.wait("p", 3, timeout=60, unique=True)
        assert set(hooks.unique("p")) == {i for i, _ in paused}

        # resend one that was delivered: it goes out again, same webhook-id
        resend = api.call(
            "POST", f"/endpoints/{endpoint['id']}/messages/{paused[0][0]}/resend", token
        )
        assert resend.status_code == 202
        assert hooks.wait("p", 4, timeout=60)
        assert hooks.of("p")[3].webhook_id == paused[0][0]
        missing = api.call("POST", f"/endpoints/{endpoint['id']}/messages/nope/resend", token)
        assert missing.status_code == 404
